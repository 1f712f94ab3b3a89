/** Sealing or archiving a segment failed (its file, its checks, or the store). */
export class ArchiveError extends Error {
  readonly code = 'ARCHIVE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ArchiveError';
  }
}
