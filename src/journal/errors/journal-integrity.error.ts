/** The journal does not match what was signed or anchored: the writer refuses to build on it. */
export class JournalIntegrityError extends Error {
  readonly code = 'JOURNAL_INTEGRITY';
  constructor(
    message: string,
    readonly firstBadSeq: number | null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'JournalIntegrityError';
  }
}
