/** Gmail failed on its side (5xx) or could not be reached: retryable with backoff. */
export class GmailUnavailableError extends Error {
  override readonly name = 'GmailUnavailableError';
  readonly code = 'GMAIL_UNAVAILABLE' as const;
  /** HTTP status, undefined when no response arrived. */
  readonly status: number | undefined;

  constructor(message: string, options: { cause?: unknown; status?: number } = {}) {
    super(message, { cause: options.cause });
    this.status = options.status;
  }
}
