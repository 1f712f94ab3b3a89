/**
 * The one place that reads the environment. Parsed once at start-up into a typed Config; every problem is
 * reported at once.
 */
import { basename, dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { PROJECT_ROOT } from './project-root.ts';
import { ConfigError } from './errors/config.error.ts';
import type { Listen } from '../journal/settings.ts';

const intFrom = (def: number, min: number) => z.coerce.number().int().min(min).default(def);
const list = z
  .string()
  .default('')
  .transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x.length > 0),
  );
const token = z.string().min(32, 'must be at least 32 characters').optional();

export const EnvSchema = z.object({
  JOURNAL_PATH: z.string().min(1).default('./data/journal.sqlite'),
  JOURNAL_KEYS_DIR: z.string().min(1).optional(),
  JOURNAL_SERVICE_LISTEN: z.string().min(1).default('127.0.0.1:7077'),
  JOURNAL_SERVICE_URL: z.string().min(1).optional(),
  JOURNAL_APPEND_TOKEN: token,
  JOURNAL_READ_TOKEN: token,
  JOURNAL_MAX_PAYLOAD_BYTES: intFrom(2 * 1024 * 1024, 1024), // as the writer defaults (DEFAULT_MAX_PAYLOAD_BYTES)
  JOURNAL_CHECKPOINT_EVERY_ENTRIES: intFrom(1000, 1),
  JOURNAL_CHECKPOINT_EVERY_SECONDS: intFrom(10, 0),
  JOURNAL_ANCHOR_DIRS: z.string().optional(),
  JOURNAL_ANCHOR_URLS: list,
  JOURNAL_ANCHOR_TOKEN: z.string().min(1).optional(),
  RETENTION_POLICY_PATH: z.string().min(1).optional(),
  ARCHIVE_DIR: z.string().min(1).optional(),
  ARCHIVE_STORE: z.string().min(1).optional(),
  ARCHIVE_SCHEDULE: z.string().min(1).default('daily'),
  GCS_BASE_URL: z.string().url().optional(),
  GCS_ACCESS_TOKEN: z.string().min(8).optional(),
  GOOGLE_APPLICATION_CREDENTIALS: z.string().min(1).optional(),
  GCS_REQUIRE_RETENTION: z.enum(['true', 'false']).default('true'),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .optional(),
  QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,32}$/)
    .default('aj'),
  OPENAI_API_KEY: z.string().min(1).optional(),
  OPENAI_BASE_URL: z.string().url().optional(),
  OPENAI_MODEL: z.string().min(1).default('gpt-4o-mini'),
  OPENAI_TIMEOUT_SECONDS: intFrom(30, 1),
  OPENAI_MAX_RETRIES: intFrom(2, 0),
  MODEL_CONCURRENCY: intFrom(4, 1),
  WORKER_CONCURRENCY: intFrom(8, 1),
  RULES_PATH: z.string().min(1).optional(),
  REDACTION_RULES: z.string().default('default'),
  MODEL_INPUT_MAX_CHARS: intFrom(8000, 200),
  PIPELINE_IDENTIFIER_KEY: z.string().min(32, 'must be at least 32 characters').optional(),
  WEB_LISTEN: z.string().min(1).default('127.0.0.1:8080'),
  WORKER_METRICS_LISTEN: z.string().min(1).default('127.0.0.1:9465'),
  SMTP_HOST: z.string().min(1).optional(),
  SMTP_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  SMTP_TLS: z.enum(['starttls', 'implicit', 'none']).default('starttls'),
  SMTP_TLS_REJECT_UNAUTHORIZED: z.enum(['true', 'false']).default('true'),
  SMTP_USER: z.string().min(1).optional(),
  SMTP_PASSWORD: z.string().min(1).optional(),
  SMTP_FROM: z.string().min(3).default('activity-journal@localhost'),
  WEBHOOK_PUBLIC_URL: z.string().url().optional(),
  WEBHOOK_MAX_BODY_BYTES: z.coerce.number().int().min(1024).optional(),
  TWILIO_AUTH_TOKEN: z.string().min(8).optional(),
  AIRCALL_WEBHOOK_TOKEN: z.string().min(8).optional(),
  CALLS_WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  FORMS_WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  HUBSPOT_CLIENT_SECRET: z.string().min(8).optional(),
  HUBSPOT_ACCESS_TOKEN: z.string().min(8, 'must be at least 8 characters').optional(),
  HUBSPOT_BASE_PATH: z.string().url().optional(),
  HUBSPOT_RATE_LIMIT_MAX: intFrom(9, 1),
  HUBSPOT_RATE_LIMIT_WINDOW_MS: intFrom(1000, 100),
  HUBSPOT_BATCH_WINDOW_MS: intFrom(1000, 10),
  HUBSPOT_BATCH_SIZE: z.coerce.number().int().min(1).max(100).default(100),
  HUBSPOT_LINK_WINDOW_MS: intFrom(30_000, 10),
  HUBSPOT_DAILY_RESERVE: intFrom(500, 0),
  HUBSPOT_CREATE_CONTACTS: z.enum(['never', 'inbound', 'always']).default('never'),
  HUBSPOT_DEAL_RULE: z.enum(['single-open-deal', 'none']).default('single-open-deal'),
  HUBSPOT_SEARCH_INDEX_DELAY_MS: intFrom(15_000, 0),
  HUBSPOT_TIME_ZONE: z
    .string()
    .default('UTC')
    .refine((z) => {
      try {
        new Intl.DateTimeFormat('en-US', { timeZone: z });
        return true;
      } catch {
        return false;
      }
    }, 'must be an IANA time zone such as America/New_York or Europe/Berlin (the account time zone of HubSpot settings > Account defaults)'),
  GOOGLE_CLIENT_ID: z.string().min(1).optional(),
  GOOGLE_CLIENT_SECRET: z.string().min(1).optional(),
  GOOGLE_REDIRECT_URL: z.string().url().optional(),
  GOOGLE_TOKEN_URL: z.string().url().optional(),
  GMAIL_API_ROOT: z.string().url().optional(),
  GMAIL_BACKFILL_DAYS: intFrom(30, 1),
  GMAIL_SYNC_EVERY_SECONDS: intFrom(60, 5),
  GMAIL_QUOTA_UNITS_PER_MINUTE: intFrom(6000, 60),
  GMAIL_SCOPE: z.enum(['readonly', 'metadata']).default('readonly'),
  GMAIL_INCLUDE_LABELS: list,
  GMAIL_EXCLUDE_LABELS: z
    .string()
    .default('SPAM,TRASH,DRAFT')
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x.length > 0),
    ),
  HUBSPOT_FORMS_POLL: list,
  GOOGLE_FORMS_REDIRECT_URL: z.string().url().optional(),
  GOOGLE_FORMS_API_ROOT: z.string().url().optional(),
  FORMS_POLL_EVERY_SECONDS: intFrom(120, 5),
  FORMS_BACKFILL_DAYS: intFrom(30, 1),
  SHUTDOWN_DEADLINE_SECONDS: intFrom(20, 1),
  STARTUP_REPORT_SECONDS: intFrom(60, 1),
  JOB_LOCK_SECONDS: intFrom(30, 1),
  CRM_BATCH_LOCK_SECONDS: intFrom(5, 1),
  REDRIVE_INTERVAL_SECONDS: intFrom(60, 1),
  REDRIVE_GRACE_SECONDS: intFrom(120, 0),
  AUDIT_USERS_PATH: z.string().min(1).optional(),
  AUDIT_SESSION_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  AUDIT_SESSION_HOURS: intFrom(8, 1),
  AUDIT_INDEX_PATH: z.string().min(1).optional(),
  AUDIT_SECURE_COOKIES: z.enum(['auto', 'always', 'never']).default('auto'),
  AUDIT_AUTH_STATE_PATH: z.string().min(1).optional(),
  AUDIT_LOGIN_MAX_FAILURES_PER_ADDRESS: intFrom(20, 1),
  HUBSPOT_PORTAL_ID: z
    .string()
    .regex(/^\d{1,20}$/, 'must be the numeric HubSpot account (portal) id')
    .optional(),
  JOURNAL_MASTER_KEY: z
    .string()
    .refine(
      (v) => /^[A-Za-z0-9+/]{43}=$/.test(v) && Buffer.from(v, 'base64').length === 32,
      'must be 32 random bytes in base64 (openssl rand -base64 32)',
    )
    .optional(),
  JOURNAL_MASTER_KEY_FILE: z.string().min(1).optional(),
  KEY_STORE_PATH: z.string().min(1).optional(),
  KEY_STORE_BACKUP: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_FORMAT: z.enum(['pretty', 'json']).optional(),
});

