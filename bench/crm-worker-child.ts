/**
 * One crm-batch worker in a process of its own, for the crm suite's recovery measurement (a worker killed with
 * SIGKILL mid-batch): the same HubSpotCrm, PendingPlans, request gate, processCrmBatch, BullMQ Worker options and
 * sweeper as jobs/hubspot.ts and jobs/workers.ts wire, with the lock given on the command line and the lease at
 * three times it (as CRM_BATCH_LOCK_SECONDS sets them).
 *
 *   node bin/run-ts.mjs bench/crm-worker-child.ts LOCK_MS PLANS_JSON   (env: AJ_BENCH_FAKE_URL, AJ_BENCH_PREFIX, REDIS_URL)
 *
 * Prints `ready` on stdout once its worker runs; its journal is a file of its own in a temporary directory.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { silentLogger } from '../src/config/logger.ts';
import { JournalWriter } from '../src/journal/writer.ts';
import { JournalReader } from '../src/journal/reader.ts';
import { LocalJournalClient } from '../src/journal/local-client.ts';
import type { MirrorPlan } from '../src/pipeline/ports.ts';
import { HubSpotCrm } from '../connectors/hubspot/hubspot.crm.ts';
import { PendingPlans, QueueRequestGate, processCrmBatch, startBatchSweeper, type CrmBatchSettings } from '../jobs/crm-batch/index.ts';

const [lockArg, plansPath] = process.argv.slice(2);
const lockMs = Number(lockArg);
const fakeUrl = process.env.AJ_BENCH_FAKE_URL;
const prefix = process.env.AJ_BENCH_PREFIX;
if (!Number.isInteger(lockMs) || lockMs <= 0 || !plansPath || !fakeUrl || !prefix) {
  process.stderr.write('usage: crm-worker-child.ts LOCK_MS PLANS_JSON (env AJ_BENCH_FAKE_URL, AJ_BENCH_PREFIX, REDIS_URL)\n');
  process.exit(2);
}
const byId = new Map((JSON.parse(readFileSync(plansPath, 'utf8')) as MirrorPlan[]).map((p) => [p.entryId, p]));
const dir = mkdtempSync(join(tmpdir(), 'aj-bench-crm-child-'));
const path = join(dir, 'journal.sqlite');
const writer = await JournalWriter.open({ path, keysDir: join(dir, 'keys'), checkpointEveryMs: 0 });
const journal = new LocalJournalClient(writer, JournalReader.open(path));
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const settings: CrmBatchSettings = {
  limitMax: 9,
  limitDurationMs: 1000,
  windowMs: 1000,
  batchSize: 100,
  leaseMs: 3 * lockMs,
  linkWindowMs: 30_000,
  linkBatchSize: 1000,
};
const queue = new Queue('crm-batch', { connection: redis, prefix });
const pending = new PendingPlans(redis, prefix);
const links = PendingPlans.links(redis, prefix);
const gate = new QueueRequestGate(redis, queue, prefix, settings.limitMax, settings.limitDurationMs);
const crm = new HubSpotCrm({
  accessToken: 'pat-na1-bench-token-0000',
  basePath: fakeUrl,
  journal,
  dealRule: 'single-open-deal',
  createContacts: 'never',
});
await crm.bootstrap();
new Worker(
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
    lockDuration: lockMs,
    stalledInterval: lockMs,
    maxStalledCount: 5,
    limiter: { max: settings.limitMax, duration: settings.limitDurationMs },
  },
);
startBatchSweeper(
  pending,
  links,
  queue,
  settings.windowMs,
  settings.linkWindowMs ?? 30_000,
  Math.max(settings.leaseMs / 3, 2_000),
  silentLogger,
);
process.stdout.write('ready\n');
process.on('SIGTERM', () => process.exit(0));
