/**
 * One BullMQ worker per pipeline queue: its concurrency, lock, limiter and backoff, and a shutdown that finishes
 * in-flight jobs within its own deadline and then stops. What each job goes through (the payload checked against
 * the catalog, the stage under a deadline, `job.failed` journaled for a malformed job, a permanent error or a job
 * out of attempts) is jobs/process-job.ts.
 */
import { Worker, type WorkerOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { QUEUE_NAMES, retryAfterBackoff, type QueueName } from '../src/pipeline/job-catalog.ts';
import type { Pipeline } from '../src/pipeline/pipeline.ts';
import type { JournalClient } from '../src/journal/journal-client.ts';
import type { Logger } from '../src/config/logger.ts';
import { jobHandlers, processJob, type OtherHandlers } from './process-job.ts';

export interface WorkerSetOptions {
  readonly pipeline: Pipeline;
  readonly journal: JournalClient;
  readonly connection: Redis;
  readonly prefix: string;
  /** Jobs processed at once per queue; classify's is the model concurrency. */
  readonly concurrency: Partial<Record<QueueName, number>>;
  readonly logger: Logger;
  /** Processors of the queues that are not pipeline stages (e.g. sync-inbox). */
  readonly handlers?: OtherHandlers;
  /** BullMQ's queue limiter per queue (crm-batch: the HubSpot request limit shared by every worker). */
  readonly limiters?: Partial<Record<QueueName, NonNullable<WorkerOptions['limiter']>>>;
  /** Lock duration and stalled-job check interval (default 30 s). */
  readonly lockMs?: number;
  /** A queue's own lock duration and stalled-job check interval (crm-batch: short, so a killed worker's batch returns soon). */
  readonly lockMsByQueue?: Partial<Record<QueueName, number>>;
  /** Only these queues (default: all). */
  readonly queues?: readonly QueueName[];
}

export interface WorkerSet {
  readonly workers: readonly Worker[];
  /** Stops taking jobs, waits for in-flight ones up to `deadlineMs`, then forces the rest back to the queue. */
  close(deadlineMs: number): Promise<void>;
}

export function startWorkers(options: WorkerSetOptions): WorkerSet {
  const log = options.logger.child({ component: 'jobs.workers' });
  const handlers = jobHandlers(options.pipeline, options.handlers);
  const workers = (options.queues ?? QUEUE_NAMES).map((queue) => {
    const worker = new Worker(queue, (job) => processJob(queue, job, { handlers, journal: options.journal }), {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: options.concurrency[queue] ?? 4,
      // A job whose worker died is taken back after this long (and retried: its appends are idempotent). BullMQ
      // renews the lock every half of it while the worker's process lives, so a long job keeps its lock.
      lockDuration: options.lockMsByQueue?.[queue] ?? options.lockMs ?? 30_000,
      stalledInterval: options.lockMsByQueue?.[queue] ?? options.lockMs ?? 30_000,
      maxStalledCount: 5,
      // The notify queue's backoff follows a provider's Retry-After (src/pipeline/job-catalog.ts).
      settings: { backoffStrategy: retryAfterBackoff },
      ...(options.limiters?.[queue] ? { limiter: options.limiters[queue] } : {}),
    });
    worker.on('failed', (job, err) =>
      log.warn({ queue, jobId: job?.id, attemptsMade: job?.attemptsMade, error: err.name }, 'job attempt failed'),
    );
    worker.on('error', (err) => log.error({ queue, error: err.message }, 'worker error'));
    return worker;
  });
  return {
    workers,
    async close(deadlineMs: number): Promise<void> {
      let timer: NodeJS.Timeout | undefined;
      const graceful = Promise.all(workers.map((w) => w.close())).then(() => true);
      const deadline = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), deadlineMs);
      });
      const finished = await Promise.race([graceful, deadline]);
      clearTimeout(timer);
      if (!finished) {
        log.warn({ deadlineMs }, 'in-flight jobs did not finish before the shutdown deadline; they go back to the queue');
        await Promise.all(workers.map((w) => w.close(true)));
      }
    },
  };
}
