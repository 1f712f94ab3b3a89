/**
 * The generic web-form receiver: any form backend (our own site, a form SaaS, a no-code tool) that can sign a
 * POST to /webhooks/forms in this documented format. Also in connectors/forms/README.md.
 *
 * Headers
 *   x-aj-timestamp: <unix seconds>                 (refused as 'stale timestamp' beyond ±toleranceSeconds, default 300)
 *   x-aj-signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
 *                   several comma-separated `v1=` entries are allowed (secret rotation); one must match;
 *                   a malformed entry makes the header malformed (src/pipeline/webhook-signature.ts).
 *
 * Body, application/json:
 *   { "submissionId": "sub_123", "form": "contact-sales", "submittedAt": "2026-11-27T10:00:00Z",
 *     "email": "ada@example.com", "name": "Ada", "fields": { "Company": "Acme", "Message": "Hi" },
 *     "pageUrl": "https://example.com/contact" }
 *   `name` and `pageUrl` are optional; a field value is a string or an array of strings (joined with ", ").
 * Body, application/x-www-form-urlencoded: the same keys, fields as `fields[<label>]=<value>`
 *   (a repeated field label is joined with ", "; a repeated top-level key is refused).
 *
 * One submission becomes one form Interaction with sourceId = submissionId, so a retried or replayed delivery
 * lands on the same journal entry (interactionKey). Rejection reasons name a field and a zod issue code, never a
 * value, label, signature or secret.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { InteractionSchema } from '../../src/pipeline/interaction.ts';
import type { Interaction } from '../../src/pipeline/interaction.ts';
import type { WebhookOutcome, WebhookReceiver, WebhookRequest } from '../../src/pipeline/webhook.ts';
import { parseSignatureHeader } from '../../src/pipeline/webhook-signature.ts';
import { SOURCES } from '../../src/journal/source-catalog.ts';

export interface GenericFormReceiverOptions {
  /** The shared secret both sides sign with. */
  readonly secret: string;
  /** How far x-aj-timestamp may be from `now`, either way; default 300. */
  readonly toleranceSeconds?: number;
  readonly now?: () => Date;
}

const JSON_TYPE = 'application/json';
const FORM_TYPE = 'application/x-www-form-urlencoded';
const TOP_LEVEL_KEYS = ['submissionId', 'form', 'submittedAt', 'email', 'name', 'pageUrl'] as const;
const FIELD_KEY = /^fields\[(.+)\]$/s;

const FieldValue = z.union([z.string().max(100_000), z.array(z.string().max(100_000)).max(100)]);

export const GenericFormSubmissionSchema = z.object({
  submissionId: z.string().min(1).max(256),
  form: z.string().min(1).max(200),
  submittedAt: z.iso.datetime({ offset: true }),
  email: z.email().max(512),
  name: z.string().max(512).optional(),
  fields: z.record(z.string().min(1).max(500), FieldValue).default({}),
  pageUrl: z.url().max(4096).optional(),
});
export type GenericFormSubmission = z.infer<typeof GenericFormSubmissionSchema>;

type Rejection = Extract<WebhookOutcome, { kind: 'rejected' }>;
const reject = (status: Rejection['status'], reason: string): Rejection => ({ kind: 'rejected', status, reason });

/** Verifies the x-aj signature, then normalises one submission into one form Interaction. Never throws. */
export class GenericFormReceiver implements WebhookReceiver {
  readonly provider = 'forms';
  readonly contentTypes = [JSON_TYPE, FORM_TYPE] as const;
  readonly #secret: string;
  readonly #toleranceMs: number;
  readonly #now: () => Date;

  constructor(options: GenericFormReceiverOptions) {
    if (options.secret.length === 0) throw new Error('GenericFormReceiver: secret must not be empty');
    this.#secret = options.secret;
    this.#toleranceMs = (options.toleranceSeconds ?? 300) * 1000;
    this.#now = options.now ?? (() => new Date());
  }

  handle(req: WebhookRequest): WebhookOutcome {
    try {
      return this.#handle(req);
    } catch {
      // Defensive: every expected failure is a value above; a bug must still not take the server's handler down.
      return reject(400, 'unprocessable request');
    }
  }

