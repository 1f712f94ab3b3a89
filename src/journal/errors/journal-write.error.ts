/** A transaction that could not be committed (disk full, I/O error, writer closed). Nothing of it was written. */
export class JournalWriteError extends Error {
  readonly code: 'WRITE_FAILED' | 'CLOSED';
  readonly retryable: boolean;
  constructor(code: JournalWriteError['code'], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'JournalWriteError';
    this.code = code;
    this.retryable = code === 'WRITE_FAILED';
  }
}
