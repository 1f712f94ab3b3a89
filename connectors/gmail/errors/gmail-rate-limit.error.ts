import { RateLimitError } from '../../../src/pipeline/errors/rate-limit.error.ts';

/** Gmail asked us to slow down (429, or 403 with a rate-limit reason): pause, then retry. */
export class GmailRateLimitError extends RateLimitError {
  override readonly name = 'GmailRateLimitError';
  override readonly code = 'GMAIL_RATE_LIMIT' as const;
  readonly status: number;
  /** Gmail's `errors[].reason`, e.g. rateLimitExceeded or userRateLimitExceeded. */
  readonly reason: string | undefined;

  /** `retryAfterMs` from `Retry-After` when Gmail sent one; undefined otherwise (the caller picks its own backoff). */
  constructor(message: string, options: { cause?: unknown; status: number; retryAfterMs?: number; reason?: string }) {
    super(message, { provider: 'gmail', retryAfterMs: options.retryAfterMs, cause: options.cause });
    this.status = options.status;
    this.reason = options.reason;
  }
}
