/**
 * kill -9 of the journal service while 8 clients append: after a restart every acknowledged entry is there,
 * seq has no gap, the journal verifies, and re-sending what was not acknowledged adds nothing twice.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.ts';
import { runCliSync } from '../helpers/cli.ts';
import { freePort, startService, tokensFor } from '../helpers/service.ts';
import { ruleDecision } from '../helpers/entries.ts';
import { JournalReader } from '../../src/journal/reader.ts';

let tmp: { dir: string; cleanup: () => void };
beforeEach(() => {
  tmp = tempDir('aj-crash-');
});
afterEach(() => tmp.cleanup());

const CLIENTS = 8;
const ROUNDS = 3;

describe('crash safety of the journal service', () => {
  it(`keeps every acknowledged entry across ${ROUNDS} kill -9s with ${CLIENTS} clients appending`, async () => {
    const port = await freePort();
    const tokens = tokensFor();
    const acked = new Set<string>();
    const sent = new Set<string>();
    let next = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const svc = await startService(tmp.dir, { port, tokens, env: { JOURNAL_CHECKPOINT_EVERY_ENTRIES: '50' } });
      const client = svc.client({ attempts: 1 });
      let stop = false;
      const workers = Array.from({ length: CLIENTS }, async (_, k) => {
        while (!stop) {
          const key = `crash-${k}-${next++}`;
          sent.add(key);
          try {
            const r = await client.append(ruleDecision(key, `c-${k}`, 300));
            expect(r.entry.idempotencyKey).toBe(key);
            acked.add(key);
          } catch {
            return; // the service died under us: that append may or may not have committed
          }
        }
      });
      // Let the clients get going, then kill the service with no chance to flush.
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 500));
      await svc.kill9();
      stop = true;
      await Promise.all(workers);
      await client.close();
    }
    expect(acked.size).toBeGreaterThan(100);

    // Restart, and re-send everything that was sent (acknowledged or not): retries must add nothing twice.
    const svc = await startService(tmp.dir, { port, tokens });
    const client = svc.client();
    for (const key of sent) {
      const k = Number(key.split('-')[1]);
      await client.append(ruleDecision(key, `c-${k}`, 300));
    }
    await client.close();
    expect(await svc.stop()).toBe(0);

    const reader = JournalReader.open(join(tmp.dir, 'journal.sqlite'));
    const all = reader.range(0, 10_000);
    const more = all.length === 10_000 ? reader.range(10_000, 10_000) : [];
    reader.close();
    const entries = [...all, ...more];
    expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => i)); // no gap
    const keys = entries.filter((e) => e.kind === 'rule.decision').map((e) => e.idempotencyKey);
    expect(new Set(keys).size).toBe(keys.length); // no duplicate
    for (const key of acked) expect(keys).toContain(key); // nothing acknowledged was lost
    expect(new Set(keys)).toEqual(sent);

    const verify = runCliSync(['verify', '--json'], { env: svc.env });
    expect(verify.status).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, sealsChecked: true });
  });
});
