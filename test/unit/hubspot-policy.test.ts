import { describe, expect, it } from 'vitest';
import { dailyBudgetFrom, msUntilDailyReset } from '../../connectors/hubspot/hubspot.http.ts';
import { recordingUrl } from '../../src/pipeline/mirror-plan.ts';
import { sameValue } from '../../src/pipeline/crm-drift.ts';
import type { Interaction } from '../../src/pipeline/interaction.ts';

const call = (url: unknown): Interaction =>
  ({ channel: 'call', source: 'twilio', sourceId: 'CA1', direction: 'inbound', occurredAt: '2026-11-27T10:00:00Z', participants: [], metadata: { recordingUrl: url } }) as Interaction;

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
    expect(dailyBudgetFrom({ 'x-hubspot-ratelimit-daily': '250000', 'x-hubspot-ratelimit-daily-remaining': '1200' }, '2026-11-27T15:30:00.000Z')).toEqual({
      limit: 250000,
      remaining: 1200,
      observedAt: '2026-11-27T15:30:00.000Z',
      // The budget belongs to that day: it says nothing once the day has reset.
      resetsAt: '2026-11-28T00:00:00.000Z',
    });
    expect(dailyBudgetFrom({ 'x-hubspot-ratelimit-max': '100' }, 't')).toBeNull();
  });
  it('waits until the next midnight (UTC by default, or the account offset)', () => {
    expect(msUntilDailyReset(new Date('2026-11-27T23:00:00Z'))).toBe(3_600_000);
    expect(msUntilDailyReset(new Date('2026-11-27T23:00:00Z'), -300)).toBe(6 * 3_600_000);
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
