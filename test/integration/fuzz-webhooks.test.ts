/**
 * Fuzzing the webhook intake (fast-check): FUZZ_RUNS (default 10,000) generated requests — valid and signed,
 * corrupted after signing, re-signed with wrong types or bad encodings, oversized, wrong content types, bad or
 * missing signatures, stale timestamps, unknown providers, replays — through the real web server, receivers,
 * pipeline intake and journal. Invariants: only 2xx or 4xx, never a 5xx or a crash; the server still answers;
 * every accepted interaction is exactly one interaction.received entry; no rejection entry holds the body.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, createHmac } from 'node:crypto';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { tempDir } from '../helpers/tmp.ts';
import { allEntries, inProcessPipeline, type InProcessPipeline } from '../helpers/pipeline.ts';
import { webhookServer } from '../helpers/web.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);
const PUBLIC_URL = 'https://hooks.example.test';
const MAX_BODY = 4096;
/** Every generated body carries this; a rejection entry that held any of the body would hold it. */
const MARKER = 'fuzzmarker7c1e';
const SECRETS = {
  TWILIO_AUTH_TOKEN: 'twilio-token-0123456789abcdef',
  AIRCALL_WEBHOOK_TOKEN: 'aircall-token-0123456789abcdef',
  CALLS_WEBHOOK_SECRET: 'calls-secret-0123456789abcdef',
  FORMS_WEBHOOK_SECRET: 'forms-secret-0123456789abcdef',
  HUBSPOT_CLIENT_SECRET: 'hubspot-secret-0123456789abcdef',
};

let tmp: { dir: string; cleanup: () => void };
let p: InProcessPipeline;
let app: FastifyInstance;
let web: Awaited<ReturnType<typeof webhookServer>>;

beforeAll(async () => {
  tmp = tempDir('aj-fuzz-webhooks-');
  const env = { ...SECRETS, WEBHOOK_PUBLIC_URL: PUBLIC_URL, WEBHOOK_MAX_BODY_BYTES: String(MAX_BODY) };
  // Producer only: the fuzz is about intake; the stages behind it have their own tests.
  p = await inProcessPipeline(tmp.dir, { queues: [] }, env);
  web = await webhookServer(p, tmp.dir, env, { rejectionsPerMinute: 60 });
  app = web.app;
});
afterAll(async () => {
  await web.close();
  await p.stop();
  tmp.cleanup();
});

// ---------- what a provider would send, signed the way each provider signs ----------

