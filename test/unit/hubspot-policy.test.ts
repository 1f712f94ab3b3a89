import { describe, expect, it } from 'vitest';
import { dailyBudgetFrom, isTimeZone, msUntilDailyReset, nextMidnight } from '../../connectors/hubspot/hubspot.http.ts';
import { recordingUrl } from '../../src/pipeline/mirror-plan.ts';
import { sameValue } from '../../src/pipeline/crm-drift.ts';
import type { Interaction } from '../../src/pipeline/interaction.ts';

const call = (url: unknown): Interaction =>
  ({
    channel: 'call',
    source: 'twilio',
    sourceId: 'CA1',
    direction: 'inbound',
    occurredAt: '2026-11-27T10:00:00Z',
    participants: [],
    metadata: { recordingUrl: url },
  }) as Interaction;

describe('HubSpot call recordings', () => {
  it('links only HTTPS mp3/wav recordings (Twilio ones as their mp3)', () => {
    expect(recordingUrl(call('https://rec.example/a/b.mp3'))).toBe('https://rec.example/a/b.mp3');
    expect(recordingUrl(call('https://rec.example/a/b.WAV'))).toBe('https://rec.example/a/b.WAV');
    expect(recordingUrl(call('http://rec.example/a/b.mp3'))).toBeNull();
    expect(recordingUrl(call('https://rec.example/a/b.ogg'))).toBeNull();
    expect(recordingUrl(call('not a url'))).toBeNull();
    expect(recordingUrl(call(42))).toBeNull();
    expect(recordingUrl(call('https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE0123456789abcdef0123456789abcdef'))).toBe(
      'https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE0123456789abcdef0123456789abcdef.mp3',
    );
  });
});

describe('HubSpot daily budget', () => {
  it('reads the daily limit and what is left from the rate-limit headers', () => {
    expect(
      dailyBudgetFrom({ 'x-hubspot-ratelimit-daily': '250000', 'x-hubspot-ratelimit-daily-remaining': '1200' }, '2026-11-27T15:30:00.000Z'),
    ).toEqual({
      limit: 250000,
      remaining: 1200,
      observedAt: '2026-11-27T15:30:00.000Z',
      // The budget belongs to that day: it says nothing once the day has reset.
      resetsAt: '2026-11-28T00:00:00.000Z',
    });
    expect(dailyBudgetFrom({ 'x-hubspot-ratelimit-max': '100' }, 't')).toBeNull();
  });
  it('waits until the next midnight in the account time zone (UTC by default), across daylight-saving changes', () => {
    expect(msUntilDailyReset(new Date('2026-11-27T23:00:00Z'))).toBe(3_600_000);
    // New York is UTC-5 in November: midnight there is 05:00 UTC.
    expect(msUntilDailyReset(new Date('2026-11-27T23:00:00Z'), 'America/New_York')).toBe(6 * 3_600_000);
    expect(nextMidnight(new Date('2026-11-27T23:00:00Z'), 'Europe/Berlin').toISOString()).toBe('2026-11-28T23:00:00.000Z');
    expect(nextMidnight(new Date('2026-07-01T12:00:00Z'), 'Europe/Berlin').toISOString()).toBe('2026-07-01T22:00:00.000Z');
    // The night the clocks go back in New York (1 Nov 2026), the next midnight is at UTC-5 again.
    expect(nextMidnight(new Date('2026-11-01T12:00:00Z'), 'America/New_York').toISOString()).toBe('2026-11-02T05:00:00.000Z');
    expect(nextMidnight(new Date('2026-10-31T12:00:00Z'), 'America/New_York').toISOString()).toBe('2026-11-01T04:00:00.000Z');
    expect(dailyBudgetFrom({ 'x-hubspot-ratelimit-daily-remaining': '3' }, '2026-11-27T15:30:00.000Z', 'Asia/Tokyo')?.resetsAt).toBe(
      '2026-11-27T15:00:00.000Z'.replace('27T15', '28T15'),
    );
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(isTimeZone('Mars/Olympus')).toBe(false);
  });
});

describe('drift comparison', () => {
  it('compares timestamps as instants and text without trailing blanks', () => {
    expect(sameValue('hs_timestamp', '2026-11-20T10:00:00.000Z', '2026-11-20T10:00:00Z')).toBe(true);
    expect(sameValue('hs_timestamp', '2026-11-20T10:00:00.000Z', String(Date.parse('2026-11-20T10:00:00Z')))).toBe(true);
    expect(sameValue('hs_timestamp', '2026-11-20T10:00:00.000Z', '2026-11-20T10:00:01Z')).toBe(false);
    expect(sameValue('hs_note_body', 'a\n', 'a')).toBe(true);
    expect(sameValue('hs_note_body', 'a', 'b')).toBe(false);
    expect(sameValue('hs_note_body', 'a', null)).toBe(false);
  });
});
