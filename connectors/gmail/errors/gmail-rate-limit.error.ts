/** Gmail asked us to slow down (429, or 403 with a rate-limit reason): pause, then retry. */
export class GmailRateLimitError extends Error {
  override readonly name = 'GmailRateLimitError';
  readonly code = 'GMAIL_RATE_LIMIT' as const;
  /** From `Retry-After` when Gmail sent one; undefined otherwise (the caller picks its own backoff). */
  readonly retryAfterMs: number | undefined;
  readonly status: number;
  /** Gmail's `errors[].reason`, e.g. rateLimitExceeded or userRateLimitExceeded. */
  readonly reason: string | undefined;

  constructor(message: string, options: { cause?: unknown; status: number; retryAfterMs?: number; reason?: string }) {
    super(message, { cause: options.cause });
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
    this.reason = options.reason;
  }
}
