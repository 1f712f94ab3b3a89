/**
 * The one place where configuration, connectors and workers are wired together, for every process that runs
 * the pipeline (the worker; the web process and CLI commands as producer-only pipelines).
 *
 * Read it top to bottom in `startPipeline`: Redis, then the pipeline, then the connectors (each built from its
 * own settings type, which jobs/settings.ts maps from `Config`), then the workers and what runs beside them.
 * The helpers above it (journal client, classifier, webhook receivers) are shared with the web process.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import type { Config } from '../src/config/config.ts';
import type { Logger } from '../src/config/logger.ts';
import type { JournalClient } from '../src/journal/journal-client.ts';
import { HttpJournalClient } from '../src/journal/service/http-client.ts';
import { resolveCredentials } from '../src/journal/service/credentials.ts';
import { loadOrCreateSecret } from '../src/journal/keys.ts';
import { Pipeline } from '../src/pipeline/pipeline.ts';
import { OfflineClassifier } from '../src/pipeline/offline-classifier.ts';
import type { Classifier } from '../src/pipeline/classification.ts';
import { loadPrompt } from '../src/pipeline/prompts.ts';
import { loadRuleset, type Ruleset } from '../src/pipeline/rules.ts';
import { RetentionPolicy } from '../src/journal/retention.ts';
import { DEFAULT_MAX_CHARS, redactionRulesFromConfig } from '../src/pipeline/minimise.ts';
import { DryRunCrm } from '../src/pipeline/dry-run-crm.ts';
import { Notifications } from '../src/pipeline/notifications.ts';
import { RedisDecisionCache } from '../src/pipeline/decision-cache.ts';
import type { ActivitySource, CrmClient } from '../src/pipeline/ports.ts';
import type { JobHandler, QueueName } from '../src/pipeline/job-catalog.ts';
import { AircallReceiver, GenericCallReceiver, TwilioReceiver } from '../connectors/calls/index.ts';
import { GenericFormReceiver, HubSpotFormReceiver } from '../connectors/forms/index.ts';
import type { WebhookReceiver } from '../src/pipeline/webhook.ts';
import { closeQueues, createQueues, enqueueVia, evictionWarning, reviveVia, syncSchedulerVia, type Queues } from './queues.ts';
import { producerRedis, redisAddress, workerRedis } from './redis-connection.ts';
import { startWorkers, type WorkerSet } from './workers.ts';
import { startRedriveLoop, type RedriveLoop } from './redrive.ts';
import { hubspotMirror, type HubSpotMirror } from './hubspot.ts';
import { formsSettings, gmailSettings, hubspotSettings, notifySettings } from './settings.ts';
import { gmailConnector, type GmailConnector, type GmailDeps } from '../connectors/gmail/gmail.connector.ts';
import { formsConnector, type FormsConnector, type FormsDeps } from '../connectors/forms/forms.connector.ts';
import { configuredChannels } from '../connectors/notify/index.ts';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const CLASSIFY_PROMPT = { id: 'classify-interaction', version: 'v1' } as const;

export interface PipelineRuntime {
  readonly pipeline: Pipeline;
  readonly queues: Queues;
  readonly workers: WorkerSet | null;
  readonly journal: JournalClient;
  readonly redis: Redis;
  readonly classifier: Classifier;
  /** The lost-job re-drive loop (null when no workers run here). */
  readonly redrive: RedriveLoop | null;
  /** The Gmail connector, when an OAuth client is configured. */
  readonly gmail: GmailConnector | null;
  /** The HubSpot mirror (batched writes, drift), or null in dry-run mode. */
  readonly hubspot: HubSpotMirror | null;
  /** Polled forms (HubSpot submissions, Google Forms responses). */
  readonly forms: FormsConnector;
  close(): Promise<void>;
}

export interface PipelineOverrides {
  /** Default: the journal service at config.service.url. */
  readonly journal?: JournalClient;
  readonly classifier?: Classifier;
  readonly crm?: CrmClient;
  readonly sources?: ReadonlyMap<string, ActivitySource>;
  /** Start workers for these queues (default all); an empty list starts none (producer only). */
  readonly queues?: readonly QueueName[];
  readonly prefix?: string;
  /**
   * A producer that must answer its own callers in time (the web process): Redis is not waited for at start,
   * and a job that cannot be queued fails at once with QueueUnavailableError (see redis-connection.ts).
   * Only with `queues: []`.
   */
  readonly failFast?: boolean;
}

