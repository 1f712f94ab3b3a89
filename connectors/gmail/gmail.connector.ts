/**
 * The Gmail connector object: connected inboxes (the encrypted inbox store), their label filters, one sync, the
 * repeating syncs, coverage reconciliation and the consent flow. Built from the connector's own settings and its
 * deps; the worker process maps its configuration onto `GmailSettings` (jobs/settings.ts).
 */
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import type { Logger } from '../../src/config/logger.ts';
import type { JournalClient } from '../../src/journal/journal-client.ts';
import { loadMasterKey, type MasterKeySource } from '../../src/journal/master-key.ts';
import type { Pipeline } from '../../src/pipeline/pipeline.ts';
import type { SyncScheduler } from '../../src/pipeline/sync-scheduler.ts';
import { PermanentJobError } from '../../src/pipeline/errors/permanent-job.error.ts';
import { GmailInboxStore, type LabelFilter } from './inbox-store.ts';
import { completeConsent, consentUrl, inboxClient, type GmailOAuthConfig } from './gmail.oauth.ts';
import { syncInbox, type SyncReport } from './gmail.sync.ts';
import { reconcileInbox, type CoverageReport } from './gmail.reconcile.ts';
import { RedisQuotaBucket } from './quota.ts';
import { changeInboxLabels, effectiveLabels, type EffectiveLabels, type LabelChange } from './inbox-labels.ts';

/** Where the connected inboxes are kept: an encrypted file in `stateDir`, sealed under the master key. */
export interface InboxStoreSettings {
  readonly stateDir: string;
  /** Where the master key is read from (it is loaded, or created, only when the store is opened). */
  readonly masterKey: MasterKeySource;
}

export interface GmailSettings extends InboxStoreSettings {
  /** The OAuth client (GOOGLE_CLIENT_ID/SECRET), our callback, the scope mode, and the token URL / API root overrides. */
  readonly oauth: GmailOAuthConfig;
  /** How often each connected inbox is synced. */
  readonly syncEveryMs: number;
  /** How far back the first sync of an inbox reaches. */
  readonly backfillDays: number;
  /** Gmail's per-user quota, shared by every sync of an inbox in every worker process. */
  readonly quotaUnitsPerMinute: number;
  /** The label filter of inboxes without their own (GMAIL_INCLUDE_LABELS / GMAIL_EXCLUDE_LABELS). */
  readonly defaultLabels: LabelFilter;
}

export interface GmailDeps {
  readonly journal: JournalClient;
  /** Where synced messages go in (journal commit first), and what reconciliation asks about a message id. */
  readonly pipeline: Pick<Pipeline, 'intake' | 'accounted'>;
  /** The sync-inbox jobs (the worker process: BullMQ job schedulers). */
  readonly syncs: SyncScheduler;
  /** The quota buckets live here, under `prefix`. */
  readonly redis: Redis;
  readonly prefix: string;
  readonly logger: Logger;
}

/** The connected inboxes (opening it loads the master key, creating it on first use). */
export function openInboxStore(s: InboxStoreSettings): GmailInboxStore {
  return new GmailInboxStore(join(s.stateDir, 'gmail-inboxes.enc'), loadMasterKey(s.masterKey, { create: true }).key, s.stateDir);
}

export interface GmailConnector {
  readonly store: GmailInboxStore;
  /** An inbox's label filter (its own, or the defaults). */
  labels(mailbox: string): EffectiveLabels;
  /** Changes an inbox's label filter; the change is journaled (state.changed). */
  setLabels(
    mailbox: string,
    change: LabelChange,
    actor?: string,
  ): Promise<{ before: EffectiveLabels; after: EffectiveLabels; changed: boolean }>;
  /** Runs one sync of a connected inbox (the sync-inbox job, or `activity-journal sync gmail` with progress). */
  sync(mailbox: string, onProgress?: (done: number, total: number) => void): Promise<SyncReport>;
  /** Makes sure every connected inbox has its repeating sync job (`onlyMissing`: leave existing schedules be). */
  schedule(onlyMissing?: boolean): Promise<void>;
  /** Coverage of a connected inbox against the journal; takes the missing messages in unless `reportOnly`. */
  reconcile(mailbox: string, since: Date, reportOnly: boolean, onProgress?: (done: number, total: number) => void): Promise<CoverageReport>;
  /** The consent URL for connecting an inbox, optionally with the label filter it will get. */
  consentUrl(labels?: LabelFilter): Promise<string>;
  /** Our OAuth callback: checks the state, exchanges the code, stores the inbox, journals it, starts its sync. */
  completeConsent(code: string, state: string): Promise<{ mailbox: string }>;
}

