import type { CallRecord, FailureKind } from '../hubspot.http.ts';

/**
 * One HubSpot call that failed, classified (429 by policy, 5xx, 4xx validation, auth, not found, network), with
 * its record for the journal. Internal to the connector: the call policy (hubspot.crm.ts `send`) decides what
 * reaches the pipeline (a daily limit leaves as the pipeline's RateLimitError).
 */
export class HubSpotCallError extends Error {
  constructor(
    readonly kind: FailureKind,
    readonly record: CallRecord,
    message: string,
    readonly retryAfterMs: number | null,
    readonly body: unknown,
  ) {
    super(message);
    this.name = 'HubSpotCallError';
  }
  get retryable(): boolean {
    return this.kind === 'rate-limit-secondly' || this.kind === 'rate-limit-daily' || this.kind === 'server' || this.kind === 'network';
  }
}
