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
import type { Queue } from 'bullmq';
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
/** An activity HubSpot has, waiting for its associations: the plan's ids and the activity's object id. */
export type LinkRef = PlanRef & { readonly objectId: string; readonly lane: 'links' };

export interface CrmBatchSettings {
  /** Requests allowed per window, shared by every worker (default 9 per 1000 ms). */
  readonly limitMax: number;
  readonly limitDurationMs: number;
  /** How long plans are gathered before a batch is written (default 1000 ms): the quiet gap that ends a gathering. */
  readonly windowMs: number;
  /** The longest a plan waits for its batch to fill while plans keep arriving (default 10 windows). */
  readonly maxWaitMs?: number;
  /** Plans per batch (at most 100, HubSpot's batch size). */
  readonly batchSize: number;
  /** How long a claim is held before it returns to pending (a worker that died); renewed while its job runs. */
  readonly leaseMs: number;
  /** Tries per plan (retryable item failures) before it is given up with a job.failed entry. */
  readonly maxItemAttempts?: number;
  /** How long written activities are gathered for their associations (default 5 × windowMs). */
  readonly linkWindowMs?: number;
  /** Activities associated per job (default 1,000): one v4 call per activity type and target type. */
  readonly linkBatchSize?: number;
}

/** The crm-batch queue's two kinds of job: upsert the waiting plans, or associate the written activities. */
export type CrmBatchStage = 'upsert' | 'links';

const keys = (prefix: string, ns = 'crm') => ({
  pending: (type: string) => `${prefix}:${ns}:pending:${type}`,
  refs: `${prefix}:${ns}:refs`,
  leases: `${prefix}:${ns}:leases`,
  owner: `${prefix}:${ns}:owner`,
  attempts: `${prefix}:${ns}:attempts`,
  last: `${prefix}:${ns}:last-submitted`,
  job: (jobId: string) => `${prefix}:${ns}:job:${jobId}`,
  limiter: `${prefix}:crm-batch:limiter`,
});

// Claims up to ARGV[2] items for job ARGV[1]: its own live claims first (a retried job resumes them); expired
// leases go back to pending; then the oldest-waiting lane if it waited too long, else the lane with most waiting.
// Nothing is claimed while no lane has ARGV[7] waiting and the oldest has waited less than ARGV[5] ms (gathering).
// The lanes are ARGV[8...]; an item's lane is its ref's "lane", else its "objectType".
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
    local r = cjson.decode(ref)
    redis.call('ZADD', KEYS[1] .. (r['lane'] or r['objectType']), 'NX', now, id)
  end
end
local own = redis.call('SMEMBERS', jobKey)
if #own > 0 then
  for _, id in ipairs(own) do redis.call('ZADD', KEYS[3], now + lease, id) end
  return own
end
local best = nil; local bestCount = 0; local oldest = nil; local oldestType = nil
for i = 8, #ARGV do
  local t = ARGV[i]
  local c = redis.call('ZCARD', KEYS[1] .. t)
  if c > bestCount then best = t; bestCount = c end
  if c > 0 then
    local first = redis.call('ZRANGE', KEYS[1] .. t, 0, 0, 'WITHSCORES')
    local s = tonumber(first[2])
    if oldest == nil or s < oldest then oldest = s; oldestType = t end
  end
end
if best == nil then return {} end
if bestCount < tonumber(ARGV[7]) and oldest >= now - starve then return {} end
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

