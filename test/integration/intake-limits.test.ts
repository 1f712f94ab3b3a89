/**
 * Issue 14, findings 9 and 10: what the webhook limit admits is journaled (sealing never pushes it over the
 * journal's limit); every refusal over the limit is on the record with its size and body hash under its own
 * idempotency key; a body nested 10,000 deep is a 4xx on the record, never a 5xx. Real web server (injected
 * requests), real receivers, real pipeline and journal, with the default limits.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import { tempDir } from '../helpers/tmp.ts';
import { allEntries, inProcessPipeline, testConfig, type InProcessPipeline } from '../helpers/pipeline.ts';
import { genericCall, signedRaw as signedAt, webhookServer } from '../helpers/web.ts';
import type { JournalEntry } from '../../src/journal/entry.ts';
import { loadConfig } from '../../src/config/config.ts';

const CALLS_SECRET = 'calls-secret-0123456789abcdef';
const FORMS_SECRET = 'forms-secret-0123456789abcdef';
const MiB = 1024 * 1024;

let tmp: { dir: string; cleanup: () => void };
let p: InProcessPipeline;
let app: FastifyInstance;
let web: Awaited<ReturnType<typeof webhookServer>>;
const env = { CALLS_WEBHOOK_SECRET: CALLS_SECRET, FORMS_WEBHOOK_SECRET: FORMS_SECRET, WEBHOOK_PUBLIC_URL: 'https://hooks.example.test' };

beforeEach(async () => {
  tmp = tempDir('aj-intake-limits-');
  p = await inProcessPipeline(tmp.dir, {}, env);
  web = await webhookServer(p, tmp.dir, env, { rejectionsPerMinute: 100, drainBytes: 3 * MiB });
  app = web.app;
});
afterEach(async () => {
  await web.close();
  await p.stop();
  tmp.cleanup();
});

function signedRaw(secret: string, payload: string): { headers: Record<string, string>; payload: string } {
  return signedAt(secret, payload, Date.now());
}

const call = (id: string, extra: object = {}): Record<string, unknown> => genericCall(id, Date.now(), extra);

const entries = (kind: string): JournalEntry[] => allEntries(p.path).filter((e) => e.kind === kind);

/** The stored (sealed) payload bytes of each interaction.received, straight from the file. */
function storedPayloadSizes(): number[] {
  const db = new Database(p.path, { readonly: true });
  try {
    return (
      db.prepare("SELECT length(CAST(payload AS BLOB)) AS n FROM entries WHERE kind = 'interaction.received' ORDER BY seq").all() as {
        n: number;
      }[]
    ).map((r) => r.n);
  } finally {
    db.close();
  }
}

/** A body of exactly `bytes` bytes: `make(filler)` with the filler grown to fit. */
function sized(bytes: number, make: (filler: string) => string): string {
  const empty = Buffer.byteLength(make(''));
  return make('x'.repeat(bytes - empty));
}

