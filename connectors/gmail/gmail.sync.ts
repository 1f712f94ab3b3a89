/**
 * Inbox sync: a backfill of the last N days, then incremental sync from the stored history id. Each message is
 * taken in through the pipeline's intake (journal commit first); the cursor advances only past messages whose
 * entries are committed, and every advance is journaled (connector.cursor_advanced, from → to). An expired
 * history id (404) falls back to a full sync, which adds no duplicates (intake is idempotent per message id).
 * A revoked grant marks the inbox as needing consent and journals connector.health with the window affected.
 */
import type { gmail_v1 } from 'googleapis';
import type { JournalClient } from '../../src/journal/journal-client.ts';
import type { IntakeOutcome } from '../../src/pipeline/pipeline.ts';
import type { Interaction } from '../../src/pipeline/interaction.ts';
import { GmailSource, gmailClient, mapGmailError, type GmailOAuth2Client } from './gmail.source.ts';
import { GmailAuthError } from './errors/gmail-auth.error.ts';
import { GmailRateLimitError } from './errors/gmail-rate-limit.error.ts';
import { GMAIL_UNITS, QuotaBucket, type QuotaPacer } from './quota.ts';

/** How long everyone sharing the mailbox's bucket holds off after a rate-limit answer without Retry-After. */
const RATE_LIMIT_PAUSE_MS = 10_000;

/** What is kept per inbox in the encrypted state store. */
export interface InboxCursor {
  readonly historyId: string | null;
  readonly status: 'ok' | 'needs_consent';
  readonly lastSyncAt: string | null;
}

export interface InboxStateStore {
  get(mailbox: string): InboxCursor;
  save(mailbox: string, next: InboxCursor): Promise<void>;
}

export interface GmailSyncOptions {
  readonly mailbox: string;
  readonly auth: GmailOAuth2Client;
  readonly rootUrl?: string;
  readonly journal: JournalClient;
  readonly intake: (ix: Interaction) => Promise<IntakeOutcome>;
  readonly state: InboxStateStore;
  /** Days of mail taken in by the first sync (default 30). */
  readonly backfillDays?: number;
  /** Label ids to take in (default all) and to leave out (default SPAM, TRASH, DRAFT). */
  readonly includeLabels?: readonly string[];
  readonly excludeLabels?: readonly string[];
  readonly now?: () => Date;
  /** The per-user quota to stay within (default Gmail's 6,000 units per minute, this process only); the
   *  connector passes the mailbox's bucket in Redis, shared by every worker process. */
  readonly quota?: QuotaPacer;
  /** Privacy mode: fetch headers only (scope gmail.metadata). */
  readonly metadataOnly?: boolean;
  /** Progress for a terminal (backfill): done, total. */
  readonly onProgress?: (done: number, total: number) => void;
}

export interface SyncReport {
  readonly mode: 'backfill' | 'incremental' | 'full-resync' | 'needs-consent';
  readonly seen: number;
  readonly accepted: number;
  readonly duplicates: number;
  readonly excluded: number;
  readonly skippedByLabel: number;
  readonly cursor: string | null;
}

const NO_RETRY = { retry: false } as const;