export type Env = z.infer<typeof EnvSchema>;

/** The rules shipped with the product (config/rules.json in the checkout). */
export const DEFAULT_RULES_PATH = resolve(PROJECT_ROOT, 'config/rules.json');
export const DEFAULT_RETENTION_PATH = resolve(PROJECT_ROOT, 'config/retention.json');

export type ArchiveStoreConfig =
  | { readonly kind: 'directory'; readonly dir: string }
  | {
      readonly kind: 'gcs';
      readonly bucket: string;
      /** '' or `a/b/`. */
      readonly prefix: string;
      readonly baseUrl: string | undefined;
      /** A fixed access token, a service-account key file, or null for application default credentials. */
      readonly credentials: { readonly accessToken: string } | { readonly keyFile: string } | null;
      readonly requireRetention: boolean;
    };

const SCHEDULE_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `off`, `hourly`, `daily` or `<n>s|m|h|d` → ms between runs (null: off); undefined when unreadable. */
export function parseArchiveSchedule(value: string): number | null | undefined {
  const v = value.trim().toLowerCase();
  if (v === 'off') return null;
  if (v === 'hourly') return 3_600_000;
  if (v === 'daily') return 86_400_000;
  const m = /^(\d{1,7})(s|m|h|d)$/.exec(v);
  if (!m || Number(m[1]) < 1) return undefined;
  return Number(m[1]) * (SCHEDULE_UNITS[m[2] as string] as number);
}

