/**
 * The crm-batch queue (issue 16):
 * - gives a killed worker's batch back soon (finding 9): its own short BullMQ lock, and claims on a short lease
 *   that the running job renews. A live job keeps its claims however long HubSpot makes it wait; a dead one's
 *   claims return to pending after one lease;
 * - adapts its batches to the arrival rate (finding 7): while plans keep arriving a type's batch waits until it
 *   is full (or 10 windows old), and associations gather while upserts keep coming, so a steady flow costs
 *   full batches, not a few plans per window.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import {
  BatchingCrm,
  PendingPlans,
  QueueRequestGate,
  processCrmBatch,
  type CrmBatchSettings,
  type PlanRef,
} from '../../jobs/crm-batch/index.ts';
import { HubSpotCrm } from '../../connectors/hubspot/hubspot.crm.ts';
import { JournalWriter } from '../../src/journal/writer.ts';
import { JournalReader } from '../../src/journal/reader.ts';
import { LocalJournalClient } from '../../src/journal/local-client.ts';
import { silentLogger } from '../../src/config/logger.ts';
import type { MirrorPlan } from '../../src/pipeline/ports.ts';
import { REDIS_URL, inProcessPipeline, obliterate, testConfig, uniquePrefix } from '../helpers/pipeline.ts';
import { tempDir } from '../helpers/tmp.ts';
import { startHubSpotFake } from '../fakes/hubspot.fake.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const refs = (n: number): PlanRef[] =>
  Array.from({ length: n }, (_, i) => ({
    entryId: randomUUID(),
    entrySeq: i + 1,
    correlationId: `c/${i}`,
    decisionEntryId: randomUUID(),
    decisionSeq: i + 100,
    objectType: 'emails' as const,
  }));

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A pending store under a prefix of its own, removed after the test. */
function pendingStore(): { redis: Redis; pending: PendingPlans } {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const prefix = uniquePrefix();
  cleanups.push(async () => {
    await obliterate(prefix);
    redis.disconnect();
  });
  return { redis, pending: new PendingPlans(redis, prefix) };
}

