/** Thrown when the text is not an export at all (a usage problem, not a failed check). */
export class NotAnExportError extends Error {
  override readonly name = 'NotAnExportError';
}
