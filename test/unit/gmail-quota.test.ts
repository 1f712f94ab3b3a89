import { describe, expect, it } from 'vitest';
import { QuotaBucket } from '../../connectors/gmail/quota.ts';

describe('QuotaBucket', () => {
  it('spends a minute of units at once, then paces at the configured rate', async () => {
    let t = 0;
    const slept: number[] = [];
    const bucket = new QuotaBucket(
      600,
      () => t,
      (ms) => {
        slept.push(ms);
        t += ms;
        return Promise.resolve();
      },
    );
    for (let i = 0; i < 120; i++) await bucket.take(5); // 600 units: the full bucket, no waiting
    expect(slept).toEqual([]);
    for (let i = 0; i < 60; i++) await bucket.take(5); // 300 more: 600 units/min → about 30 s
    expect(t).toBeGreaterThanOrEqual(29_900);
    expect(t).toBeLessThanOrEqual(30_100);
  });

  it('after a rate-limit pause grants nothing until the pause is over, then refills from there', async () => {
    let t = 0;
    const bucket = new QuotaBucket(
      600,
      () => t,
      (ms) => {
        t += ms;
        return Promise.resolve();
      },
    );
    await bucket.pause(10_000);
    await bucket.take(5); // waits out the pause, then 0.5 s of refill for 5 units
    expect(t).toBeGreaterThanOrEqual(10_500);
    expect(t).toBeLessThanOrEqual(10_600);
  });
});
