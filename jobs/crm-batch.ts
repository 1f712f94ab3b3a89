/**
 * Batching the HubSpot mirror over BullMQ and Redis.
 *
 * The mirror stage does not call HubSpot: it records the plan's ids as pending (idempotent by entry id) and adds
 * a `crm-batch` job for the next short window (a deterministic id per window, so a burst of mirrors makes one
 * job). A crm-batch job claims up to 100 pending plans of one object type with a lease (so a killed worker's
 * claims go back to pending), rebuilds each plan from the journal, writes them in one batch upsert plus batched
 * associations, and acknowledges each item by its outcome. Exactly once comes from the upsert by
 * journal_entry_id: running a claim twice updates the activity, it never creates a second one.
 *
 * One request limit is shared by every worker process: the crm-batch queue's own BullMQ limiter key. Fetching
 * a job takes one slot (BullMQ's limiter) and every further HubSpot call of the job takes one more from the same
 * key; a 429 TEN_SECONDLY_ROLLING sets BullMQ's manual rate limit on the queue (Queue.rateLimit), which stops
 * every worker; a 429 DAILY does the same until the reset.
 */
import type { Queue} from 'bullmq';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { jobIdFor, jobOptions } from '../src/pipeline/job-catalog.ts';
import type { BatchCrmClient, CrmClient, MirrorPlan, MirrorResult, RequestGate } from '../src/pipeline/ports.ts';
import type { JournalClient } from '../src/journal/journal-client.ts';
import type { Logger } from '../src/config/logger.ts';
import { PermanentJobError } from '../src/pipeline/errors/permanent-job.error.ts';
import { DailyLimitError } from '../connectors/hubspot/hubspot.crm.ts';

const TYPES = ['emails', 'calls', 'notes'] as const;
export type PlanRef = Pick<MirrorPlan, 'entryId' | 'entrySeq' | 'correlationId' | 'decisionEntryId' | 'decisionSeq' | 'objectType'>;

export interface CrmBatchSettings {
  /** Requests allowed per window, shared by every worker (default 9 per 1000 ms). */
  readonly limitMax: number;
  readonly limitDurationMs: number;
  /** How long plans are gathered before a batch is written (default 1000 ms). */
  readonly windowMs: number;
  /** Plans per batch (at most 100, HubSpot's batch size). */
  readonly batchSize: number;
  /** How long a claim is held before it returns to pending (a worker that died). */
  readonly leaseMs: number;
  /** Tries per plan (retryable item failures) before it is given up with a job.failed entry. */
  readonly maxItemAttempts?: number;
}

const keys = (prefix: string) => ({
  pending: (type: string) => `${prefix}:crm:pending:${type}`,
  refs: `${prefix}:crm:refs`,
  leases: `${prefix}:crm:leases`,
  owner: `${prefix}:crm:owner`,
  attempts: `${prefix}:crm:attempts`,
  job: (jobId: string) => `${prefix}:crm:job:${jobId}`,
  limiter: `${prefix}:crm-batch:limiter`,
});

