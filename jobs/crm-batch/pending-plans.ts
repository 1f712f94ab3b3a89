/**
 * The crm-batch queue's pending store in Redis: the plans waiting for their upsert and the written activities
 * waiting for their associations, ids only, with the leases that give a killed worker's claims back. Each step
 * that must be atomic across workers is one Lua script (CLAIM, RENEW, FINISH).
 */
import type { Redis } from 'ioredis';
import type { MirrorPlan } from '../../src/pipeline/ports.ts';

const TYPES = ['emails', 'calls', 'notes'] as const;
export type PlanRef = Pick<MirrorPlan, 'entryId' | 'entrySeq' | 'correlationId' | 'decisionEntryId' | 'decisionSeq' | 'objectType'>;
/** An activity HubSpot has, waiting for its associations: the plan's ids and the activity's object id. */
export type LinkRef = PlanRef & { readonly objectId: string; readonly lane: 'links' };

const keys = (prefix: string, ns = 'crm') => ({
  pending: (type: string) => `${prefix}:${ns}:pending:${type}`,
  refs: `${prefix}:${ns}:refs`,
  leases: `${prefix}:${ns}:leases`,
  owner: `${prefix}:${ns}:owner`,
  attempts: `${prefix}:${ns}:attempts`,
  last: `${prefix}:${ns}:last-submitted`,
  job: (jobId: string) => `${prefix}:${ns}:job:${jobId}`,
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
