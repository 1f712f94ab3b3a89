/**
 * Wiring of the Gmail connector: the inbox store, the sync-inbox job handler and its per-inbox schedules.
 */
import { join } from 'node:path';
import type { Config } from '../src/config/config.ts';
import type { Logger } from '../src/config/logger.ts';
import type { JournalClient } from '../src/journal/journal-client.ts';
import type { Pipeline } from '../src/pipeline/pipeline.ts';
import { JOBS, jobOptions } from '../src/pipeline/job-catalog.ts';
import { GmailInboxStore } from '../connectors/gmail/inbox-store.ts';
import { completeConsent, consentUrl, inboxClient, type GmailOAuthConfig } from '../connectors/gmail/gmail.oauth.ts';
import { syncInbox, type SyncReport } from '../connectors/gmail/gmail.sync.ts';
import { reconcileInbox, type CoverageReport } from '../connectors/gmail/gmail.reconcile.ts';
import { PermanentJobError } from '../src/pipeline/errors/permanent-job.error.ts';
import { RedisQuotaBucket } from '../connectors/gmail/quota.ts';
import type { Redis } from 'ioredis';
import { changeInboxLabels, effectiveLabels, type EffectiveLabels, type LabelChange } from '../connectors/gmail/inbox-labels.ts';
import type { LabelFilter } from '../connectors/gmail/inbox-store.ts';
import type { Queues } from './queues.ts';
import { loadMasterKey } from '../src/journal/master-key.ts';

export function gmailOAuthConfig(config: Config): GmailOAuthConfig | null {
  const g = config.pipeline.gmail;
  return g
    ? {
        clientId: g.clientId,
        clientSecret: g.clientSecret,
        redirectUrl: g.redirectUrl,
        scopeMode: g.scope,
        tokenUrl: g.tokenUrl,
        rootUrl: g.apiRoot,
      }
    : null;
}

export function gmailInboxStore(config: Config): GmailInboxStore {
  return new GmailInboxStore(
    join(config.pipeline.stateDir, 'gmail-inboxes.enc'),
    loadMasterKey(config.privacy, { create: true }).key,
    config.pipeline.stateDir,
  );
}

/** The label filter of inboxes without their own (GMAIL_INCLUDE_LABELS / GMAIL_EXCLUDE_LABELS). */
export function defaultLabels(config: Config): LabelFilter {
  const g = config.pipeline.gmail;
  return { include: g?.includeLabels ?? [], exclude: g?.excludeLabels ?? ['SPAM', 'TRASH', 'DRAFT'] };
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

export function gmailConnector(
  config: Config,
  deps: { journal: JournalClient; pipeline: Pipeline; queues: Queues; logger: Logger; redis: Redis; prefix: string },
): GmailConnector | null {
  const cfg = gmailOAuthConfig(config);
  const g = config.pipeline.gmail;
  if (!cfg || !g) return null;
  const store = gmailInboxStore(config);
  const log = deps.logger.child({ component: 'connector.gmail' });
  // One bucket per mailbox in Redis, shared by every sync of it in every worker process.
  const bucketFor = (mailbox: string): RedisQuotaBucket =>
    new RedisQuotaBucket({ redis: deps.redis, prefix: deps.prefix, account: mailbox, unitsPerMinute: g.quotaUnitsPerMinute });
  const enqueueSync = async (mailbox: string, every: boolean, onlyMissing = false): Promise<void> => {
    const data = JOBS['sync-inbox'].schema.parse({ connector: 'gmail', mailbox });
    const q = deps.queues['sync-inbox'];
    if (every && onlyMissing && (await q.getJobScheduler(`gmail-${mailbox}`))) return;
    if (every)
      await q.upsertJobScheduler(
        `gmail-${mailbox}`,
        { every: g.syncEveryMs },
        {
          name: 'sync-inbox',
          data,
          opts: {
            attempts: JOBS['sync-inbox'].attempts,
            backoff: { type: 'exponential', delay: JOBS['sync-inbox'].backoffMs, jitter: 0.5 },
          },
        },
      );
    else await q.add('sync-inbox', data, jobOptions('sync-inbox', `sync-inbox-now-${Date.now()}`));
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
  const defaults = defaultLabels(config);
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
        metadataOnly: g.scope === 'metadata',
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
        backfillDays: g.backfillDays,
        quota: bucketFor(mailbox),
        metadataOnly: g.scope === 'metadata',
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