// Claims up to ARGV[2] plans for job ARGV[1]: its own live claims first (a retried job resumes them); expired
// leases go back to pending; then the oldest-waiting type if it waited too long, else the type with most waiting.
const CLAIM = `
local now = tonumber(ARGV[3]); local lease = tonumber(ARGV[4]); local max = tonumber(ARGV[2]); local starve = tonumber(ARGV[5])
local jobKey = KEYS[5]
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, id in ipairs(expired) do
  local owner = redis.call('HGET', KEYS[4], id)
  redis.call('ZREM', KEYS[3], id); redis.call('HDEL', KEYS[4], id)
  if owner then redis.call('SREM', ARGV[6] .. owner, id) end
  local ref = redis.call('HGET', KEYS[2], id)
  if ref then
    local t = cjson.decode(ref)['objectType']
    redis.call('ZADD', KEYS[1] .. t, 'NX', now, id)
  end
end
local own = redis.call('SMEMBERS', jobKey)
if #own > 0 then
  for _, id in ipairs(own) do redis.call('ZADD', KEYS[3], now + lease, id) end
  return own
end
local best = nil; local bestCount = 0; local oldest = nil; local oldestType = nil
for _, t in ipairs({'emails', 'calls', 'notes'}) do
  local c = redis.call('ZCARD', KEYS[1] .. t)
  if c > bestCount then best = t; bestCount = c end
  if c > 0 then
    local first = redis.call('ZRANGE', KEYS[1] .. t, 0, 0, 'WITHSCORES')
    local s = tonumber(first[2])
    if oldest == nil or s < oldest then oldest = s; oldestType = t end
  end
end
if best == nil then return {} end
if oldest ~= nil and oldest < now - starve then best = oldestType end
local candidates = redis.call('ZRANGE', KEYS[1] .. best, 0, max * 3)
local taken = {}
for _, id in ipairs(candidates) do
  if #taken >= max then break end
  if not redis.call('ZSCORE', KEYS[3], id) then
    redis.call('ZREM', KEYS[1] .. best, id)
    redis.call('ZADD', KEYS[3], now + lease, id)
    redis.call('HSET', KEYS[4], id, ARGV[1])
    redis.call('SADD', jobKey, id)
    taken[#taken + 1] = id
  end
end
return taken
`;

// Finishes items of job ARGV[1]: ARGV[2] = 'ack' (done or given up) or 'retry' (back to pending); ids from ARGV[4].
const FINISH = `
local now = tonumber(ARGV[3])
for i = 4, #ARGV do
  local id = ARGV[i]
  if redis.call('HGET', KEYS[4], id) == ARGV[1] then
    redis.call('ZREM', KEYS[3], id); redis.call('HDEL', KEYS[4], id)
  end
  redis.call('SREM', KEYS[5], id)
  local ref = redis.call('HGET', KEYS[2], id)
  if ARGV[2] == 'retry' and ref then
    redis.call('ZADD', KEYS[1] .. cjson.decode(ref)['objectType'], 'NX', now, id)
  elseif ARGV[2] == 'ack' and ref then
    local t = cjson.decode(ref)['objectType']
    -- Submitted again while in flight (a re-mirror): keep it for the next batch.
    if not redis.call('ZSCORE', KEYS[1] .. t, id) then redis.call('HDEL', KEYS[2], id); redis.call('HDEL', KEYS[6], id) end
  end
end
return 1
`;

// Takes one request slot from the queue's BullMQ limiter key; returns 0, or how many ms to wait.
const ACQUIRE = `
local max = tonumber(ARGV[1]); local duration = tonumber(ARGV[2])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur >= max then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then return ttl end
  redis.call('DEL', KEYS[1])
end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], duration) end
return 0
`;

/** The pending plans (ids only: Redis keeps them in plain text) and their leases. */
export class PendingPlans {
  private readonly k: ReturnType<typeof keys>;
  constructor(private readonly redis: Redis, prefix: string) {
    this.k = keys(prefix);
  }

  async submit(ref: PlanRef): Promise<void> {
    await this.redis.multi().hset(this.k.refs, ref.entryId, JSON.stringify(ref)).zadd(this.k.pending(ref.objectType), 'NX', Date.now(), ref.entryId).exec();
  }

