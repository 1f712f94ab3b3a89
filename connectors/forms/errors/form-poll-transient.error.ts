/**
 * Transient: the form provider is rate-limiting us (429) or unavailable (5xx, network). The poll backs off and
 * retries a few times itself; past that the job fails and BullMQ retries it with exponential backoff.
 */
export class FormPollTransientError extends Error {
  override readonly name = 'FormPollTransientError';
  readonly code = 'FORM_POLL_TRANSIENT' as const;
  /** HTTP status, or undefined for a network failure. */
  readonly status: number | undefined;
  /** From `Retry-After` when the provider sent one. */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options: { cause?: unknown; status?: number; retryAfterMs?: number } = {}) {
    super(message, { cause: options.cause });
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
}
