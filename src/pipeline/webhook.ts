/**
 * The port every webhook receiver implements (connectors/calls, connectors/forms). The web server owns HTTP:
 * it reads the raw body, enforces size and content type, journals every rejection and takes accepted
 * interactions in; a receiver only verifies its provider's signature and normalises the payload.
 */
import type { Interaction } from './interaction.ts';

export interface WebhookRequest {
  /** The full URL the provider called, as it signed it (scheme, host, path and query). */
  readonly url: string;
  readonly method: string;
  /** Lower-case header names. */
  readonly headers: Readonly<Record<string, string | undefined>>;
  /** The body exactly as received: signatures are computed over these bytes. */
  readonly rawBody: Buffer;
  /** The media type without parameters, lower-case (e.g. application/json). */
  readonly contentType: string;
  readonly receivedAt: Date;
}

export type WebhookOutcome =
  /** Verified; these interactions are to be taken in (a 2xx is sent once they are committed). */
  | { readonly kind: 'accepted'; readonly interactions: readonly Interaction[]; readonly eventId: string }
  /** Verified, but not an event we record (e.g. a call that is still ringing): answered 2xx, nothing journaled. */
  | { readonly kind: 'ignored'; readonly reason: string; readonly eventId: string }
  /** Refused: answered with `status` and journaled as webhook.rejected with `reason` (which never quotes the body). */
  | { readonly kind: 'rejected'; readonly status: 400 | 401 | 403 | 409 | 413 | 415 | 422; readonly reason: string };

export interface WebhookReceiver {
  /** The path segment: POST /webhooks/<provider>. */
  readonly provider: string;
  /** Media types this receiver accepts; anything else is refused with 415 before `handle` is called. */
  readonly contentTypes: readonly string[];
  handle(req: WebhookRequest): WebhookOutcome;
  /**
   * The parts of a verified request that its signature (or token) authenticates, in a fixed order. The replay
   * check keys on these, so a request that differs from an earlier one only in what is not authenticated (an
   * extra or re-cased signature, an unsigned header or query) is the same request: a replay.
   */
  authenticated(req: WebhookRequest): readonly (string | Buffer)[];
}