  async claim(jobId: string, max: number, leaseMs: number, starveMs: number): Promise<PlanRef[]> {
    const ids = (await this.redis.eval(CLAIM, 5, this.k.pending(''), this.k.refs, this.k.leases, this.k.owner, this.k.job(jobId), jobId, max, Date.now(), leaseMs, starveMs, this.k.job(''))) as string[];
    if (ids.length === 0) return [];
    const raw = await this.redis.hmget(this.k.refs, ...ids);
    return raw.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as PlanRef);
  }

  async finish(jobId: string, mode: 'ack' | 'retry', entryIds: readonly string[]): Promise<void> {
    if (entryIds.length === 0) return;
    await this.redis.eval(FINISH, 6, this.k.pending(''), this.k.refs, this.k.leases, this.k.owner, this.k.job(jobId), this.k.attempts, jobId, mode, Date.now(), ...entryIds);
  }

  /** Counts a retryable failure of an item; returns how many it has had. */
  async failedOnce(entryId: string): Promise<number> {
    return this.redis.hincrby(this.k.attempts, entryId, 1);
  }

  /** Plans waiting (not claimed). */
  async waiting(): Promise<number> {
    const counts = await Promise.all(TYPES.map((t) => this.redis.zcard(this.k.pending(t))));
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Plans waiting or claimed. */
  async outstanding(): Promise<number> {
    const counts = await Promise.all([...TYPES.map((t) => this.redis.zcard(this.k.pending(t))), this.redis.zcard(this.k.leases)]);
    return counts.reduce((a, b) => a + b, 0);
  }
}

/** The HubSpot request limit shared by every worker process, kept in the crm-batch queue's BullMQ limiter key. */
export class QueueRequestGate implements RequestGate {
  private readonly key: string;
  constructor(private readonly redis: Redis, private readonly queue: Queue, prefix: string, private readonly max: number, private readonly durationMs: number) {
    this.key = keys(prefix).limiter;
  }

  async acquire(): Promise<void> {
    for (;;) {
      const wait = Number(await this.redis.eval(ACQUIRE, 1, this.key, this.max, this.durationMs));
      if (wait <= 0) return;
      await new Promise((r) => setTimeout(r, Math.min(wait, 60_000)));
    }
  }

  /** BullMQ's manual rate limit on the queue: no worker fetches a crm-batch job, nor sends a request, until it ends. */
  async pause(ms: number): Promise<void> {
    await this.queue.rateLimit(Math.max(1, Math.round(ms)));
    await new Promise((r) => setTimeout(r, Math.min(ms, 60_000)));
  }
}

/** The first acquire of a job is free: fetching the job already took that slot from BullMQ's limiter. */
function firstFree(gate: RequestGate): RequestGate {
  let free = true;
  return {
    acquire: () => {
      if (free) {
        free = false;
        return Promise.resolve();
      }
      return gate.acquire();
    },
    pause: (ms) => gate.pause(ms),
  };
}

/** Adds the crm-batch job of the window after `now` (deterministic id: one job per window however many plans). */
export async function scheduleBatch(queue: Queue, windowMs: number, now = Date.now()): Promise<void> {
  const window = Math.floor(now / windowMs) + 1;
  const jobId = jobIdFor('crm-batch', String(window));
  await queue.add('crm-batch', { window }, { ...jobOptions('crm-batch', jobId), delay: Math.max(0, window * windowMs - now) });
}

/** The CrmClient the mirror stage uses when HubSpot is configured: pending + a job for the window. */
export class BatchingCrm implements CrmClient {
  readonly dryRun = false;
  constructor(private readonly pending: PendingPlans, private readonly queue: Queue, private readonly windowMs: number) {}

  async mirror(plan: MirrorPlan): Promise<MirrorResult> {
    await this.pending.submit({ entryId: plan.entryId, entrySeq: plan.entrySeq, correlationId: plan.correlationId, decisionEntryId: plan.decisionEntryId, decisionSeq: plan.decisionSeq, objectType: plan.objectType });
    await scheduleBatch(this.queue, this.windowMs);
    return { objectId: null, dryRun: false };
  }
}

export interface CrmBatchDeps {
  readonly crm: BatchCrmClient;
  readonly pending: PendingPlans;
  readonly queue: Queue;
  readonly gate: RequestGate;
  readonly journal: JournalClient;
  /** Rebuilds a plan from the journal (the pipeline's planFor: the newest decision or override wins). */
  readonly planFor: (ref: PlanRef) => Promise<MirrorPlan>;
  readonly settings: CrmBatchSettings;
  readonly logger: Logger;
}

