/**
 * Inbox sync against the Gmail fake through the real googleapis client: backfill, bursts, a failure mid-batch,
 * an expired history id and a revoked grant. The journal is the judge: every message exactly once, every
 * cursor advance on the record, never past an uncommitted message.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { google } from 'googleapis';
import { tempDir } from '../helpers/tmp.ts';
import { allEntries, inProcessPipeline, type InProcessPipeline } from '../helpers/pipeline.ts';
import { startFakeGmail, type FakeGmail } from '../fakes/gmail.fake.ts';
import { syncInbox, type InboxCursor, type InboxStateStore } from '../../connectors/gmail/gmail.sync.ts';
import type { GmailOAuth2Client } from '../../connectors/gmail/gmail.source.ts';
import { GmailUnavailableError } from '../../connectors/gmail/errors/gmail-unavailable.error.ts';
import { JournalRequestError } from '../../src/journal/errors/journal-request.error.ts';
import type { JournalEntry } from '../../src/journal/entry.ts';

const MAILBOX = 'sales@northwind-analytics.example';

class MemoryState implements InboxStateStore {
  readonly map = new Map<string, InboxCursor>();
  get(mailbox: string): InboxCursor {
    return this.map.get(mailbox) ?? { historyId: null, status: 'ok', lastSyncAt: null };
  }
  save(mailbox: string, next: InboxCursor): Promise<void> {
    this.map.set(mailbox, next);
    return Promise.resolve();
  }
}

let tmp: { dir: string; cleanup: () => void };
let fake: FakeGmail;
let p: InProcessPipeline;
let auth: GmailOAuth2Client;
let state: MemoryState;

beforeEach(async () => {
  tmp = tempDir('aj-gmail-sync-');
  fake = await startFakeGmail({ mailbox: MAILBOX });
  p = await inProcessPipeline(tmp.dir, { queues: [] });
  auth = new google.auth.OAuth2({
    clientId: fake.clientId,
    clientSecret: fake.clientSecret,
    endpoints: { oauth2TokenUrl: fake.tokenUrl },
    forceRefreshOnFailure: true,
  });
  auth.setCredentials({ refresh_token: fake.refreshToken });
  state = new MemoryState();
});
afterEach(async () => {
  await p.stop();
  await fake.close();
  tmp.cleanup();
});

const sync = () =>
  syncInbox({ mailbox: MAILBOX, auth, rootUrl: fake.rootUrl, journal: p.journal, intake: (ix) => p.runtime.pipeline.intake(ix), state });
const kind = (k: string): JournalEntry[] => allEntries(p.path).filter((e) => e.kind === k);
const received = (): string[] => kind('interaction.received').map((e) => (e.payload as { sourceId: string }).sourceId);

describe('Gmail inbox sync', () => {
  it('backfills, then takes a burst of 500 messages in complete and once, with every cursor advance on the record', async () => {
    const first = fake.burst(20);
    const backfill = await sync();
    expect(backfill).toMatchObject({ mode: 'backfill', accepted: 20 });
    expect(new Set(received())).toEqual(new Set(first));
    const burst = fake.burst(500);
    const inc = await sync();
    expect(inc).toMatchObject({ mode: 'incremental', accepted: 500, duplicates: 0 });
    const ids = received();
    expect(ids).toHaveLength(520);
    expect(new Set(ids)).toEqual(new Set([...first, ...burst]));
    const advances = kind('connector.cursor_advanced').map((e) => e.payload as { from: string | null; to: string });
    expect(advances[0]?.from).toBeNull();
    for (let i = 1; i < advances.length; i++) expect(advances[i]?.from).toBe(advances[i - 1]?.to); // a chain, no jumps
    expect(state.get(MAILBOX).historyId).toBe(advances.at(-1)?.to);
  });

  it('leaves the cursor behind a failure mid-batch, and the retry completes the batch without duplicates', async () => {
    fake.burst(5);
    await sync();
    const before = state.get(MAILBOX).historyId;
    const burst = fake.burst(50);
    // Let a few messages through, then the API fails.
    let calls = 0;
    const intake = p.runtime.pipeline.intake.bind(p.runtime.pipeline);
    const failing = syncInbox({
      mailbox: MAILBOX,
      auth,
      rootUrl: fake.rootUrl,
      journal: p.journal,
      state,
      intake: async (ix) => {
        if (++calls === 20) fake.serverError(100, 503);
        return intake(ix);
      },
    });
    await expect(failing).rejects.toThrow();
    const stuck = state.get(MAILBOX).historyId;
    expect(Number(stuck)).toBeGreaterThan(Number(before));
    const committed = new Set(received());
    // The cursor never passed a message that is not in the journal.
    const notCommitted = burst.filter((id) => !committed.has(id));
    expect(notCommitted.length).toBeGreaterThan(0);
    fake.serverError(0);
    const retry = await sync();
    expect(retry.mode).toBe('incremental');
    const ids = received();
    expect(ids).toHaveLength(55);
    expect(new Set(ids).size).toBe(55);
  });

  it('falls back to a full sync when the history id has expired, adding no duplicates', async () => {
    fake.burst(10);
    await sync();
    fake.burst(5);
    fake.expireHistoryBefore(Number(state.get(MAILBOX).historyId) + 100);
    const r = await sync();
    expect(r.mode).toBe('full-resync');
    expect(r).toMatchObject({ accepted: 5, duplicates: 10 });
    expect(received()).toHaveLength(15);
    expect(kind('connector.health').map((e) => (e.payload as { status: string }).status)).toEqual(['degraded']);
  });

  it('marks a revoked inbox as needing consent, with the window affected on the record', async () => {
    fake.burst(3);
    await sync();
    fake.revoke();
    fake.burst(2);
    const r = await sync();
    expect(r.mode).toBe('needs-consent');
    expect(state.get(MAILBOX).status).toBe('needs_consent');
    const health = kind('connector.health').map((e) => e.payload as { status: string; windowStart?: string; windowEnd?: string });
    expect(health).toHaveLength(1);
    expect(health[0]).toMatchObject({ status: 'needs_consent' });
    expect(health[0]?.windowStart).toBeDefined();
    expect(health[0]?.windowEnd).toBeDefined();
    expect((await sync()).mode).toBe('needs-consent'); // not retried until consent is given again
    expect(kind('connector.health')).toHaveLength(1);
  });

  it('does not report a journal that refuses appends (its disk full) as a Gmail outage, and catches up once it accepts again', async () => {
    fake.burst(3);
    await sync();
    const burst = fake.burst(4);
    // The journal service answers 503 WRITE_FAILED to the cursor's entry, as it does while its disk is full.
    let full = true;
    const journal = new Proxy(p.journal, {
      get(target, prop, receiver) {
        if (prop === 'append' && full)
          return () =>
            Promise.reject(new JournalRequestError(503, 'WRITE_FAILED', 'the journal could not write: database or disk is full', true));
        const v: unknown = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const cursor = state.get(MAILBOX).historyId;
    const failed = syncInbox({
      mailbox: MAILBOX,
      auth,
      rootUrl: fake.rootUrl,
      journal,
      intake: (ix) => p.runtime.pipeline.intake(ix),
      state,
    }).catch((e: unknown) => e);
    const err = await failed;
    expect(err).toBeInstanceOf(JournalRequestError);
    expect(err).not.toBeInstanceOf(GmailUnavailableError);
    expect(state.get(MAILBOX).historyId).toBe(cursor);
    full = false;
    expect(await sync()).toMatchObject({ mode: 'incremental', duplicates: 1, accepted: 3 });
    expect(
      received()
        .filter((id) => burst.includes(id))
        .sort(),
    ).toEqual([...burst].sort());
    expect(received()).toHaveLength(7);
  });
});