/** The journal client every pipeline process uses: the journal service, with the credentials from config or the keys dir. */
export function journalServiceClient(config: Config): HttpJournalClient {
  const creds = resolveCredentials(config.journal.keysDir, config.service, false);
  if (!creds)
    throw new Error(
      `no journal service credentials: set JOURNAL_APPEND_TOKEN and JOURNAL_READ_TOKEN, or start the journal service once on this machine (it writes ${config.journal.keysDir}/service-credentials.json)`,
    );
  return new HttpJournalClient({ url: config.service.url, appendToken: creds.appendToken, readToken: creds.readToken });
}

/** The offline classifier, or the OpenAI one when OPENAI_API_KEY is set (openai is loaded only then: ~90 ms, 14 MB). */
export async function configuredClassifier(config: Config, ownDomains: readonly string[]): Promise<Classifier> {
  const ai = config.pipeline.openai;
  if (!ai) return new OfflineClassifier({ ownDomains });
  const { OpenAiClassifier } = await import('../connectors/openai/openai.classifier.ts');
  return new OpenAiClassifier({
    apiKey: ai.apiKey,
    model: ai.model,
    timeoutMs: ai.timeoutMs,
    maxRetries: ai.maxRetries,
    ...(ai.baseURL ? { baseURL: ai.baseURL } : {}),
  });
}

/** Where the locally generated form-webhook secret lives (in the pipeline's state directory, mode 0600). */
export const LOCAL_FORMS_SECRET_FILE = 'forms-webhook.key';

/**
 * The generic form receiver's secret: FORMS_WEBHOOK_SECRET when set; else one generated on the web process's
 * first start (`create`), so that a fresh install takes signed form submissions from `activity-journal
 * send-sample` (and a local site) with nothing configured. Readers never create it.
 */
export function formsWebhookSecret(config: Config, create = false): string | undefined {
  const configured = config.web.webhooks.formsSecret;
  if (configured) return configured;
  if (!create && !existsSync(join(config.pipeline.stateDir, LOCAL_FORMS_SECRET_FILE))) return undefined;
  return loadOrCreateSecret(config.pipeline.stateDir, LOCAL_FORMS_SECRET_FILE).toString('hex');
}

/** The webhook receivers whose secrets are configured; a provider without one is answered 404 (and journaled). */
export function configuredReceivers(config: Config): Map<string, WebhookReceiver> {
  const w = config.web.webhooks;
  const formsSecret = formsWebhookSecret(config);
  const list: WebhookReceiver[] = [];
  if (w.twilioAuthToken) list.push(new TwilioReceiver({ authToken: w.twilioAuthToken }));
  if (w.aircallToken) list.push(new AircallReceiver({ webhookToken: w.aircallToken }));
  if (w.callsSecret) list.push(new GenericCallReceiver({ secret: w.callsSecret }));
  if (formsSecret) list.push(new GenericFormReceiver({ secret: formsSecret }));
  if (w.hubspotClientSecret) list.push(new HubSpotFormReceiver({ clientSecret: w.hubspotClientSecret }));
  return new Map(list.map((r) => [r.provider, r]));
}

/**
 * Builds the pipeline and (unless told otherwise) its workers, in the order a reader can follow:
 * connect Redis → build the pipeline (journal, classifier, rules, notifications, CRM) → build the connectors →
 * start the workers → start what runs beside them (re-drive, sync schedules, sweeper) → hand back `close`.
 */
export async function startPipeline(config: Config, logger: Logger, overrides: PipelineOverrides = {}): Promise<PipelineRuntime> {
  const log = logger.child({ component: 'jobs.main' });
  const failFast = overrides.failFast === true;
  if (failFast && overrides.queues?.length !== 0) throw new Error('failFast is for producer-only pipelines (queues: [])');
  const redisUrl = config.pipeline.redisUrl ?? DEFAULT_REDIS_URL;
  const redis = await connectRedis(redisUrl, failFast, log);
  const prefix = overrides.prefix ?? config.pipeline.queuePrefix;
  const core = await buildPipeline(config, logger, overrides, { redis, redisUrl, prefix, failFast });
  const { pipeline, journal, queues } = core;
  const connectors = buildConnectors(config, { journal, pipeline, syncs: syncSchedulerVia(queues), redis, prefix, logger });
  const workers = startPipelineWorkers(config, core, connectors, {
    redis,
    prefix,
    logger,
    ...(overrides.queues ? { queues: overrides.queues } : {}),
  });
  const keepers = workers ? await startKeepers(config, core, connectors, { redis, prefix, logger, log }) : null;
  // Said once, by the process whose workers run (the web's producer-only pipeline only takes webhooks in).
  const ready = {
    classifier: `${core.classifier.provider}/${core.classifier.model}`,
    crm: core.hubspot ? 'hubspot' : 'dry-run',
    rules: core.rules.version,
    notify: core.notifier.describe(),
    prefix,
  };
  if (workers) log.info(ready, 'pipeline ready');
  else log.debug(ready, 'producer-only pipeline ready (no workers here)');
  let closing: Promise<void> | null = null;
  return {
    pipeline,
    queues,
    workers,
    journal,
    redis,
    classifier: core.classifier,
    redrive: keepers?.redrive ?? null,
    gmail: connectors.gmail,
    hubspot: core.hubspot,
    forms: connectors.forms,
    // In reverse: what runs beside the workers, the workers (in-flight jobs get the shutdown deadline), the
    // queues, delivery, the journal client (unless handed in), Redis.
    close(): Promise<void> {
      closing ??= (async () => {
        await keepers?.stop();
        await workers?.close(config.shutdownDeadlineMs);
        await closeQueues(queues);
        core.delivery.close();
        if (!overrides.journal) await journal.close();
        redis.disconnect();
      })();
      return closing;
    },
  };
}

