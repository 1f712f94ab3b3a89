/**
 * Wiring of polled forms: HubSpot form guids (HUBSPOT_FORMS_POLL, with HUBSPOT_ACCESS_TOKEN) and Google forms
 * (connected with `activity-journal connect google-forms <formId>`), each on a repeating sync-inbox job.
 */
import { join } from 'node:path';
import type { Config } from '../src/config/config.ts';
import type { Logger } from '../src/config/logger.ts';
import type { JournalClient } from '../src/journal/journal-client.ts';
import type { Pipeline } from '../src/pipeline/pipeline.ts';
import { JOBS, jobOptions } from '../src/pipeline/job-catalog.ts';
import { PermanentJobError } from '../src/pipeline/errors/permanent-job.error.ts';
import { FormPollStore } from '../connectors/forms/form-poll-store.ts';
import { pollForm, stateKey, type FormPollReport } from '../connectors/forms/form-poll.ts';
import { HubSpotFormsFeed } from '../connectors/forms/hubspot-submissions.feed.ts';
import { GoogleFormsFeed } from '../connectors/forms/google-forms.feed.ts';
import { completeFormsConsent, formsClient, formsConsentUrl, GOOGLE_FORMS_SCOPES } from '../connectors/forms/google-forms.oauth.ts';
import type { Queues } from './queues.ts';
import { loadMasterKey } from '../src/journal/master-key.ts';

export function formPollStore(config: Config): FormPollStore {
  return new FormPollStore(
    join(config.pipeline.stateDir, 'form-polls.enc'),
    loadMasterKey(config.privacy, { create: true }).key,
    config.pipeline.stateDir,
  );
}

export type PolledConnector = 'hubspot-forms' | 'google-forms';

export interface FormsConnector {
  readonly store: FormPollStore;
  /** One poll of a form (the sync-inbox job, or `activity-journal sync hubspot-forms|google-forms <id>`). */
  poll(connector: PolledConnector, formId: string): Promise<FormPollReport>;
  /** Makes sure every configured or connected form has its repeating poll job. */
  schedule(onlyMissing?: boolean): Promise<void>;
  /** The consent URL for a Google form (null when no Google OAuth client is configured). */
  googleConsentUrl(formId: string): Promise<string | null>;
  /** Our Google Forms OAuth callback: checks the state, exchanges the code, keeps the grant, journals it, polls. */
  completeGoogleConsent(code: string, state: string): Promise<{ formId: string }>;
}

export function formsConnector(
  config: Config,
  deps: { journal: JournalClient; pipeline: Pipeline; queues: Queues; logger: Logger; sleep?: (ms: number) => Promise<void> },
): FormsConnector {
  const f = config.pipeline.forms;
  // Opened on first use: a deployment without polled forms gets no state file or key for them.
  let opened: FormPollStore | null = null;
  const open = (): FormPollStore => (opened ??= formPollStore(config));
  const log = deps.logger.child({ component: 'connector.forms' });
  const intake = deps.pipeline.intake.bind(deps.pipeline);
  const accounted = deps.pipeline.accounted.bind(deps.pipeline);
  const enqueue = async (connector: PolledConnector, formId: string, every: boolean, onlyMissing = false): Promise<void> => {
    const data = JOBS['sync-inbox'].schema.parse({ connector, formId });
    const q = deps.queues['sync-inbox'];
    if (every && onlyMissing && (await q.getJobScheduler(`${connector}-${formId}`))) return;
    if (every)
      await q.upsertJobScheduler(
        `${connector}-${formId}`,
        { every: f.pollEveryMs },
        {
          name: 'sync-inbox',
          data,
          opts: {
            attempts: JOBS['sync-inbox'].attempts,
            backoff: { type: 'exponential', delay: JOBS['sync-inbox'].backoffMs, jitter: 0.5 },
          },
        },
      );
    else await q.add('sync-inbox', data, jobOptions('sync-inbox', `sync-${connector}-now-${Date.now()}`));
  };
  const sleep = deps.sleep ? { sleep: deps.sleep } : {};
  return {
    get store() {
      return open();
    },
    async poll(connector, formId) {
      const store = open();
      let report: FormPollReport;
      if (connector === 'hubspot-forms') {
        const h = f.hubspot;
        const form = h?.forms.find((x) => x.guid === formId);
        if (!h || !form) throw new PermanentJobError(`HubSpot form ${formId} is not in HUBSPOT_FORMS_POLL`);
        const feed = new HubSpotFormsFeed({
          accessToken: h.accessToken,
          formGuid: formId,
          formName: form.name,
          ...(h.basePath ? { basePath: h.basePath } : {}),
          ...sleep,
        });
        report = await pollForm({
          connector,
          formId,
          feed,
          journal: deps.journal,
          intake,
          accounted,
          state: store,
          credential: h.accessToken,
          backfillDays: f.backfillDays,
        });
      } else {
        const g = f.google;
        const grant = store.grant(formId);
        if (!g || !grant)
          throw new PermanentJobError(`Google form ${formId} is not connected (activity-journal connect google-forms ${formId})`);
        const auth = formsClient(g, grant.refreshToken, (rt) => {
          store
            .rotate(formId, rt)
            .catch((err: unknown) => log.error({ formId, err: (err as Error).message }, 'could not keep a rotated refresh token'));
        });
        const feed = new GoogleFormsFeed({ formId, auth, ...(g.apiRoot ? { rootUrl: g.apiRoot } : {}), ...sleep });
        report = await pollForm({
          connector,
          formId,
          feed,
          journal: deps.journal,
          intake,
          accounted,
          state: store,
          credential: grant.refreshToken,
          backfillDays: f.backfillDays,
        });
      }
      log.info(
        { connector, formId, mode: report.mode, seen: report.seen, accepted: report.accepted, duplicates: report.duplicates },
        'form polled',
      );
      return report;
    },
    async schedule(onlyMissing = false) {
      const store = f.google ? open() : null;
      for (const form of f.hubspot?.forms ?? []) await enqueue('hubspot-forms', form.guid, true, onlyMissing);
      if (store)
        for (const formId of store.grantedForms())
          if (store.get(stateKey('google-forms', formId)).status === 'ok') await enqueue('google-forms', formId, true, onlyMissing);
    },
    async googleConsentUrl(formId) {
      return f.google ? formsConsentUrl(f.google, await open().newConsentState(formId)) : null;
    },
    async completeGoogleConsent(code, state) {
      const g = f.google;
      if (!g) throw new PermanentJobError('Google Forms is not configured: set GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET');
      const store = open();
      const formId = await store.takeConsentState(state);
      if (!formId)
        throw new PermanentJobError('unknown or expired consent state: start again with `activity-journal connect google-forms <formId>`');
      const { refreshToken, scopes } = await completeFormsConsent(g, code, formId);
      await store.connect(formId, stateKey('google-forms', formId), refreshToken, scopes);
      await deps.journal.append({
        kind: 'inbox.connected',
        source: 'google-forms',
        actor: 'connector:google-forms',
        correlationId: `form/google-forms/${formId}`,
        idempotencyKey: `inbox-connected/google-forms/${formId}/${new Date().toISOString()}`,
        payload: { connector: 'google-forms', account: formId, scopes: scopes.length > 0 ? scopes : [...GOOGLE_FORMS_SCOPES] },
      });
      await enqueue('google-forms', formId, true);
      await enqueue('google-forms', formId, false);
      return { formId };
    },
  };
}
