/**
 * Twilio call webhooks: Voice status callbacks (form-encoded) and Conversational/Voice Intelligence
 * "transcript available" callbacks (JSON).
 *
 * Verification follows Twilio's request validation:
 *   - form bodies: X-Twilio-Signature = base64(HMAC-SHA1(authToken, url + name1 + value1 + name2 + value2 ...)),
 *     parameters sorted by name (repeated names: each value, sorted);
 *   - JSON bodies: the URL carries `bodySHA256` = hex SHA-256 of the raw body, and the signature covers the URL
 *     alone (no parameters appended). Both the signature and the body hash must match.
 * `req.url` must be the URL exactly as Twilio called it (scheme, host, port as configured, path, query).
 * Not supported: Webhook Rules signed with a SharedKey and HMAC-SHA256 (X-Twilio-Webhooks-Signature-Settings).
 *
 * Transcript callbacks only reference the transcript (transcript_sid; the call is found from `call_sid`,
 * `CallSid` or `customer_key`): the interaction then carries `metadata.transcriptSid` and no `text`. When the
 * payload itself has a `text` string (e.g. relayed by our own fetcher), it becomes the interaction's text.
 */
import { createHmac } from 'node:crypto';
import type { Interaction } from '../../src/pipeline/interaction.ts';
import type { WebhookOutcome, WebhookReceiver, WebhookRequest } from '../../src/pipeline/webhook.ts';
import { acceptInteractions, parseJsonObject, safeEqual, sha256Hex } from './verify.ts';
import { SOURCES } from '../../src/journal/source-catalog.ts';

export interface TwilioReceiverOptions {
  readonly authToken: string;
}

const FORM = 'application/x-www-form-urlencoded';
const JSON_TYPE = 'application/json';

/** Final call statuses: each is sales activity (a busy or unanswered call is still an attempt). */
const TERMINAL_STATUSES = new Set(['completed', 'busy', 'no-answer', 'failed', 'canceled']);
const NON_TERMINAL_STATUSES = new Set(['queued', 'initiated', 'ringing', 'in-progress']);
const TRANSCRIPT_EVENT = 'voice_intelligence_transcript_available';