export async function syncInbox(o: GmailSyncOptions): Promise<SyncReport> {
  const now = o.now ?? (() => new Date());
  const before = o.state.get(o.mailbox);
  if (before.status === 'needs_consent')
    return { mode: 'needs-consent', seen: 0, accepted: 0, duplicates: 0, excluded: 0, skippedByLabel: 0, cursor: before.historyId };
  const gmail = gmailClient({ auth: o.auth, ...(o.rootUrl === undefined ? {} : { rootUrl: o.rootUrl }) });
  const source = new GmailSource({
    mailbox: o.mailbox,
    auth: o.auth,
    metadataOnly: o.metadataOnly === true,
    ...(o.rootUrl === undefined ? {} : { rootUrl: o.rootUrl }),
  });
  const counts = { seen: 0, accepted: 0, duplicates: 0, excluded: 0, skippedByLabel: 0 };
  const quota = o.quota ?? new QuotaBucket(6000);
  const exclude = new Set(o.excludeLabels ?? ['SPAM', 'TRASH', 'DRAFT']);
  const include = o.includeLabels ? new Set(o.includeLabels) : null;

  const takeIn = async (id: string): Promise<void> => {
    counts.seen++;
    await quota.take(GMAIL_UNITS.get);
    const ix = await source.fetch(id);
    if (ix === null) return; // deleted since it was listed: nothing to record
    const labels = (ix.metadata?.labelIds as string[] | undefined) ?? [];
    if (labels.some((l) => exclude.has(l)) || (include && !labels.some((l) => include.has(l)))) {
      counts.skippedByLabel++;
      return;
    }
    const r = await o.intake(ix);
    if (r.status === 'excluded') counts.excluded++;
    else if (r.duplicate) counts.duplicates++;
    else counts.accepted++;
  };

  const advance = async (from: string | null, to: string): Promise<void> => {
    if (from === to) return;
    // Journal first: if the state write is lost, the next sync starts from the older cursor and adds nothing new.
    await o.journal.append({
      kind: 'connector.cursor_advanced',
      source: 'gmail',
      actor: 'connector:gmail',
      correlationId: `inbox/gmail/${o.mailbox}`,
      idempotencyKey: `cursor/gmail/${o.mailbox}/${from ?? 'start'}/${to}`,
      payload: { connector: 'gmail', account: o.mailbox, from, to },
    });
    await o.state.save(o.mailbox, { historyId: to, status: 'ok', lastSyncAt: now().toISOString() });
  };

  const fullSync = async (mode: 'backfill' | 'full-resync'): Promise<SyncReport> => {
    // The history id is read before listing, so anything arriving during the listing is replayed by the next
    // incremental sync (and deduplicated) rather than skipped.
    await quota.take(GMAIL_UNITS.profile);
    const profile = await call(() => gmail.users.getProfile({ userId: 'me' }, NO_RETRY));
    const startHistory = String(profile.data.historyId ?? '');
    const ids: string[] = [];
    let pageToken: string | undefined;
    do {
      await quota.take(GMAIL_UNITS.list);
      const page = await call(() =>
        gmail.users.messages.list(
          { userId: 'me', q: `newer_than:${o.backfillDays ?? 30}d`, maxResults: 500, ...(pageToken ? { pageToken } : {}) },
          NO_RETRY,
        ),
      );
      for (const m of page.data.messages ?? []) if (m.id) ids.push(m.id);
      pageToken = page.data.nextPageToken ?? undefined;
    } while (pageToken);
    ids.reverse(); // oldest first, so a thread's replies follow their originals
    for (const [i, id] of ids.entries()) {
      await takeIn(id);
      o.onProgress?.(i + 1, ids.length);
    }
    if (startHistory) await advance(before.historyId, startHistory);
    return { mode, ...counts, cursor: startHistory || before.historyId };
  };

  try {
    if (before.historyId === null) return await fullSync('backfill');
    // Pages of one listing all use the start id they began with; `cursor` is how far is committed.
    const start = before.historyId;
    let cursor = start;
    let pageToken: string | undefined;
    for (;;) {
      let page: gmail_v1.Schema$ListHistoryResponse;
      try {
        await quota.take(GMAIL_UNITS.history);
        page = (
          await call(() =>
            gmail.users.history.list(
              { userId: 'me', startHistoryId: start, historyTypes: ['messageAdded'], ...(pageToken ? { pageToken } : {}) },
              NO_RETRY,
            ),
          )
        ).data;
      } catch (err) {
        if (statusOf(err) === 404) {
          await o.journal.append({
            kind: 'connector.health',
            source: 'gmail',
            actor: 'connector:gmail',
            correlationId: `inbox/gmail/${o.mailbox}`,
            idempotencyKey: `health/gmail/${o.mailbox}/history-expired/${start}`,
            payload: {
              connector: 'gmail',
              account: o.mailbox,
              status: 'degraded',
              reason: `history id ${start} has expired; running a full sync (no duplicates: messages already journaled are recognised)`,
            },
          });
          return await fullSync('full-resync');
        }
        throw err;
      }
      for (const record of page.history ?? []) {
        for (const added of record.messagesAdded ?? []) if (added.message?.id) await takeIn(added.message.id);
        // Every message of this history record is committed: the cursor may move past it.
        if (record.id) {
          await advance(cursor, record.id);
          cursor = record.id;
        }
      }
      pageToken = page.nextPageToken ?? undefined;
      if (!pageToken) {
        if (page.historyId) await advance(cursor, page.historyId);
        return { mode: 'incremental', ...counts, cursor: page.historyId ?? cursor };
      }
    }
  } catch (err) {
    const mapped = mapGmailError(err);
    // The job fails and is retried with backoff; meanwhile nobody draws on this mailbox's quota.
    if (mapped instanceof GmailRateLimitError) await quota.pause(mapped.retryAfterMs ?? RATE_LIMIT_PAUSE_MS);
    if (mapped instanceof GmailAuthError) {
      const latest = o.state.get(o.mailbox);
      await o.state.save(o.mailbox, { ...latest, status: 'needs_consent' });
      await o.journal.append({
        kind: 'connector.health',
        source: 'gmail',
        actor: 'connector:gmail',
        correlationId: `inbox/gmail/${o.mailbox}`,
        idempotencyKey: `health/gmail/${o.mailbox}/needs-consent/${latest.historyId ?? 'start'}`,
        payload: {
          connector: 'gmail',
          account: o.mailbox,
          status: 'needs_consent',
          reason:
            'Google refused the grant (revoked or expired): connect the inbox again with `activity-journal connect gmail`; mail from the window below is not yet journaled',
          ...(latest.lastSyncAt ? { windowStart: latest.lastSyncAt } : {}),
          windowEnd: now().toISOString(),
        },
      });
      return { mode: 'needs-consent', ...counts, cursor: latest.historyId };
    }
    throw mapped;
  }
}

async function call<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (statusOf(err) === 404) throw err;
    throw mapGmailError(err);
  }
}

function statusOf(err: unknown): number | undefined {
  const e = err as { status?: unknown; code?: unknown; response?: { status?: unknown } } | null;
  const s = e?.response?.status ?? e?.status ?? e?.code;
  return typeof s === 'number' ? s : typeof s === 'string' && /^\d+$/.test(s) ? Number(s) : undefined;
}