  #handle(req: WebhookRequest): WebhookOutcome {
    const timestamp = req.headers['x-aj-timestamp'];
    if (timestamp === undefined || timestamp === '') return reject(401, 'missing timestamp');
    if (!/^\d{1,12}$/.test(timestamp)) return reject(401, 'malformed timestamp');
    if (Math.abs(this.#now().getTime() - Number(timestamp) * 1000) > this.#toleranceMs) return reject(401, 'stale timestamp');

    const header = req.headers['x-aj-signature'];
    if (header === undefined || header.trim() === '') return reject(401, 'missing signature');
    const signatures = parseSignatureHeader(header);
    if (signatures.kind === 'malformed') return reject(401, 'malformed signature header');
    if (!this.#signatureMatches(timestamp, req.rawBody, signatures.v1)) return reject(401, 'invalid signature');

    const parsed = parseBody(req);
    if (parsed.kind === 'rejected') return parsed;
    const submission = GenericFormSubmissionSchema.safeParse(parsed.value);
    if (!submission.success) return reject(422, `invalid body: ${describeIssue(submission.error.issues[0])}`);

    const interaction = toInteraction(submission.data);
    const checked = InteractionSchema.safeParse(interaction);
    if (!checked.success) return reject(422, `submission exceeds interaction limits: ${describeIssue(checked.error.issues[0])}`);
    return { kind: 'accepted', interactions: [checked.data], eventId: submission.data.submissionId };
  }

  /** What the signature covers: the timestamp and the body. */
  authenticated(req: WebhookRequest): readonly (string | Buffer)[] {
    return [req.headers['x-aj-timestamp'] ?? '', req.rawBody];
  }

  #signatureMatches(timestamp: string, rawBody: Buffer, candidates: readonly string[]): boolean {
    const expected = createHmac('sha256', this.#secret).update(`${timestamp}.`, 'utf8').update(rawBody).digest();
    let matched = false;
    // Check every entry (no early exit) so timing does not tell which entry matched.
    for (const hex of candidates) if (timingSafeEqual(Buffer.from(hex, 'hex'), expected)) matched = true;
    return matched;
  }
}

type Parsed = { kind: 'parsed'; value: unknown } | Rejection;

function parseBody(req: WebhookRequest): Parsed {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(req.rawBody);
  } catch {
    return reject(400, 'body is not valid UTF-8');
  }
  if (req.contentType === FORM_TYPE) return parseUrlEncoded(text);
  if (req.contentType !== JSON_TYPE) return reject(415, 'unsupported content type');
  try {
    return { kind: 'parsed', value: JSON.parse(text) as unknown };
  } catch {
    return reject(400, 'malformed JSON body');
  }
}

function parseUrlEncoded(text: string): Parsed {
  const out: Record<string, unknown> = {};
  const fields: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  for (const [key, value] of new URLSearchParams(text)) {
    const field = FIELD_KEY.exec(key);
    if (field?.[1] !== undefined) {
      (fields[field[1]] ??= []).push(value);
    } else if ((TOP_LEVEL_KEYS as readonly string[]).includes(key)) {
      if (Object.hasOwn(out, key)) return reject(422, `invalid body: ${key}: repeated`);
      out[key] = value;
    }
    // Unknown keys are ignored, as unknown JSON keys are.
  }
  out['fields'] = Object.fromEntries(Object.entries(fields).map(([label, values]) => [label, values.length === 1 ? values[0] : values]));
  return { kind: 'parsed', value: out };
}

/** `path: code`, with anything below `fields` collapsed: labels are customer-controlled text. */
function describeIssue(issue: z.core.$ZodIssue | undefined): string {
  if (issue === undefined) return 'unknown';
  const path = issue.path[0] === 'fields' ? 'fields' : issue.path.map(String).join('.');
  return `${path === '' ? '(root)' : path}: ${issue.code}`;
}

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function toInteraction(s: GenericFormSubmission): Interaction {
  const lines = Object.entries(s.fields)
    .sort(([a], [b]) => byCodeUnit(a, b))
    .map(([label, value]) => `${label}: ${Array.isArray(value) ? value.join(', ') : value}`);
  return {
    channel: 'form',
    source: SOURCES.webform,
    sourceId: s.submissionId,
    direction: 'inbound',
    occurredAt: new Date(s.submittedAt).toISOString(),
    participants: [{ role: 'submitter', address: s.email, ...(s.name !== undefined && s.name !== '' ? { name: s.name } : {}) }],
    subject: `Form "${s.form}"`,
    ...(lines.length > 0 ? { text: lines.join('\n') } : {}),
    metadata: { form: s.form, ...(s.pageUrl !== undefined ? { pageUrl: s.pageUrl } : {}) },
  };
}