describe('intake limits', () => {
  it('the defaults keep the journal limit at least twice the webhook limit, and a contradicting setting is refused at start-up', () => {
    const c = testConfig(tmp.dir, env);
    expect(c.web.webhooks.maxBodyBytes).toBe(MiB);
    expect(c.journal.maxPayloadBytes).toBeGreaterThanOrEqual(2 * c.web.webhooks.maxBodyBytes);
    expect(() => loadConfig({ JOURNAL_MAX_PAYLOAD_BYTES: String(MiB), WEBHOOK_MAX_BODY_BYTES: String(MiB) })).toThrow(
      /WEBHOOK_MAX_BODY_BYTES: .*at most half of JOURNAL_MAX_PAYLOAD_BYTES/,
    );
    expect(loadConfig({ JOURNAL_MAX_PAYLOAD_BYTES: '8192' }).web.webhooks.maxBodyBytes).toBe(4096);
  });

  it('journals an 800 KB transcript and one just under the webhook limit: sealing does not push them over the journal limit', async () => {
    const first = call('CA800');
    expect(
      (await app.inject({ method: 'POST', url: '/webhooks/calls', ...signedRaw(CALLS_SECRET, JSON.stringify(first)) })).statusCode,
    ).toBe(200);
    const transcript = (n: number) =>
      call('CA800', {
        id: `evt-CA800-t${n}`,
        event: 'call.transcript',
        transcript: `Customer: ${'we need forty seats. '.repeat(Math.ceil((800 * 1024) / 21))}`.slice(0, 800 * 1024),
      });
    const r800 = await app.inject({ method: 'POST', url: '/webhooks/calls', ...signedRaw(CALLS_SECRET, JSON.stringify(transcript(1))) });
    expect(r800.statusCode, r800.body).toBe(200);
    const atLimit = sized(MiB, (f) =>
      JSON.stringify(call('CA800', { id: 'evt-CA800-t2', event: 'call.transcript', transcript: `Agent: ${f}` })),
    );
    expect(Buffer.byteLength(atLimit)).toBe(MiB);
    const rLimit = await app.inject({ method: 'POST', url: '/webhooks/calls', ...signedRaw(CALLS_SECRET, atLimit) });
    expect(rLimit.statusCode, rLimit.body).toBe(200);
    // Form fields hold at most 100,000 characters each: eleven 90,000-character parts and one grown to fit.
    const submittedAt = new Date().toISOString();
    const form = sized(MiB, (f) =>
      JSON.stringify({
        submissionId: 'sub-big',
        form: 'contact-sales',
        submittedAt,
        email: 'big@prospect.example',
        fields: { Message: [...Array<string>(11).fill('y'.repeat(90_000)), f] },
      }),
    );
    const rForm = await app.inject({ method: 'POST', url: '/webhooks/forms', ...signedRaw(FORMS_SECRET, form) });
    expect(rForm.statusCode, rForm.body).toBe(200);

    expect(entries('interaction.received')).toHaveLength(4);
    expect(entries('webhook.rejected')).toHaveLength(0);
    const sizes = storedPayloadSizes();
    // Sealed, the at-limit transcript takes more than the body's 1 MiB on disk (base64): the old limit, counted
    // on the stored bytes, refused it (and the 800 KB one at 1 MiB).
    expect(sizes[2]).toBeGreaterThan(MiB * 1.3);
    expect(sizes[1]).toBeGreaterThan(MiB);
  });

  it('records each refusal over the limit with its size and body hash, under its own idempotency key', async () => {
    const bodies = [1, 2].map((n) =>
      sized(MiB + 1000 * n, (f) => JSON.stringify(call(`CA9${n}`, { event: 'call.transcript', transcript: f }))),
    );
    for (const b of bodies) {
      const res = await app.inject({ method: 'POST', url: '/webhooks/calls', ...signedRaw(CALLS_SECRET, b) });
      expect(res.statusCode).toBe(413);
      expect(res.json<{ error: string }>().error).toMatch(/larger than 1048576 bytes/);
    }
    // The same body again is the same refusal: it adds nothing.
    expect((await app.inject({ method: 'POST', url: '/webhooks/calls', ...signedRaw(CALLS_SECRET, bodies[0] as string) })).statusCode).toBe(
      413,
    );
    const rejected = entries('webhook.rejected');
    expect(rejected).toHaveLength(2);
    expect(new Set(rejected.map((e) => e.idempotencyKey)).size).toBe(2);
    const recorded = rejected.map((e) => e.payload as { status: number; sizeBytes: number; requestHash: string });
    expect(recorded.map((r) => [r.status, r.sizeBytes, r.requestHash])).toEqual(
      bodies.map((b) => [413, Buffer.byteLength(b), createHash('sha256').update(b).digest('hex')]),
    );
    expect(rejected.every((e) => !('bodyTruncated' in (e.payload as object)))).toBe(true);

    // Past the drain cap (3 MiB here) the server stops reading: size and hash cover what it read, marked so.
    const huge = 'x'.repeat(4 * MiB);
    const res = await app.inject({ method: 'POST', url: '/webhooks/calls', ...signedRaw(CALLS_SECRET, huge) });
    expect(res.statusCode).toBe(413);
    const last = entries('webhook.rejected').at(-1)?.payload as { sizeBytes: number; requestHash: string; bodyTruncated?: boolean };
    expect(last).toMatchObject({
      sizeBytes: 3 * MiB,
      bodyTruncated: true,
      requestHash: createHash('sha256')
        .update(huge.slice(0, 3 * MiB))
        .digest('hex'),
    });
    expect(entries('interaction.received')).toHaveLength(0);
  });

  it('refuses bodies nested 10,000 deep with a 4xx on the record, for every provider, never a 5xx', async () => {
    const deep = (inner: string): string => '['.repeat(10_000) + inner + ']'.repeat(10_000);
    const cases = [
      ['calls', JSON.stringify(call('CA77')).replace('"+15555550188"', deep('"x"')), CALLS_SECRET],
      ['calls', JSON.stringify({ ...call('CA78'), extra: 1 }).replace('1}', `${deep('1')}}`), CALLS_SECRET],
      [
        'forms',
        JSON.stringify({
          submissionId: 's-deep',
          form: 'f',
          submittedAt: new Date().toISOString(),
          email: 'a@b.example',
          fields: { Message: 'x' },
        }).replace('"x"', deep('"x"')),
        FORMS_SECRET,
      ],
    ] as const;
    for (const [provider, body, secret] of cases) {
      const res = await app.inject({ method: 'POST', url: `/webhooks/${provider}`, ...signedRaw(secret, body) });
      expect(res.statusCode, `${provider}: ${res.body}`).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, `${provider}: ${res.body}`).toBeLessThan(500);
    }
    expect(entries('webhook.rejected')).toHaveLength(cases.length);
  });
});