// Renews the leases of job ARGV[1]'s live claims to now (ARGV[2]) + lease (ARGV[3]); returns how many it holds.
const RENEW = `
local own = redis.call('SMEMBERS', KEYS[3]); local n = 0
for _, id in ipairs(own) do
  if redis.call('HGET', KEYS[2], id) == ARGV[1] then
    redis.call('ZADD', KEYS[1], 'XX', tonumber(ARGV[2]) + tonumber(ARGV[3]), id); n = n + 1
  end
end
return n
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
  local lane = nil
  if ref then
    local r = cjson.decode(ref)
    lane = r['lane'] or r['objectType']
  end
  if ARGV[2] == 'retry' and ref then
    redis.call('ZADD', KEYS[1] .. lane, 'NX', now, id)
  elseif ARGV[2] == 'ack' and ref then
    local t = lane
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

/**
 * Items waiting for a crm-batch job (ids only: Redis keeps them in plain text) and their leases, by lane: the
 * plans waiting for their upsert (one lane per object type, namespace "crm"), or the written activities waiting
 * for their associations (one lane, namespace "crm-links").
 */
export class PendingPlans<R extends PlanRef = PlanRef> {
  private readonly k: ReturnType<typeof keys>;
  constructor(
    private readonly redis: Redis,
    prefix: string,
    ns = 'crm',
    private readonly lanes: readonly string[] = TYPES,
  ) {
    this.k = keys(prefix, ns);
  }

  /** The written activities waiting for their associations. */
  static links(redis: Redis, prefix: string): PendingPlans<LinkRef> {
    return new PendingPlans<LinkRef>(redis, prefix, 'crm-links', ['links']);
  }

  private laneOf(ref: R): string {
    return (ref as Partial<LinkRef>).lane ?? ref.objectType;
  }

  async submit(ref: R): Promise<void> {
    await this.submitMany([ref]);
  }

  /** Idempotent by entry id: an item already waiting keeps its place. */
  async submitMany(refs: readonly R[]): Promise<void> {
    if (refs.length === 0) return;
    const m = this.redis.multi();
    const now = Date.now();
    for (const ref of refs)
      m.hset(this.k.refs, ref.entryId, JSON.stringify(ref)).zadd(this.k.pending(this.laneOf(ref)), 'NX', now, ref.entryId);
    m.set(this.k.last, String(now));
    await m.exec();
  }

  /**
   * Claims up to `max` items for the job (its own earlier claims first). With `gatherMin`, nothing is claimed
   * while no lane has that many waiting and the oldest has waited less than `starveMs`.
   */
  async claim(jobId: string, max: number, leaseMs: number, starveMs: number, gatherMin = 0): Promise<R[]> {
    const ids = (await this.redis.eval(
      CLAIM,
      5,
      this.k.pending(''),
      this.k.refs,
      this.k.leases,
      this.k.owner,
      this.k.job(jobId),
      jobId,
      max,
      Date.now(),
      leaseMs,
      starveMs,
      this.k.job(''),
      gatherMin,
      ...this.lanes,
    )) as string[];
    if (ids.length === 0) return [];
    const raw = await this.redis.hmget(this.k.refs, ...ids);
    return raw.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as R);
  }

  /** Extends the lease of the job's live claims (a job that runs keeps what it claimed); returns how many it holds. */
  async renew(jobId: string, leaseMs: number): Promise<number> {
    return Number(await this.redis.eval(RENEW, 3, this.k.leases, this.k.owner, this.k.job(jobId), jobId, Date.now(), leaseMs));
  }

  /**
   * Runs `work` while renewing the job's claims every third of the lease: a live job's claims never expire
   * under it, however long HubSpot makes it wait, and a dead one's return to pending after one lease.
   */
  async holding<T>(jobId: string, leaseMs: number, work: () => Promise<T>): Promise<T> {
    const timer = setInterval(() => void this.renew(jobId, leaseMs).catch(() => undefined), Math.max(50, Math.floor(leaseMs / 3)));
    try {
      return await work();
    } finally {
      clearInterval(timer);
    }
  }

  async finish(jobId: string, mode: 'ack' | 'retry', entryIds: readonly string[]): Promise<void> {
    if (entryIds.length === 0) return;
    await this.redis.eval(
      FINISH,
      6,
      this.k.pending(''),
      this.k.refs,
      this.k.leases,
      this.k.owner,
      this.k.job(jobId),
      this.k.attempts,
      jobId,
      mode,
      Date.now(),
      ...entryIds,
    );
  }

  /** Counts a retryable failure of an item; returns how many it has had. */
  async failedOnce(entryId: string): Promise<number> {
    return this.redis.hincrby(this.k.attempts, entryId, 1);
  }

  /** When the newest item was submitted (ms since the epoch), or null before the first. */
  async lastSubmitted(): Promise<number | null> {
    const v = await this.redis.get(this.k.last);
    return v === null ? null : Number(v);
  }

  /** When the longest-waiting unclaimed item was submitted (ms since the epoch), or null when none waits. */
  async oldestWaiting(): Promise<number | null> {
    const firsts = await Promise.all(this.lanes.map((t) => this.redis.zrange(this.k.pending(t), '0', '0', 'WITHSCORES')));
    const scores = firsts.filter((f) => f.length === 2).map((f) => Number(f[1]));
    return scores.length > 0 ? Math.min(...scores) : null;
  }

  /** Plans waiting (not claimed). */
  async waiting(): Promise<number> {
    const counts = await Promise.all(this.lanes.map((t) => this.redis.zcard(this.k.pending(t))));
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Plans waiting or claimed. */
  async outstanding(): Promise<number> {
    const counts = await Promise.all([...this.lanes.map((t) => this.redis.zcard(this.k.pending(t))), this.redis.zcard(this.k.leases)]);
    return counts.reduce((a, b) => a + b, 0);
  }
}

/** The HubSpot request limit shared by every worker process, kept in the crm-batch queue's BullMQ limiter key. */
export class QueueRequestGate implements RequestGate {
  private readonly key: string;
  constructor(
    private readonly redis: Redis,
    private readonly queue: Queue,
    prefix: string,
    private readonly max: number,
    private readonly durationMs: number,
  ) {
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
  async halt(ms: number): Promise<void> {
    await this.queue.rateLimit(Math.max(1, Math.round(ms)));
  }

  async pause(ms: number): Promise<void> {
    await this.halt(ms);
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
    halt: (ms) => gate.halt(ms),
    pause: (ms) => gate.pause(ms),
  };
}

/** Adds the crm-batch job of the window after `now` (deterministic id: one job per window however many plans). */
export async function scheduleBatch(queue: Queue, windowMs: number, now = Date.now()): Promise<void> {
  const window = Math.floor(now / windowMs) + 1;
  const jobId = jobIdFor('crm-batch', String(window));
  await queue.add('crm-batch', { window }, { ...jobOptions('crm-batch', jobId), delay: Math.max(0, window * windowMs - now) });
}

/** Adds the associations job due at `dueAt` (one per window of `windowMs`, however many batches ask for it). */
export async function scheduleLinks(queue: Queue, windowMs: number, dueAt: number, now = Date.now()): Promise<void> {
  const window = Math.ceil(dueAt / windowMs);
  const jobId = jobIdFor('crm-batch', `links-${window}`);
  await queue.add(
    'crm-batch',
    { window, stage: 'links' },
    { ...jobOptions('crm-batch', jobId), delay: Math.max(0, window * windowMs - now) },
  );
}

/** The CrmClient the mirror stage uses when HubSpot is configured: pending + a job for the window. */
export class BatchingCrm implements CrmClient {
  readonly dryRun = false;
  constructor(
    private readonly pending: PendingPlans,
    private readonly queue: Queue,
    private readonly windowMs: number,
  ) {}

  async mirror(plan: MirrorPlan): Promise<MirrorResult> {
    await this.pending.submit({
      entryId: plan.entryId,
      entrySeq: plan.entrySeq,
      correlationId: plan.correlationId,
      decisionEntryId: plan.decisionEntryId,
      decisionSeq: plan.decisionSeq,
      objectType: plan.objectType,
    });
    await scheduleBatch(this.queue, this.windowMs);
    return { objectId: null, dryRun: false };
  }
}

export interface CrmBatchDeps {
  readonly crm: BatchCrmClient;
  /** Plans waiting for their upsert. */
  readonly pending: PendingPlans;
  /** Written activities waiting for their associations. */
  readonly links: PendingPlans<LinkRef>;
  readonly queue: Queue;
  readonly gate: RequestGate;
  readonly journal: JournalClient;
  /** Rebuilds a plan from the journal (the pipeline's planFor: the newest decision or override wins). */
  readonly planFor: (ref: PlanRef) => Promise<MirrorPlan>;
  readonly settings: CrmBatchSettings;
  readonly logger: Logger;
}

export type CrmBatchResult = { stage: CrmBatchStage; claimed: number; mirrored: number; failed: number; retried: number };

const linkWindowOf = (s: CrmBatchSettings): number => s.linkWindowMs ?? s.windowMs * 5;
const maxWaitOf = (s: CrmBatchSettings): number => s.maxWaitMs ?? s.windowMs * 10;
const linkBatchOf = (s: CrmBatchSettings): number => Math.max(1, s.linkBatchSize ?? 1000);

/** One crm-batch job: the window's upserts, or (stage "links") the gathered associations. */
export async function processCrmBatch(job: Pick<Job, 'id' | 'data'>, deps: CrmBatchDeps): Promise<CrmBatchResult> {
  const stage: CrmBatchStage = (job.data as { stage?: CrmBatchStage } | undefined)?.stage === 'links' ? 'links' : 'upsert';
  try {
    const store = stage === 'links' ? deps.links : deps.pending;
    return await store.holding(String(job.id), deps.settings.leaseMs, () =>
      stage === 'links' ? processLinks(job, deps) : processUpserts(job, deps),
    );
  } catch (err) {
    if (err instanceof DailyLimitError) {
      // Every worker stops fetching crm-batch jobs until the reset; this job's claims stay its own and resume.
      await deps.queue.rateLimit(err.resetInMs);
      throw Worker.RateLimitError();
    }
    throw err;
  }
}

/** Claim up to 100 plans, upsert them, hand the written ones to the associations stage, acknowledge item by item. */
async function processUpserts(job: Pick<Job, 'id'>, deps: CrmBatchDeps): Promise<CrmBatchResult> {
  const jobId = String(job.id);
  const { pending, links, settings } = deps;
  // The window grows while plans keep arriving: a lane is written once it holds a full batch, once its oldest
  // plan has waited `maxWaitOf` (10 windows), or once arrivals pause for a window (a lone interaction goes out
  // after one window). At a steady flow that fills batches instead of writing a few plans per window.
  const last = await pending.lastSubmitted();
  const quiet = last === null || Date.now() - last >= settings.windowMs;
  const size = Math.min(100, settings.batchSize);
  const refs = await pending.claim(jobId, size, settings.leaseMs, maxWaitOf(settings), quiet ? 0 : size);
  const counts: CrmBatchResult = { stage: 'upsert', claimed: refs.length, mirrored: 0, failed: 0, retried: 0 };
  // A backlog of full batches does not wait for the next window: a follow-up job (one per job, so a retry adds
  // none) runs beside this one, under the same shared limit.
  if (refs.length > 0 && (await pending.waiting()) >= settings.batchSize) {
    await deps.queue.add('crm-batch', { window: 0 }, jobOptions('crm-batch', jobIdFor('crm-batch', `next-${jobId}`)));
  }
  if (refs.length > 0) {
    const plans = await plansOf(refs, jobId, deps, pending, counts);
    const outcomes = await deps.crm.upsertBatch(plans, jobId, firstFree(deps.gate));
    // The written activities wait for their associations before their plans are acknowledged: a crash between
    // the two re-upserts (an update, never a second activity) and re-submits (idempotent by entry id).
    const written: LinkRef[] = [];
    for (const o of outcomes) {
      const ref = refs.find((r) => r.entryId === o.entryId);
      if (ref && o.status === 'mirrored' && o.objectId) written.push({ ...pick(ref), objectId: o.objectId, lane: 'links' });
    }
    await links.submitMany(written);
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
  const left = await pending.outstanding();
  if (left > 0) await scheduleBatch(deps.queue, settings.windowMs);
  // Associations are gathered while upserts keep coming: their job is due when the oldest waiting activity has
  // waited the link window, or now once no upsert is left or a full batch waits (one job per window either way,
  // and none that would find nothing to take: every fetched job costs a request slot).
  const oldest = await links.oldestWaiting();
  if (oldest !== null) {
    const now = Date.now();
    const due = left === 0 || (await links.waiting()) >= linkBatchOf(settings) ? now : oldest + linkWindowOf(settings) + 1;
    await scheduleLinks(deps.queue, settings.windowMs, due, now);
  }
  return counts;
}

/**
 * Claim up to 1,000 written activities (once that many wait, once the oldest has waited the link window, or
 * once no upsert is left to gather for), match and associate them in one go, and acknowledge them.
 */
async function processLinks(job: Pick<Job, 'id'>, deps: CrmBatchDeps): Promise<CrmBatchResult> {
  const jobId = String(job.id);
  const { pending, links, settings } = deps;
  const max = linkBatchOf(settings);
  const gathering = (await pending.outstanding()) > 0;
  const refs = await links.claim(jobId, max, settings.leaseMs, linkWindowOf(settings), gathering ? max : 0);
  const counts: CrmBatchResult = { stage: 'links', claimed: refs.length, mirrored: 0, failed: 0, retried: 0 };
  if (refs.length > 0) {
    const plans = await plansOf(refs, jobId, deps, links, counts);
    const byId = new Map(refs.map((r) => [r.entryId, r.objectId]));
    const items = plans.map((plan) => ({ plan, objectId: byId.get(plan.entryId) as string }));
    await deps.crm.associateBatch(items, `links-${jobId}`, firstFree(deps.gate));
    await links.finish(
      jobId,
      'ack',
      items.map((i) => i.plan.entryId),
    );
    counts.mirrored = items.length;
  }
  const oldest = await links.oldestWaiting();
  if (oldest !== null) {
    // The follow-up of this job (one per job, so a retry adds none): now when a full batch was taken or nothing
    // is left to gather for, else when the oldest waiting activity has waited the link window.
    const stillGathering = (await pending.outstanding()) > 0;
    const delay = refs.length >= max || !stillGathering ? 0 : Math.max(0, oldest + linkWindowOf(settings) + 1 - Date.now());
    await deps.queue.add(
      'crm-batch',
      { window: 0, stage: 'links' },
      { ...jobOptions('crm-batch', jobIdFor('crm-batch', `links-next-${jobId}`)), delay },
    );
  }
  return counts;
}

/** Each ref's plan rebuilt from the journal; a ref that can no longer be planned is given up on the record. */
async function plansOf<R extends PlanRef>(
  refs: readonly R[],
  jobId: string,
  deps: CrmBatchDeps,
  store: PendingPlans<R>,
  counts: CrmBatchResult,
): Promise<MirrorPlan[]> {
  const plans: MirrorPlan[] = [];
  for (const ref of refs) {
    try {
      plans.push(await deps.planFor(ref));
    } catch (err) {
      if (!(err instanceof PermanentJobError)) throw err;
      await recordGivenUp(deps.journal, jobId, ref, err.message);
      await store.finish(jobId, 'ack', [ref.entryId]);
      counts.failed++;
    }
  }
  return plans;
}

function pick(ref: PlanRef): PlanRef {
  return {
    entryId: ref.entryId,
    entrySeq: ref.entrySeq,
    correlationId: ref.correlationId,
    decisionEntryId: ref.decisionEntryId,
    decisionSeq: ref.decisionSeq,
    objectType: ref.objectType,
  };
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

/** Keeps batches coming while plans or associations are outstanding (a lost job, an expired lease): a cheap tick per worker process. */
export function startBatchSweeper(
  pending: PendingPlans,
  links: PendingPlans<LinkRef>,
  queue: Queue,
  windowMs: number,
  linkWindowMs: number,
  everyMs: number,
  log: Logger,
): { stop(): void } {
  const timer = setInterval(() => {
    Promise.all([pending.outstanding(), links.outstanding()])
      .then(async ([plans, waitingLinks]) => {
        if (plans > 0) await scheduleBatch(queue, windowMs);
        if (waitingLinks > 0) await scheduleLinks(queue, windowMs, Date.now() + (plans > 0 ? linkWindowMs : 0));
      })
      .catch((err: unknown) => log.warn({ error: (err as Error).message }, 'crm-batch sweep failed'));
  }, everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
