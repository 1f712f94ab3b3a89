/** The command line was misused: print what to do and exit 2. */
export class UsageError extends Error {
  readonly code = 'USAGE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UsageError';
  }
}
