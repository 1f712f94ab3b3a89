/**
 * Fuzzing the journal service's append API (fast-check) through a real service process: FUZZ_SERVICE_RUNS
 * (default 2,000) generated requests — valid entries, entries with fields replaced by anything, random JSON,
 * binary junk, batches mixing good and bad entries, wrong content types, methods and credentials. Invariants:
 * only 2xx/4xx, never a 5xx; the service stays up; every acknowledged entry is there with what was sent; a
 * refused batch adds nothing; `verify` passes afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { tempDir } from '../helpers/tmp.ts';
import { runCliSync } from '../helpers/cli.ts';
import { startService, type ServiceProcess } from '../helpers/service.ts';
import { stateChange } from '../helpers/entries.ts';
import { canonicalize } from '../../src/journal/canonical.ts';

const RUNS = Number(process.env.FUZZ_SERVICE_RUNS ?? 2_000);

let tmp: { dir: string; cleanup: () => void };
let svc: ServiceProcess;

beforeAll(async () => {
  tmp = tempDir('aj-fuzz-service-');
  svc = await startService(tmp.dir, { env: { JOURNAL_MAX_PAYLOAD_BYTES: '8192' } });
});
afterAll(async () => {
  expect(await svc.stop()).toBe(0);
  tmp.cleanup();
});

type Body = { kind: 'json'; value: unknown } | { kind: 'raw'; bytes: Uint8Array };
interface Req {
  method: string;
  path: string;
  contentType: string;
  auth: 'append' | 'read' | 'none' | 'junk';
  body: Body;
}

let counter = 0;
const key = (): string => `fz-${counter++}`;

/** A valid entry with, maybe, one of its fields (or a payload field) replaced by anything. */
const entry: fc.Arbitrary<unknown> = fc
  .record({
    field: fc.option(
      fc.constantFrom(
        'kind',
        'source',
        'actor',
        'correlationId',
        'idempotencyKey',
        'occurredAt',
        'causationId',
        'payload',
        'payload.entity',
        'payload.to',
        'extra',
      ),
      { nil: undefined },
    ),
    value: fc.oneof(
      fc.jsonValue(),
      fc.string({ unit: 'binary' }),
      fc.string({ unit: 'grapheme', maxLength: 600 }),
      fc.constant(''),
      fc.constant('x'.repeat(10_000)),
    ),
  })
  .map(({ field, value }) => {
    const e = stateChange(key(), `c-${counter % 7}`) as unknown as Record<string, unknown>;
    if (field === undefined) return e;
    if (field.startsWith('payload.')) (e.payload as Record<string, unknown>)[field.slice(8)] = value;
    else e[field] = value;
    return e;
  });

const body: fc.Arbitrary<Body> = fc.oneof(
  { weight: 5, arbitrary: entry.map((value): Body => ({ kind: 'json', value })) },
  { weight: 2, arbitrary: fc.array(entry, { minLength: 1, maxLength: 8 }).map((entries): Body => ({ kind: 'json', value: { entries } })) },
  fc.jsonValue().map((value): Body => ({ kind: 'json', value })),
  fc.record({ entries: fc.oneof(fc.constant([]), fc.jsonValue()) }).map((value): Body => ({ kind: 'json', value })),
  fc.uint8Array({ maxLength: 400 }).map((bytes): Body => ({ kind: 'raw', bytes })),
);

const request: fc.Arbitrary<Req> = fc.record({
  method: fc.oneof({ weight: 12, arbitrary: fc.constant('POST') }, fc.constantFrom('GET', 'PUT', 'PATCH', 'DELETE')),
  path: fc.oneof(
    { weight: 12, arbitrary: fc.constant('/v1/entries') },
    fc.constantFrom('/v1/entries/0', '/v1/checkpoints', '/v1/nothing', '/v1/entries?kind=%ZZ', '/v1/proofs/inclusion/99999999'),
  ),
  contentType: fc.oneof(
    { weight: 10, arbitrary: fc.constant('application/json') },
    fc.constantFrom('text/plain', '', 'application/json; charset=latin1', 'multipart/form-data'),
  ),
  auth: fc.oneof(
    { weight: 10, arbitrary: fc.constant('append' as const) },
    fc.constantFrom('read' as const, 'none' as const, 'junk' as const),
  ),
  body,
});

