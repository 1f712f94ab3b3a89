/**
 * Wiring of the web process: health checks of the journal service and Redis, and /metrics for every process
 * (src/metrics/scrape.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Config } from '../config/config.ts';
import type { Logger } from '../config/logger.ts';
import { createWebServer, type DependencyCheck, type WebServerOptions } from '../web/server.ts';
import { HttpJournalClient } from '../journal/service/http-client.ts';
import { resolveCredentials } from '../journal/service/credentials.ts';
import { JournalRequestError } from '../journal/errors/journal-request.error.ts';
import { webMetrics } from '../metrics/scrape.ts';
import { createQueues, closeQueues, enqueueVia, type Queues } from '../../jobs/queues.ts';
import { DEFAULT_REDIS_URL, configuredReceivers, formsWebhookSecret, startPipeline, type PipelineRuntime } from '../../jobs/main.ts';
import { RedisReplayGuard } from '../web/webhooks.ts';
import { createAuditSurface, type AuditSurface } from '../web/audit-surface.ts';
import { openInboxStore } from '../../connectors/gmail/gmail.connector.ts';
import { connectorStateSettings } from '../../jobs/settings.ts';
import { producerRedis, redisHealthProblem } from '../../jobs/redis-connection.ts';
import type { InboxStatus } from '../audit/audit-service.ts';

/**
 * The web process, step by step: the clients /healthz and /metrics use; the producer-only pipeline that takes
 * webhooks in; the audit surface (when the journal file is readable here); the web server on WEB_LISTEN; `close`.
 */
export async function startWeb(config: Config, logger: Logger): Promise<{ url: string; close(): Promise<void> }> {
  const deps = await dependencyClients(config);
  // The web process takes webhooks in: a producer-only pipeline (intake journals and queues; workers do the
  // rest), which answers 503 rather than waiting when Redis is down.
  const producer = await startPipeline(config, logger, { queues: [], failFast: true });
  const audit = openAuditSurface(config, producer, deps.redisUrl, logger);
  // A fresh install gets a generated form-webhook secret here (see formsWebhookSecret), for send-sample.
  formsWebhookSecret(config, true);
  const app = createWebServer({
    ...(audit ? { audit: audit.routes } : {}),
    ...consentCallbacks(config, producer),
    webhooks: {
      receivers: configuredReceivers(config),
      intake: (ix) => producer.pipeline.intake(ix),
      journal: producer.journal,
      replays: new RedisReplayGuard(producer.redis, config.pipeline.queuePrefix),
      publicUrl: config.web.webhooks.publicUrl,
      maxBodyBytes: config.web.webhooks.maxBodyBytes,
      logger,
    },
    checks: dependencyChecks(config, deps),
    metrics: webMetrics({
      journal: deps.journal,
      queues: deps.queues,
      workerUrl: config.web.workerMetrics ? `http://${config.web.workerMetrics.host}:${config.web.workerMetrics.port}/metrics` : null,
      review: audit ? () => audit.service.reviewBacklog() : null,
    }),
  });
  const url = await listenOnConfigured(app, config, logger);
  return {
    url,
    async close() {
      await app.close();
      audit?.close();
      await producer.close();
      await closeQueues(deps.queues);
      await deps.journal.close();
      deps.redis.disconnect();
    },
  };
}

/** What /healthz and /metrics talk to: Redis and its queues, and the journal service. */
interface DependencyClients {
  readonly redisUrl: string;
  readonly redis: Redis;
  readonly queues: Queues;
  readonly journal: HttpJournalClient;
}

async function dependencyClients(config: Config): Promise<DependencyClients> {
  const redisUrl = config.pipeline.redisUrl ?? DEFAULT_REDIS_URL;
  // Health and metrics: a connection that fails fast (reported through /healthz, in words, never as a crash).
  const redis = producerRedis(redisUrl);
  await redis.connect().catch(() => undefined);
  const queues = createQueues(redis, config.pipeline.queuePrefix);
  // Health needs no credential; the journal service's own metrics need the read one.
  const readToken = resolveCredentials(config.journal.keysDir, config.service, false)?.readToken;
  const journal = new HttpJournalClient({ url: config.service.url, attempts: 1, timeoutMs: 2000, ...(readToken ? { readToken } : {}) });
  return { redisUrl, redis, queues, journal };
}