/** `gs://bucket/prefix` (or `gcs://`); the prefix '' or ending in '/'. */
export function parseBucketUrl(url: string): { bucket: string; prefix: string } | null {
  const m = /^(?:gs|gcs):\/\/([^/]+)(?:\/(.*))?$/.exec(url);
  if (!m || !/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/.test(m[1] as string)) return null;
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix.split('/').some((p) => p === '..' || p === '.') || !/^[A-Za-z0-9._/-]*$/.test(prefix)) return null;
  return { bucket: m[1] as string, prefix: prefix === '' ? '' : `${prefix}/` };
}

export interface Config {
  readonly journal: {
    readonly path: string;
    readonly keysDir: string;
    readonly maxPayloadBytes: number;
    readonly checkpointEveryEntries: number;
    readonly checkpointEveryMs: number;
    readonly anchorDirs: readonly string[];
    /** True when the anchor directory is the embedded default (created on demand); configured ones must already exist. */
    readonly createAnchorDirs: boolean;
    readonly anchorUrls: readonly string[];
    readonly anchorToken: string | undefined;
    /** The retention policy file (classes and the kind/source rules that stamp them). */
    readonly retentionPath: string;
    /** The directory archive store (the store `archive` writes to unless ARCHIVE_STORE names a bucket). */
    readonly archiveDir: string;
    /** Where `archive` (and the scheduled run) writes sealed segments. */
    readonly archiveStore: ArchiveStoreConfig;
    /** How often the journal service archives on its own; null: never (only `activity-journal archive`). */
    readonly archiveSchedule: { readonly everyMs: number; readonly firstAfterMs: number } | null;
  };
  readonly service: {
    readonly listen: Listen;
    /** How clients reach the service: http://host:port or unix:/path. */
    readonly url: string;
    readonly appendToken: string | undefined;
    readonly readToken: string | undefined;
  };
  readonly pipeline: {
    /** Null when not configured: `npm start` then uses (or starts) Redis on 127.0.0.1:6379. */
    readonly redisUrl: string | null;
    readonly queuePrefix: string;
    readonly openai: {
      readonly apiKey: string;
      readonly baseURL: string | undefined;
      readonly model: string;
      readonly timeoutMs: number;
      readonly maxRetries: number;
    } | null;
    readonly modelConcurrency: number;
    readonly workerConcurrency: number;
    readonly rulesPath: string;
    readonly redactionRules: readonly string[] | 'default';
    readonly modelInputMaxChars: number;
    readonly identifierKey: string | undefined;
    readonly stateDir: string;
    /** How long a job stays locked to its worker; a worker that died is noticed (and its jobs retried) after about this long. */
    readonly jobLockMs: number;
    /** The crm-batch queue's own lock (short, renewed while the job runs): a killed worker's batch is taken back after about this long, twice over. */
    readonly crmBatchLockMs: number;
    /** Gmail inboxes: null until an OAuth client is configured. */
    readonly gmail: {
      readonly clientId: string;
      readonly clientSecret: string;
      readonly redirectUrl: string;
      readonly tokenUrl: string | undefined;
      readonly apiRoot: string | undefined;
      readonly backfillDays: number;
      readonly syncEveryMs: number;
      readonly quotaUnitsPerMinute: number;
      /** readonly: whole messages; metadata: headers only (privacy mode, no bodies ever fetched). */
      readonly scope: 'readonly' | 'metadata';
      readonly includeLabels: readonly string[];
      readonly excludeLabels: readonly string[];
    } | null;
    /** The HubSpot mirror: null (dry-run: journal what would be written) until an access token is set. */
    readonly hubspot: {
      readonly accessToken: string;
      readonly basePath: string | undefined;
      /** Requests per window shared by every worker process (the crm-batch queue's BullMQ limiter). */
      readonly rateLimit: { readonly max: number; readonly durationMs: number };
      readonly batchWindowMs: number;
      readonly batchSize: number;
      /** How long written activities are gathered before their associations are written (one call per type pair). */
      readonly linkWindowMs: number;
      readonly dailyReserve: number;
      readonly createContacts: 'never' | 'inbound' | 'always';
      readonly dealRule: 'single-open-deal' | 'none';
      /** The HubSpot account's time zone: its daily API limit resets at midnight there. */
      readonly timeZone: string;
      /** How long HubSpot's search index may lag a write (search-before-create waits this out before it creates again). */
      readonly searchIndexDelayMs: number;
    } | null;
    /** Polled forms (HubSpot form guids, Google Forms), and how often and how far back they are read. */
    readonly forms: {
      readonly pollEveryMs: number;
      readonly backfillDays: number;
      /** Null without HUBSPOT_ACCESS_TOKEN and HUBSPOT_FORMS_POLL. */
      readonly hubspot: {
        readonly accessToken: string;
        readonly basePath: string | undefined;
        readonly forms: readonly { readonly guid: string; readonly name: string }[];
      } | null;
      /** Null without a Google OAuth client (GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET). */
      readonly google: {
        readonly clientId: string;
        readonly clientSecret: string;
        readonly redirectUrl: string;
        readonly tokenUrl: string | undefined;
        readonly apiRoot: string | undefined;
      } | null;
    };
    /** How often the workers look for accepted interactions whose jobs were lost, and how old they must be. */
    readonly redriveIntervalMs: number;
    readonly redriveGraceMs: number;
    /** Notification delivery: SMTP (null without SMTP_HOST), and the secrets rules.json names by variable. */
    readonly notify: {
      readonly smtp: {
        readonly host: string;
        readonly port: number;
        /** starttls: upgrade required (port 587); implicit: TLS from the start (465); none: plain, e.g. a local relay. */
        readonly tls: 'starttls' | 'implicit' | 'none';
        readonly rejectUnauthorized: boolean;
        readonly auth: { readonly user: string; readonly pass: string } | null;
        readonly from: string;
      } | null;
      /** The value of an environment variable named in the rules (Slack webhook URLs, webhook URLs and secrets). */
      readonly secret: (name: string) => string | undefined;
    };
  };
  readonly web: {
    readonly listen: Listen;
    /** Where the worker serves its own /metrics (null: off); the web server's /metrics gathers it from there. */
    readonly workerMetrics: { readonly host: string; readonly port: number } | null;
    readonly webhooks: {
      /** The base URL providers call; their signatures cover it. */
      readonly publicUrl: string;
      readonly maxBodyBytes: number;
      readonly twilioAuthToken: string | undefined;
      readonly aircallToken: string | undefined;
      readonly callsSecret: string | undefined;
      readonly formsSecret: string | undefined;
      readonly hubspotClientSecret: string | undefined;
    };
  };
  /** The audit UI and its API. */
  readonly audit: {
    /** The users file (ids, roles, scrypt hashes, hashed API tokens). */
    readonly usersPath: string;
    /** Undefined: a generated secret in the state directory. */
    readonly sessionSecret: string | undefined;
    readonly sessionTtlMs: number;
    /** The derived read index (rebuildable; not evidence). */
    readonly indexPath: string;
    readonly secureCookies: 'auto' | 'always' | 'never';
    /** Revoked sessions and failed sign-in counters, shared by the web processes on this host. */
    readonly authStatePath: string;
    /** Failed sign-ins from one client address (over every name) in 15 minutes before it is locked out. */
    readonly loginMaxFailuresPerAddress: number;
    /** For links from CRM writes into HubSpot. */
    readonly hubspotPortalId: string | undefined;
  };
  /** Crypto-shredding and secrets at rest. */
  readonly privacy: {
    /** JOURNAL_MASTER_KEY (base64, 32 bytes), when given in the environment. */
    readonly masterKey: string | undefined;
    /** Where the master key is read from when not in the environment (created there, 0600, when missing). */
    readonly masterKeyFile: string;
    /** True when JOURNAL_MASTER_KEY_FILE named it: a missing file is then an error, not created. */
    readonly masterKeyFileGiven: boolean;
    /** The per-subject key store (SQLite, 0600), apart from the journal. */
    readonly keyStorePath: string;
    /** Its mirror: every key creation and destruction is written here too. */
    readonly keyStoreBackupPath: string;
  };
  readonly shutdownDeadlineMs: number;
  /** How long `start` waits for every process to answer before it says which does not (and goes on waiting). */
  readonly startupReportMs: number;
  readonly logLevel: string;
  /** LOG_FORMAT: forced 'pretty' or 'json'; unset, pretty when stderr is a terminal (see src/config/logger.ts). */
  readonly logFormat?: 'pretty' | 'json';
}

