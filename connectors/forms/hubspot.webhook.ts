/**
 * HubSpot form submissions, delivered by a contact workflow ("When a form is submitted" → "Send a webhook",
 * POST, authentication "Include request signature in header"). Details in connectors/forms/README.md.
 *
 * Verification is HubSpot's v3 signature, as its "Validating requests" page describes it:
 *   1. refuse when X-HubSpot-Request-Timestamp (ms) is older than 5 minutes (we also refuse one more than
 *      5 minutes in the future: a signed request from the future is a clock fault or a replay being prepared);
 *   2. in the request URI decode %3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B (and only those; hex digits
 *      matched case-insensitively, as RFC 3986 makes them equivalent);
 *   3. base64(HMAC-SHA256(clientSecret, method + uri + body + timestamp)) compared in constant time with
 *      X-HubSpot-Signature-v3.
 *
 * The payload is a contact. Both shapes are read:
 *   - the contact record: { "vid", "portal-id", "properties": { "<name>": { "value": ... } },
 *     "form-submissions": [{ "conversion-id", "timestamp", "form-id", "title", "page-url" }] }
 *   - a customised body of flat properties: { "email": "...", "firstname": "...", ... }.
 * See README.md for the fields read and the sourceId fallback.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { InteractionSchema } from '../../src/pipeline/interaction.ts';
import type { Interaction, Participant } from '../../src/pipeline/interaction.ts';
import type { WebhookOutcome, WebhookReceiver, WebhookRequest } from '../../src/pipeline/webhook.ts';
import { SOURCES } from '../../src/journal/source-catalog.ts';

export interface HubSpotFormReceiverOptions {
  /** The HubSpot app's client secret (it signs the workflow's requests). */
  readonly clientSecret: string;
  readonly now?: () => Date;
}

/** HubSpot's window: "Reject the request if the timestamp is older than 5 minutes." */
export const HUBSPOT_MAX_AGE_MS = 5 * 60 * 1000;

const DECODED: Readonly<Record<string, string>> = {
  '3A': ':',
  '2F': '/',
  '3F': '?',
  '40': '@',
  '21': '!',
  '24': '$',
  '27': "'",
  '28': '(',
  '29': ')',
  '2A': '*',
  '2C': ',',
  '3B': ';',
};

/** The request URI as HubSpot signs it: only the characters of its table decoded, everything else untouched. */
export function hubSpotSignedUri(url: string): string {
  return url.replace(/%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)/gi, (match, hex: string) => DECODED[hex.toUpperCase()] ?? match);
}

/** base64 HMAC-SHA256 over method + uri + body + timestamp (exported for tests and for local senders). */
export function hubSpotSignatureV3(clientSecret: string, method: string, url: string, rawBody: Buffer, timestamp: string): string {
  return createHmac('sha256', clientSecret)
    .update(`${method}${hubSpotSignedUri(url)}`, 'utf8')
    .update(rawBody)
    .update(timestamp, 'utf8')
    .digest('base64');
}

/** Contact bookkeeping that says nothing the submitter wrote; left out of the interaction text. */
const NOT_SUBMITTED = new Set([
  'vid',
  'canonical-vid',
  'merged-vids',
  'portal-id',
  'portalId',
  'is-contact',
  'profile-token',
  'profile-url',
  'addedAt',
  'createdate',
  'lastmodifieddate',
  'recent_conversion_date',
  'recent_conversion_event_name',
  'first_conversion_date',
  'first_conversion_event_name',
  'num_conversion_events',
  'num_unique_conversion_events',
  'lifecyclestage',
  'conversion-id',
  'form_name',
  'form_id',
  'formGuid',
  'timestamp',
]);

