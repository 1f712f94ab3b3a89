/**
 * The Gmail commands as an operator runs them (real processes): sync, status, reconcile, and a revoked grant.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.ts';
import { runCli, runCliSync } from '../helpers/cli.ts';
import { REDIS_URL, obliterate, uniquePrefix } from '../helpers/pipeline.ts';
import { startFakeGmail, type FakeGmail } from '../fakes/gmail.fake.ts';
import { GmailInboxStore } from '../../connectors/gmail/inbox-store.ts';
import { loadMasterKey } from '../../src/journal/master-key.ts';

const MAILBOX = 'sales@northwind-analytics.example';
let tmp: { dir: string; cleanup: () => void };
let fake: FakeGmail;
let prefix: string;
let env: NodeJS.ProcessEnv;

beforeEach(async () => {
  tmp = tempDir('aj-gmail-cli-');
  fake = await startFakeGmail({ mailbox: MAILBOX });
  prefix = uniquePrefix();
  env = {
    ...process.env,
    JOURNAL_PATH: join(tmp.dir, 'journal.sqlite'),
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'warn',
    GOOGLE_CLIENT_ID: fake.clientId,
    GOOGLE_CLIENT_SECRET: fake.clientSecret,
    GOOGLE_TOKEN_URL: fake.tokenUrl,
    GMAIL_API_ROOT: fake.rootUrl,
    JOURNAL_APPEND_TOKEN: '',
    JOURNAL_READ_TOKEN: '',
  };
  // As the OAuth callback would have left it.
  await new GmailInboxStore(
    join(tmp.dir, 'state', 'gmail-inboxes.enc'),
    loadMasterKey({ masterKeyFile: join(tmp.dir, 'secrets', 'master.key') }, { create: true }).key,
  ).connect(MAILBOX, fake.refreshToken, ['https://www.googleapis.com/auth/gmail.readonly']);
});
afterEach(async () => {
  await fake.close();
  await obliterate(prefix);
  tmp.cleanup();
});

/** Runs the CLI without blocking this process: the Gmail fake answers from here. */
async function cli(...args: string[]): Promise<{ status: number | null; out: Record<string, unknown>; stderr: string }> {
  const { status, stdout, stderr } = await runCli([...args, '--json'], { env });
  let out: Record<string, unknown> = {};
  try {
    out = JSON.parse(stdout) as Record<string, unknown>;
  } catch {
    // not JSON: left empty, the status tells
  }
  return { status, out, stderr };
}

describe('Gmail commands', () => {
  it('syncs, reports status and coverage, and shows a revoked inbox as needing consent', async () => {
    fake.burst(6);
    const first = await cli('sync', 'gmail', MAILBOX);
    expect(first.status).toBe(0);
    expect(first.out).toMatchObject({ mode: 'backfill', accepted: 6 });
    fake.burst(2);
    expect((await cli('sync', 'gmail', MAILBOX)).out).toMatchObject({ mode: 'incremental', accepted: 2 });
    const status = await cli('status');
    expect(status.status).toBe(0);
    expect(status.out).toMatchObject({ inboxes: [{ mailbox: MAILBOX, status: 'ok' }] });
    const coverage = await cli('reconcile', 'gmail', MAILBOX, '--report-only');
    expect(coverage.status).toBe(0);
    expect(coverage.out).toMatchObject({ providerMessages: 8, journaled: 8, coveragePercent: 100 });

    fake.revoke();
    const revoked = await cli('sync', 'gmail', MAILBOX);
    expect(revoked.status).toBe(1);
    expect(revoked.out).toMatchObject({ mode: 'needs-consent' });
    const after = await cli('status');
    expect(after.status).toBe(1);
    expect(after.out).toMatchObject({ inboxes: [{ mailbox: MAILBOX, status: 'needs_consent' }] });
    expect((await cli('sync', 'gmail', 'nobody@example.test')).status).toBe(2);
    expect(runCliSync(['verify'], { env }).status).toBe(0);
  });
});
