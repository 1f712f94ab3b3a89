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
 * A delivery that failed for now; the job is retried with backoff, no sooner than `retryAfterMs` when the
 * provider said when (the notify queue's backoff strategy reads it). Its message carries only the channel and code.
 */
export class NotifyRetryError extends Error {
  constructor(
    message: string,
    options?: { cause?: unknown },
    readonly retryAfterMs?: number,
  ) {
    super(message, options);
    this.name = 'NotifyRetryError';
  }
}

/** Only letters, digits and `_ . -` (at most 64): what goes in clear into the journal, the log and Redis. */
export function refusalCode(value: string): string {
  const cleaned = value.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 64);
  return cleaned.length > 0 ? cleaned : 'unknown';
}
