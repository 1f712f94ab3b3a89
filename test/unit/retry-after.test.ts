/** A provider's Retry-After, read as RFC 9110 writes it and followed by the notify queue's backoff. */
import { describe, expect, it } from 'vitest';
import { retryAfterSeconds } from '../../connectors/notify/http.ts';
import { MAX_RETRY_AFTER_MS, retryAfterBackoff } from '../../src/pipeline/job-catalog.ts';
import { RateLimitError } from '../../src/pipeline/errors/rate-limit.error.ts';

describe('Retry-After', () => {
  const now = Date.parse('2026-12-03T12:00:00Z');
  it('reads delay-seconds and HTTP-dates, and nothing else', () => {
    expect(retryAfterSeconds('120', now)).toBe(120);
    expect(retryAfterSeconds(' 0 ', now)).toBe(0);
    expect(retryAfterSeconds('Thu, 03 Dec 2026 12:01:30 GMT', now)).toBe(90);
    expect(retryAfterSeconds('Thu, 03 Dec 2026 11:00:00 GMT', now)).toBe(0); // in the past: now
    for (const bad of [null, '', '-5', '1.5', 'soon', '12abc']) expect(retryAfterSeconds(bad, now), String(bad)).toBeUndefined();
  });

  it('the backoff waits for the later of its own exponential delay and the Retry-After, capped at an hour', () => {
    const job = { opts: { backoff: { delay: 2000 } } };
    for (let i = 0; i < 50; i++) {
      const plain = retryAfterBackoff(1, 'x', new Error('x'), job);
      expect(plain).toBeGreaterThanOrEqual(1000);
      expect(plain).toBeLessThanOrEqual(2000);
      expect(retryAfterBackoff(3, 'x', new Error('x'), job)).toBeLessThanOrEqual(8000);
    }
    expect(retryAfterBackoff(1, 'x', new RateLimitError('slack refused', { provider: 'slack', retryAfterMs: 6000 }), job)).toBe(6000);
    // A Retry-After shorter than the backoff does not shorten it.
    expect(
      retryAfterBackoff(4, 'x', new RateLimitError('slack refused', { provider: 'slack', retryAfterMs: 10 }), job),
    ).toBeGreaterThanOrEqual(8000);
    expect(retryAfterBackoff(1, 'x', new RateLimitError('slack refused', { provider: 'slack', retryAfterMs: 86_400_000 }), job)).toBe(
      MAX_RETRY_AFTER_MS,
    );
  });
});
