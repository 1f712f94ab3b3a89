/**
 * Connecting an inbox end to end: the consent URL, Google's answer on our callback (code exchanged at the fake's
 * token endpoint), the inbox stored encrypted, inbox.connected journaled, then the sync job backfills through
 * the whole pipeline.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.ts';
import { allEntries, drained, inProcessPipeline, type InProcessPipeline } from '../helpers/pipeline.ts';
import { AUTHORIZATION_CODE, startFakeGmail, type FakeGmail } from '../fakes/gmail.fake.ts';
import { createWebServer } from '../../src/web/server.ts';
import type { GmailConnector } from '../../connectors/gmail/gmail.connector.ts';

const MAILBOX = 'sales@northwind-analytics.example';
let tmp: { dir: string; cleanup: () => void };
let fake: FakeGmail;
let p: InProcessPipeline;

beforeEach(async () => {
  tmp = tempDir('aj-gmail-connect-');
  fake = await startFakeGmail({ mailbox: MAILBOX });
  p = await inProcessPipeline(
    tmp.dir,
    {},
    {
      GOOGLE_CLIENT_ID: fake.clientId,
      GOOGLE_CLIENT_SECRET: fake.clientSecret,
      GOOGLE_TOKEN_URL: fake.tokenUrl,
      GMAIL_API_ROOT: fake.rootUrl,
      WEBHOOK_PUBLIC_URL: 'https://hooks.example.test',
    },
  );
});
afterEach(async () => {
  await p.stop();
  await fake.close();
  tmp.cleanup();
});

describe('connecting a Gmail inbox', () => {
  it('stores the grant encrypted, journals the connection and backfills the inbox through the pipeline', async () => {
    const ids = fake.burst(12);
    const gmail = p.runtime.gmail as GmailConnector;
    expect(gmail).not.toBeNull();
    const url = new URL(await gmail.consentUrl());
    expect(url.searchParams.get('scope')).toContain('gmail.readonly');
    expect(url.searchParams.get('access_type')).toBe('offline');
    expect(url.searchParams.get('redirect_uri')).toBe('https://hooks.example.test/oauth/gmail/callback');
    const state = url.searchParams.get('state') as string;

    const refused: number[] = [];
    const app = createWebServer({
      checks: [],

      gmailConsent: (code, s) => gmail.completeConsent(code, s),
      onConsentRefused: (status) => {
        refused.push(status);
        return Promise.resolve();
      },
    });
    const ok = await app.inject({
      method: 'GET',
      url: `/oauth/gmail/callback?code=${encodeURIComponent(AUTHORIZATION_CODE)}&state=${state}`,
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toContain(MAILBOX);
    // The state is single-use: the same answer again is refused.
    const replay = await app.inject({
      method: 'GET',
      url: `/oauth/gmail/callback?code=${encodeURIComponent(AUTHORIZATION_CODE)}&state=${state}`,
    });
    expect(replay.statusCode).toBe(400);
    const denied = await app.inject({ method: 'GET', url: '/oauth/gmail/callback?error=access_denied' });
    expect(denied.statusCode).toBe(400);
    expect(refused).toEqual([400, 400]); // each refusal is handed over to be journaled
    await app.close();

    await drained(p.prefix, 60_000);
    const entries = allEntries(p.path);
    const connected = entries.filter((e) => e.kind === 'inbox.connected');
    expect(connected).toHaveLength(1);
    const received = entries.filter((e) => e.kind === 'interaction.received').map((e) => (e.payload as { sourceId: string }).sourceId);
    expect(new Set(received)).toEqual(new Set(ids));
    expect(entries.filter((e) => e.kind === 'ai.decision')).toHaveLength(12);
    expect(entries.filter((e) => e.kind === 'connector.cursor_advanced').length).toBeGreaterThanOrEqual(1);
    expect(gmail.store.list()).toMatchObject([{ mailbox: MAILBOX, status: 'ok' }]);

    // The refresh token is in the state store, encrypted, and nowhere in the journal.
    const stateDir = join(tmp.dir, 'state');
    for (const f of readdirSync(stateDir)) expect(readFileSync(join(stateDir, f)).toString('latin1')).not.toContain(fake.refreshToken);
    expect(readFileSync(p.path).toString('latin1')).not.toContain(fake.refreshToken);
  });

  it('reconciles an inbox: coverage, missing ids and gap windows, then takes the missing in', async () => {
    const gmail = p.runtime.gmail as GmailConnector;
    fake.burst(4);
    const url = new URL(await gmail.consentUrl());
    const app = createWebServer({ checks: [], gmailConsent: (code, s) => gmail.completeConsent(code, s) });
    expect(
      (
        await app.inject({
          method: 'GET',
          url: `/oauth/gmail/callback?code=${encodeURIComponent(AUTHORIZATION_CODE)}&state=${url.searchParams.get('state') ?? ''}`,
        })
      ).statusCode,
    ).toBe(200);
    await app.close();
    await drained(p.prefix, 60_000);
    // Mail that arrived while nothing synced it (the schedule has not run yet).
    const late = fake.burst(3);
    const since = new Date(Date.now() - 86_400_000);
    const report = await gmail.reconcile(MAILBOX, since, true);
    expect(report).toMatchObject({ providerMessages: 7, journaled: 4, excludedByRule: 0, ingested: 0 });
    expect(new Set(report.missing)).toEqual(new Set(late));
    expect(report.coveragePercent).toBeCloseTo((4 / 7) * 100, 1);
    expect(report.gapWindows).toHaveLength(1);
    expect(report.gapWindows[0]?.messages).toBe(3);
    const fixed = await gmail.reconcile(MAILBOX, since, false);
    expect(fixed.ingested).toBe(3);
    const after = await gmail.reconcile(MAILBOX, since, true);
    expect(after).toMatchObject({ coveragePercent: 100, missing: [] });
    const received = allEntries(p.path).filter((e) => e.kind === 'interaction.received');
    expect(received).toHaveLength(7);
  });
});
