/**
 * The polled-forms connector object: HubSpot form guids (HUBSPOT_FORMS_POLL, with HUBSPOT_ACCESS_TOKEN) and
 * Google forms (connected with `activity-journal connect google-forms <formId>`), each on a repeating sync-inbox
 * job; one poll, the schedules, and the Google consent flow. Built from the connector's own settings and its
 * deps; the worker process maps its configuration onto `FormsSettings` (jobs/settings.ts).
 */
import { join } from 'node:path';
import type { Logger } from '../../src/config/logger.ts';
import type { JournalClient } from '../../src/journal/journal-client.ts';
import { loadMasterKey, type MasterKeySource } from '../../src/journal/master-key.ts';
import type { Pipeline } from '../../src/pipeline/pipeline.ts';
import type { SyncScheduler } from '../../src/pipeline/sync-scheduler.ts';
import { PermanentJobError } from '../../src/pipeline/errors/permanent-job.error.ts';
import { FormPollStore } from './form-poll-store.ts';
import { pollForm, stateKey, type FormFeed, type FormPollReport } from './form-poll.ts';
import { HubSpotFormsFeed } from './hubspot-submissions.feed.ts';
import { GoogleFormsFeed } from './google-forms.feed.ts';
import {
  completeFormsConsent,
  formsClient,
  formsConsentUrl,
  GOOGLE_FORMS_SCOPES,
  type GoogleFormsOAuthConfig,
} from './google-forms.oauth.ts';

/** Where the polled forms' state is kept: an encrypted file in `stateDir`, sealed under the master key. */
export interface FormPollStoreSettings {
  readonly stateDir: string;
  /** Where the master key is read from (it is loaded, or created, only when the store is opened). */
  readonly masterKey: MasterKeySource;
}

export interface FormsSettings extends FormPollStoreSettings {
  /** How often each form is polled. */
  readonly pollEveryMs: number;
  /** How far back the first poll of a form reaches. */
  readonly backfillDays: number;
  /** HubSpot forms to poll, with the private app token; null: none. */
  readonly hubspot: {
    readonly accessToken: string;
    readonly basePath: string | undefined;
    readonly forms: readonly { readonly guid: string; readonly name: string }[];
  } | null;
  /** The Google OAuth client for Google Forms; null: Google forms cannot be connected. */
  readonly google: GoogleFormsOAuthConfig | null;
}

export interface FormsDeps {
  readonly journal: JournalClient;
  /** Where submissions go in (journal commit first), and what tells a submission already taken in. */
  readonly pipeline: Pick<Pipeline, 'intake' | 'accounted'>;
  /** The sync-inbox jobs (the worker process: BullMQ job schedulers). */
  readonly syncs: SyncScheduler;
  readonly logger: Logger;
  /** The feeds' wait between pages and retries (tests). */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** The polled forms' state (opening it loads the master key, creating it on first use). */
export function openFormPollStore(s: FormPollStoreSettings): FormPollStore {
  return new FormPollStore(join(s.stateDir, 'form-polls.enc'), loadMasterKey(s.masterKey, { create: true }).key, s.stateDir);
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

export function formsConnector(f: FormsSettings, deps: FormsDeps): FormsConnector {
  // Opened on first use: a deployment without polled forms gets no state file or key for them.
  let opened: FormPollStore | null = null;
  const open = (): FormPollStore => (opened ??= openFormPollStore(f));
  const log = deps.logger.child({ component: 'connector.forms' });
  const intake = deps.pipeline.intake.bind(deps.pipeline);
  const accounted = deps.pipeline.accounted.bind(deps.pipeline);
  const enqueue = async (connector: PolledConnector, formId: string, every: boolean, onlyMissing = false): Promise<void> => {
    const job = { connector, formId };
    if (every) await deps.syncs.repeat(`${connector}-${formId}`, job, f.pollEveryMs, onlyMissing);
    else await deps.syncs.once(`sync-${connector}-now-${Date.now()}`, job);
  };
  const sleep = deps.sleep ? { sleep: deps.sleep } : {};
  return {
    get store() {
      return open();
    },
    async poll(connector, formId) {
      const store = open();
      // The two providers differ only in their feed and the credential that identifies the grant; the poll is one.
      let feed: FormFeed;
      let credential: string;
      if (connector === 'hubspot-forms') {
        const h = f.hubspot;
        const form = h?.forms.find((x) => x.guid === formId);
        if (!h || !form) throw new PermanentJobError(`HubSpot form ${formId} is not in HUBSPOT_FORMS_POLL`);
        feed = new HubSpotFormsFeed({
          accessToken: h.accessToken,
          formGuid: formId,
          formName: form.name,
          ...(h.basePath ? { basePath: h.basePath } : {}),
          ...sleep,
        });
        credential = h.accessToken;
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
        feed = new GoogleFormsFeed({ formId, auth, ...(g.apiRoot ? { rootUrl: g.apiRoot } : {}), ...sleep });
        credential = grant.refreshToken;
      }
      const report: FormPollReport = await pollForm({
        connector,
        formId,
        feed,
        journal: deps.journal,
        intake,
        accounted,
        state: store,
        credential,
        backfillDays: f.backfillDays,
      });
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