/** Step 1: Redis, connected, with a warning when it may evict keys. A fail-fast producer starts without it. */
async function connectRedis(redisUrl: string, failFast: boolean, log: Logger): Promise<Redis> {
  const redis = failFast ? producerRedis(redisUrl) : workerRedis(redisUrl);
  try {
    await redis.connect();
    const warning = await evictionWarning(redis);
    if (warning) log.warn({}, warning);
  } catch (err) {
    // A producer that answers callers starts without Redis (it reconnects by itself; until then its callers get
    // 503s); everything else needs Redis to do anything.
    if (!failFast) {
      redis.disconnect();
      throw new Error(`cannot reach Redis at ${redisAddress(redisUrl)}: ${(err as Error).message}`, { cause: err });
    }
    log.warn({ redis: redisAddress(redisUrl) }, 'Redis not reachable yet: webhooks are answered 503 until it is');
  }
  return redis;
}

/** What step 2 builds: the pipeline and the parts of it the other steps and the runtime hand on. */
interface PipelineCore {
  readonly pipeline: Pipeline;
  readonly journal: JournalClient;
  readonly classifier: Classifier;
  readonly rules: Ruleset;
  readonly queues: Queues;
  readonly notifier: Notifications;
  /** The notification channels' transports (closed last). */
  readonly delivery: { close(): void };
  readonly hubspot: HubSpotMirror | null;
}

/**
 * Step 2: the pipeline: the journal client, the classifier (and the offline fallback), the rules, the queues it
 * enqueues on, notifications, and the CRM the mirror stage writes to (the HubSpot mirror, a CRM handed in, or
 * the dry-run CRM that journals what would be written).
 */
async function buildPipeline(
  config: Config,
  logger: Logger,
  overrides: PipelineOverrides,
  o: { readonly redis: Redis; readonly redisUrl: string; readonly prefix: string; readonly failFast: boolean },
): Promise<PipelineCore> {
  const { redis, prefix } = o;
  const rules = loadRuleset(config.pipeline.rulesPath);
  const journal = overrides.journal ?? journalServiceClient(config);
  const classifier = overrides.classifier ?? (await configuredClassifier(config, rules.ownDomains));
  const queues = createQueues(redis, prefix);
  const identifierKey = config.pipeline.identifierKey
    ? Buffer.from(config.pipeline.identifierKey)
    : loadOrCreateSecret(config.pipeline.stateDir, 'identifier-hash.key');
  const delivery = await configuredChannels(notifySettings(config), rules).catch((err: unknown) => {
    redis.disconnect();
    throw err;
  });
  const notifier = new Notifications({ journal, rules, channels: delivery.channels, publicUrl: config.web.webhooks.publicUrl, logger });
  const hubspot = hubspotMirror(hubspotSettings(config), {
    journal,
    redis,
    queues,
    prefix,
    logger,
    ...(overrides.crm ? { crm: overrides.crm } : {}),
  });
  const pipeline = new Pipeline({
    journal,
    classifier,
    fallback: new OfflineClassifier({ ownDomains: rules.ownDomains }),
    prompt: loadPrompt(CLASSIFY_PROMPT.id, CLASSIFY_PROMPT.version),
    rules,
    minimise: {
      maxChars: config.pipeline.modelInputMaxChars ?? DEFAULT_MAX_CHARS,
      rules: redactionRulesFromConfig(config.pipeline.redactionRules),
    },
    crm: hubspot?.stageCrm ?? overrides.crm ?? new DryRunCrm(journal),
    notifier,
    cache: new RedisDecisionCache(redis, prefix),
    enqueue: enqueueVia(queues, o.failFast ? { redis, url: o.redisUrl } : undefined),
    ...(overrides.sources ? { sources: overrides.sources } : {}),
    identifierKey,
    // The journal service stamps classes by the same file; here only its `categories` are read (decide raises
    // a billing interaction's retention).
    retention: RetentionPolicy.load(config.journal.retentionPath),
    classifyTimeoutMs: (config.pipeline.openai?.timeoutMs ?? 30_000) * ((config.pipeline.openai?.maxRetries ?? 0) + 1) + 5_000,
    logger,
  });
  return { pipeline, journal, classifier, rules, queues, notifier, delivery, hubspot };
}

