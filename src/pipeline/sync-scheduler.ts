/**
 * How a polling connector (Gmail inboxes, polled forms) asks for its sync-inbox jobs without knowing the queue
 * behind them. The worker process backs it with BullMQ's job schedulers (`syncSchedulerVia` in jobs/queues.ts).
 */
import type { JobData } from './job-catalog.ts';

/** One sync of one account: a Gmail inbox, a HubSpot form guid or a Google form id. */
export type SyncJob = JobData<'sync-inbox'>;

export interface SyncScheduler {
  /**
   * Makes sure `schedulerId` runs `job` every `everyMs` (an existing schedule gets this interval and data);
   * `onlyMissing`: leave an existing schedule be (the keeper putting back schedules Redis lost).
   */
  repeat(schedulerId: string, job: SyncJob, everyMs: number, onlyMissing?: boolean): Promise<void>;
  /** Queues one run of `job` now, under `jobId`. */
  once(jobId: string, job: SyncJob): Promise<void>;
}
