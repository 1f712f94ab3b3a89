/**
 * Wiring of the HubSpot mirror: the adapter (when a token is configured, or a batch CRM is handed in), the
 * pending store, the shared request gate, the crm-batch handler and its BullMQ limiter, and the sweeper.
 * With neither, the mirror stays the dry-run CRM (jobs/main.ts).
 */
import type { Redis } from 'ioredis';
import type { Job } from 'bullmq';
import type { Config } from '../src/config/config.ts';
import type { Logger } from '../src/config/logger.ts';
import type { JournalClient } from '../src/journal/journal-client.ts';
import type { Pipeline } from '../src/pipeline/pipeline.ts';
import { isBatchCrm, type BatchCrmClient, type CrmClient } from '../src/pipeline/ports.ts';
import { HubSpotCrm } from '../connectors/hubspot/hubspot.crm.ts';
import {
  BatchingCrm,
  PendingPlans,
  QueueRequestGate,
  processCrmBatch,
  startBatchSweeper,
  type CrmBatchSettings,
  type LinkRef,
} from './crm-batch.ts';
import type { Queues } from './queues.ts';

export interface HubSpotMirror {
  /** What the mirror stage calls: records the plan as pending and schedules the window's batch. */
  readonly stageCrm: CrmClient;
  /** The adapter itself (drift, bootstrap). */
  readonly crm: BatchCrmClient;
  readonly pending: PendingPlans;
  /** Written activities waiting for their associations. */
  readonly links: PendingPlans<LinkRef>;
  readonly gate: QueueRequestGate;
  readonly settings: CrmBatchSettings;
  handler(pipeline: Pipeline): (data: unknown, signal: AbortSignal, job: Job) => Promise<unknown>;
  startSweeper(): { stop(): void };
}

/** The configured HubSpot adapter, or null (dry-run) when no token is set. */
export function configuredHubSpot(config: Config, journal: JournalClient, logger: Logger): HubSpotCrm | null {
  const h = config.pipeline.hubspot;
  if (!h) return null;
  return new HubSpotCrm({
    accessToken: h.accessToken,
    ...(h.basePath ? { basePath: h.basePath } : {}),
    journal,
    createContacts: h.createContacts,
    dealRule: h.dealRule,
    dailyReserve: h.dailyReserve,
    timeZone: h.timeZone,
    searchIndexDelayMs: h.searchIndexDelayMs,
    logger,
  });
}

export function hubspotMirror(
  config: Config,
  deps: { journal: JournalClient; redis: Redis; queues: Queues; prefix: string; logger: Logger; crm?: CrmClient },
): HubSpotMirror | null {
  const crm = deps.crm ? (isBatchCrm(deps.crm) ? deps.crm : null) : configuredHubSpot(config, deps.journal, deps.logger);
  if (!crm) return null;
  const h = config.pipeline.hubspot;
  const settings: CrmBatchSettings = {
    limitMax: h?.rateLimit.max ?? 9,
    limitDurationMs: h?.rateLimit.durationMs ?? 1000,
    windowMs: h?.batchWindowMs ?? 1000,
    batchSize: h?.batchSize ?? 100,
    linkWindowMs: h?.linkWindowMs ?? 30_000,
    linkBatchSize: 1000,
    // Claims are renewed while their job runs (every third of the lease), so the lease can be short.
    leaseMs: 3 * config.pipeline.crmBatchLockMs,
  };
  const queue = deps.queues['crm-batch'];
  const pending = new PendingPlans(deps.redis, deps.prefix);
  const links = PendingPlans.links(deps.redis, deps.prefix);
  const gate = new QueueRequestGate(deps.redis, queue, deps.prefix, settings.limitMax, settings.limitDurationMs);
  const log = deps.logger.child({ component: 'jobs.crm-batch' });
  return {
    stageCrm: new BatchingCrm(pending, queue, settings.windowMs),
    crm,
    pending,
    links,
    gate,
    settings,
    handler: (pipeline) => (_data, _signal, job) =>
      processCrmBatch(job, {
        crm,
        pending,
        links,
        queue,
        gate,
        journal: deps.journal,
        planFor: (ref) => pipeline.planFor(ref),
        settings,
        logger: log,
      }),
    startSweeper: () =>
      startBatchSweeper(
        pending,
        links,
        queue,
        settings.windowMs,
        settings.linkWindowMs ?? settings.windowMs * 5,
        Math.max(settings.leaseMs / 3, 2_000),
        log,
      ),
  };
}
