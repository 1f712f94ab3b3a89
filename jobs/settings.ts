/**
 * The one place where the application's configuration becomes each connector's own settings. Connectors never
 * read `Config`: each declares the settings it needs (`GmailSettings`, `FormsSettings`, `NotifySettings`, the
 * HubSpot adapter's options), and jobs/main.ts builds them from here. The CLI uses the same mapping for the
 * commands that open a connector's state (connect, status, gmail labels).
 */
import type { Config } from '../src/config/config.ts';
import type { GmailSettings, InboxStoreSettings } from '../connectors/gmail/gmail.connector.ts';
import type { FormPollStoreSettings, FormsSettings } from '../connectors/forms/forms.connector.ts';
import type { NotifySettings } from '../connectors/notify/index.ts';
import type { HubSpotMirrorSettings } from './hubspot.ts';

/** Where connectors keep their encrypted state (connected inboxes, polled forms), and the key that seals it. */
export function connectorStateSettings(config: Config): InboxStoreSettings & FormPollStoreSettings {
  return { stateDir: config.pipeline.stateDir, masterKey: config.privacy };
}

/** Gmail, or null until an OAuth client is configured (GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET). */
export function gmailSettings(config: Config): GmailSettings | null {
  const g = config.pipeline.gmail;
  if (!g) return null;
  return {
    ...connectorStateSettings(config),
    oauth: {
      clientId: g.clientId,
      clientSecret: g.clientSecret,
      redirectUrl: g.redirectUrl,
      scopeMode: g.scope,
      tokenUrl: g.tokenUrl,
      rootUrl: g.apiRoot,
    },
    syncEveryMs: g.syncEveryMs,
    backfillDays: g.backfillDays,
    quotaUnitsPerMinute: g.quotaUnitsPerMinute,
    defaultLabels: { include: g.includeLabels, exclude: g.excludeLabels },
  };
}

/** Polled forms: HubSpot form guids (HUBSPOT_FORMS_POLL) and the Google OAuth client for Google Forms. */
export function formsSettings(config: Config): FormsSettings {
  const f = config.pipeline.forms;
  return {
    ...connectorStateSettings(config),
    pollEveryMs: f.pollEveryMs,
    backfillDays: f.backfillDays,
    hubspot: f.hubspot,
    google: f.google,
  };
}

/** Notification delivery: SMTP (null without SMTP_HOST), and the secrets rules.json names by variable. */
export function notifySettings(config: Config): NotifySettings {
  const n = config.pipeline.notify;
  return { smtp: n.smtp, secret: n.secret };
}

/** The HubSpot adapter (null without HUBSPOT_ACCESS_TOKEN: dry-run) and the crm-batch queue's batching and limiter. */
export function hubspotSettings(config: Config): HubSpotMirrorSettings {
  const h = config.pipeline.hubspot;
  return {
    crm: h
      ? {
          accessToken: h.accessToken,
          ...(h.basePath ? { basePath: h.basePath } : {}),
          createContacts: h.createContacts,
          dealRule: h.dealRule,
          dailyReserve: h.dailyReserve,
          timeZone: h.timeZone,
          searchIndexDelayMs: h.searchIndexDelayMs,
        }
      : null,
    // Without a token but with a batch CRM handed in (tests, benches), the defaults apply.
    batch: {
      limitMax: h?.rateLimit.max ?? 9,
      limitDurationMs: h?.rateLimit.durationMs ?? 1000,
      windowMs: h?.batchWindowMs ?? 1000,
      batchSize: h?.batchSize ?? 100,
      linkWindowMs: h?.linkWindowMs ?? 30_000,
      linkBatchSize: 1000,
      // Claims are renewed while their job runs (every third of the lease), so the lease can be short.
      leaseMs: 3 * config.pipeline.crmBatchLockMs,
    },
  };
}
