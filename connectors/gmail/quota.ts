/**
 * Gmail's per-user quota in units (messages.get 5, messages.list 5, history.list 2, getProfile 1), spent from a
 * token bucket that refills continuously, so a backfill paces itself instead of running into 429s.
 *
 * Two buckets with one contract (`QuotaPacer`): `QuotaBucket` paces one process; `RedisQuotaBucket` is one
 * bucket per mailbox in Redis shared by every worker process (Gmail's limit is per user, not per process).
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

export const GMAIL_UNITS = { get: 5, list: 5, history: 2, profile: 1 } as const;

export interface QuotaPacer {
  /** Waits until `units` can be spent, then spends them. */
  take(units: number): Promise<void>;
  /** Gmail said slow down (429 / rate-limit 403): nothing is granted for `ms`, to anyone sharing the bucket. */
  pause(ms: number): Promise<void>;
}

type Sleep = (ms: number) => Promise<void>;
const realSleep: Sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class QuotaBucket implements QuotaPacer {
  private tokens: number;
  private last: number;
  private blockedUntil = 0;
  constructor(
    private readonly unitsPerMinute: number,
    private readonly now: () => number = Date.now,
    private readonly sleep: Sleep = realSleep,
  ) {
    this.tokens = unitsPerMinute;
    this.last = now();
  }

  async take(units: number): Promise<void> {
    if (units > this.unitsPerMinute)
      throw new RangeError(`${units} units can never be granted by a bucket of ${this.unitsPerMinute} per minute`);
    for (;;) {
      const t = this.now();
      if (t < this.blockedUntil) {
        await this.sleep(this.blockedUntil - t);
        continue;
      }
      this.tokens = Math.min(this.unitsPerMinute, this.tokens + (Math.max(0, t - this.last) * this.unitsPerMinute) / 60_000);
      this.last = Math.max(this.last, t);
      if (this.tokens >= units) {
        this.tokens -= units;
        return;
      }
      await this.sleep(Math.ceil(((units - this.tokens) * 60_000) / this.unitsPerMinute));
    }
  }

  pause(ms: number): Promise<void> {
    const t = this.now();
    this.blockedUntil = Math.max(this.blockedUntil, t + ms);
    this.tokens = 0;
    this.last = this.blockedUntil;
    return Promise.resolve();
  }
}

/**
 * One bucket in a Redis hash: the refill, the check and the spend happen in one Lua script, so any number of
 * processes drawing from it never grant more than the budget. The clock is Redis's own (TIME), so processes on
 * machines whose clocks disagree still share one timeline. Returns 0 when granted, else the ms to wait.
 *
 * KEYS[1] the bucket; ARGV: capacity (units per minute), units wanted, pause ms (> 0: pause instead of
 * taking), now in ms (empty: Redis TIME; tests pass a clock).
 */
const SCRIPT = `
local now = tonumber(ARGV[4])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local cap = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local pause = tonumber(ARGV[3])
local s = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(s[1]) or cap
local ts = tonumber(s[2]) or now
if now > ts then
  tokens = math.min(cap, tokens + (now - ts) * cap / 60000)
  ts = now
end
local wait = 0
if pause > 0 then
  tokens = 0
  ts = math.max(ts, now + pause)
elseif ts > now then
  wait = ts - now
elseif tokens >= want then
  tokens = tokens - want
else
  wait = math.ceil((want - tokens) * 60000 / cap)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], math.max(ts - now, 0) + 120000)
return wait
`;

export interface RedisQuotaBucketOptions {
  readonly redis: Redis;
  /** The queue prefix: the bucket lives under it, so deployments and tests sharing a Redis stay apart. */
  readonly prefix: string;
  /** Whose quota (the mailbox); only its hash reaches Redis, which keeps keys in plain text. */
  readonly account: string;
  readonly unitsPerMinute: number;
  /** Tests: a fixed clock instead of Redis's. */
  readonly now?: () => number;
  readonly sleep?: Sleep;
}

export class RedisQuotaBucket implements QuotaPacer {
  readonly key: string;
  private readonly sleep: Sleep;
  constructor(private readonly o: RedisQuotaBucketOptions) {
    this.key = `${o.prefix}:quota:gmail:${createHash('sha256').update(o.account.toLowerCase()).digest('hex').slice(0, 32)}`;
    this.sleep = o.sleep ?? realSleep;
  }

  async take(units: number): Promise<void> {
    if (units > this.o.unitsPerMinute)
      throw new RangeError(`${units} units can never be granted by a bucket of ${this.o.unitsPerMinute} per minute`);
    for (;;) {
      const wait = await this.run(units, 0);
      if (wait <= 0) return;
      await this.sleep(wait);
    }
  }

  async pause(ms: number): Promise<void> {
    await this.run(0, Math.max(1, Math.ceil(ms)));
  }

  private async run(units: number, pauseMs: number): Promise<number> {
    const now = this.o.now ? String(this.o.now()) : '';
    const reply = await this.o.redis.eval(SCRIPT, 1, this.key, String(this.o.unitsPerMinute), String(units), String(pauseMs), now);
    return Number(reply);
  }
}
