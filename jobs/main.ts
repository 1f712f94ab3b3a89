/**
 * The one place where configuration, connectors and workers are wired together.
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
import { loadRuleset } from '../src/pipeline/rules.ts';
import { RetentionPolicy } from '../src/journal/retention.ts';
import { DEFAULT_MAX_CHARS, redactionRulesFromConfig } from '../src/pipeline/minimise.ts';
import { DryRunCrm } from '../src/pipeline/dry-run-crm.ts';
import { Notifications } from '../src/pipeline/notifications.ts';
import { RedisDecisionCache } from '../src/pipeline/decision-cache.ts';
import type { ActivitySource, CrmClient } from '../src/pipeline/ports.ts';
import type { JobData, QueueName } from '../src/pipeline/job-catalog.ts';
import { AircallReceiver, GenericCallReceiver, TwilioReceiver } from '../connectors/calls/index.ts';
import { GenericFormReceiver, HubSpotFormReceiver } from '../connectors/forms/index.ts';
import type { WebhookReceiver } from '../src/pipeline/webhook.ts';
import { closeQueues, createQueues, enqueueVia, evictionWarning, reviveVia, type Queues } from './queues.ts';
import { producerRedis, redisAddress, workerRedis } from './redis-connection.ts';
import { startWorkers, type WorkerSet } from './workers.ts';
import { startRedriveLoop, type RedriveLoop } from './redrive.ts';
import { gmailConnector, type GmailConnector } from './gmail.ts';
import { hubspotMirror, type HubSpotMirror } from './hubspot.ts';
import { formsConnector, type FormsConnector } from './forms.ts';
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

/** Builds the pipeline and (unless told otherwise) its workers. */
export async function startPipeline(config: Config, logger: Logger, overrides: PipelineOverrides = {}): Promise<PipelineRuntime> {
  const log = logger.child({ component: 'jobs.main' });
  const redisUrl = config.pipeline.redisUrl ?? DEFAULT_REDIS_URL;
  const failFast = overrides.failFast === true;
  if (failFast && overrides.queues?.length !== 0) throw new Error('failFast is for producer-only pipelines (queues: [])');
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

  const prefix = overrides.prefix ?? config.pipeline.queuePrefix;
  const rules = loadRuleset(config.pipeline.rulesPath);
  const journal = overrides.journal ?? journalServiceClient(config);
  const classifier = overrides.classifier ?? (await configuredClassifier(config, rules.ownDomains));
  const queues = createQueues(redis, prefix);
  const identifierKey = config.pipeline.identifierKey
    ? Buffer.from(config.pipeline.identifierKey)
    : loadOrCreateSecret(config.pipeline.stateDir, 'identifier-hash.key');
  const delivery = await configuredChannels(config, rules).catch((err: unknown) => {
    redis.disconnect();
    throw err;
  });
  const notifier = new Notifications({ journal, rules, channels: delivery.channels, publicUrl: config.web.webhooks.publicUrl, logger });
  const hubspot = hubspotMirror(config, { journal, redis, queues, prefix, logger, ...(overrides.crm ? { crm: overrides.crm } : {}) });
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
    enqueue: enqueueVia(queues, failFast ? { redis, url: redisUrl } : undefined),
    ...(overrides.sources ? { sources: overrides.sources } : {}),
    identifierKey,
    // The journal service stamps classes by the same file; here only its `categories` are read (decide raises
    // a billing interaction's retention).
    retention: RetentionPolicy.load(config.journal.retentionPath),
    classifyTimeoutMs: (config.pipeline.openai?.timeoutMs ?? 30_000) * ((config.pipeline.openai?.maxRetries ?? 0) + 1) + 5_000,
    logger,
  });
  const gmail = gmailConnector(config, { journal, pipeline, queues, logger, redis, prefix });
  const forms = formsConnector(config, { journal, pipeline, queues, logger });
  const syncJob = (data: unknown): Promise<unknown> => {
    const job = data as JobData<'sync-inbox'>;
    if (job.connector !== 'gmail') return forms.poll(job.connector, job.formId);
    return gmail ? gmail.sync(job.mailbox) : Promise.reject(new Error('Gmail is not configured (GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET)'));
  };
  const workerQueues = overrides.queues ?? undefined;
  const workers =
    workerQueues && workerQueues.length === 0
      ? null
      : startWorkers({
          pipeline,
          journal,
          connection: redis,
          prefix,
          concurrency: {
            ingest: config.pipeline.workerConcurrency,
            classify: config.pipeline.modelConcurrency,
            decide: config.pipeline.workerConcurrency,
            mirror: config.pipeline.workerConcurrency,
            'crm-batch': 2,
          },
          logger,
          lockMs: config.pipeline.jobLockMs,
          lockMsByQueue: { 'crm-batch': config.pipeline.crmBatchLockMs },
          handlers: {
            'sync-inbox': syncJob,
            notify: (data, signal, job) => notifier.deliver(data as JobData<'notify'>, job.attemptsMade + 1, signal),
            ...(hubspot ? { 'crm-batch': hubspot.handler(pipeline) } : {}),
          },
          ...(hubspot ? { limiters: { 'crm-batch': { max: hubspot.settings.limitMax, duration: hubspot.settings.limitDurationMs } } } : {}),
          ...(workerQueues ? { queues: workerQueues } : {}),
        });
  const redriveLoop = workers
    ? startRedriveLoop({
        redis,
        prefix,
        journal,
        enqueue: reviveVia(queues),
        intervalMs: config.pipeline.redriveIntervalMs,
        graceMs: config.pipeline.redriveGraceMs,
        logger,
      })
    : null;
  if (workers && gmail) await gmail.schedule();
  const sweeper = workers && hubspot ? hubspot.startSweeper() : null;
  if (workers) await forms.schedule();
  redriveLoop?.runOnce().catch((err: unknown) => log.error({ err: (err as Error).message }, 're-drive pass failed'));
  // Repeating syncs live in Redis: if Redis loses its data, they are gone with it. Put back the missing ones on
  // the re-drive's beat (the journal and the state store, not Redis, say which inboxes and forms exist).
  const keeper = workers
    ? setInterval(() => {
        Promise.all([gmail?.schedule(true), forms.schedule(true)]).catch((err: unknown) =>
          log.warn({ err: (err as Error).message }, 'could not restore the sync schedules'),
        );
      }, config.pipeline.redriveIntervalMs)
    : null;
  keeper?.unref();
  // Said once, by the process whose workers run (the web's producer-only pipeline only takes webhooks in).
  const ready = {
    classifier: `${classifier.provider}/${classifier.model}`,
    crm: hubspot ? 'hubspot' : 'dry-run',
    rules: rules.version,
    notify: notifier.describe(),
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
    classifier,
    redrive: redriveLoop,
    gmail,
    hubspot,
    forms,
    close(): Promise<void> {
      closing ??= (async () => {
        sweeper?.stop();
        if (keeper) clearInterval(keeper);
        await redriveLoop?.stop();
        await workers?.close(config.shutdownDeadlineMs);
        await closeQueues(queues);
        delivery.close();
        if (!overrides.journal) await journal.close();
        redis.disconnect();
      })();
      return closing;
    },
  };
}