interface Tally {
  byStatus: Map<number, number>;
  /** seq → canonical payload sent, for every entry the service said it appended */
  acknowledged: Map<number, string>;
}

async function send(r: Req, tally: Tally): Promise<void> {
  const headers: Record<string, string> = {};
  if (r.contentType !== '') headers['content-type'] = r.contentType;
  if (r.auth === 'append') headers.authorization = `Bearer ${svc.appendToken}`;
  if (r.auth === 'read') headers.authorization = `Bearer ${svc.readToken}`;
  if (r.auth === 'junk') headers.authorization = 'Bearer ' + 'A'.repeat(43);
  const withBody = r.method !== 'GET';
  const payload = r.body.kind === 'json' ? (JSON.stringify(r.body.value) ?? 'null') : Buffer.from(r.body.bytes);
  const res = await fetch(`${svc.url}${r.path}`, { method: r.method, headers, ...(withBody ? { body: payload } : {}) });
  const text = await res.text();
  tally.byStatus.set(res.status, (tally.byStatus.get(res.status) ?? 0) + 1);
  if (res.status >= 500) throw new Error(`${r.method} ${r.path} → ${res.status}: ${text.slice(0, 300)}`);
  if (
    r.method === 'POST' &&
    r.path.split('?')[0] === '/v1/entries' &&
    (res.status === 200 || res.status === 201) &&
    r.body.kind === 'json'
  ) {
    const answer = JSON.parse(text) as { result?: { entry: { seq: number } }; results?: { entry: { seq: number } }[] };
    const sent = r.body.value as Record<string, unknown> & { entries?: Record<string, unknown>[] };
    const pairs = answer.results
      ? answer.results.map((x, i) => [x.entry.seq, sent.entries?.[i]] as const)
      : [[answer.result?.entry.seq, sent] as const];
    for (const [seq, e] of pairs) if (typeof seq === 'number' && e) tally.acknowledged.set(seq, canonicalize(e.payload));
  }
}

describe(`journal service append API fuzzing (${RUNS} generated requests)`, () => {
  it('answers only 2xx/4xx, stays up, keeps every acknowledged entry as sent, and verifies', async () => {
    const tally: Tally = { byStatus: new Map(), acknowledged: new Map() };
    await fc.assert(
      fc.asyncProperty(request, async (r) => send(r, tally)),
      { numRuns: RUNS },
    );

    expect((await fetch(`${svc.url}/healthz`)).status).toBe(200);
    const client = svc.client();
    for (const [seq, payload] of tally.acknowledged) {
      const stored = await client.bySeq(seq);
      expect(stored, `seq ${seq}`).not.toBeNull();
      expect(canonicalize(stored?.payload)).toBe(payload);
    }
    // Everything stored was acknowledged (journal.created at seq 0 and checkpoints aside): a refusal wrote nothing.
    const size = ((await (await fetch(`${svc.url}/healthz`)).json()) as { size: number }).size;
    const stored = [];
    for (let from = 0; from < size; from += 1000) stored.push(...(await client.range(from, 1000)));
    const appended = stored.filter((e) => e.kind === 'state.changed');
    expect(appended.map((e) => e.seq).sort((a, b) => a - b)).toEqual([...tally.acknowledged.keys()].sort((a, b) => a - b));

    const verify = runCliSync(['verify', '--json'], { env: svc.env });
    expect(verify.status, verify.stderr).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true });

    const statuses = [...tally.byStatus.keys()];
    for (const s of [201, 401, 403, 405, 415, 422]) expect(statuses).toContain(s);
    // About one request in nine is a valid append; this only guards against a generator that never makes one.
    expect(tally.acknowledged.size).toBeGreaterThan(RUNS / 20);
    console.info(
      `service fuzz: ${RUNS} requests, statuses ${JSON.stringify(Object.fromEntries([...tally.byStatus].sort((a, b) => a[0] - b[0])))}, ${tally.acknowledged.size} entries acknowledged`,
    );
  });
});
