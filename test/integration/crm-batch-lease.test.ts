/**
 * The crm-batch queue gives a killed worker's batch back soon (issue 16, finding 9): its own short BullMQ lock,
 * and claims on a short lease that the running job renews. A live job keeps its claims however long HubSpot
 * makes it wait; a dead one's claims return to pending after one lease.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { PendingPlans, type PlanRef } from '../../jobs/crm-batch.ts';
import { REDIS_URL, inProcessPipeline, obliterate, testConfig, uniquePrefix } from '../helpers/pipeline.ts';
import { tempDir } from '../helpers/tmp.ts';
import { startHubSpotFake } from '../fakes/hubspot.fake.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const refs = (n: number): PlanRef[] =>
  Array.from({ length: n }, (_, i) => ({ entryId: randomUUID(), entrySeq: i + 1, correlationId: `c/${i}`, decisionEntryId: randomUUID(), decisionSeq: i + 100, objectType: 'emails' as const }));

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('crm-batch claims and locks', () => {
  it('a running job renews its claims past the lease; once it stops renewing, they go back to pending after one lease', async () => {
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const prefix = uniquePrefix();
    cleanups.push(async () => {
      await obliterate(prefix);
      redis.disconnect();
    });
    const pending = new PendingPlans(redis, prefix);
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
});
