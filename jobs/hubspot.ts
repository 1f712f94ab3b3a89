/**
 * Wiring of the HubSpot mirror: the adapter (when a token is configured, or a batch CRM is handed in), the
 * pending store, the shared request gate, the crm-batch handler and its BullMQ limiter, and the sweeper.
 * With neither, the mirror stays the dry-run CRM (jobs/main.ts). Built from `HubSpotMirrorSettings`, which
 * jobs/settings.ts maps from the configuration.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../src/config/logger.ts';
import type { JournalClient } from '../src/journal/journal-client.ts';
import type { Pipeline } from '../src/pipeline/pipeline.ts';
import type { JobHandler } from '../src/pipeline/job-catalog.ts';
import { isBatchCrm, type BatchCrmClient, type CrmClient } from '../src/pipeline/ports.ts';
import { HubSpotCrm, type HubSpotCrmOptions } from '../connectors/hubspot/hubspot.crm.ts';
import {
  BatchingCrm,
  PendingPlans,
  QueueRequestGate,
  processCrmBatch,
  startBatchSweeper,
  type CrmBatchSettings,
  type LinkRef,
} from './crm-batch/index.ts';
import type { Queues } from './queues.ts';

/** What the mirror is built from (jobs/settings.ts maps the configuration onto it). */
export interface HubSpotMirrorSettings {
  /** The adapter's own settings; null without an access token (dry-run, unless a batch CRM is handed in). */
  readonly crm: Omit<HubSpotCrmOptions, 'journal' | 'gate' | 'logger'> | null;
  /** The crm-batch queue: its BullMQ limiter, the batch windows and sizes, the claim lease. */
  readonly batch: CrmBatchSettings;
}

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
  handler(pipeline: Pipeline): JobHandler<'crm-batch'>;
  startSweeper(): { stop(): void };
}

export function hubspotMirror(
  s: HubSpotMirrorSettings,
  deps: { journal: JournalClient; redis: Redis; queues: Queues; prefix: string; logger: Logger; crm?: CrmClient },
): HubSpotMirror | null {
  // A CRM handed in is used when it batches (else the stage calls it directly: no mirror); else the configured adapter.
  const crm = deps.crm
    ? isBatchCrm(deps.crm)
      ? deps.crm
      : null
    : s.crm
      ? new HubSpotCrm({ ...s.crm, journal: deps.journal, logger: deps.logger })
      : null;
  if (!crm) return null;
  const settings = s.batch;
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