/** The audit UI reads the journal file (read-only) on this machine; without it, the UI is off (null, with a warning). */
function openAuditSurface(config: Config, producer: PipelineRuntime, redisUrl: string, logger: Logger): AuditSurface | null {
  try {
    return createAuditSurface(config, {
      journal: producer.journal,
      enqueue: enqueueVia(producer.queues, { redis: producer.redis, url: redisUrl }),
      connectors: () => auditConnectors(config),
      logger,
    });
  } catch (err) {
    logger.warn(
      { component: 'web', err: (err as Error).message },
      'audit UI off: its journal file, read index or auth state file could not be opened from the web process',
    );
    return null;
  }
}

/** The OAuth consent callbacks of the configured connectors (Gmail, Google Forms), and a refused one journaled. */
function consentCallbacks(
  config: Config,
  producer: PipelineRuntime,
): Pick<WebServerOptions, 'gmailConsent' | 'googleFormsConsent' | 'onConsentRefused'> {
  const gmail = producer.gmail;
  const forms = producer.forms;
  const onConsentRefused = async (status: number, reason: string, endpoint: string): Promise<void> => {
    const which = endpoint.includes('google-forms') ? 'google-forms' : 'gmail';
    await producer.journal.append({
      kind: 'webhook.rejected',
      source: 'web',
      actor: `oauth:${which}`,
      correlationId: `oauth/${which}`,
      idempotencyKey: `oauth-refused/${which}/${Date.now()}/${status}`,
      payload: { endpoint, status, reason: reason.slice(0, 2000) },
    });
  };
  return {
    ...(gmail ? { gmailConsent: (code: string, state: string) => gmail.completeConsent(code, state) } : {}),
    ...(config.pipeline.forms.google
      ? { googleFormsConsent: (code: string, state: string) => forms.completeGoogleConsent(code, state) }
      : {}),
    ...(gmail || config.pipeline.forms.google ? { onConsentRefused } : {}),
  };
}

/** /healthz: the journal service and Redis, each failure said in words. */
function dependencyChecks(config: Config, deps: DependencyClients): DependencyCheck[] {
  return [
    {
      name: 'journal',
      check: async () => {
        try {
          await deps.journal.health();
        } catch (err) {
          throw new Error(journalProblem(config.service.url, err));
        }
      },
    },
    {
      name: 'redis',
      check: async () => {
        const problem = await redisHealthProblem(deps.redis, deps.redisUrl);
        if (problem) throw new Error(problem);
      },
    },
  ];
}

/** Listens on WEB_LISTEN (HOST:PORT) and returns the URL it answers on (the real port, when 0 was asked for). */
async function listenOnConfigured(app: FastifyInstance, config: Config, logger: Logger): Promise<string> {
  const listen = config.web.listen;
  if (listen.kind !== 'tcp') throw new Error('WEB_LISTEN must be HOST:PORT');
  await app.listen({ host: listen.host, port: listen.port });
  const address = app.server.address();
  const url = `http://${listen.host}:${typeof address === 'object' && address ? address.port : listen.port}`;
  logger.info({ component: 'web', url }, 'web server ready');
  return url;
}

/** The journal service's health failure in words: unreachable (and why), or what it answered. */
export function journalProblem(url: string, err: unknown): string {
  if (err instanceof JournalRequestError && err.status > 0)
    return `journal service at ${url} answered ${err.status}: ${err.message.slice(0, 200)}`;
  const cause = (err as { cause?: Error & { code?: string } }).cause;
  const code = cause?.code;
  const why =
    code === 'ECONNREFUSED'
      ? 'connection refused'
      : cause?.message === 'timed out'
        ? 'no answer within 2 s'
        : (code ?? cause?.message ?? (err as Error).message).slice(0, 120);
  return `journal service unreachable at ${url} (${why})`;
}

/** The connectors page's data: Gmail inboxes (from the encrypted state store) and the configured webhook receivers. */
export function auditConnectors(config: Config): { inboxes: InboxStatus[]; webhooks: string[]; gmailConfigured: boolean } {
  const inboxes = config.pipeline.gmail
    ? openInboxStore(connectorStateSettings(config))
        .list()
        .map((i) => ({
          connector: 'gmail',
          account: i.mailbox,
          status: i.status,
          lastSyncAt: i.lastSyncAt,
          cursor: i.historyId,
          connectedAt: i.connectedAt,
        }))
    : [];
  return { inboxes, webhooks: [...configuredReceivers(config).keys()], gmailConfigured: config.pipeline.gmail !== null };
}