export function gmailConnector(s: GmailSettings, deps: GmailDeps): GmailConnector {
  const cfg = s.oauth;
  const store = openInboxStore(s);
  const log = deps.logger.child({ component: 'connector.gmail' });
  // One bucket per mailbox in Redis, shared by every sync of it in every worker process.
  const bucketFor = (mailbox: string): RedisQuotaBucket =>
    new RedisQuotaBucket({ redis: deps.redis, prefix: deps.prefix, account: mailbox, unitsPerMinute: s.quotaUnitsPerMinute });
  const enqueueSync = async (mailbox: string, every: boolean, onlyMissing = false): Promise<void> => {
    const job = { connector: 'gmail', mailbox } as const;
    if (every) await deps.syncs.repeat(`gmail-${mailbox}`, job, s.syncEveryMs, onlyMissing);
    else await deps.syncs.once(`sync-inbox-now-${Date.now()}`, job);
  };
  const authFor = (mailbox: string): ReturnType<typeof inboxClient> => {
    const record = store.record(mailbox);
    if (!record) throw new PermanentJobError(`no connected inbox ${mailbox}`);
    return inboxClient(cfg, record.refreshToken, (rt) => {
      store
        .rotate(mailbox, rt)
        .catch((err: unknown) => log.error({ mailbox, err: (err as Error).message }, 'could not keep a rotated refresh token'));
    });
  };
  const defaults = s.defaultLabels;
  return {
    store,
    labels: (mailbox) => effectiveLabels(store, mailbox, defaults),
    setLabels: (mailbox, change, actor = 'operator:cli') =>
      changeInboxLabels({ store, journal: deps.journal, defaults, actor }, mailbox, change),
    reconcile(mailbox, since, reportOnly, onProgress) {
      return reconcileInbox({
        mailbox,
        auth: authFor(mailbox),
        rootUrl: cfg.rootUrl,
        since,
        accounted: (id) => deps.pipeline.accounted('gmail', id),
        metadataOnly: cfg.scopeMode === 'metadata',
        ...(reportOnly ? {} : { intake: (ix) => deps.pipeline.intake(ix) }),
        ...(onProgress ? { onProgress } : {}),
      });
    },
    async sync(mailbox, onProgress) {
      const auth = authFor(mailbox);
      const labels = effectiveLabels(store, mailbox, defaults);
      const report = await syncInbox({
        mailbox,
        auth,
        ...(cfg.rootUrl ? { rootUrl: cfg.rootUrl } : {}),
        journal: deps.journal,
        intake: (ix) => deps.pipeline.intake(ix),
        state: store,
        backfillDays: s.backfillDays,
        quota: bucketFor(mailbox),
        metadataOnly: cfg.scopeMode === 'metadata',
        ...(labels.include.length > 0 ? { includeLabels: labels.include } : {}),
        excludeLabels: labels.exclude,
        ...(onProgress ? { onProgress } : {}),
      });
      log.info({ mailbox, mode: report.mode, seen: report.seen, accepted: report.accepted, duplicates: report.duplicates }, 'inbox synced');
      return report;
    },
    async schedule(onlyMissing = false) {
      for (const inbox of store.list()) if (inbox.status === 'ok') await enqueueSync(inbox.mailbox, true, onlyMissing);
    },
    async consentUrl(labels) {
      return consentUrl(cfg, await store.newConsentState(labels));
    },
    async completeConsent(code, state) {
      const asked = await store.takeConsentState(state);
      if (!asked) throw new PermanentJobError('unknown or expired consent state: start again with `activity-journal connect gmail`');
      const { mailbox, refreshToken, scopes } = await completeConsent(cfg, code);
      await store.connect(mailbox, refreshToken, scopes);
      await deps.journal.append({
        kind: 'inbox.connected',
        source: 'gmail',
        actor: 'connector:gmail',
        correlationId: `inbox/gmail/${mailbox}`,
        idempotencyKey: `inbox-connected/gmail/${mailbox}/${new Date().toISOString()}`,
        payload: { connector: 'gmail', account: mailbox, scopes },
      });
      // Labels asked for at `connect gmail` apply before the first sync, and the change is on the record.
      if (asked.labels)
        await changeInboxLabels({ store, journal: deps.journal, defaults, actor: 'connector:gmail' }, mailbox, asked.labels);
      await enqueueSync(mailbox, true);
      await enqueueSync(mailbox, false);
      return { mailbox };
    },
  };
}
