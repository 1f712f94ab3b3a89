/**
 * GmailSource against the fake Gmail API through the real googleapis client: not-found, auth, rate-limit and
 * server errors mapped to our classes; direction and threading.
 */
import { google } from 'googleapis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GmailAuthError } from '../../connectors/gmail/errors/gmail-auth.error.ts';
import { GmailRateLimitError } from '../../connectors/gmail/errors/gmail-rate-limit.error.ts';
import { GmailUnavailableError } from '../../connectors/gmail/errors/gmail-unavailable.error.ts';
import { GmailSource, listMessageIds } from '../../connectors/gmail/gmail.source.ts';
import type { GmailOAuth2Client } from '../../connectors/gmail/gmail.source.ts';
import { startFakeGmail } from '../fakes/gmail.fake.ts';
import type { FakeGmail } from '../fakes/gmail.fake.ts';

const MAILBOX = 'sales@ourco.test';

function message(headers: Record<string, string>, body = 'Hello'): Buffer {
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
  return Buffer.from(`${lines.join('\r\n')}\r\nDate: Tue, 02 Jan 2024 10:00:00 +0000\r\n\r\n${body}\r\n`);
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('GmailSource', () => {
  let fake: FakeGmail;
  let source: GmailSource;
  let auth: GmailOAuth2Client;

  beforeEach(async () => {
    fake = await startFakeGmail({ mailbox: MAILBOX });
    // forceRefreshOnFailure: on a 401 the client refreshes once even before its token's expiry (as after a revocation).
    auth = new google.auth.OAuth2({
      clientId: fake.clientId,
      clientSecret: fake.clientSecret,
      endpoints: { oauth2TokenUrl: fake.tokenUrl },
      forceRefreshOnFailure: true,
    });
    auth.setCredentials({ refresh_token: fake.refreshToken });
    source = new GmailSource({ mailbox: MAILBOX, auth, rootUrl: fake.rootUrl });
  });
  afterEach(async () => {
    await fake.close();
  });

  it('returns null for a message Gmail does not have', async () => {
    expect(await source.fetch('18cdeadbeef')).toBeNull();
    expect(fake.requests.at(-1)).toMatchObject({ status: 404 });
  });

  it('maps a revoked grant to GmailAuthError (permanent)', async () => {
    const id = fake.addMessage(MAILBOX, { raw: message({ From: 'a@customer.test', To: MAILBOX, Subject: 'x' }) });
    expect(await source.fetch(id)).not.toBeNull();
    fake.revoke();
    const err = await rejection(source.fetch(id));
    expect(err).toBeInstanceOf(GmailAuthError);
    expect(err).toMatchObject({ name: 'GmailAuthError', code: 'GMAIL_AUTH', permanent: true });
    expect((err as GmailAuthError).cause).toBeDefined();
    // The API answered 401, the client tried a refresh, the fake said invalid_grant.
    expect(fake.requests.slice(-2).map((r) => [r.path, r.status])).toEqual([
      [`/gmail/v1/users/me/messages/${id}`, 401],
      ['/token', 400],
    ]);
  });

  it('maps invalid_grant on the first refresh to GmailAuthError', async () => {
    fake.revoke();
    const err = await rejection(source.fetch('18c0000000001'));
    expect(err).toBeInstanceOf(GmailAuthError);
    expect(fake.requests.map((r) => [r.path, r.status])).toEqual([['/token', 400]]);
  });

  it('maps 429 to GmailRateLimitError with retryAfterMs, without retrying inside googleapis', async () => {
    const id = fake.addMessage(MAILBOX, { raw: message({ From: 'a@customer.test', To: MAILBOX, Subject: 'x' }) });
    fake.rateLimit(1, 7);
    const err = await rejection(source.fetch(id));
    expect(err).toBeInstanceOf(GmailRateLimitError);
    expect(err).toMatchObject({
      name: 'GmailRateLimitError',
      code: 'GMAIL_RATE_LIMIT',
      status: 429,
      reason: 'rateLimitExceeded',
      retryAfterMs: 7000,
    });
    expect(fake.requests.filter((r) => r.status === 429)).toHaveLength(1);
    // The limit is over: the next call succeeds.
    expect(await source.fetch(id)).not.toBeNull();
  });

  it('maps a 500 to GmailUnavailableError (retryable)', async () => {
    const id = fake.addMessage(MAILBOX, { raw: message({ From: 'a@customer.test', To: MAILBOX, Subject: 'x' }) });
    fake.serverError(1, 500);
    const err = await rejection(source.fetch(id));
    expect(err).toBeInstanceOf(GmailUnavailableError);
    expect(err).toMatchObject({ name: 'GmailUnavailableError', code: 'GMAIL_UNAVAILABLE', status: 500 });
  });

  it('marks a message from the mailbox as outbound, and one from a customer as inbound', async () => {
    const out = fake.addMessage(MAILBOX, {
      raw: message({ From: `Sales <${MAILBOX.toUpperCase()}>`, To: 'buyer@customer.test', Subject: 'Offer' }),
      labelIds: ['SENT'],
    });
    const inb = fake.addMessage(MAILBOX, { raw: message({ From: 'buyer@customer.test', To: MAILBOX, Subject: 'Question' }) });
    expect(await source.fetch(out)).toMatchObject({ direction: 'outbound', subject: 'Offer' });
    expect(await source.fetch(inb)).toMatchObject({ direction: 'inbound', subject: 'Question' });
  });

  it('the fake serves profile, history (404 once expired) and labels to the real client', async () => {
    const gmail = google.gmail({ version: 'v1', auth, rootUrl: fake.rootUrl });
    const start = (await gmail.users.getProfile({ userId: 'me' })).data.historyId ?? '';
    const ids = fake.burst(3);
    const history = await gmail.users.history.list({ userId: 'me', startHistoryId: start, historyTypes: ['messageAdded'] });
    expect(history.data.history?.flatMap((h) => h.messagesAdded?.map((m) => m.message?.id) ?? [])).toEqual(ids);
    expect((await gmail.users.getProfile({ userId: 'me' })).data).toMatchObject({ emailAddress: MAILBOX, messagesTotal: 3 });
    expect((await gmail.users.labels.list({ userId: 'me' })).data.labels?.map((l) => l.id)).toContain('INBOX');
    fake.expireHistoryBefore(Number(start) + 1);
    const err = await rejection(gmail.users.history.list({ userId: 'me', startHistoryId: start }, { retry: false }));
    expect(err).toMatchObject({ status: 404 });
  });

  it('puts a reply in its thread', async () => {
    const first = fake.addMessage(MAILBOX, {
      raw: message({ From: 'buyer@customer.test', To: MAILBOX, Subject: 'Pricing', 'Message-ID': '<p1@customer.test>' }),
    });
    const reply = fake.addMessage(MAILBOX, {
      threadId: first,
      labelIds: ['SENT'],
      raw: message({
        From: MAILBOX,
        To: 'buyer@customer.test',
        Subject: 'Re: Pricing',
        'Message-ID': '<r1@ourco.test>',
        'In-Reply-To': '<p1@customer.test>',
        References: '<p1@customer.test>',
      }),
    });
    const a = await source.fetch(first);
    const b = await source.fetch(reply);
    expect(a?.threadId).toBe(first);
    expect(b?.threadId).toBe(a?.threadId);
    expect(b?.metadata).toMatchObject({ inReplyTo: '<p1@customer.test>', messageIdHeader: '<r1@ourco.test>' });
    const page = await listMessageIds({ auth, rootUrl: fake.rootUrl }, { q: 'subject:pricing' });
    expect(page.ids).toEqual([
      { id: reply, threadId: first },
      { id: first, threadId: first },
    ]);
  });

  it('in metadata-only mode takes headers and nothing of the body or attachments', async () => {
    const id = fake.addMessage(MAILBOX, {
      raw: message({ From: 'Dana <dana@customer.test>', To: MAILBOX, Subject: 'Quote for 40 seats' }, 'CONFIDENTIAL-BODY-TEXT'),
    });
    const headersOnly = new GmailSource({ mailbox: MAILBOX, auth, rootUrl: fake.rootUrl, metadataOnly: true });
    const ix = await headersOnly.fetch(id);
    expect(ix?.subject).toBe('Quote for 40 seats');
    expect(ix?.participants.map((p) => p.address)).toEqual(['dana@customer.test', MAILBOX]);
    expect(ix?.direction).toBe('inbound');
    expect(ix?.metadata?.privacyMode).toBe('metadata-only');
    expect(JSON.stringify(ix)).not.toContain('CONFIDENTIAL-BODY-TEXT');
    expect(fake.requests.at(-1)?.query.format).toBe('metadata');
  });
});