/** One crm-batch job: claim, write, acknowledge item by item, and schedule the next window if work is left. */
export async function processCrmBatch(job: Pick<Job, 'id'>, deps: CrmBatchDeps): Promise<{ claimed: number; mirrored: number; failed: number; retried: number }> {
  const jobId = String(job.id);
  const { pending, settings } = deps;
  const refs = await pending.claim(jobId, Math.min(100, settings.batchSize), settings.leaseMs, settings.windowMs * 10);
  const counts = { claimed: refs.length, mirrored: 0, failed: 0, retried: 0 };
  // A backlog of full batches does not wait for the next window: a follow-up job (one per job, so a retry adds
  // none) runs beside this one, under the same shared limit.
  if (refs.length > 0 && (await pending.waiting()) >= settings.batchSize) {
    await deps.queue.add('crm-batch', { window: 0 }, jobOptions('crm-batch', jobIdFor('crm-batch', `next-${jobId}`)));
  }
  if (refs.length > 0) {
    const plans: MirrorPlan[] = [];
    for (const ref of refs) {
      try {
        plans.push(await deps.planFor(ref));
      } catch (err) {
        if (!(err instanceof PermanentJobError)) throw err;
        await recordGivenUp(deps.journal, jobId, ref, err.message);
        await pending.finish(jobId, 'ack', [ref.entryId]);
        counts.failed++;
      }
    }
    let outcomes;
    try {
      outcomes = await deps.crm.mirrorBatch(plans, jobId, firstFree(deps.gate));
    } catch (err) {
      if (err instanceof DailyLimitError) {
        await deps.queue.rateLimit(err.resetInMs);
        throw Worker.RateLimitError();
      }
      throw err;
    }
    for (const o of outcomes) {
      if (o.status === 'mirrored') {
        counts.mirrored++;
        await pending.finish(jobId, 'ack', [o.entryId]);
      } else if (o.retryable && (await pending.failedOnce(o.entryId)) < (settings.maxItemAttempts ?? 10)) {
        counts.retried++;
        await pending.finish(jobId, 'retry', [o.entryId]);
      } else {
        counts.failed++;
        const ref = refs.find((r) => r.entryId === o.entryId) as PlanRef;
        if (o.retryable) await recordGivenUp(deps.journal, jobId, ref, o.reason ?? 'failed too often');
        await pending.finish(jobId, 'ack', [o.entryId]);
      }
    }
  }
  if ((await pending.outstanding()) > 0) await scheduleBatch(deps.queue, settings.windowMs);
  return counts;
}

async function recordGivenUp(journal: JournalClient, jobId: string, ref: PlanRef, reason: string): Promise<void> {
  await journal.append({
    kind: 'job.failed',
    source: 'pipeline',
    actor: 'worker:crm-batch',
    correlationId: ref.correlationId,
    causationId: ref.entryId,
    idempotencyKey: `job-failed/crm-batch/${ref.entryId}/${jobId}`,
    payload: { queue: 'crm-batch', jobId, attempts: 1, error: reason.slice(0, 4000), finality: 'permanent', entryId: ref.entryId },
  });
}

/** Keeps batches coming while plans are outstanding (a lost job, an expired lease): a cheap tick per worker process. */
export function startBatchSweeper(pending: PendingPlans, queue: Queue, windowMs: number, everyMs: number, log: Logger): { stop(): void } {
  const timer = setInterval(() => {
    pending
      .outstanding()
      .then((n) => (n > 0 ? scheduleBatch(queue, windowMs) : undefined))
      .catch((err: unknown) => log.warn({ error: (err as Error).message }, 'crm-batch sweep failed'));
  }, everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