type Provider = 'calls' | 'forms' | 'twilio' | 'aircall' | 'hubspot-forms';
interface Req {
  provider: string;
  contentType: string;
  headers: Record<string, string>;
  body: Buffer;
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

function signFor(provider: Provider, body: Buffer, params: Record<string, string> | null, ts: number): Record<string, string> {
  const url = `${PUBLIC_URL}/webhooks/${provider}`;
  switch (provider) {
    case 'calls':
    case 'forms': {
      const secret = provider === 'calls' ? SECRETS.CALLS_WEBHOOK_SECRET : SECRETS.FORMS_WEBHOOK_SECRET;
      const sig = createHmac('sha256', secret).update(`${ts}.`).update(body).digest('hex');
      return { 'x-aj-timestamp': String(ts), 'x-aj-signature': `v1=${sig}` };
    }
    case 'twilio': {
      const data = params
        ? Object.keys(params)
            .sort()
            .reduce((acc, k) => acc + k + params[k], url)
        : url;
      return { 'x-twilio-signature': createHmac('sha1', SECRETS.TWILIO_AUTH_TOKEN).update(data).digest('base64') };
    }
    case 'hubspot-forms': {
      const tsMs = String(ts * 1000);
      const sig = createHmac('sha256', SECRETS.HUBSPOT_CLIENT_SECRET).update(`POST${url}`).update(body).update(tsMs).digest('base64');
      return { 'x-hubspot-request-timestamp': tsMs, 'x-hubspot-signature-v3': sig };
    }
    case 'aircall':
      return {}; // Aircall's token travels in the body
  }
}

/** A plausible event for each provider, with fields that fast-check may replace by anything. */
function eventFor(provider: Provider, id: string, ts: number): Record<string, unknown> {
  const iso = new Date(ts * 1000 - 60_000).toISOString();
  switch (provider) {
    case 'calls':
      return {
        id: `evt-${id}`,
        event: 'call.completed',
        callId: id,
        direction: 'inbound',
        from: '+15555550123',
        to: '+15555550188',
        startedAt: iso,
        durationSeconds: 61,
        subject: `Call ${MARKER}`,
      };
    case 'forms':
      return {
        submissionId: id,
        form: 'contact-sales',
        submittedAt: iso,
        email: `${id}@example.com`,
        name: 'Ada',
        fields: { Message: `hello ${MARKER}` },
      };
    case 'aircall':
      return {
        resource: 'call',
        event: 'call.ended',
        timestamp: ts,
        token: SECRETS.AIRCALL_WEBHOOK_TOKEN,
        data: {
          id: 100_000_000 + counter,
          direction: 'inbound',
          started_at: ts - 120,
          ended_at: ts - 60,
          duration: 60,
          raw_digits: '+15555550123',
          number: { digits: '+15555550188' },
          status: 'done',
          note: MARKER,
        },
      };
    case 'hubspot-forms':
      return { email: `${id}@example.com`, firstname: 'Bob', hs_form_submission_id: id, form_name: 'contact-sales', message: MARKER };
    case 'twilio':
      return {
        CallSid: `CA${createHash('md5').update(id).digest('hex')}`,
        AccountSid: 'AC0123456789abcdef0123456789abcdef',
        From: '+14155550100',
        To: '+442071838750',
        CallStatus: 'completed',
        Direction: 'inbound',
        CallDuration: '42',
        ApiVersion: '2010-04-01',
        Marker: MARKER,
      };
  }
}

function encode(
  provider: Provider,
  event: Record<string, unknown>,
): { body: Buffer; contentType: string; params: Record<string, string> | null } {
  if (provider === 'twilio') {
    const params = Object.fromEntries(Object.entries(event).map(([k, v]) => [k, typeof v === 'string' ? v : (JSON.stringify(v) ?? '')]));
    return { body: Buffer.from(new URLSearchParams(params).toString()), contentType: 'application/x-www-form-urlencoded', params };
  }
  return { body: Buffer.from(JSON.stringify(event)), contentType: 'application/json', params: null };
}

type Mutation =
  | { m: 'none' }
  | { m: 'flip'; at: number; bit: number } // corrupted after signing
  | { m: 'truncate'; keep: number }
  | { m: 'field'; key: number; value: unknown; resign: boolean } // a field replaced by anything (wrong types)
  | { m: 'drop'; key: number }
  | { m: 'bytes'; bytes: Uint8Array; resign: boolean } // bad encodings, binary junk
  | { m: 'oversize'; extra: number }
  | { m: 'contentType'; value: string }
  | { m: 'noSignature' }
  | { m: 'badSignature'; sig: string }
  | { m: 'stale'; seconds: number }
  | { m: 'provider'; name: string }
  | { m: 'replay' };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<Mutation>({ m: 'none' }) },
  fc.record({ m: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ m: fc.constant('truncate' as const), keep: fc.nat() }),
  {
    weight: 3,
    arbitrary: fc.record({
      m: fc.constant('field' as const),
      key: fc.nat(),
      value: fc.oneof(fc.jsonValue(), fc.string({ unit: 'binary' }), fc.constant(null), fc.double()),
      resign: fc.boolean(),
    }),
  },
  fc.record({ m: fc.constant('drop' as const), key: fc.nat() }),
  fc.record({ m: fc.constant('bytes' as const), bytes: fc.uint8Array({ maxLength: 300 }), resign: fc.boolean() }),
  fc.record({ m: fc.constant('oversize' as const), extra: fc.integer({ min: 1, max: 20_000 }) }),
  fc.record({
    m: fc.constant('contentType' as const),
    value: fc.constantFrom(
      'text/plain',
      'application/xml',
      'multipart/form-data; boundary=x',
      '',
      'application/json; charset=utf-16',
      'application/x-www-form-urlencoded',
      'application/json',
    ),
  }),
  fc.constant<Mutation>({ m: 'noSignature' }),
  fc.record({ m: fc.constant('badSignature' as const), sig: fc.oneof(fc.string(), fc.base64String(), fc.constant('v1=')) }),
  fc.record({
    m: fc.constant('stale' as const),
    seconds: fc.oneof(fc.integer({ min: 301, max: 10_000_000 }), fc.integer({ min: -10_000_000, max: -301 })),
  }),
  fc.record({
    m: fc.constant('provider' as const),
    name: fc.oneof(fc.constantFrom('unknown', 'TWILIO', 'calls-x', '..', '%2e%2e'), fc.string({ maxLength: 80 })),
  }),
  fc.constant<Mutation>({ m: 'replay' }),
);

