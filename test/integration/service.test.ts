import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.ts';
import { startService, type ServiceProcess } from '../helpers/service.ts';
import { stateChange } from '../helpers/entries.ts';

let tmp: { dir: string; cleanup: () => void };
let svc: ServiceProcess;

beforeAll(async () => {
  tmp = tempDir('aj-service-');
  svc = await startService(tmp.dir, { env: { JOURNAL_MAX_PAYLOAD_BYTES: '4096' } });
});
afterAll(async () => {
  expect(await svc.stop()).toBe(0); // a clean shutdown on SIGTERM
  tmp.cleanup();
});

async function size(): Promise<number> {
  const r = await fetch(`${svc.url}/healthz`);
  return ((await r.json()) as { size: number }).size;
}

async function post(
  body: string,
  token: string | null = svc.appendToken,
  type = 'application/json',
): Promise<{ status: number; error: { code: string; message: string } }> {
  const headers: Record<string, string> = { 'content-type': type };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const r = await fetch(`${svc.url}/v1/entries`, { method: 'POST', headers, body });
  return { status: r.status, ...((await r.json()) as { error: { code: string; message: string } }) };
}

describe('journal service: bad requests get a 4xx with a clear message and write nothing', () => {
  const valid = JSON.stringify(stateChange('valid-1'));
  const cases: [string, () => ReturnType<typeof post>, number, RegExp][] = [
    ['no credential', () => post(valid, null), 401, /missing or unknown credential/],
    ['a wrong credential', () => post(valid, 'x'.repeat(43)), 401, /unknown credential/],
    ['the read credential used to append', () => post(valid, svc.readToken), 403, /needs the append credential/],
    ['malformed JSON', () => post('{"kind": "state.changed",'), 400, /not valid JSON/],
    ['a non-JSON content type', () => post(valid, svc.appendToken, 'text/plain'), 415, /application\/json/],
    ['an unknown kind', () => post(JSON.stringify({ ...stateChange('u-1'), kind: 'email.sent' })), 422, /unknown kind/],
    ['an invalid payload', () => post(JSON.stringify({ ...stateChange('u-2'), payload: { entity: 'x' } })), 422, /payload\.field/],
    [
      'an oversized payload',
      () => post(JSON.stringify({ ...stateChange('u-3'), payload: { entity: 'x', field: 'y', from: 1, to: 'z'.repeat(10_000) } })),
      413,
      /limit is 4096/,
    ],
    [
      'a kind only the journal writes',
      () => post(JSON.stringify({ ...stateChange('u-4'), kind: 'checkpoint' })),
      422,
      /written by the journal itself/,
    ],
    ['an empty batch', () => post(JSON.stringify({ entries: [] })), 422, /non-empty array/],
    [
      'a batch with one bad entry',
      () => post(JSON.stringify({ entries: [stateChange('b-1'), { ...stateChange('b-2'), actor: '' }] })),
      422,
      /actor/,
    ],
    // 10,000 levels overflowed the stack in a recursive check before the iterative depth check: a 500.
    [
      'a payload nested 10,000 deep',
      () => post(JSON.stringify(stateChange('u-5')).replace('"customer"', '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000))),
      422,
      /nests deeper than 256 levels/,
    ],
    [
      'a batch entry nested 10,000 deep',
      () => post(JSON.stringify({ entries: [stateChange('b-3')] }).replace('"customer"', '['.repeat(10_000) + ']'.repeat(10_000))),
      422,
      /nests deeper than 256 levels/,
    ],
    ['a body over the request limit', () => post('[' + '1,'.repeat(9 * 1024 * 1024) + '1]'), 413, /larger than/],
  ];
  for (const [name, send, status, message] of cases) {
    it(`${name} → ${status}`, async () => {
      const before = await size();
      const r = await send();
      expect(r.status).toBe(status);
      expect(r.error.message).toMatch(message);
      expect(await size()).toBe(before);
    });
  }

  it('offers no update or delete', async () => {
    for (const method of ['PUT', 'PATCH', 'DELETE']) {
      const r = await fetch(`${svc.url}/v1/entries/0`, { method, headers: { authorization: `Bearer ${svc.appendToken}` } });
      expect(r.status).toBe(405);
      expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/can only be appended/);
    }
  });

  it('does not let the append credential read, nor the read credential checkpoint', async () => {
    expect((await fetch(`${svc.url}/v1/entries?from=0`, { headers: { authorization: `Bearer ${svc.appendToken}` } })).status).toBe(403);
    expect(
      (await fetch(`${svc.url}/v1/checkpoints`, { method: 'POST', headers: { authorization: `Bearer ${svc.readToken}` } })).status,
    ).toBe(403);
  });

  it('accepts a good entry after all that, and proves it after a checkpoint', async () => {
    const r = await post(valid);
    expect(r.status).toBe(201);
    const seq = (r as unknown as { result: { entry: { seq: number } } }).result.entry.seq;
    const client = svc.client();
    const cp = await client.checkpoint();
    expect(cp.created).toBe(true);
    const proof = await client.proveInclusion(seq);
    expect(proof.treeSize).toBe(cp.treeSize);
    expect(proof.header.idempotencyKey).toBe('valid-1');
    await client.close();
  });
});
