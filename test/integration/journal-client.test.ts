/**
 * One suite for every JournalClient: the writer in-process, and the HTTP client against the real service
 * process. Whatever one promises, the other must keep.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { JournalClient } from '../../src/journal/journal-client.ts';
import { LocalJournalClient } from '../../src/journal/local-client.ts';
import { JournalWriter } from '../../src/journal/writer.ts';
import { JournalReader } from '../../src/journal/reader.ts';
import { tempDir } from '../helpers/tmp.ts';
import { startService, type ServiceProcess } from '../helpers/service.ts';
import { stateChange, ruleDecision } from '../helpers/entries.ts';

interface Harness {
  client: JournalClient;
  stop(): Promise<void>;
}

const implementations: [string, (dir: string) => Promise<Harness>][] = [
  [
    'LocalJournalClient (in-process writer)',
    async (dir) => {
      const path = join(dir, 'journal.sqlite');
      const writer = await JournalWriter.open({ path, keysDir: join(dir, 'keys'), checkpointEveryMs: 0 });
      const client = new LocalJournalClient(writer, JournalReader.open(path));
      return { client, stop: () => client.close() };
    },
  ],
  [
    'HttpJournalClient (journal service process)',
    async (dir) => {
      const service: ServiceProcess = await startService(dir);
      const client = service.client();
      return {
        client,
        stop: async () => {
          await client.close();
          await service.stop();
        },
      };
    },
  ],
];

describe.each(implementations)('%s', (_name, make) => {
  let tmp: { dir: string; cleanup: () => void };
  let h: Harness;
  beforeEach(async () => {
    tmp = tempDir('aj-client-');
    h = await make(tmp.dir);
  });
  afterEach(async () => {
    await h.stop();
    tmp.cleanup();
  });

  it('appends, and a retry with the same key returns the same entry', async () => {
    const a = await h.client.append(stateChange('k-1'));
    const b = await h.client.append(stateChange('k-1'));
    expect(a.duplicate).toBe(false);
    expect(b.duplicate).toBe(true);
    expect(b.entry.seq).toBe(a.entry.seq);
    expect(b.entry.id).toBe(a.entry.id);
  });

  it('refuses a key reused with other content', async () => {
    await h.client.append(stateChange('k-1'));
    await expect(h.client.append(stateChange('k-1', 'c-1', 'churned'))).rejects.toThrow(/idempotency key is already used by entry seq \d+/);
  });

  it('refuses unknown kinds and invalid payloads with the reason', async () => {
    // The types refuse both (AppendInput is typed by kind); the journal refuses them at run time all the same.
    // @ts-expect-error an unknown kind
    await expect(h.client.append({ ...stateChange('k-x'), kind: 'email.sent' })).rejects.toThrow(/unknown kind "email.sent"/);
    // @ts-expect-error a state.changed payload without its field, from and to
    await expect(h.client.append({ ...stateChange('k-y'), payload: { entity: 'x' } })).rejects.toThrow(/payload\.field/);
    await expect(h.client.appendReceived({ ...stateChange('k-z'), payload: { entity: 'x' } })).rejects.toThrow(/payload\.field/);
    // Only the journal's own entries (the service also journals its retention policy version).
    expect((await h.client.range(0, 100)).every((e) => e.kind === 'journal.created' || e.kind === 'retention.policy')).toBe(true);
  });

  it('writes a batch atomically', async () => {
    const first = await h.client.append(stateChange('k-1'));
    await expect(h.client.appendBatch([stateChange('k-2'), stateChange('k-1', 'c-1', 'x')])).rejects.toThrow(/idempotency/);
    expect(await h.client.byIdempotencyKey('k-2')).toBeNull();
    const ok = await h.client.appendBatch([stateChange('k-2'), stateChange('k-3')]);
    expect(ok.map((r) => r.entry.seq)).toEqual([first.entry.seq + 1, first.entry.seq + 2]);
  });

  it('reads by seq range, correlation, kind and time, and idempotency key', async () => {
    const t0 = new Date(Date.now() - 1000).toISOString();
    for (let i = 0; i < 12; i++) await h.client.append(ruleDecision(`r-${i}`, `corr-${i % 3}`, 100));
    await h.client.append(stateChange('s-1', 'corr-0'));
    const range = await h.client.range(5, 4);
    expect(range.map((e) => e.seq)).toEqual([5, 6, 7, 8]);
    const corr = await h.client.byCorrelation('corr-0');
    expect(corr.map((e) => e.kind)).toEqual(['rule.decision', 'rule.decision', 'rule.decision', 'rule.decision', 'state.changed']);
    expect(corr.map((e) => e.seq)).toEqual([...corr.map((e) => e.seq)].sort((a, b) => a - b));
    const byKind = await h.client.byKind({ kind: 'rule.decision', since: t0, limit: 5 });
    expect(byKind).toHaveLength(5);
    expect(byKind.every((e) => e.kind === 'rule.decision')).toBe(true);
    const none = await h.client.byKind({ kind: 'rule.decision', until: t0 });
    expect(none).toHaveLength(0);
    const found = await h.client.byIdempotencyKey('s-1');
    expect(found?.payload).toEqual(stateChange('s-1').payload);
  });

  it('gives K concurrent clients × M appends exactly K×M entries, gap-free', async () => {
    const K = 8;
    const M = 40;
    await Promise.all(
      Array.from({ length: K }, async (_, k) => {
        for (let m = 0; m < M; m++) {
          await h.client.append(ruleDecision(`w${k}-${m}`, `c-${k}`, 200));
          if (m % 10 === 0) await h.client.append(ruleDecision(`w${k}-${m}`, `c-${k}`, 200)); // a retry
        }
      }),
    );
    const all = await h.client.range(0, 10_000);
    const decisions = all.filter((e) => e.kind === 'rule.decision');
    expect(decisions).toHaveLength(K * M);
    expect(new Set(decisions.map((e) => e.idempotencyKey)).size).toBe(K * M);
    expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i));
  });
});