type Rejection = Extract<WebhookOutcome, { kind: 'rejected' }>;
const reject = (status: Rejection['status'], reason: string): Rejection => ({ kind: 'rejected', status, reason });

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A scalar as text; objects, arrays, null and empty strings count as absent. */
function scalar(v: unknown): string | undefined {
  if (typeof v === 'string') return v.trim() === '' ? undefined : v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'boolean') return String(v);
  return undefined;
}

/** Reads contact properties from either the `properties.<name>.value` shape or the flat shape. */
class ContactProperties {
  readonly #body: Json;
  readonly #properties: Json | undefined;

  constructor(body: Json) {
    this.#body = body;
    this.#properties = isObject(body['properties']) ? body['properties'] : undefined;
  }

  get(name: string): string | undefined {
    const nested = this.#properties !== undefined && Object.hasOwn(this.#properties, name) ? this.#properties[name] : undefined;
    const fromNested = isObject(nested) ? scalar(nested['value']) : scalar(nested);
    if (fromNested !== undefined) return fromNested;
    return Object.hasOwn(this.#body, name) ? scalar(this.#body[name]) : undefined;
  }

  /** Every scalar property by name (nested shape wins), for the interaction text. */
  all(): Map<string, string> {
    const out = new Map<string, string>();
    for (const key of Object.keys(this.#body)) {
      if (key === 'properties') continue;
      const v = scalar(this.#body[key]);
      if (v !== undefined) out.set(key, v);
    }
    for (const key of Object.keys(this.#properties ?? {})) {
      const v = this.get(key);
      if (v !== undefined) out.set(key, v);
    }
    return out;
  }
}

/** The newest entry of `form-submissions` (the contact record lists them newest first, but we do not rely on it). */
function latestSubmission(body: Json): Json | undefined {
  const list = body['form-submissions'];
  if (!Array.isArray(list)) return undefined;
  let latest: Json | undefined;
  for (const item of list) {
    if (!isObject(item)) continue;
    const ts = typeof item['timestamp'] === 'number' ? item['timestamp'] : -Infinity;
    const best = latest !== undefined && typeof latest['timestamp'] === 'number' ? latest['timestamp'] : -Infinity;
    if (latest === undefined || ts > best) latest = item;
  }
  return latest;
}

/** A HubSpot time: epoch milliseconds (number or digits) or an ISO date-time. */
function toIso(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const ms = /^\d{1,15}$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(ms)) return undefined;
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

const EmailSchema = z.email().max(512);

/** Verifies HubSpot's v3 signature, then turns the workflow's contact payload into one form Interaction. Never throws. */
export class HubSpotFormReceiver implements WebhookReceiver {
  readonly provider = 'hubspot-forms';
  readonly contentTypes = ['application/json'] as const;
  readonly #clientSecret: string;
  readonly #now: () => Date;

  constructor(options: HubSpotFormReceiverOptions) {
    if (options.clientSecret.length === 0) throw new Error('HubSpotFormReceiver: clientSecret must not be empty');
    this.#clientSecret = options.clientSecret;
    this.#now = options.now ?? (() => new Date());
  }

  handle(req: WebhookRequest): WebhookOutcome {
    try {
      return this.#handle(req);
    } catch {
      return reject(400, 'unprocessable request');
    }
  }

  #handle(req: WebhookRequest): WebhookOutcome {
    const timestamp = req.headers['x-hubspot-request-timestamp'];
    if (timestamp === undefined || timestamp === '') return reject(401, 'missing timestamp');
    if (!/^\d{1,15}$/.test(timestamp)) return reject(401, 'malformed timestamp');
    if (Math.abs(this.#now().getTime() - Number(timestamp)) > HUBSPOT_MAX_AGE_MS) return reject(401, 'stale timestamp');

    const given = req.headers['x-hubspot-signature-v3'];
    if (given === undefined || given === '') return reject(401, 'missing signature');
    const expected = Buffer.from(hubSpotSignatureV3(this.#clientSecret, req.method.toUpperCase(), req.url, req.rawBody, timestamp), 'utf8');
    const givenBytes = Buffer.from(given, 'utf8');
    if (givenBytes.length !== expected.length || !timingSafeEqual(givenBytes, expected)) return reject(401, 'invalid signature');

    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(req.rawBody));
    } catch {
      return reject(400, 'malformed JSON body');
    }
    if (!isObject(body)) return reject(422, 'invalid body: (root): expected a contact object');
    return this.#normalise(body, req.receivedAt);
  }

  /** What the v3 signature covers: method, URI (as signed), body and timestamp. */
  authenticated(req: WebhookRequest): readonly (string | Buffer)[] {
    return [req.method.toUpperCase(), hubSpotSignedUri(req.url), req.rawBody, req.headers['x-hubspot-request-timestamp'] ?? ''];
  }

  #normalise(body: Json, receivedAt: Date): WebhookOutcome {
    const props = new ContactProperties(body);
    const submission = latestSubmission(body);

    const email = props.get('email');
    if (email === undefined) return reject(422, 'invalid body: email: missing');
    if (!EmailSchema.safeParse(email).success) return reject(422, 'invalid body: email: invalid_format');

    const submittedAt = scalar(submission?.['timestamp']) ?? props.get('recent_conversion_date') ?? props.get('timestamp');
    const sourceId =
      props.get('hs_form_submission_id') ??
      scalar(submission?.['conversion-id']) ??
      props.get('conversion-id') ??
      compositeId(body, props, submittedAt);
    if (sourceId === undefined)
      return reject(422, 'invalid body: submission id: missing (hs_form_submission_id, conversion-id or portal-id+vid+timestamp)');

    const form =
      scalar(submission?.['title']) ??
      props.get('hs_form_name') ??
      props.get('form_name') ??
      scalar(submission?.['form-id']) ??
      props.get('hs_form_id') ??
      props.get('form_id') ??
      props.get('formGuid');
    const pageUrl = scalar(submission?.['page-url']);
    const name = [props.get('firstname'), props.get('lastname')].filter((p) => p !== undefined).join(' ');

    const lines = [...props.all()]
      .filter(([key]) => !key.startsWith('hs_') && !NOT_SUBMITTED.has(key))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, value]) => `${key}: ${value}`);

    const submitter: Participant = { role: 'submitter', address: email, ...(name !== '' ? { name } : {}) };
    const interaction: Interaction = {
      channel: 'form',
      source: SOURCES.hubspotForms,
      sourceId,
      direction: 'inbound',
      occurredAt: toIso(submittedAt) ?? receivedAt.toISOString(),
      participants: [submitter],
      ...(form !== undefined ? { subject: `Form "${form}"` } : { subject: 'HubSpot form' }),
      ...(lines.length > 0 ? { text: lines.join('\n') } : {}),
      metadata: { ...(form !== undefined ? { form } : {}), ...(pageUrl !== undefined ? { pageUrl } : {}) },
    };
    const checked = InteractionSchema.safeParse(interaction);
    if (!checked.success) {
      const issue = checked.error.issues[0];
      return reject(
        422,
        `submission exceeds interaction limits: ${issue === undefined ? 'unknown' : `${issue.path.map(String).join('.')}: ${issue.code}`}`,
      );
    }
    return { kind: 'accepted', interactions: [checked.data], eventId: sourceId };
  }
}

/** The documented fallback id: `<portal-id>:<vid>:<submission timestamp>`, all three from the payload. */
function compositeId(body: Json, props: ContactProperties, submittedAt: string | undefined): string | undefined {
  const portal = scalar(body['portal-id']) ?? scalar(body['portalId']) ?? props.get('portalId');
  const vid = scalar(body['vid']) ?? scalar(body['canonical-vid']) ?? props.get('vid') ?? props.get('hs_object_id');
  if (portal === undefined || vid === undefined || submittedAt === undefined) return undefined;
  return `${portal}:${vid}:${submittedAt}`;
}
