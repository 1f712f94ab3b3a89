/**
 * Webhooks through the real web server (fastify, injected requests), real receivers with signatures computed
 * here, the real pipeline and journal: 2xx only after interaction.received is committed; every refusal is a
 * 4xx and a webhook.rejected entry that never holds the body; floods are capped; replays refused.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import Database from 'better-sqlite3';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { tempDir } from '../helpers/tmp.ts';
import { allEntries, drained, inProcessPipeline, type InProcessPipeline } from '../helpers/pipeline.ts';
import { genericCall, signedRaw as signedAt, webhookServer } from '../helpers/web.ts';
import type { JournalEntry } from '../../src/journal/entry.ts';
import { describeEntry } from '../../src/cli/describe.ts';

const CALLS_SECRET = 'calls-secret-0123456789abcdef';
const FORMS_SECRET = 'forms-secret-0123456789abcdef';

let tmp: { dir: string; cleanup: () => void };
let p: InProcessPipeline;
let app: FastifyInstance;
let web: Awaited<ReturnType<typeof webhookServer>>;
let clock = Date.parse('2026-11-27T10:00:00Z');

beforeEach(async () => {
  tmp = tempDir('aj-webhooks-');
  clock = Date.now();
  const env = {
    CALLS_WEBHOOK_SECRET: CALLS_SECRET,
    FORMS_WEBHOOK_SECRET: FORMS_SECRET,
    WEBHOOK_PUBLIC_URL: 'https://hooks.example.test',
    WEBHOOK_MAX_BODY_BYTES: '4096',
  };
  p = await inProcessPipeline(tmp.dir, {}, env);
  web = await webhookServer(p, tmp.dir, env, { rejectionsPerMinute: 10, now: () => clock });
  app = web.app;
});
afterEach(async () => {
  await web.close();
  await p.stop();
  tmp.cleanup();
});

function signed(secret: string, body: object, ts = Math.floor(clock / 1000)): { headers: Record<string, string>; payload: string } {
  const payload = JSON.stringify(body);
  const sig = createHmac('sha256', secret).update(`${ts}.${payload}`).digest('hex');
  return { headers: { 'content-type': 'application/json', 'x-aj-timestamp': String(ts), 'x-aj-signature': `v1=${sig}` }, payload };
}

const call = (id: string, extra: object = {}): object => genericCall(id, clock, { subject: 'Pricing call', ...extra });

const entries = (kind: string): JournalEntry[] => allEntries(p.path).filter((e) => e.kind === kind);

describe('webhooks', () => {
  it('answers 200 only after interaction.received is committed, and the pipeline carries on', async () => {
    const req = signed(CALLS_SECRET, call('CA100'));
    const res = await app.inject({ method: 'POST', url: '/webhooks/calls', ...req });
    expect(res.statusCode).toBe(200);
    const received = entries('interaction.received');
    expect(received).toHaveLength(1); // already committed when the 200 went out
    expect((received[0]?.payload as { channel: string }).channel).toBe('call');
    await drained(p.prefix);
    expect(entries('ai.decision')).toHaveLength(1);
  });

  it('joins a transcript that arrives later to its call', async () => {
    await app.inject({ method: 'POST', url: '/webhooks/calls', ...signed(CALLS_SECRET, call('CA200')) });
    clock += 60_000;
    const transcript = signed(
      CALLS_SECRET,
      call('CA200', { id: 'evt-CA200-t', event: 'call.transcript', transcript: 'Customer: we need a quote for 40 seats.' }),
    );
    expect((await app.inject({ method: 'POST', url: '/webhooks/calls', ...transcript })).statusCode).toBe(200);
    const received = entries('interaction.received');
    expect(received).toHaveLength(2);
    expect(received[0]?.correlationId).toBe(received[1]?.correlationId);
    // One call activity (dry run): the transcript's section joins the call's, under the call's entry id.
    await drained(p.prefix);
    const [first, later] = received as [JournalEntry, JournalEntry];
    const writes = entries('crm.write');
    expect(writes.length).toBeGreaterThanOrEqual(1);
    expect(new Set(writes.map((e) => (e.payload as { entryId: string }).entryId))).toEqual(new Set([first.id]));
    const last = writes.at(-1)?.payload as { members?: { entryId: string }[]; properties: Record<string, string> };
    expect(last.members?.map((m) => m.entryId)).toEqual([first.id, later.id]);
    expect(last.properties['hs_call_body']).toMatch(
      new RegExp(`Journal entry: ${first.id}\\n\\nTranscript \\(journal entry ${later.id}\\):\\nSummary: `),
    );
    expect(describeEntry(writes.at(-1) as JournalEntry)).toContain(`also holding ${later.id}`);
  });

  it('records ids that journal identifiers refuse (white space, control characters) instead of failing with a 5xx', async () => {
    for (const id of ['CA 400', 'CA\u0000401', 'CA\u{1F4DE}402']) {
      const res = await app.inject({ method: 'POST', url: '/webhooks/calls', ...signed(CALLS_SECRET, call(id, { id: `evt-${id}` })) });
      expect(res.statusCode, JSON.stringify(id)).toBe(200);
    }
    const received = entries('interaction.received');
    expect(received.map((e) => (e.payload as { sourceId: string }).sourceId)).toEqual(['CA 400', 'CA\u0000401', 'CA\u{1F4DE}402']);
    expect(received.map((e) => e.idempotencyKey)).toEqual([
      'interaction/calls/CA%20400',
      'interaction/calls/CA%00401',
      'interaction/calls/CA%F0%9F%93%9E402',
    ]);
  });

  it('answers 409 when an event id comes again with different content: the first stands, the second is on the record', async () => {
    expect((await app.inject({ method: 'POST', url: '/webhooks/calls', ...signed(CALLS_SECRET, call('CA500')) })).statusCode).toBe(200);
    const changed = await app.inject({
      method: 'POST',
      url: '/webhooks/calls',
      ...signed(CALLS_SECRET, call('CA500', { durationSeconds: 999 })),
    });
    expect(changed.statusCode).toBe(409);
    expect(entries('interaction.received')).toHaveLength(1);
    expect((entries('interaction.received')[0]?.payload as { metadata?: { durationSeconds?: number } }).metadata?.durationSeconds).toBe(
      320,
    );
    expect(entries('webhook.rejected').map((e) => (e.payload as { status: number }).status)).toEqual([409]);
  });

  it('refuses bad input with a 4xx and a webhook.rejected entry that holds no body', async () => {
    const good = signed(CALLS_SECRET, call('CA300', { subject: 'SECRET-SUBJECT-TEXT' }));
    const cases: [string, InjectOptions, number][] = [
      [
        'bad signature',
        {
          method: 'POST',
          url: '/webhooks/calls',
          headers: { ...good.headers, 'x-aj-signature': 'v1=' + '0'.repeat(64) },
          payload: good.payload,
        },
        401,
      ],
      [
        'missing signature',
        {
          method: 'POST',
          url: '/webhooks/calls',
          headers: { 'content-type': 'application/json', 'x-aj-timestamp': good.headers['x-aj-timestamp'] as string },
          payload: good.payload,
        },
        401,
      ],
      [
        'stale timestamp',
        { method: 'POST', url: '/webhooks/calls', ...signed(CALLS_SECRET, call('CA301'), Math.floor(clock / 1000) - 3600) },
        401,
      ],
      [
        'wrong content type',
        { method: 'POST', url: '/webhooks/calls', headers: { ...good.headers, 'content-type': 'text/plain' }, payload: good.payload },
        415,
      ],
      ['unknown provider', { method: 'POST', url: '/webhooks/nobody', ...good }, 404],
      [
        'body over the limit',
        { method: 'POST', url: '/webhooks/calls', ...signed(CALLS_SECRET, call('CA302', { subject: 'x'.repeat(8000) })) },
        413,
      ],
      ['malformed body', { method: 'POST', url: '/webhooks/calls', ...signedRaw(CALLS_SECRET, '{"id": 1,') }, 422],
    ];
    for (const [name, req, status] of cases) {
      const res = await app.inject(req);
      expect(res.statusCode, name).toBe(status);
      expect((JSON.parse(res.body) as { error: string }).error.length, name).toBeGreaterThan(5);
    }
    const rejected = entries('webhook.rejected');
    expect(rejected.map((e) => (e.payload as { status: number }).status).sort()).toEqual(cases.map((c) => c[2]).sort());
    expect(entries('interaction.received')).toHaveLength(0);
    const db = new Database(p.path, { readonly: true });
    const dump = JSON.stringify(db.prepare('SELECT * FROM entries').all());
    db.close();
    expect(dump).not.toContain('SECRET-SUBJECT-TEXT');
    expect(dump).not.toContain(CALLS_SECRET);
    expect(dump).not.toContain('+15555550123');
  });

  it('refuses a replayed request, and a flood leaves a capped number of entries with a count of the rest', async () => {
    const req = signed(CALLS_SECRET, call('CA400'));
    expect((await app.inject({ method: 'POST', url: '/webhooks/calls', ...req })).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/webhooks/calls', ...req })).statusCode).toBe(409);
    for (let i = 0; i < 50; i++) {
      const bad = signed('wrong-secret-wrong-secret', call(`CA5${i}`));
      expect((await app.inject({ method: 'POST', url: '/webhooks/calls', ...bad })).statusCode).toBe(401);
    }
    expect(entries('webhook.rejected')).toHaveLength(10); // the cap for this minute (the replay included)
    clock += 61_000;
    const after = signed('wrong-secret-wrong-secret', call('CA600'), Math.floor(clock / 1000));
    await app.inject({ method: 'POST', url: '/webhooks/calls', ...after });
    const last = entries('webhook.rejected').at(-1)?.payload as { suppressed?: number };
    expect(last.suppressed).toBe(41);
    expect(entries('interaction.received')).toHaveLength(1);
  });

  it('caps rejections of made-up provider names together, apart from the configured providers', async () => {
    for (let i = 0; i < 50; i++) {
      const res = await app.inject({ method: 'POST', url: `/webhooks/made-up-${i}`, ...signed(CALLS_SECRET, call(`CA7${i}`)) });
      expect(res.statusCode).toBe(404);
    }
    expect(entries('webhook.rejected')).toHaveLength(10); // one window for every unknown name
    // A configured provider keeps its own window: its rejections are still on the record.
    expect(
      (await app.inject({ method: 'POST', url: '/webhooks/calls', ...signed('wrong-secret-wrong-secret', call('CA800')) })).statusCode,
    ).toBe(401);
    expect(
      entries('webhook.rejected')
        .map((e) => (e.payload as { status: number }).status)
        .filter((s) => s === 401),
    ).toHaveLength(1);
    clock += 61_000;
    await app.inject({ method: 'POST', url: '/webhooks/someone-else', ...signed(CALLS_SECRET, call('CA801'), Math.floor(clock / 1000)) });
    expect((entries('webhook.rejected').at(-1)?.payload as { suppressed?: number }).suppressed).toBe(40);
  });

  it('refuses as a replay a re-sent request that differs only in its signature header', async () => {
    const body = {
      submissionId: 'sub-replay',
      form: 'contact-sales',
      submittedAt: new Date(clock).toISOString(),
      email: 'buyer@prospect.example',
      fields: { Message: 'hello' },
    };
    const form = signed(FORMS_SECRET, body);
    expect((await app.inject({ method: 'POST', url: '/webhooks/forms', ...form })).statusCode).toBe(200);
    const sig = form.headers['x-aj-signature'] as string;
    const variants = [`${sig},v1=${'0'.repeat(64)}`, `v1=${'0'.repeat(64)}, ${sig}`, `v1=${sig.slice(3).toUpperCase()}`, ` ${sig} `];
    for (const variant of variants) {
      const res = await app.inject({
        method: 'POST',
        url: '/webhooks/forms',
        headers: { ...form.headers, 'x-aj-signature': variant },
        payload: form.payload,
      });
      expect(res.statusCode, variant).toBe(409);
    }
    const callReq = signed(CALLS_SECRET, call('CA900'));
    expect((await app.inject({ method: 'POST', url: '/webhooks/calls', ...callReq })).statusCode).toBe(200);
    const callSig = callReq.headers['x-aj-signature'] as string;
    for (const variant of [`${callSig},v1=${'0'.repeat(64)}`, `v1=${callSig.slice(3).toUpperCase()}`]) {
      const res = await app.inject({
        method: 'POST',
        url: '/webhooks/calls?again=1',
        headers: { ...callReq.headers, 'x-aj-signature': variant },
        payload: callReq.payload,
      });
      expect(res.statusCode, variant).toBe(409);
    }
    // A header that is not the documented format is refused as such, not guessed at.
    const junk = await app.inject({
      method: 'POST',
      url: '/webhooks/forms',
      headers: { ...form.headers, 'x-aj-signature': `${sig},garbage` },
      payload: form.payload,
    });
    expect(junk.statusCode).toBe(401);
    expect(entries('interaction.received')).toHaveLength(2);
  });

  it('takes a signed form submission in, and the contact-sales rule notifies the sales team', async () => {
    const body = {
      submissionId: 'sub-1',
      form: 'contact-sales',
      submittedAt: new Date(clock).toISOString(),
      email: 'buyer@prospect.example',
      name: 'Pat Buyer',
      fields: { Company: 'Prospect Inc', Message: 'We would like a demo and pricing for 25 seats.' },
    };
    const res = await app.inject({ method: 'POST', url: '/webhooks/forms', ...signed(FORMS_SECRET, body) });
    expect(res.statusCode).toBe(200);
    await drained(p.prefix);
    const [form] = entries('interaction.received');
    expect((form?.payload as { channel: string; metadata: { form: string } }).metadata.form).toBe('contact-sales');
    // The generic form webhook's source is `webform`: a form submission, kept 90 days (issue 14: it was sales-2y).
    expect(form).toMatchObject({ source: 'webform', retentionClass: 'marketing-90d' });
    // Not billing: nothing raises it.
    expect(entries('retention.assigned')).toEqual([]);
    const notes = entries('notification.sent');
    expect(notes).toHaveLength(1);
    expect(notes[0]?.correlationId).toBe(form?.correlationId);
  });
});

describe('retention raised by classification', () => {
  it('a form submission classified as billing gets a retention.assigned raising it to financial-7y, on the record with ids only', async () => {
    const body = {
      submissionId: 'sub-bill',
      form: 'support',
      submittedAt: new Date(clock).toISOString(),
      email: 'payer@customer.example',
      name: 'Sam Payer',
      fields: { Message: 'Invoice INV-2231 was charged twice on our card, please refund the duplicate payment.' },
    };
    const res = await app.inject({ method: 'POST', url: '/webhooks/forms', ...signed(FORMS_SECRET, body) });
    expect(res.statusCode).toBe(200);
    await drained(p.prefix);
    const [form] = entries('interaction.received');
    const [decision] = entries('ai.decision');
    expect((decision?.payload as { output: { category: string } }).output.category).toBe('billing');
    // The header keeps the class it was hashed with; the raise is its own entry.
    expect(form).toMatchObject({ source: 'webform', retentionClass: 'marketing-90d' });
    const assigned = entries('retention.assigned');
    expect(assigned).toHaveLength(1);
    expect(assigned[0]).toMatchObject({
      source: 'pipeline',
      retentionClass: 'permanent',
      correlationId: form?.correlationId,
      causationId: decision?.id,
      payload: {
        entryId: form?.id,
        entrySeq: form?.seq,
        retentionClass: 'financial-7y',
        rule: 'categories.billing',
        policyVersion: 2,
        decisionEntryId: decision?.id,
      },
    });
    expect(describeEntry(assigned[0] as JournalEntry)).toBe(
      `retention of entry #${form?.seq} (${form?.id}) raised to financial-7y by categories.billing of retention policy 2`,
    );
    const raw = new Database(p.path, { readonly: true });
    try {
      const stored = raw.prepare(`SELECT payload FROM entries WHERE kind = 'retention.assigned'`).get() as { payload: string };
      expect(stored.payload).not.toMatch(/payer@customer\.example|Sam Payer|INV-2231/);
      expect(raw.prepare('SELECT target_seq, retention_class FROM retention_assignments').all()).toEqual([
        { target_seq: form?.seq, retention_class: 'financial-7y' },
      ]);
    } finally {
      raw.close();
    }
  });
});

function signedRaw(secret: string, payload: string): { headers: Record<string, string>; payload: string } {
  return signedAt(secret, payload, clock);
}
