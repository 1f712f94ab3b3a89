/**
 * The re-drive (src/pipeline/redrive.ts, and its loop in jobs/redrive.ts) over a real local journal, with the
 * queues and Redis in memory: after the jobs are lost, every unfinished interaction gets the job of its next
 * stage (and its unsent notifications) again, finished ones get none, and the watermark moves only over a
 * finished prefix.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { tempDir } from '../helpers/tmp.ts';
import { billingEmail, email, stageHarness, throughDecide, type StageHarness } from '../helpers/stages.ts';
import { redrive } from '../../src/pipeline/redrive.ts';
import { startRedriveLoop } from '../../jobs/redrive.ts';
import { silentLogger } from '../../src/config/logger.ts';

let tmp: { dir: string; cleanup: () => void };
let h: StageHarness;
beforeEach(async () => {
  tmp = tempDir('aj-redrive-');
  h = await stageHarness(tmp.dir);
});
afterEach(async () => {
  await h.close();
  tmp.cleanup();
});

/** Later than the grace period after anything this test journals. */
const later = (): number => Date.now() + 10 * 60_000;

/** Four interactions, each left at another stage (as if Redis had lost their jobs), and one finished. */
async function leftAtEveryStage(): Promise<Record<'finished' | 'classify' | 'decide' | 'mirror' | 'notify', string>> {
  const finished = await throughDecide(h, email('r-finished'));
  const [mirrorJob] = h.queues.of('mirror');
  if (!mirrorJob) throw new Error('no mirror job');
  await h.pipeline.mirror(mirrorJob);
  const classify = await h.pipeline.intake(email('r-classify', { text: 'Can we reschedule our call to Friday at 10am?' }));
  const decide = await h.pipeline.intake(email('r-decide', { text: 'Our dashboards show an error 500, please help.' }));
  if (classify.status !== 'accepted' || decide.status !== 'accepted') throw new Error('excluded');
  const decideJob = h.queues.of('classify').find((j) => j.entryId === decide.entry.id);
  if (!decideJob) throw new Error('no classify job');
  await h.pipeline.classify(decideJob);
  const mirror = await throughDecide(h, email('r-mirror', { text: 'Thanks for the proposal; can we discuss the renewal terms?' }));
  // Billing: mirrored (dry run), but its notification (rule billing-to-finance, channel log) never went out.
  const notify = await throughDecide(h, billingEmail('r-notify'));
  const notifyMirror = h.queues.of('mirror').find((j) => j.entryId === notify.entry.id);
  if (!notifyMirror) throw new Error('no mirror job');
  await h.pipeline.mirror(notifyMirror);
  h.queues.clear();
  return {
    finished: finished.entry.id,
    classify: classify.entry.id,
    decide: decide.entry.id,
    mirror: mirror.entry.id,
    notify: notify.entry.id,
  };
}

describe('redrive', () => {
  it('queues the next stage of every unfinished interaction, and nothing for a finished one', async () => {
    const ids = await leftAtEveryStage();
    const report = await redrive({ journal: h.journal, enqueue: h.queues.enqueue, fromSeq: 1, graceMs: 60_000, now: later });
    expect(report).toMatchObject({ scanned: 5, redriven: 4, more: false });
    expect(h.queues.jobs.map((j) => [j.queue, j.jobKey])).toEqual([
      ['classify', ids.classify],
      ['decide', ids.decide],
      ['mirror', ids.mirror],
      ['notify', `${ids.notify}.billing-to-finance.log`],
    ]);
    // The finished first interaction is the only finished prefix: the next scan may start right after it.
    const [first] = await h.journal.byKind({ kind: 'interaction.received', afterSeq: 0, limit: 10 });
    expect(first?.id).toBe(ids.finished);
    expect(report.watermark).toBe((first?.seq ?? 0) + 1);
  });

  it('leaves interactions inside the grace period to the normal flow', async () => {
    await leftAtEveryStage();
    const report = await redrive({ journal: h.journal, enqueue: h.queues.enqueue, fromSeq: 1, graceMs: 60_000, now: Date.now });
    expect(report).toMatchObject({ scanned: 0, redriven: 0, more: false, watermark: 1 });
    expect(h.queues.jobs).toEqual([]);
  });

  it('moves the watermark past a finished prefix, and pages with limit', async () => {
    await throughDecide(h, email('w-1'));
    for (const job of h.queues.of('mirror')) await h.pipeline.mirror(job);
    h.queues.clear();
    const all = await redrive({ journal: h.journal, enqueue: h.queues.enqueue, fromSeq: 1, graceMs: 0, now: later });
    const last = (await h.entries()).at(-1);
    expect(all).toMatchObject({ scanned: 1, redriven: 0 });
    expect(all.watermark).toBeGreaterThan(1);
    expect(all.watermark).toBeLessThanOrEqual((last?.seq ?? 0) + 1);
    expect(h.queues.jobs).toEqual([]);
    const paged = await redrive({ journal: h.journal, enqueue: h.queues.enqueue, fromSeq: 1, graceMs: 0, now: later, limit: 1 });
    expect(paged.more).toBe(true);
  });
});

/** The four Redis commands the loop uses, in a Map. */
function memoryRedis(): { redis: Redis; store: Map<string, string> } {
  const store = new Map<string, string>();
  const fake = {
    set(key: string, value: string, ...args: unknown[]): Promise<'OK' | null> {
      if (args.includes('NX') && store.has(key)) return Promise.resolve(null);
      store.set(key, value);
      return Promise.resolve('OK');
    },
    get: (key: string): Promise<string | null> => Promise.resolve(store.get(key) ?? null),
    del: (key: string): Promise<number> => Promise.resolve(store.delete(key) ? 1 : 0),
  };
  return { redis: fake as unknown as Redis, store };
}

describe('the re-drive loop', () => {
  it('re-drives once per pass under a lock, and keeps the watermark in Redis only over a finished prefix', async () => {
    const { redis, store } = memoryRedis();
    const loop = startRedriveLoop({
      redis,
      prefix: 'p',
      journal: h.journal,
      enqueue: h.queues.enqueue,
      intervalMs: 3_600_000,
      graceMs: 0,
      logger: silentLogger,
    });
    try {
      await throughDecide(h, email('l-1'));
      for (const job of h.queues.of('mirror')) await h.pipeline.mirror(job);
      const stuck = await h.pipeline.intake(email('l-2', { text: 'Can we reschedule our call to Friday at 10am?' }));
      h.queues.clear();
      expect(await loop.runOnce()).toBe(1);
      expect(h.queues.jobs.map((j) => j.queue)).toEqual(['classify']);
      const watermark = Number(store.get('p:redrive:watermark'));
      expect(watermark).toBeGreaterThan(1);
      expect(stuck.status === 'accepted' && watermark <= stuck.entry.seq).toBe(true);
      expect(store.has('p:redrive:lock')).toBe(false);
      // Another worker holds the lock: this one does nothing.
      store.set('p:redrive:lock', 'other');
      h.queues.clear();
      expect(await loop.runOnce()).toBe(0);
      expect(h.queues.jobs).toEqual([]);
    } finally {
      await loop.stop();
    }
  });
});
