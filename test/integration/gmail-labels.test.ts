/**
 * Label filters per inbox: two inboxes on the same Gmail fake with different settings take in different
 * messages; a change is journaled (state.changed, from → to); `gmail labels` shows and changes them; a filter
 * asked for at `connect gmail` is applied when the consent comes back.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.ts';
import { runCliSync } from '../helpers/cli.ts';
import { allEntries, inProcessPipeline, obliterate, REDIS_URL, type InProcessPipeline } from '../helpers/pipeline.ts';
import { AUTHORIZATION_CODE, startFakeGmail, type FakeGmail } from '../fakes/gmail.fake.ts';
import { GmailInboxStore } from '../../connectors/gmail/inbox-store.ts';
import type { GmailConnector } from '../../connectors/gmail/gmail.connector.ts';
import { loadMasterKey } from '../../src/journal/master-key.ts';

const SALES = 'sales@northwind-analytics.example';
const SUPPORT = 'support@northwind-analytics.example';
const SCOPES = ['https://www.googleapis.com/auth/gmail.readonly'];

let tmp: { dir: string; cleanup: () => void };
let fake: FakeGmail;
let p: InProcessPipeline;
let env: Record<string, string>;
let stopped: boolean;

beforeEach(async () => {
  tmp = tempDir('aj-gmail-labels-');
  fake = await startFakeGmail({ mailbox: SALES });
  env = {
    GOOGLE_CLIENT_ID: fake.clientId,
    GOOGLE_CLIENT_SECRET: fake.clientSecret,
    GOOGLE_TOKEN_URL: fake.tokenUrl,
    GMAIL_API_ROOT: fake.rootUrl,
  };
  p = await inProcessPipeline(tmp.dir, { queues: [] }, env);
  stopped = false;
});
afterEach(async () => {
  if (!stopped) await p.stop();
  await fake.close();
  tmp.cleanup();
});

function mail(box: string, tag: string, labelIds: string[]): string {
  const raw = Buffer.from(
    `From: Buyer <buyer-${tag}@customer.test>\r\nTo: ${box}\r\nSubject: ${tag}\r\nMessage-ID: <${tag}@customer.test>\r\nDate: ${new Date().toUTCString()}\r\n\r\nAbout ${tag}\r\n`,
  );
  return fake.addMessage(box, { raw, labelIds });
}

const received = (): string[] =>
  allEntries(p.path)
    .filter((e) => e.kind === 'interaction.received')
    .map((e) => (e.payload as { sourceId: string }).sourceId);

describe('label filters per inbox', () => {
  it('syncs two inboxes with different settings into different messages, and journals the change', async () => {
    const gmail = p.runtime.gmail as GmailConnector;
    await gmail.store.connect(SALES, fake.refreshToken, SCOPES);
    await gmail.store.connect(SUPPORT, fake.grant(SUPPORT), SCOPES);
    const sales = {
      inbox: mail(SALES, 's-inbox', ['INBOX']),
      promo: mail(SALES, 's-promo', ['INBOX', 'CATEGORY_PROMOTIONS']),
      spam: mail(SALES, 's-spam', ['SPAM']),
    };
    const support = {
      inbox: mail(SUPPORT, 'u-inbox', ['INBOX']),
      promo: mail(SUPPORT, 'u-promo', ['INBOX', 'CATEGORY_PROMOTIONS']),
      vip: mail(SUPPORT, 'u-vip', ['Label_VIP']),
    };

    // Support takes in only Label_VIP and INBOX, and leaves promotions out; sales keeps the defaults.
    const change = await gmail.setLabels(SUPPORT, { include: ['INBOX', 'Label_VIP'], exclude: ['SPAM', 'CATEGORY_PROMOTIONS'] });
    expect(change.changed).toBe(true);
    expect(gmail.labels(SALES)).toMatchObject({ source: 'default', include: [], exclude: ['SPAM', 'TRASH', 'DRAFT'] });

    const a = await gmail.sync(SALES);
    const b = await gmail.sync(SUPPORT);
    expect(a).toMatchObject({ accepted: 2, skippedByLabel: 1 });
    expect(b).toMatchObject({ accepted: 2, skippedByLabel: 1 });
    expect(new Set(received())).toEqual(new Set([sales.inbox, sales.promo, support.inbox, support.vip]));

    const changes = allEntries(p.path).filter((e) => e.kind === 'state.changed');
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({
      source: 'gmail',
      correlationId: `inbox/gmail/${SUPPORT}`,
      payload: {
        entity: `inbox/gmail/${SUPPORT}`,
        field: 'labels',
        from: { include: [], exclude: ['SPAM', 'TRASH', 'DRAFT'], source: 'default' },
        to: { include: ['INBOX', 'Label_VIP'], exclude: ['SPAM', 'CATEGORY_PROMOTIONS'], source: 'inbox' },
      },
    });
    // Setting the same again changes nothing and journals nothing.
    expect((await gmail.setLabels(SUPPORT, { include: ['INBOX', 'Label_VIP'] })).changed).toBe(false);
    expect(allEntries(p.path).filter((e) => e.kind === 'state.changed')).toHaveLength(1);
    void support.promo;
  });

  it('applies the labels asked for at connect when the consent comes back', async () => {
    const gmail = p.runtime.gmail as GmailConnector;
    const url = new URL(await gmail.consentUrl({ include: ['Label_VIP'], exclude: ['SPAM'] }));
    await gmail.completeConsent(AUTHORIZATION_CODE, url.searchParams.get('state') ?? '');
    expect(gmail.labels(SALES)).toEqual({ include: ['Label_VIP'], exclude: ['SPAM'], source: 'inbox' });
    const kinds = allEntries(p.path).map((e) => e.kind);
    expect(kinds.indexOf('inbox.connected')).toBeLessThan(kinds.indexOf('state.changed'));
    const vip = mail(SALES, 'vip', ['Label_VIP']);
    mail(SALES, 'plain', ['INBOX']);
    expect(await gmail.sync(SALES)).toMatchObject({ accepted: 1, skippedByLabel: 1 });
    expect(received()).toEqual([vip]);
  });
});

describe('activity-journal gmail labels', () => {
  it('prints the current settings, changes them (journaled) and goes back to the defaults', async () => {
    await p.stop(); // the CLI opens the journal itself
    stopped = true;
    const prefix = `${p.prefix}-cli`;
    await new GmailInboxStore(
      join(tmp.dir, 'state', 'gmail-inboxes.enc'),
      loadMasterKey({ masterKeyFile: join(tmp.dir, 'secrets', 'master.key') }, { create: true }).key,
    ).connect(SUPPORT, fake.grant(SUPPORT), SCOPES);
    const run = (...args: string[]): { status: number | null; out: Record<string, unknown>; stderr: string } => {
      const r = runCliSync([...args, '--json'], {
        env: {
          ...process.env,
          ...env,
          JOURNAL_PATH: join(tmp.dir, 'journal.sqlite'),
          REDIS_URL,
          QUEUE_PREFIX: prefix,
          LOG_LEVEL: 'warn',
          JOURNAL_APPEND_TOKEN: '',
          JOURNAL_READ_TOKEN: '',
        },
      });
      let out: Record<string, unknown> = {};
      try {
        out = JSON.parse(r.stdout) as Record<string, unknown>;
      } catch {
        // not JSON: the status tells
      }
      return { status: r.status, out, stderr: r.stderr };
    };
    try {
      expect(run('gmail', 'labels', SUPPORT).out).toMatchObject({ source: 'default', include: [], exclude: ['SPAM', 'TRASH', 'DRAFT'] });
      const set = run('gmail', 'labels', SUPPORT, '--include', 'INBOX, Label_VIP', '--exclude', '');
      expect(set.status).toBe(0);
      expect(set.out).toMatchObject({ changed: true, to: { include: ['INBOX', 'Label_VIP'], exclude: [], source: 'inbox' } });
      expect(run('gmail', 'labels', SUPPORT, '--defaults').out).toMatchObject({ changed: true, to: { source: 'default' } });
      expect(run('gmail', 'labels', SUPPORT, '--defaults', '--include', 'X').status).toBe(2);
      const changes = allEntries(join(tmp.dir, 'journal.sqlite'))
        .filter((e) => e.kind === 'state.changed')
        .map((e) => (e.payload as { to: { source: string } }).to.source);
      expect(changes).toEqual(['inbox', 'default']);
    } finally {
      await obliterate(prefix);
    }
  });
});
