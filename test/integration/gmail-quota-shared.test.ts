/**
 * The Gmail quota shared across processes: two pacers on two Redis connections (as two worker processes would
 * have) draw from one mailbox's bucket and together never get more than the budget. The clock is fixed by the
 * test, so the counts are exact and nothing depends on timing.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { REDIS_URL, obliterate, uniquePrefix } from '../helpers/pipeline.ts';
import { QuotaBucket, RedisQuotaBucket, type QuotaPacer } from '../../connectors/gmail/quota.ts';

const MAILBOX = 'sales@northwind-analytics.example';
const BUDGET = 600; // units per minute

class Waited extends Error {}
/** A sleep that ends the take: only immediate grants count. */
const refuse = (): Promise<void> => Promise.reject(new Waited());

let prefix: string;
let a: Redis;
let b: Redis;
let clock: number;

beforeEach(() => {
  prefix = uniquePrefix();
  a = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  b = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  clock = Date.UTC(2026, 10, 27, 3, 0, 0);
});
afterEach(async () => {
  a.disconnect();
  b.disconnect();
  await obliterate(prefix);
});

const pacer = (redis: Redis, account = MAILBOX): RedisQuotaBucket =>
  new RedisQuotaBucket({ redis, prefix, account, unitsPerMinute: BUDGET, now: () => clock, sleep: refuse });

/** Both pacers try `tries` takes of `units` each, concurrently; returns the units each was granted. */
async function race(p1: QuotaPacer, p2: QuotaPacer, tries: number, units: number): Promise<[number, number]> {
  const run = async (p: QuotaPacer): Promise<number> => {
    const results = await Promise.allSettled(Array.from({ length: tries }, () => p.take(units)));
    for (const r of results) if (r.status === 'rejected' && !(r.reason instanceof Waited)) throw r.reason;
    return results.filter((r) => r.status === 'fulfilled').length * units;
  };
  const [x, y] = await Promise.all([run(p1), run(p2)]);
  return [x, y];
}

describe('the Gmail quota shared in Redis', () => {
  it('grants two processes together no more than the budget, and refills for both at the configured rate', async () => {
    const p1 = pacer(a);
    const p2 = pacer(b);
    const [x, y] = await race(p1, p2, 100, 5); // 1,000 units asked for, 600 in the bucket
    expect(x + y).toBe(BUDGET);
    expect(x).toBeGreaterThan(0);
    expect(y).toBeGreaterThan(0);
    clock += 30_000; // half a minute refills half the budget
    const [x2, y2] = await race(p1, p2, 100, 5);
    expect(x2 + y2).toBe(BUDGET / 2);
    // Per-process buckets, for contrast, would have granted each process the whole budget.
    const local = await race(new QuotaBucket(BUDGET, () => clock, refuse), new QuotaBucket(BUDGET, () => clock, refuse), 200, 5);
    expect(local[0] + local[1]).toBe(2 * BUDGET);
  });

  it('keeps mailboxes apart, and a rate-limit pause stops every process until it ends', async () => {
    const other = pacer(b, 'support@northwind-analytics.example');
    const p1 = pacer(a);
    const p2 = pacer(b);
    expect(await race(p1, other, 200, 5)).toEqual([BUDGET, BUDGET]);
    clock += 60_000; // full again
    await p1.pause(10_000); // a 429 seen by process 1 ...
    expect(await race(p1, p2, 10, 1)).toEqual([0, 0]); // ... holds process 2 off too
    clock += 10_000; // the pause ends; it gave nothing back for its duration
    const [x, y] = await race(p1, p2, 10, 1);
    expect(x + y).toBe(0);
    clock += 6_000; // 6 s = 60 units
    const [x2, y2] = await race(p1, p2, 100, 1);
    expect(x2 + y2).toBe(60);
    // Only a hash of the mailbox reaches Redis.
    const keys = await a.keys(`${prefix}:quota:*`);
    expect(keys).toHaveLength(2);
    for (const k of keys) expect(k).not.toContain('@');
  });

  it('refuses a take that the bucket could never grant', async () => {
    await expect(pacer(a).take(BUDGET + 1)).rejects.toThrow(RangeError);
  });
});
