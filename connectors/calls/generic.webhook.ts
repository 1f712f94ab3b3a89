/**
 * Generic call webhook (provider `calls`, POST /webhooks/calls) for telephony systems without a dedicated
 * receiver. The full format is documented in connectors/calls/README.md; in short:
 *
 * Headers
 *   x-aj-timestamp: <unix seconds when the request was signed>
 *   x-aj-signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
 *     (several signatures may be sent comma-separated, e.g. during a secret rotation; one must match; a
 *     malformed entry makes the header malformed: src/pipeline/webhook-signature.ts)
 * Body (application/json)
 *   { "id": string,                      unique per event; retries keep it
 *     "event": "call.completed" | "call.transcript",
 *     "callId": string,                  the call; a transcript joins its call through it (threadId)
 *     "direction": "inbound" | "outbound" | "internal",
 *     "from": string, "to": string,      E.164 numbers or SIP/email addresses
 *     "agent"?: string,                  the agent's email
 *     "startedAt": string,               ISO 8601 with offset
 *     "durationSeconds"?: integer >= 0,
 *     "transcript"?: string,             required for call.transcript
 *     "subject"?: string }
 *
 * A timestamp further than `toleranceSeconds` (default 300) from now, in either direction, is refused, so a
 * captured request cannot be replayed later. Duplicates inside the window are absorbed by the journal's
 * idempotency key (sourceId).
 */
import { z } from 'zod';
import type { Interaction, Participant } from '../../src/pipeline/interaction.ts';
import type { WebhookOutcome, WebhookReceiver, WebhookRequest } from '../../src/pipeline/webhook.ts';
import { parseSignatureHeader, signV1 } from '../../src/pipeline/webhook-signature.ts';
import { acceptInteractions, safeEqual } from './verify.ts';
import { SOURCES } from '../../src/journal/source-catalog.ts';

export interface GenericCallReceiverOptions {
  readonly secret: string;
  /** Accepted clock difference, in seconds, between the signer and us (default 300). */
  readonly toleranceSeconds?: number;
  readonly now?: () => Date;
}

export const GenericCallEventSchema = z.strictObject({
  id: z.string().min(1).max(200),
  event: z.enum(['call.completed', 'call.transcript']),
  callId: z.string().min(1).max(200),
  direction: z.enum(['inbound', 'outbound', 'internal']),
  from: z.string().min(1).max(512),
  to: z.string().min(1).max(512),
  agent: z.string().min(1).max(512).optional(),
  startedAt: z.iso.datetime({ offset: true }),
  durationSeconds: z.number().int().nonnegative().max(1_000_000_000).optional(),
  transcript: z.string().max(2_000_000).optional(),
  subject: z.string().max(2000).optional(),
});
export type GenericCallEvent = z.infer<typeof GenericCallEventSchema>;

/** Computes the `x-aj-signature` value for a timestamp and raw body (for senders and tests). */
export function genericCallSignature(secret: string, timestamp: string | number, rawBody: Buffer | string): string {
  return signV1(secret, timestamp, rawBody);
}

function reject(status: 401 | 415 | 422, reason: string): WebhookOutcome {
  return { kind: 'rejected', status, reason };
}

/** Verifies the documented HMAC-SHA256 signature and timestamp, then maps call and transcript events. */
export class GenericCallReceiver implements WebhookReceiver {
  readonly provider = 'calls';
  readonly contentTypes = ['application/json'] as const;
  readonly #secret: string;
  readonly #toleranceSeconds: number;
  readonly #now: () => Date;

  constructor(options: GenericCallReceiverOptions) {
    if (options.secret === '') throw new Error('GenericCallReceiver needs a non-empty secret');
    this.#secret = options.secret;
    this.#toleranceSeconds = options.toleranceSeconds ?? 300;
    this.#now = options.now ?? (() => new Date());
  }

  handle(req: WebhookRequest): WebhookOutcome {
    if (req.contentType !== 'application/json') return reject(415, 'unsupported content type');
    const timestamp = req.headers['x-aj-timestamp'];
    const signatureHeader = req.headers['x-aj-signature'];
    if (signatureHeader === undefined || signatureHeader === '') return reject(401, 'missing signature');
    if (timestamp === undefined || timestamp === '') return reject(401, 'missing timestamp');
    if (!/^\d{1,12}$/.test(timestamp)) return reject(401, 'invalid timestamp');
    const ageSeconds = this.#now().getTime() / 1000 - Number(timestamp);
    if (Math.abs(ageSeconds) > this.#toleranceSeconds) return reject(401, 'stale timestamp');

    const signatures = parseSignatureHeader(signatureHeader);
    if (signatures.kind === 'malformed') return reject(401, 'malformed signature header');
    const expected = genericCallSignature(this.#secret, timestamp, req.rawBody);
    // Every candidate is compared, so the time taken does not depend on which one matched.
    let matched = false;
    for (const hex of signatures.v1) {
      if (safeEqual(expected, `v1=${hex}`)) matched = true;
    }
    if (!matched) return reject(401, 'signature mismatch');

    let json: unknown;
    try {
      json = JSON.parse(req.rawBody.toString('utf8'));
    } catch {
      return reject(422, 'malformed JSON body');
    }
    const parsed = GenericCallEventSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const unknownKey = issue?.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
      const field = unknownKey ?? (issue?.path.map(String).join('.') || '(body)');
      return reject(422, unknownKey !== undefined ? `unknown field ${field}` : `invalid field ${field}`);
    }
    const ev = parsed.data;
    if (ev.event === 'call.transcript' && ev.transcript === undefined)
      return reject(422, 'invalid field transcript: required for call.transcript');
    return acceptInteractions([toInteraction(ev)], `calls/${ev.id}`);
  }

  /** What the signature covers: the timestamp and the body. */
  authenticated(req: WebhookRequest): readonly (string | Buffer)[] {
    return [req.headers['x-aj-timestamp'] ?? '', req.rawBody];
  }
}

function toInteraction(ev: GenericCallEvent): Interaction {
  const participants: Participant[] = [
    { role: 'caller', address: ev.from },
    { role: 'callee', address: ev.to },
  ];
  if (ev.agent !== undefined) participants.push({ role: 'agent', address: ev.agent });
  const isTranscript = ev.event === 'call.transcript';
  const metadata: Record<string, string | number> = { eventId: ev.id };
  if (ev.durationSeconds !== undefined) metadata['durationSeconds'] = ev.durationSeconds;
  const defaultSubject = isTranscript
    ? 'Call transcript'
    : ev.durationSeconds !== undefined
      ? `Call completed (${ev.durationSeconds} s)`
      : 'Call completed';
  return {
    channel: 'call',
    source: SOURCES.callsWebhook,
    sourceId: isTranscript ? `${ev.callId}/transcript/${ev.id}` : ev.callId,
    threadId: ev.callId,
    direction: ev.direction,
    occurredAt: ev.startedAt,
    participants,
    subject: ev.subject ?? defaultSubject,
    ...(ev.transcript !== undefined ? { text: ev.transcript } : {}),
    metadata,
  };
}
