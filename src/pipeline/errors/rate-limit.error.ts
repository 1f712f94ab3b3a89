/**
 * A provider refused for now because we asked too much (a 429, a daily budget spent, a channel's rate limit):
 * try again no sooner than `retryAfterMs` when the provider said when. Every connector maps its provider's rate
 * limiting to this type (or a subclass that carries more: GmailRateLimitError), so the job side decides by type,
 * never by provider:
 * - crm-batch (one HubSpot account behind the whole queue): BullMQ's rate limit of the queue, every worker stops
 *   fetching until `retryAfterMs` has passed (jobs/crm-batch/processor.ts);
 * - notify (a limit per channel): only that job waits, BullMQ's backoff no sooner than `retryAfterMs`
 *   (retryAfterBackoff in src/pipeline/job-catalog.ts);
 * - sync-inbox (a quota per mailbox): the mailbox's quota pauses and the job retries with its own backoff.
 *
 * The message names the provider and the limit, never a person's data (it is logged and journaled).
 */
export class RateLimitError extends Error {
  override readonly name: string = 'RateLimitError';
  readonly code: string = 'RATE_LIMITED';
  /** Who limited us, e.g. `hubspot`, `gmail`, a notification channel's id. */
  readonly provider: string;
  /** Which of the provider's limits, when it has several (e.g. HubSpot's `daily`); undefined otherwise. */
  readonly limit: string | undefined;
  /** How long to wait, from Retry-After or the provider's reset; undefined when it did not say (the caller picks). */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options: { provider: string; retryAfterMs?: number | undefined; limit?: string; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.provider = options.provider;
    this.limit = options.limit;
    this.retryAfterMs = options.retryAfterMs;
  }
}
