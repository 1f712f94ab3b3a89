/**
 * The pipeline's BullMQ queues and the producer side: every job is checked against the catalog before it is
 * added, and gets a deterministic id, so adding the same job twice is a no-op.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { JOBS, QUEUE_NAMES, jobIdFor, jobOptions, type JobData, type QueueName } from '../src/pipeline/job-catalog.ts';
import type { Enqueue } from '../src/pipeline/ports.ts';
import type { SyncScheduler } from '../src/pipeline/sync-scheduler.ts';
import { PRODUCER_COMMAND_TIMEOUT_MS, assertRedisReady, withinDeadline } from './redis-connection.ts';

export type Queues = Record<QueueName, Queue>;

export function createQueues(connection: Redis, prefix: string): Queues {
  return Object.fromEntries(QUEUE_NAMES.map((name) => [name, new Queue(name, { connection, prefix })])) as Queues;
}

/**
 * Adds checked jobs. A producer (`failFast`: the web process) gets a QueueUnavailableError at once when Redis is
 * not connected, and after a deadline when it does not answer, instead of waiting for it without end (BullMQ's
 * add waits for a connection that is not ready).
 */
export function enqueueVia(queues: Queues, failFast?: { readonly redis: Redis; readonly url: string }): Enqueue {
  return async <Q extends QueueName>(queue: Q, data: JobData<Q>, jobKey: string): Promise<void> => {
    const checked = JOBS[queue].schema.parse(data);
    const jobId = jobIdFor(queue, jobKey);
    if (!failFast) {
      await queues[queue].add(queue, checked, jobOptions(queue, jobId));
      return;
    }
    assertRedisReady(failFast.redis, failFast.url);
    await withinDeadline(
      queues[queue].add(queue, checked, jobOptions(queue, jobId)),
      2 * PRODUCER_COMMAND_TIMEOUT_MS,
      `queueing the ${queue} job`,
    );
  };
}

/**
 * The re-drive's enqueue: like enqueueVia, but a job that already exists under that id and has ended (failed
 * after its attempts, e.g. while the journal was down and could not even take its job.failed entry; or completed
 * without its stage's entry on the record) is run again instead of being silently kept as it is. The re-drive
 * only asks for stages whose entries are missing from the journal, and every stage is idempotent.
 */
export function reviveVia(queues: Queues): Enqueue {
  const enqueue = enqueueVia(queues);
  return async <Q extends QueueName>(queue: Q, data: JobData<Q>, jobKey: string): Promise<void> => {
    const existing = await queues[queue].getJob(jobIdFor(queue, jobKey));
    if (existing) {
      const state = await existing.getState();
      if (state === 'failed') return existing.retry('failed');
      if (state !== 'completed') return; // waiting, delayed or running: it will do its work
      await existing.remove();
    }
    await enqueue(queue, data, jobKey);
  };
}

/**
 * The polling connectors' sync-inbox jobs on BullMQ: a repeating sync is a job scheduler (one per account,
 * kept in Redis, so every worker process shares it), a sync now is a plain job. Every job is checked against
 * the catalog first, as enqueueVia does.
 */
export function syncSchedulerVia(queues: Queues): SyncScheduler {
  const q = queues['sync-inbox'];
  const spec = JOBS['sync-inbox'];
  return {
    async repeat(schedulerId, job, everyMs, onlyMissing = false) {
      const data = spec.schema.parse(job);
      if (onlyMissing && (await q.getJobScheduler(schedulerId))) return;
      await q.upsertJobScheduler(
        schedulerId,
        { every: everyMs },
        {
          name: 'sync-inbox',
          data,
          opts: { attempts: spec.attempts, backoff: { type: 'exponential', delay: spec.backoffMs, jitter: 0.5 } },
        },
      );
    },
    async once(jobId, job) {
      await q.add('sync-inbox', spec.schema.parse(job), jobOptions('sync-inbox', jobId));
    },
  };
}

export async function closeQueues(queues: Queues): Promise<void> {
  await Promise.all(Object.values(queues).map((q) => q.close()));
}

/** Redis must not evict keys: an evicted job is a silently lost interaction. Returns a warning, or null. */
export async function evictionWarning(redis: Redis): Promise<string | null> {
  try {
    const reply = await redis.config('GET', 'maxmemory-policy');
    const policy = reply[1] ?? 'unknown';
    return policy === 'noeviction'
      ? null
      : `Redis maxmemory-policy is "${policy}"; set it to "noeviction" (CONFIG SET maxmemory-policy noeviction), or queued jobs can be evicted under memory pressure`;
  } catch {
    return 'could not read Redis maxmemory-policy (CONFIG GET refused); make sure it is "noeviction"';
  }
}

/** Removes every queue and every key under `prefix` (the demo's and tests' own prefixes; never the product's). */
export async function removeAllUnder(redis: Redis, prefix: string): Promise<void> {
  const queues = createQueues(redis, prefix);
  await Promise.all(Object.values(queues).map((q) => q.obliterate({ force: true })));
  await closeQueues(queues);
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/**
 * Waits until no job is due or running in any queue (three quiet polls in a row). A repeating sync-inbox
 * schedule always has its next run delayed, so only due work counts there.
 */
export async function waitUntilDrained(queues: Queues, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let quiet = 0;
  while (Date.now() < deadline) {
    let pending = 0;
    for (const name of QUEUE_NAMES) {
      const states =
        name === 'sync-inbox'
          ? (['waiting', 'active', 'prioritized'] as const)
          : (['waiting', 'active', 'delayed', 'prioritized'] as const);
      const c = await queues[name].getJobCounts(...states);
      pending += Object.values(c).reduce((a, b) => a + b, 0);
    }
    quiet = pending === 0 ? quiet + 1 : 0;
    if (quiet >= 3) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the queues did not drain within ${timeoutMs / 1000} s`);
}