/** Computes Twilio's X-Twilio-Signature for a URL and POST parameters (exported for tests and tools). */
export function twilioSignature(authToken: string, url: string, params: URLSearchParams | Readonly<Record<string, string>>): string {
  const search = params instanceof URLSearchParams ? params : new URLSearchParams(Object.entries(params));
  const names = [...new Set(search.keys())].sort();
  let data = url;
  for (const name of names) {
    for (const value of search.getAll(name).sort()) data += name + value;
  }
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

function reject(status: 401 | 415 | 422, reason: string): WebhookOutcome {
  return { kind: 'rejected', status, reason };
}

function mapDirection(value: string): Interaction['direction'] | undefined {
  if (value === 'inbound') return 'inbound';
  if (value.startsWith('outbound')) return 'outbound';
  return undefined;
}

function isHttpsUrl(value: string): boolean {
  try {
    return new URL(value).protocol === 'https:';
  } catch {
    return false;
  }
}

/** Verifies Twilio call webhooks and turns final call statuses and transcripts into call interactions. */
export class TwilioReceiver implements WebhookReceiver {
  readonly provider = 'twilio';
  readonly contentTypes = [FORM, JSON_TYPE] as const;
  readonly #authToken: string;

  constructor(options: TwilioReceiverOptions) {
    if (options.authToken === '') throw new Error('TwilioReceiver needs a non-empty authToken');
    this.#authToken = options.authToken;
  }

  handle(req: WebhookRequest): WebhookOutcome {
    const signature = req.headers['x-twilio-signature'];
    if (signature === undefined || signature === '') return reject(401, 'missing signature');
    if (req.contentType === FORM) return this.#handleForm(req, signature);
    if (req.contentType === JSON_TYPE) return this.#handleJson(req, signature);
    return reject(415, 'unsupported content type');
  }

  /** What the signature covers: the URL and the body (its parameters, or its hash in the URL). */
  authenticated(req: WebhookRequest): readonly (string | Buffer)[] {
    return [req.url, req.rawBody];
  }

  #handleForm(req: WebhookRequest, signature: string): WebhookOutcome {
    const params = new URLSearchParams(req.rawBody.toString('utf8'));
    if (!safeEqual(twilioSignature(this.#authToken, req.url, params), signature)) return reject(401, 'signature mismatch');

    const get = (name: string): string | undefined => {
      const v = params.get(name);
      return v === null || v === '' ? undefined : v;
    };
    const callSid = get('CallSid');
    if (callSid === undefined) return reject(422, 'missing param CallSid');
    const status = get('CallStatus');
    if (status === undefined) return reject(422, 'missing param CallStatus');
    const eventId = `twilio/call/${callSid}/${status}`;
    if (!TERMINAL_STATUSES.has(status)) {
      return {
        kind: 'ignored',
        reason: NON_TERMINAL_STATUSES.has(status) ? `call not finished (${status})` : 'call status not recorded',
        eventId,
      };
    }

    for (const name of ['From', 'To', 'Direction'] as const) {
      if (get(name) === undefined) return reject(422, `missing param ${name}`);
    }
    const from = get('From') ?? '';
    const to = get('To') ?? '';
    const direction = mapDirection(get('Direction') ?? '');
    if (direction === undefined) return reject(422, 'invalid param Direction: expected inbound or outbound-*');

    let durationSeconds: number | undefined;
    const rawDuration = get('CallDuration');
    if (rawDuration !== undefined) {
      if (!/^\d{1,9}$/.test(rawDuration)) return reject(422, 'invalid param CallDuration: expected whole seconds');
      durationSeconds = Number(rawDuration);
    }

    let occurredAt = req.receivedAt.toISOString();
    const rawTimestamp = get('Timestamp');
    if (rawTimestamp !== undefined) {
      const t = Date.parse(rawTimestamp);
      if (Number.isNaN(t)) return reject(422, 'invalid param Timestamp: expected an RFC 2822 date');
      occurredAt = new Date(t).toISOString();
    }

    const metadata: Record<string, string | number> = { callStatus: status };
    if (durationSeconds !== undefined) metadata['durationSeconds'] = durationSeconds;
    const recordingUrl = get('RecordingUrl');
    if (recordingUrl !== undefined && isHttpsUrl(recordingUrl)) metadata['recordingUrl'] = recordingUrl;
    const accountSid = get('AccountSid');
    if (accountSid !== undefined) metadata['accountSid'] = accountSid;

    const interaction: Interaction = {
      channel: 'call',
      source: SOURCES.twilio,
      sourceId: callSid,
      threadId: callSid,
      direction,
      occurredAt,
      participants: [
        { role: 'caller', address: from },
        { role: 'callee', address: to },
      ],
      subject: durationSeconds !== undefined ? `Call ${status} (${durationSeconds} s)` : `Call ${status}`,
      metadata,
    };
    return acceptInteractions([interaction], eventId);
  }

  #handleJson(req: WebhookRequest, signature: string): WebhookOutcome {
    let bodyHash: string | null;
    try {
      bodyHash = new URL(req.url).searchParams.get('bodySHA256');
    } catch {
      return reject(401, 'signature mismatch');
    }
    if (bodyHash === null || bodyHash === '') return reject(401, 'missing bodySHA256');
    if (!safeEqual(twilioSignature(this.#authToken, req.url, {}), signature)) return reject(401, 'signature mismatch');
    if (!safeEqual(sha256Hex(req.rawBody), bodyHash.toLowerCase())) return reject(401, 'body hash mismatch');

    const body = parseJsonObject(req.rawBody);
    if (body === undefined) return reject(422, 'malformed JSON body');
    const str = (name: string): string | undefined => {
      const v = body[name];
      return typeof v === 'string' && v !== '' ? v : undefined;
    };

    const eventType = str('event_type');
    const transcriptSid = str('transcript_sid');
    if (transcriptSid === undefined) return reject(422, 'missing field transcript_sid');
    const eventId = `twilio/transcript/${transcriptSid}`;
    if (eventType !== undefined && eventType !== TRANSCRIPT_EVENT)
      return { kind: 'ignored', reason: 'not a transcript-available event', eventId };
    const callSid = str('call_sid') ?? str('CallSid') ?? str('customer_key');
    if (callSid === undefined) return reject(422, 'missing field call_sid or customer_key');

    let occurredAt = req.receivedAt.toISOString();
    const created = str('date_created') ?? str('date_updated');
    if (created !== undefined) {
      const t = Date.parse(created);
      if (Number.isNaN(t)) return reject(422, 'invalid field date_created: expected an ISO 8601 date');
      occurredAt = new Date(t).toISOString();
    }
    const direction = mapDirection(str('direction') ?? '');

    const metadata: Record<string, string | boolean> = { transcriptSid };
    for (const [field, key] of [
      ['service_sid', 'serviceSid'],
      ['account_sid', 'accountSid'],
      ['event_type', 'eventType'],
    ] as const) {
      const v = str(field);
      if (v !== undefined) metadata[key] = v;
    }
    // A transcript payload does not say who called whom; the call it joins (threadId) does.
    if (direction === undefined) metadata['directionInferred'] = true;

    const text = typeof body['text'] === 'string' ? body['text'] : undefined;
    const interaction: Interaction = {
      channel: 'call',
      source: SOURCES.twilio,
      sourceId: `${callSid}/transcript/${transcriptSid}`,
      threadId: callSid,
      direction: direction ?? 'inbound',
      occurredAt,
      participants: [],
      subject: 'Call transcript',
      ...(text !== undefined ? { text } : {}),
      metadata,
    };
    return acceptInteractions([interaction], eventId);
  }
}
