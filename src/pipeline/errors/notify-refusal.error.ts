/**
 * A notification channel refused or failed one delivery. `code` is short and safe to log and to keep in Redis
 * (an SMTP reply code, Slack's error string, an HTTP status, a network error code); `detail` holds the
 * provider's own words, which can quote an address: it is journaled sealed and never logged.
 */
export class NotifyRefusal extends Error {
  constructor(
    readonly code: string,
    readonly retryable: boolean,
    readonly detail: string,
    readonly retryAfterSeconds?: number,
    options?: { cause?: unknown },
  ) {
    super(`notification refused: ${code}`, options);
    this.name = 'NotifyRefusal';
  }
}

/**
 * A delivery that failed for now, without the provider saying when to try again: the job is retried with the
 * notify queue's exponential backoff. (A refusal that says when, a Retry-After, is the pipeline's RateLimitError:
 * the backoff then waits at least that long.) Its message carries only the channel and code.
 */
export class NotifyRetryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NotifyRetryError';
  }
}

/** Only letters, digits and `_ . -` (at most 64): what goes in clear into the journal, the log and Redis. */
export function refusalCode(value: string): string {
  const cleaned = value.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 64);
  return cleaned.length > 0 ? cleaned : 'unknown';
}
