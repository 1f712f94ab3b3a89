/**
 * The record of refused webhook requests: one webhook.rejected entry per refusal (reason, size, SHA-256 of the
 * body, never the body), capped per configured provider, and for all unknown names together, so that a flood
 * cannot flood the journal. What the cap held back is counted and said on the next window's first entry.
 */
import { createHash } from 'node:crypto';
import type { JournalClient } from '../journal/journal-client.ts';
import { bodyDigest, type RejectedBody } from './webhook-body.ts';

/** A refusal: the status answered and the reason given (to the caller and on the record). */
export type Rejection = { status: number; reason: string };

/** The rejection window of every provider name that has no receiver (not a valid name: it has a space). */
const UNKNOWN_PROVIDERS = 'unknown providers';

export interface RejectionJournalOptions {
  readonly journal: JournalClient;
  /** Whether a provider name has a configured receiver (and so a window of its own). */
  readonly configured: (provider: string) => boolean;
  /** At most this many entries per minute per window; the rest are counted. */
  readonly perMinute: number;
  readonly now: () => number;
}

export class RejectionJournal {
  private readonly windows = new Map<string, { start: number; journaled: number; suppressed: number }>();

  constructor(private readonly options: RejectionJournalOptions) {}

  async record(provider: string, r: Rejection, body: RejectedBody): Promise<void> {
    const t = this.options.now();
    const admitted = this.admit(provider, t);
    if (!admitted) return;
    const { suppressed } = admitted;
    const digest = bodyDigest(body);
    const requestHash = digest?.hash;
    await this.options.journal.append({
      kind: 'webhook.rejected',
      source: 'web',
      actor: `webhook:${provider}`.slice(0, 256),
      correlationId: `webhook/${provider}`.slice(0, 256),
      // The same bad request sent again is the same rejection: it adds nothing.
      idempotencyKey: `webhook-rejected/${provider}/${r.status}/${createHash('sha256')
        .update(r.reason)
        .update('\0')
        .update(requestHash ?? '')
        .digest('hex')}${suppressed > 0 ? `/${t}` : ''}`.slice(0, 512),
      payload: {
        endpoint: `/webhooks/${provider}`.slice(0, 200),
        status: r.status,
        reason: r.reason,
        ...(digest ? { requestHash: digest.hash, sizeBytes: digest.sizeBytes } : {}),
        ...(digest?.truncated ? { bodyTruncated: true } : {}),
        ...(suppressed > 0 ? { suppressed } : {}),
      },
    });
  }

  /**
   * Counts a rejection against its provider's one-minute window: null when the window is full (the rejection is
   * only counted), else how many the previous window held back (said on the first entry of a new window).
   */
  private admit(provider: string, t: number): { suppressed: number } | null {
    // Names nobody configured share one window: the path segment is the caller's to choose, so counting per
    // segment would let made-up names write without limit (and grow this map without end). With that, the map
    // holds at most one window per configured receiver plus this one.
    const windowKey = this.options.configured(provider) ? provider : UNKNOWN_PROVIDERS;
    let w = this.windows.get(windowKey);
    let suppressed = 0;
    if (!w || t - w.start >= 60_000) {
      suppressed = w?.suppressed ?? 0;
      w = { start: t, journaled: 0, suppressed: 0 };
      this.windows.set(windowKey, w);
    }
    if (w.journaled >= this.options.perMinute) {
      w.suppressed++;
      return null;
    }
    w.journaled++;
    return { suppressed };
  }
}