export function parseListen(value: string): Listen | null {
  if (value.startsWith('unix:')) return { kind: 'unix', path: resolve(value.slice(5)) };
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value);
  if (!m) return null;
  const port = Number(m[2]);
  if (port > 65535) return null;
  return { kind: 'tcp', host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
}

/** Parses the environment (and overrides from the command line, e.g. --journal). Throws ConfigError listing every problem. */
export function loadConfig(env: NodeJS.ProcessEnv, overrides: { journalPath?: string | undefined } = {}): Config {
  // An empty variable (`FOO=` in a .env file) means "not set", as most tools treat it.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = EnvSchema.safeParse(present);
  // Every problem at once: the checks below run even when some values failed the schema. They run on the
  // environment without the failed variables (each then takes its default), and a check that reads a failed
  // variable is skipped (`usable`), so that no problem is reported about a default nobody set.
  const problems: string[] = parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  const failed = new Set(parsed.success ? [] : parsed.error.issues.map((i) => String(i.path[0])));
  const usable = (...names: (keyof Env)[]): boolean => names.every((n) => !failed.has(n));
  const rest = parsed.success ? parsed : EnvSchema.safeParse(Object.fromEntries(Object.entries(present).filter(([k]) => !failed.has(k))));
  if (!rest.success) throw new ConfigError(problems);
  const e = rest.data;
  const path = resolve(overrides.journalPath ?? e.JOURNAL_PATH);
  const dataDir = dirname(path);
  const listen = parseListen(e.JOURNAL_SERVICE_LISTEN);
  if (!listen && usable('JOURNAL_SERVICE_LISTEN'))
    problems.push(`JOURNAL_SERVICE_LISTEN: expected HOST:PORT or unix:/path, got ${JSON.stringify(e.JOURNAL_SERVICE_LISTEN)}`);
  const web = parseListen(e.WEB_LISTEN);
  if ((!web || web.kind !== 'tcp') && usable('WEB_LISTEN'))
    problems.push(`WEB_LISTEN: expected HOST:PORT, got ${JSON.stringify(e.WEB_LISTEN)}`);
  const workerMetrics = e.WORKER_METRICS_LISTEN === 'off' ? null : parseListen(e.WORKER_METRICS_LISTEN);
  if (e.WORKER_METRICS_LISTEN !== 'off' && workerMetrics?.kind !== 'tcp' && usable('WORKER_METRICS_LISTEN'))
    problems.push(`WORKER_METRICS_LISTEN: expected HOST:PORT or off, got ${JSON.stringify(e.WORKER_METRICS_LISTEN)}`);
  const hubspotForms = e.HUBSPOT_FORMS_POLL.map((item) => {
    const [guid = '', name] = item.split('=').map((x) => x.trim());
    return { guid, name: name && name.length > 0 ? name : guid };
  });
  for (const f of hubspotForms)
    if (!/^[A-Za-z0-9-]{1,64}$/.test(f.guid) && usable('HUBSPOT_FORMS_POLL'))
      problems.push(`HUBSPOT_FORMS_POLL: ${JSON.stringify(f.guid)} is not a form guid (expected guid or guid=name, comma-separated)`);
  if (hubspotForms.length > 0 && !e.HUBSPOT_ACCESS_TOKEN && usable('HUBSPOT_FORMS_POLL', 'HUBSPOT_ACCESS_TOKEN'))
    problems.push('HUBSPOT_FORMS_POLL: polling needs HUBSPOT_ACCESS_TOKEN (a private app token with the "forms" scope)');
  if ((e.SMTP_USER === undefined) !== (e.SMTP_PASSWORD === undefined) && usable('SMTP_USER', 'SMTP_PASSWORD'))
    problems.push('SMTP_USER and SMTP_PASSWORD: set both (SMTP authentication) or neither');
  const archiveEvery = parseArchiveSchedule(e.ARCHIVE_SCHEDULE);
  if (archiveEvery === undefined && usable('ARCHIVE_SCHEDULE'))
    problems.push(`ARCHIVE_SCHEDULE: expected off, hourly, daily or a period like 6h, 30m, 1d; got ${JSON.stringify(e.ARCHIVE_SCHEDULE)}`);
  let archiveStore: ArchiveStoreConfig = { kind: 'directory', dir: resolve(e.ARCHIVE_DIR ?? join(dataDir, 'archive')) };
  if (e.ARCHIVE_STORE !== undefined && e.ARCHIVE_STORE !== 'directory') {
    const b = parseBucketUrl(e.ARCHIVE_STORE);
    if (!b)
      problems.push(
        `ARCHIVE_STORE: expected "directory" (ARCHIVE_DIR) or gs://bucket/optional/prefix, got ${JSON.stringify(e.ARCHIVE_STORE)}`,
      );
    else {
      archiveStore = {
        kind: 'gcs',
        ...b,
        baseUrl: e.GCS_BASE_URL,
        credentials: e.GCS_ACCESS_TOKEN
          ? { accessToken: e.GCS_ACCESS_TOKEN }
          : e.GOOGLE_APPLICATION_CREDENTIALS
            ? { keyFile: resolve(e.GOOGLE_APPLICATION_CREDENTIALS) }
            : null,
        requireRetention: e.GCS_REQUIRE_RETENTION === 'true',
      };
    }
  }
  // Whatever the webhook limit admits must be journaled. An interaction's payload is built from its body (text
  // lines, participants, metadata) and stays near the body's size, but nothing bounds it by it exactly, so the
  // journal's limit keeps a margin: at least twice the webhook's. Unset, the webhook limit follows from it.
  const webhookMaxBody = e.WEBHOOK_MAX_BODY_BYTES ?? Math.min(1024 * 1024, Math.floor(e.JOURNAL_MAX_PAYLOAD_BYTES / 2));
  if (webhookMaxBody * 2 > e.JOURNAL_MAX_PAYLOAD_BYTES && usable('WEBHOOK_MAX_BODY_BYTES', 'JOURNAL_MAX_PAYLOAD_BYTES')) {
    problems.push(
      `WEBHOOK_MAX_BODY_BYTES: ${webhookMaxBody} admits webhook bodies the journal could refuse (JOURNAL_MAX_PAYLOAD_BYTES is ${e.JOURNAL_MAX_PAYLOAD_BYTES}); set it to at most half of JOURNAL_MAX_PAYLOAD_BYTES (${Math.floor(e.JOURNAL_MAX_PAYLOAD_BYTES / 2)}), or raise JOURNAL_MAX_PAYLOAD_BYTES`,
    );
  }
  for (const u of e.JOURNAL_ANCHOR_URLS)
    if (!/^https?:\/\//.test(u) && usable('JOURNAL_ANCHOR_URLS')) problems.push(`JOURNAL_ANCHOR_URLS: ${u} is not an http(s) URL`);
  if (problems.length > 0) throw new ConfigError(problems);
  const l = listen as Listen;
  const defaultUrl = l.kind === 'unix' ? `unix:${l.path}` : `http://${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`;
  return {
    journal: {
      path,
      keysDir: resolve(e.JOURNAL_KEYS_DIR ?? join(dataDir, 'keys')),
      maxPayloadBytes: e.JOURNAL_MAX_PAYLOAD_BYTES,
      checkpointEveryEntries: e.JOURNAL_CHECKPOINT_EVERY_ENTRIES,
      checkpointEveryMs: e.JOURNAL_CHECKPOINT_EVERY_SECONDS * 1000,
      anchorDirs:
        e.JOURNAL_ANCHOR_DIRS === undefined
          ? [join(dataDir, 'anchors')]
          : e.JOURNAL_ANCHOR_DIRS.split(',')
              .map((s) => s.trim())
              .filter(Boolean)
              .map((d) => resolve(d)),
      createAnchorDirs: e.JOURNAL_ANCHOR_DIRS === undefined,
      anchorUrls: e.JOURNAL_ANCHOR_URLS,
      anchorToken: e.JOURNAL_ANCHOR_TOKEN,
      retentionPath: e.RETENTION_POLICY_PATH ? resolve(e.RETENTION_POLICY_PATH) : DEFAULT_RETENTION_PATH,
      archiveDir: resolve(e.ARCHIVE_DIR ?? join(dataDir, 'archive')),
      archiveStore,
      archiveSchedule: typeof archiveEvery === 'number' ? { everyMs: archiveEvery, firstAfterMs: Math.min(archiveEvery, 600_000) } : null,
    },
    service: { listen: l, url: e.JOURNAL_SERVICE_URL ?? defaultUrl, appendToken: e.JOURNAL_APPEND_TOKEN, readToken: e.JOURNAL_READ_TOKEN },
    pipeline: {
      redisUrl: e.REDIS_URL ?? null,
      queuePrefix: e.QUEUE_PREFIX,
      openai: e.OPENAI_API_KEY
        ? {
            apiKey: e.OPENAI_API_KEY,
            baseURL: e.OPENAI_BASE_URL,
            model: e.OPENAI_MODEL,
            timeoutMs: e.OPENAI_TIMEOUT_SECONDS * 1000,
            maxRetries: e.OPENAI_MAX_RETRIES,
          }
        : null,
      modelConcurrency: e.MODEL_CONCURRENCY,
      workerConcurrency: e.WORKER_CONCURRENCY,
      rulesPath: e.RULES_PATH ? resolve(e.RULES_PATH) : DEFAULT_RULES_PATH,
      redactionRules:
        e.REDACTION_RULES.trim() === 'default'
          ? 'default'
          : e.REDACTION_RULES.split(',')
              .map((x) => x.trim())
              .filter(Boolean),
      modelInputMaxChars: e.MODEL_INPUT_MAX_CHARS,
      identifierKey: e.PIPELINE_IDENTIFIER_KEY,
      stateDir: join(dataDir, 'state'),
      jobLockMs: e.JOB_LOCK_SECONDS * 1000,
      crmBatchLockMs: e.CRM_BATCH_LOCK_SECONDS * 1000,
      notify: {
        smtp: e.SMTP_HOST
          ? {
              host: e.SMTP_HOST,
              port: e.SMTP_PORT ?? (e.SMTP_TLS === 'implicit' ? 465 : e.SMTP_TLS === 'starttls' ? 587 : 25),
              tls: e.SMTP_TLS,
              rejectUnauthorized: e.SMTP_TLS_REJECT_UNAUTHORIZED === 'true',
              auth: e.SMTP_USER && e.SMTP_PASSWORD ? { user: e.SMTP_USER, pass: e.SMTP_PASSWORD } : null,
              from: e.SMTP_FROM,
            }
          : null,
        secret: (name: string): string | undefined => present[name],
      },
      gmail:
        e.GOOGLE_CLIENT_ID && e.GOOGLE_CLIENT_SECRET
          ? {
              clientId: e.GOOGLE_CLIENT_ID,
              clientSecret: e.GOOGLE_CLIENT_SECRET,
              redirectUrl:
                e.GOOGLE_REDIRECT_URL ?? `${(e.WEBHOOK_PUBLIC_URL ?? `http://${e.WEB_LISTEN}`).replace(/\/$/, '')}/oauth/gmail/callback`,
              tokenUrl: e.GOOGLE_TOKEN_URL,
              apiRoot: e.GMAIL_API_ROOT,
              backfillDays: e.GMAIL_BACKFILL_DAYS,
              syncEveryMs: e.GMAIL_SYNC_EVERY_SECONDS * 1000,
              quotaUnitsPerMinute: e.GMAIL_QUOTA_UNITS_PER_MINUTE,
              scope: e.GMAIL_SCOPE,
              includeLabels: e.GMAIL_INCLUDE_LABELS,
              excludeLabels: e.GMAIL_EXCLUDE_LABELS,
            }
          : null,
      hubspot: e.HUBSPOT_ACCESS_TOKEN
        ? {
            accessToken: e.HUBSPOT_ACCESS_TOKEN,
            basePath: e.HUBSPOT_BASE_PATH,
            rateLimit: { max: e.HUBSPOT_RATE_LIMIT_MAX, durationMs: e.HUBSPOT_RATE_LIMIT_WINDOW_MS },
            batchWindowMs: e.HUBSPOT_BATCH_WINDOW_MS,
            batchSize: e.HUBSPOT_BATCH_SIZE,
            linkWindowMs: e.HUBSPOT_LINK_WINDOW_MS,
            dailyReserve: e.HUBSPOT_DAILY_RESERVE,
            createContacts: e.HUBSPOT_CREATE_CONTACTS,
            dealRule: e.HUBSPOT_DEAL_RULE,
            timeZone: e.HUBSPOT_TIME_ZONE,
            searchIndexDelayMs: e.HUBSPOT_SEARCH_INDEX_DELAY_MS,
          }
        : null,
      forms: {
        pollEveryMs: e.FORMS_POLL_EVERY_SECONDS * 1000,
        backfillDays: e.FORMS_BACKFILL_DAYS,
        hubspot:
          e.HUBSPOT_ACCESS_TOKEN && hubspotForms.length > 0
            ? { accessToken: e.HUBSPOT_ACCESS_TOKEN, basePath: e.HUBSPOT_BASE_PATH, forms: hubspotForms }
            : null,
        google:
          e.GOOGLE_CLIENT_ID && e.GOOGLE_CLIENT_SECRET
            ? {
                clientId: e.GOOGLE_CLIENT_ID,
                clientSecret: e.GOOGLE_CLIENT_SECRET,
                redirectUrl:
                  e.GOOGLE_FORMS_REDIRECT_URL ??
                  `${(e.WEBHOOK_PUBLIC_URL ?? `http://${e.WEB_LISTEN}`).replace(/\/$/, '')}/oauth/google-forms/callback`,
                tokenUrl: e.GOOGLE_TOKEN_URL,
                apiRoot: e.GOOGLE_FORMS_API_ROOT,
              }
            : null,
      },
      redriveIntervalMs: e.REDRIVE_INTERVAL_SECONDS * 1000,
      redriveGraceMs: e.REDRIVE_GRACE_SECONDS * 1000,
    },
    web: {
      listen: web as Listen,
      workerMetrics: workerMetrics?.kind === 'tcp' ? { host: workerMetrics.host, port: workerMetrics.port } : null,
      webhooks: {
        publicUrl: e.WEBHOOK_PUBLIC_URL ?? `http://${e.WEB_LISTEN}`,
        maxBodyBytes: webhookMaxBody,
        twilioAuthToken: e.TWILIO_AUTH_TOKEN,
        aircallToken: e.AIRCALL_WEBHOOK_TOKEN,
        callsSecret: e.CALLS_WEBHOOK_SECRET,
        formsSecret: e.FORMS_WEBHOOK_SECRET,
        hubspotClientSecret: e.HUBSPOT_CLIENT_SECRET,
      },
    },
    audit: {
      usersPath: resolve(e.AUDIT_USERS_PATH ?? join(dataDir, 'audit-users.json')),
      sessionSecret: e.AUDIT_SESSION_SECRET,
      sessionTtlMs: e.AUDIT_SESSION_HOURS * 3_600_000,
      indexPath: resolve(e.AUDIT_INDEX_PATH ?? join(dataDir, 'audit-index.sqlite')),
      secureCookies: e.AUDIT_SECURE_COOKIES,
      authStatePath: resolve(e.AUDIT_AUTH_STATE_PATH ?? join(dataDir, 'audit-auth-state.sqlite')),
      loginMaxFailuresPerAddress: e.AUDIT_LOGIN_MAX_FAILURES_PER_ADDRESS,
      hubspotPortalId: e.HUBSPOT_PORTAL_ID,
    },
    privacy: {
      masterKey: e.JOURNAL_MASTER_KEY,
      masterKeyFile: resolve(e.JOURNAL_MASTER_KEY_FILE ?? join(dataDir, 'secrets', 'master.key')),
      masterKeyFileGiven: e.JOURNAL_MASTER_KEY_FILE !== undefined,
      keyStorePath: resolve(e.KEY_STORE_PATH ?? join(dataDir, 'privacy', 'subject-keys.sqlite')),
      // Next to the data directory, not inside it: losing the data directory must not take the backup with it.
      keyStoreBackupPath: resolve(e.KEY_STORE_BACKUP ?? join(dirname(dataDir), `${basename(dataDir)}-key-backup`, 'subject-keys.sqlite')),
    },
    shutdownDeadlineMs: e.SHUTDOWN_DEADLINE_SECONDS * 1000,
    startupReportMs: e.STARTUP_REPORT_SECONDS * 1000,
    logLevel: e.LOG_LEVEL,
    ...(e.LOG_FORMAT ? { logFormat: e.LOG_FORMAT } : {}),
  };
}