interface Connectors {
  readonly gmail: GmailConnector | null;
  readonly forms: FormsConnector;
}

/** Step 3: the polling connectors, each from its own settings (jobs/settings.ts): Gmail when configured, polled forms. */
function buildConnectors(config: Config, deps: GmailDeps & FormsDeps): Connectors {
  const gmail = gmailSettings(config);
  return { gmail: gmail ? gmailConnector(gmail, deps) : null, forms: formsConnector(formsSettings(config), deps) };
}

/** The sync-inbox job: one sync of a Gmail inbox, or one poll of a form. */
function syncInboxHandler({ gmail, forms }: Connectors): JobHandler<'sync-inbox'> {
  return (job) => {
    if (job.connector !== 'gmail') return forms.poll(job.connector, job.formId);
    return gmail ? gmail.sync(job.mailbox) : Promise.reject(new Error('Gmail is not configured (GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET)'));
  };
}

/**
 * Step 4: the workers of the queues this process runs (default all; an empty list: none, a producer-only
 * pipeline). The stages are the pipeline's; sync-inbox, notify and crm-batch have their own handlers.
 */
function startPipelineWorkers(
  config: Config,
  { pipeline, journal, notifier, hubspot }: PipelineCore,
  connectors: Connectors,
  o: { readonly redis: Redis; readonly prefix: string; readonly logger: Logger; readonly queues?: readonly QueueName[] },
): WorkerSet | null {
  if (o.queues && o.queues.length === 0) return null;
  return startWorkers({
    pipeline,
    journal,
    connection: o.redis,
    prefix: o.prefix,
    concurrency: {
      ingest: config.pipeline.workerConcurrency,
      classify: config.pipeline.modelConcurrency,
      decide: config.pipeline.workerConcurrency,
      mirror: config.pipeline.workerConcurrency,
      'crm-batch': 2,
    },
    logger: o.logger,
    lockMs: config.pipeline.jobLockMs,
    lockMsByQueue: { 'crm-batch': config.pipeline.crmBatchLockMs },
    handlers: {
      'sync-inbox': syncInboxHandler(connectors),
      notify: (data, signal, job) => notifier.deliver(data, job.attemptsMade + 1, signal),
      ...(hubspot ? { 'crm-batch': hubspot.handler(pipeline) } : {}),
    },
    ...(hubspot ? { limiters: { 'crm-batch': { max: hubspot.settings.limitMax, duration: hubspot.settings.limitDurationMs } } } : {}),
    ...(o.queues ? { queues: o.queues } : {}),
  });
}

interface Keepers {
  readonly redrive: RedriveLoop;
  /** Stops the sweeper, the schedule keeper and the re-drive loop. */
  stop(): Promise<void>;
}

/**
 * Step 5, where workers run: the lost-job re-drive loop, every inbox's and form's repeating sync, the HubSpot
 * batch sweeper, and the keeper that puts back sync schedules Redis lost.
 */
async function startKeepers(
  config: Config,
  { journal, queues, hubspot }: PipelineCore,
  { gmail, forms }: Connectors,
  o: { readonly redis: Redis; readonly prefix: string; readonly logger: Logger; readonly log: Logger },
): Promise<Keepers> {
  const { log } = o;
  const redrive = startRedriveLoop({
    redis: o.redis,
    prefix: o.prefix,
    journal,
    enqueue: reviveVia(queues),
    intervalMs: config.pipeline.redriveIntervalMs,
    graceMs: config.pipeline.redriveGraceMs,
    logger: o.logger,
  });
  if (gmail) await gmail.schedule();
  const sweeper = hubspot ? hubspot.startSweeper() : null;
  await forms.schedule();
  redrive.runOnce().catch((err: unknown) => log.error({ err: (err as Error).message }, 're-drive pass failed'));
  // Repeating syncs live in Redis: if Redis loses its data, they are gone with it. Put back the missing ones on
  // the re-drive's beat (the journal and the state store, not Redis, say which inboxes and forms exist).
  const keeper = setInterval(() => {
    Promise.all([gmail?.schedule(true), forms.schedule(true)]).catch((err: unknown) =>
      log.warn({ err: (err as Error).message }, 'could not restore the sync schedules'),
    );
  }, config.pipeline.redriveIntervalMs);
  keeper.unref();
  return {
    redrive,
    async stop() {
      sweeper?.stop();
      clearInterval(keeper);
      await redrive.stop();
    },
  };
}