describe('crm-batch claims and locks', () => {
  it('a running job renews its claims past the lease; once it stops renewing, they go back to pending after one lease', async () => {
    const { pending } = pendingStore();
    const items = refs(3);
    await pending.submitMany(items);
    const lease = 300;
    expect(await pending.claim('job-a', 100, lease, 60_000)).toHaveLength(3);
    // While job A runs (here: far longer than its lease), job B finds nothing to take.
    const stolen = await pending.holding('job-a', lease, async () => {
      await sleep(lease * 3);
      return pending.claim('job-b', 100, lease, 60_000);
    });
    expect(stolen).toEqual([]);
    expect(await pending.renew('job-a', lease)).toBe(3);
    // Job A died (nothing renews): after one lease its claims are B's.
    await sleep(lease + 100);
    const taken = await pending.claim('job-b', 100, lease, 60_000);
    expect(taken.map((r) => r.entryId).sort()).toEqual(items.map((r) => r.entryId).sort());
    // A's renewals no longer touch what B holds.
    expect(await pending.renew('job-a', lease)).toBe(0);
  });

  it('the crm-batch worker runs on CRM_BATCH_LOCK_SECONDS (default 5 s), the other queues on JOB_LOCK_SECONDS', async () => {
    const tmp = tempDir('aj-crm-lock-');
    const fake = await startHubSpotFake({ accessToken: 'pat-na1-lock-test' });
    const env = { HUBSPOT_ACCESS_TOKEN: 'pat-na1-lock-test', HUBSPOT_BASE_PATH: fake.baseUrl, JOB_LOCK_SECONDS: '30' };
    expect(testConfig(tmp.dir, env).pipeline.crmBatchLockMs).toBe(5_000);
    const running = await inProcessPipeline(tmp.dir, {}, env);
    cleanups.push(async () => {
      await running.stop();
      await fake.close();
      tmp.cleanup();
    });
    const workers = running.runtime.workers?.workers ?? [];
    const crm = workers.find((w) => w.name === 'crm-batch');
    const ingest = workers.find((w) => w.name === 'ingest');
    expect(crm?.opts.lockDuration).toBe(5_000);
    expect(crm?.opts.stalledInterval).toBe(5_000);
    expect(ingest?.opts.lockDuration).toBe(30_000);
  });

  it('a lane is gathered until it is full, not written a few plans per window; other lanes do not trigger it', async () => {
    const { pending } = pendingStore();
    await pending.submitMany([...refs(60), ...refs(50).map((r) => ({ ...r, objectType: 'calls' as const }))]);
    // 110 wait in all, but no lane has 100: nothing yet while gathering.
    expect(await pending.claim('job-a', 100, 5_000, 60_000, 100)).toEqual([]);
    expect(await pending.lastSubmitted()).toBeGreaterThan(Date.now() - 60_000);
    // Once a lane fills, that lane goes.
    await pending.submitMany(refs(40));
    const taken = await pending.claim('job-a', 100, 5_000, 60_000, 100);
    expect(taken).toHaveLength(100);
    expect(new Set(taken.map((r) => r.objectType))).toEqual(new Set(['emails']));
  });

  it(
    'a steady flow of plans (50 a second for 6 s) is written in full batches and one round of associations',
    { timeout: 120_000 },
    async () => {
      const token = 'pat-na1-gather-test';
      const fake = await startHubSpotFake({ accessToken: token, tenSecondlyLimit: 1_000_000 });
      const dir = mkdtempSync(join(tmpdir(), 'aj-crm-gather-'));
      const path = join(dir, 'journal.sqlite');
      const writer = await JournalWriter.open({ path, keysDir: join(dir, 'keys'), checkpointEveryMs: 0 });
      const journal = new LocalJournalClient(writer, JournalReader.open(path));
      const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
      const prefix = uniquePrefix();
      const queue = new Queue('crm-batch', { connection: redis, prefix });
      const settings: CrmBatchSettings = {
        limitMax: 9,
        limitDurationMs: 1000,
        windowMs: 1000,
        batchSize: 100,
        leaseMs: 15_000,
        linkWindowMs: 30_000,
        linkBatchSize: 1000,
      };
      const pending = new PendingPlans(redis, prefix);
      const links = PendingPlans.links(redis, prefix);
      const gate = new QueueRequestGate(redis, queue, prefix, settings.limitMax, settings.limitDurationMs);
      const crm = new HubSpotCrm({ accessToken: token, basePath: fake.baseUrl, journal, dealRule: 'none', createContacts: 'never' });
      const contacts = Array.from({ length: 20 }, (_, i) => `buyer${i}@firm${i % 4}.example`);
      for (const email of contacts) fake.seed('contacts', { email });
      for (let i = 0; i < 4; i++) fake.seed('companies', { name: `Firm ${i}`, domain: `firm${i}.example` });
      const list: MirrorPlan[] = Array.from({ length: 300 }, (_, i) => {
        const entryId = randomUUID();
        const calls = i % 3 === 2;
        const base = { journal_entry_id: entryId, hs_timestamp: new Date(Date.UTC(2026, 10, 1) + i * 60_000).toISOString() };
        return {
          entryId,
          entrySeq: i + 1,
          correlationId: `gather/${entryId}`,
          decisionEntryId: randomUUID(),
          decisionSeq: i + 1000,
          direction: 'inbound' as const,
          category: 'new_lead' as const,
          objectType: calls ? ('calls' as const) : ('emails' as const),
          properties: calls
            ? { ...base, hs_call_direction: 'INBOUND', hs_call_title: `Call ${i}`, hs_call_body: 'Summary: a call' }
            : { ...base, hs_email_direction: 'INCOMING_EMAIL', hs_email_subject: `Question ${i}`, hs_email_text: 'Summary: a question' },
          counterparts: [contacts[i % contacts.length] as string],
        };
      });
      const byId = new Map(list.map((p) => [p.entryId, p]));
      await crm.bootstrap();
      const worker = new Worker(
        'crm-batch',
        (job) =>
          processCrmBatch(job, {
            crm,
            pending,
            links,
            queue,
            gate,
            journal,
            planFor: (ref) => Promise.resolve(byId.get(ref.entryId) as MirrorPlan),
            settings,
            logger: silentLogger,
          }),
        {
          connection: redis,
          prefix,
          concurrency: 2,
          limiter: { max: settings.limitMax, duration: settings.limitDurationMs },
        },
      );
      cleanups.push(async () => {
        await worker.close();
        await queue.close();
        await obliterate(prefix);
        redis.disconnect();
        await journal.close();
        await fake.close();
        rmSync(dir, { recursive: true, force: true });
      });
      const before = fake.requests.length;
      const stage = new BatchingCrm(pending, queue, settings.windowMs);
      for (const p of list) {
        await stage.mirror(p);
        await sleep(20);
      }
      const deadline = Date.now() + 90_000;
      while ((await pending.outstanding()) > 0 || (await links.outstanding()) > 0) {
        if (Date.now() > deadline) throw new Error('the plans were not all mirrored');
        await sleep(100);
      }
      const seen = fake.requests.slice(before);
      expect(fake.objects('emails').length + fake.objects('calls').length).toBe(300);
      // 200 emails and 100 calls: full batches (2 + 1), with at most one part-filled batch of each type at the end.
      const upserts = seen.filter((r) => r.method === 'POST' && /\/batch\/upsert$/.test(r.path));
      expect(upserts.length).toBeLessThanOrEqual(5);
      // Associations gathered across every batch: one v4 create per activity type and target type.
      const creates = seen.filter((r) => r.method === 'POST' && /^\/crm\/v4\/associations\/.*\/batch\/create$/.test(r.path));
      expect(creates.length).toBeLessThanOrEqual(4);
    },
  );
});
