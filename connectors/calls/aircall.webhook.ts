/**
 * Aircall call webhooks (JSON). Aircall does not sign requests: every body carries the webhook's `token`,
 * compared here in constant time with the configured token.
 *
 * Body: { resource, event, timestamp (unix s), token, data }.
 *   - call.ended: data = { id, direction: inbound|outbound, started_at, ended_at, duration, raw_digits (the
 *     external party), number: { digits } (our Aircall line), user?: { email, name } (the agent), status, ... }
 *     -> one interaction; sourceId and threadId = data.id.
 *   - transcription.created: data = { id?, call_id, content: { language, utterances: [{ participant_type
 *     (internal|external), text, start_time, ... }] } } -> the transcript, threadId = data.call_id so it joins its call.
 *   - anything else: ignored.
 */
import type { Interaction, Participant } from '../../src/pipeline/interaction.ts';
import type { WebhookOutcome, WebhookReceiver, WebhookRequest } from '../../src/pipeline/webhook.ts';
import { acceptInteractions, isObject, parseJsonObject, safeEqual, unixToIso } from './verify.ts';
import { SOURCES } from '../../src/journal/source-catalog.ts';

export interface AircallReceiverOptions {
  readonly webhookToken: string;
}

function reject(status: 401 | 415 | 422, reason: string): WebhookOutcome {
  return { kind: 'rejected', status, reason };
}

/** A string or numeric id as a string; undefined when absent or empty. */
function idOf(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  if (typeof value === 'string' && value !== '') return value;
  return undefined;
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

/** Verifies Aircall webhooks by their body token and turns ended calls and transcripts into call interactions. */
export class AircallReceiver implements WebhookReceiver {
  readonly provider = 'aircall';
  readonly contentTypes = ['application/json'] as const;
  readonly #token: string;

  constructor(options: AircallReceiverOptions) {
    if (options.webhookToken === '') throw new Error('AircallReceiver needs a non-empty webhookToken');
    this.#token = options.webhookToken;
  }

  handle(req: WebhookRequest): WebhookOutcome {
    if (req.contentType !== 'application/json') return reject(415, 'unsupported content type');
    // The token lives in the body, so the body must be parsed before anything is trusted.
    const body = parseJsonObject(req.rawBody);
    if (body === undefined) return reject(401, 'missing token');
    const token = body['token'];
    if (typeof token !== 'string' || token === '') return reject(401, 'missing token');
    if (!safeEqual(token, this.#token)) return reject(401, 'token mismatch');

    const event = body['event'];
    if (typeof event !== 'string' || event === '') return reject(422, 'missing field event');
    const data = body['data'];
    if (!isObject(data)) return reject(422, 'missing field data');
    const fallbackTime = unixToIso(body['timestamp']) ?? req.receivedAt.toISOString();

    if (event === 'call.ended') return this.#callEnded(data, fallbackTime);
    if (event === 'transcription.created') return this.#transcription(data, body['timestamp'], fallbackTime);
    const id = idOf(data['id']) ?? idOf(body['timestamp']) ?? 'unknown';
    return { kind: 'ignored', reason: 'event not recorded', eventId: `aircall/${event}/${id}` };
  }

  /** What the token authenticates: the body that carries it (Aircall signs nothing else). */
  authenticated(req: WebhookRequest): readonly (string | Buffer)[] {
    return [req.rawBody];
  }

  #callEnded(data: Record<string, unknown>, fallbackTime: string): WebhookOutcome {
    const callId = idOf(data['id']);
    if (callId === undefined) return reject(422, 'missing field data.id');
    const dir = data['direction'];
    if (dir !== 'inbound' && dir !== 'outbound') return reject(422, 'invalid field data.direction: expected inbound or outbound');
    const duration = data['duration'];
    if (duration !== undefined && duration !== null && !(typeof duration === 'number' && Number.isInteger(duration) && duration >= 0)) {
      return reject(422, 'invalid field data.duration: expected whole seconds');
    }

    const external = nonEmpty(data['raw_digits']);
    const line = isObject(data['number']) ? nonEmpty(data['number']['digits']) : undefined;
    const [caller, callee] = dir === 'inbound' ? [external, line] : [line, external];
    const participants: Participant[] = [];
    if (caller !== undefined) participants.push({ role: 'caller', address: caller });
    if (callee !== undefined) participants.push({ role: 'callee', address: callee });
    const user = data['user'];
    if (isObject(user)) {
      const email = nonEmpty(user['email']);
      const name = nonEmpty(user['name']);
      if (email !== undefined) participants.push({ role: 'agent', address: email, ...(name !== undefined ? { name } : {}) });
    }

    const metadata: Record<string, string | number> = {};
    if (typeof duration === 'number') metadata['durationSeconds'] = duration;
    const status = nonEmpty(data['status']);
    if (status !== undefined) metadata['callStatus'] = status;
    const missedReason = nonEmpty(data['missed_call_reason']);
    if (missedReason !== undefined) metadata['missedCallReason'] = missedReason;

    const interaction: Interaction = {
      channel: 'call',
      source: SOURCES.aircall,
      sourceId: callId,
      threadId: callId,
      direction: dir,
      occurredAt: unixToIso(data['ended_at']) ?? unixToIso(data['started_at']) ?? fallbackTime,
      participants,
      subject: typeof duration === 'number' ? `Call ${status ?? 'ended'} (${duration} s)` : `Call ${status ?? 'ended'}`,
      metadata,
    };
    return acceptInteractions([interaction], `aircall/call.ended/${callId}`);
  }

  #transcription(data: Record<string, unknown>, timestamp: unknown, fallbackTime: string): WebhookOutcome {
    const callId = idOf(data['call_id']);
    if (callId === undefined) return reject(422, 'missing field data.call_id');
    const transcriptId = idOf(data['id']) ?? idOf(timestamp);
    if (transcriptId === undefined) return reject(422, 'missing field data.id');
    const content = isObject(data['content']) ? data['content'] : data;
    const utterances = content['utterances'];
    if (utterances !== undefined && !Array.isArray(utterances))
      return reject(422, 'invalid field data.content.utterances: expected an array');

    const lines: string[] = [];
    for (const u of (utterances ?? []) as unknown[]) {
      if (!isObject(u) || typeof u['text'] !== 'string') continue;
      const who = u['participant_type'] === 'internal' ? 'Agent' : u['participant_type'] === 'external' ? 'Customer' : 'Speaker';
      lines.push(`${who}: ${u['text']}`);
    }
    const metadata: Record<string, string | number | boolean> = { transcriptId, directionInferred: true };
    if (isObject(data['content']) && typeof data['content']['language'] === 'string') metadata['language'] = data['content']['language'];

    const interaction: Interaction = {
      channel: 'call',
      source: SOURCES.aircall,
      sourceId: `${callId}/transcript/${transcriptId}`,
      threadId: callId,
      // The transcript payload does not carry the call's direction; the call it joins does.
      direction: 'inbound',
      occurredAt: unixToIso(data['call_created_at']) ?? fallbackTime,
      participants: [],
      subject: 'Call transcript',
      ...(lines.length > 0 ? { text: lines.join('\n') } : {}),
      metadata,
    };
    return acceptInteractions([interaction], `aircall/transcription.created/${callId}/${transcriptId}`);
  }
}
