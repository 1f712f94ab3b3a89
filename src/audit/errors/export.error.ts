/** An export cannot be made: no checkpoint yet, a bad scope, no genesis entry. */
export class ExportError extends Error {
  override readonly name = 'ExportError';
  constructor(
    readonly code: 'NO_CHECKPOINT' | 'BAD_SCOPE' | 'NO_GENESIS',
    message: string,
  ) {
    super(message);
  }
}
