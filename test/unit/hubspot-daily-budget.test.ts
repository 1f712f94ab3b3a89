/** HubSpot's daily budget as the adapter tracks it, on a clock the test moves. */
import { describe, expect, it } from 'vitest';
import { DailyBudgetGuard } from '../../connectors/hubspot/daily-budget.ts';
import { nextMidnight } from '../../connectors/hubspot/hubspot.http.ts';
import { RateLimitError } from '../../src/pipeline/errors/rate-limit.error.ts';

const headers = (remaining: number): Record<string, string> => ({
  'x-hubspot-ratelimit-daily': '250000',
  'x-hubspot-ratelimit-daily-remaining': String(remaining),
});

describe('the daily budget', () => {
  it('stops writes when a batch would eat into the reserve, until the day the budget belongs to ends', () => {
    let clock = Date.parse('2026-11-20T22:00:00.000Z');
    const guard = new DailyBudgetGuard({ reserve: 500, timeZone: 'UTC', now: () => clock });
    guard.check(100); // nothing known yet: no limit
    guard.observe(headers(506));
    guard.check(100); // 506 left: one batch of 100 (6 calls at most) stays above the reserve
    guard.observe(headers(505));
    let err: unknown;
    try {
      guard.check(100);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RateLimitError);
    expect(err).toMatchObject({ provider: 'hubspot', limit: 'daily', retryAfterMs: 2 * 3_600_000 });
    // After midnight (UTC) the budget says nothing about the new day.
    clock = Date.parse('2026-11-21T00:00:00.000Z');
    guard.check(100);
    expect(guard.current().remaining).toBeNull();
  });

  it('a 429 DAILY spends the budget until the reset, on the record with its window', () => {
    let clock = Date.parse('2026-11-20T10:00:00.000Z');
    const guard = new DailyBudgetGuard({ reserve: 500, timeZone: 'America/New_York', now: () => clock });
    guard.observe(headers(10_000));
    const reset = guard.msUntilReset();
    expect(reset).toBe(nextMidnight(new Date(clock), 'America/New_York').getTime() - clock);
    const { health, until } = guard.pauseRecord(reset, 'HubSpot answered 429 DAILY without Retry-After');
    expect(health).toMatchObject({ kind: 'connector.health', idempotencyKey: `crm/health/daily/2026-11-20/${until}` });
    expect(health.payload).toMatchObject({ status: 'degraded', windowStart: '2026-11-20T10:00:00.000Z', windowEnd: until });
    const err = guard.spend(until, reset);
    expect(err.retryAfterMs).toBe(reset);
    expect(() => guard.check(1)).toThrow(RateLimitError);
    clock += reset;
    guard.check(1);
  });
});