let counter = 0;
function build(provider: Provider, mut: Mutation): Req[] {
  const ts = nowSeconds();
  const id = `fz${process.pid}x${counter++}`;
  const event = eventFor(provider, id, ts);
  const keys = Object.keys(event);
  if (mut.m === 'field') event[keys[mut.key % keys.length] as string] = mut.value;
  if (mut.m === 'drop') delete event[keys[mut.key % keys.length] as string];
  let { body, contentType, params } = encode(provider, event);
  let signTs = ts;
  if (mut.m === 'stale') signTs = ts - mut.seconds;
  if (mut.m === 'bytes') {
    body = Buffer.from(mut.bytes);
    params = null;
  }
  if (mut.m === 'oversize')
    body = Buffer.concat([
      body,
      Buffer.alloc(MAX_BODY + mut.extra - body.length > 0 ? MAX_BODY + mut.extra - body.length : mut.extra, 0x20),
    ]);
  const resign = mut.m !== 'bytes' || mut.resign;
  let headers = resign ? signFor(provider, body, params, signTs) : {};
  if (mut.m === 'field' && !mut.resign) headers = signFor(provider, encode(provider, eventFor(provider, id, ts)).body, params, signTs);
  if (mut.m === 'flip' && body.length > 0) {
    body = Buffer.from(body);
    const at = mut.at % body.length;
    body[at] = (body[at] as number) ^ (1 << mut.bit);
  }
  if (mut.m === 'truncate') body = body.subarray(0, mut.keep % (body.length + 1));
  if (mut.m === 'noSignature') headers = {};
  if (mut.m === 'badSignature')
    headers = Object.fromEntries(Object.keys(headers).map((k) => [k, k.includes('timestamp') ? (headers[k] as string) : mut.sig]));
  if (mut.m === 'contentType') contentType = mut.value;
  const req: Req = { provider: mut.m === 'provider' ? mut.name : provider, contentType, headers, body };
  return mut.m === 'replay' ? [req, req] : [req];
}

interface Seen {
  requests: number;
  byStatus: Map<number, number>;
  accepted: Set<number>; // seqs answered as accepted (new or duplicate)
}

async function send(r: Req, seen: Seen): Promise<void> {
  const headers: Record<string, string> = { ...r.headers };
  if (r.contentType !== '') headers['content-type'] = r.contentType;
  const res = await app.inject({ method: 'POST', url: `/webhooks/${encodeURIComponent(r.provider)}`, headers, payload: r.body });
  seen.requests++;
  seen.byStatus.set(res.statusCode, (seen.byStatus.get(res.statusCode) ?? 0) + 1);
  // The invariant: a clear 2xx or 4xx, never a 5xx (a 503 would mean the journal was down, which it is not here).
  if (res.statusCode >= 500 || res.statusCode < 200)
    throw new Error(`status ${res.statusCode} for ${r.provider} ${r.contentType}: ${res.body.slice(0, 300)}`);
  if (res.statusCode === 200) {
    const answer = res.json<{ results?: { status: string; seq?: number }[] }>();
    for (const x of answer.results ?? []) if (x.status === 'accepted' && typeof x.seq === 'number') seen.accepted.add(x.seq);
  } else {
    const answer = res.json<{ error?: string }>();
    expect(typeof answer.error).toBe('string');
    expect(answer.error).not.toContain(MARKER);
  }
}

describe(`webhook fuzzing (${RUNS} generated requests)`, () => {
  it('answers only 2xx/4xx, stays up, journals each accepted interaction once and never a body', async () => {
    const seen: Seen = { requests: 0, byStatus: new Map(), accepted: new Set() };
    const providers = fc.constantFrom<Provider>('calls', 'forms', 'twilio', 'aircall', 'hubspot-forms');
    await fc.assert(
      fc.asyncProperty(providers, mutation, async (provider, mut) => {
        for (const r of build(provider, mut)) await send(r, seen);
      }),
      { numRuns: RUNS },
    );

    // Still up: the health check and a valid request after the storm.
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    const after: Seen = { requests: 0, byStatus: new Map(), accepted: new Set() };
    for (const r of build('forms', { m: 'none' })) await send(r, after);
    expect(after.accepted.size).toBe(1);

    const entries = allEntries(p.path);
    const received = entries.filter((e) => e.kind === 'interaction.received');
    // Exactly one interaction.received per accepted interaction: the seqs answered are those entries, no more.
    const receivedSeqs = new Set(received.map((e) => e.seq));
    for (const seq of [...seen.accepted, ...after.accepted]) expect(receivedSeqs.has(seq)).toBe(true);
    expect(received.length).toBe(seen.accepted.size + after.accepted.size);
    const ids = received.map((e) => `${e.source}/${(e.payload as { sourceId: string }).sourceId}`);
    expect(new Set(ids).size).toBe(ids.length);
    // Rejections are on the record (capped), and none holds the body.
    const rejected = entries.filter((e) => e.kind === 'webhook.rejected');
    expect(rejected.length).toBeGreaterThan(0);
    for (const e of rejected) expect(JSON.stringify(e.payload)).not.toContain(MARKER);

    // The generators reached every outcome that matters (so the property was not vacuous).
    const statuses = [...seen.byStatus.keys()];
    expect(seen.accepted.size).toBeGreaterThan(RUNS / 20);
    for (const s of [401, 404, 413, 415]) expect(statuses).toContain(s);
    expect(statuses.some((s) => s === 409 || s === 422)).toBe(true);
    console.info(
      `webhook fuzz: ${seen.requests} requests, statuses ${JSON.stringify(Object.fromEntries([...seen.byStatus].sort((a, b) => a[0] - b[0])))}, ${seen.accepted.size} accepted, ${rejected.length} rejection entries`,
    );
  });
});
