/**
 * One BullMQ worker per pipeline queue. Each job's payload is checked against the catalog first; a malformed
 * job, a permanent error, or a job out of attempts ends in a `job.failed` journal entry that says which stage
 * failed and why (no silent dead letters). Stages run under a deadline; shutdown finishes in-flight jobs
 * within its own deadline and then stops.
 */
import { UnrecoverableError, Worker, type Job, type WorkerOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  JOBS,
  QUEUE_NAMES,
  jobSchema,
  retryAfterBackoff,
  type JobData,
  type JobHandler,
  type JobHandlers,
  type QueueName,
} from '../src/pipeline/job-catalog.ts';
import type { Pipeline } from '../src/pipeline/pipeline.ts';
import type { JournalClient } from '../src/journal/journal-client.ts';
import { PermanentJobError } from '../src/pipeline/errors/permanent-job.error.ts';
import { journalRefusal } from '../src/journal/errors/refusal.ts';
import { StageTimeoutError } from '../src/pipeline/errors/stage-timeout.error.ts';
import type { Logger } from '../src/config/logger.ts';
import { secondsSince, stageSeconds } from '../src/metrics/registry.ts';

export interface WorkerSetOptions {
  readonly pipeline: Pipeline;
  readonly journal: JournalClient;
  readonly connection: Redis;
  readonly prefix: string;
  /** Jobs processed at once per queue; classify's is the model concurrency. */
  readonly concurrency: Partial<Record<QueueName, number>>;
  readonly logger: Logger;
  /** Processors of the queues that are not pipeline stages (e.g. sync-inbox). */
  readonly handlers?: Partial<Pick<JobHandlers, 'crm-batch' | 'notify' | 'sync-inbox'>>;
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
  const handlers = jobHandlers(options);
  const workers = (options.queues ?? QUEUE_NAMES).map((queue) => {
    const worker = new Worker(queue, (job, token) => processJob(queue, job, handlers, options, token), {
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

async function processJob<Q extends QueueName>(
  queue: Q,
  job: Job,
  handlers: JobHandlers,
  options: WorkerSetOptions,
  _token?: string,
): Promise<unknown> {
  const spec = JOBS[queue];
  const parsed = jobSchema(queue).safeParse(job.data);
  if (!parsed.success) {
    const reason = `invalid ${queue} job payload: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`;
    await recordFailure(options.journal, queue, job, 'invalid-payload', reason);
    throw new UnrecoverableError(reason);
  }
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new StageTimeoutError(queue, spec.timeoutMs)), spec.timeoutMs);
  const started = process.hrtime.bigint();
  let outcome: 'completed' | 'retry' | 'failed' = 'completed';
  try {
    return await raceAbort(runStage(handlers, queue, parsed.data, controller.signal, job), controller.signal);
  } catch (err) {
    // A journal refusal of what the stage wrote (invalid payload, too large, a conflicting idempotency key) is
    // as permanent as a PermanentJobError: retrying writes the same refused entry again.
    const refused = journalRefusal(err);
    const permanent = err instanceof PermanentJobError || refused !== null;
    const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    outcome = permanent || lastAttempt ? 'failed' : 'retry';
    if (permanent || lastAttempt) {
      const reason = `${(err as Error).name}: ${(err as Error).message}`;
      await recordFailure(options.journal, queue, job, permanent ? 'permanent' : 'attempts-exhausted', reason);
      if (permanent) throw new UnrecoverableError(reason);
    }
    throw err;
  } finally {
    clearTimeout(timer);
    stageSeconds.observe({ stage: queue, outcome }, secondsSince(started));
  }
}

function runStage<Q extends QueueName>(handlers: JobHandlers, queue: Q, data: JobData<Q>, signal: AbortSignal, job: Job): Promise<unknown> {
  const handler: JobHandler<Q> = handlers[queue];
  return handler(data, signal, job);
}

/** The processor of every queue: the pipeline's stages, and the handlers given for the others. */
function jobHandlers(options: WorkerSetOptions): JobHandlers {
  const pipeline = options.pipeline;
  const given = options.handlers ?? {};
  const missing = (queue: QueueName) => (): Promise<unknown> =>
    Promise.reject(new PermanentJobError(`no ${queue} handler is configured in this worker (is the connector configured?)`));
  return {
    ingest: (data) => pipeline.ingest(data).then((r) => ({ status: r.status, entryId: r.entry.id })),
    classify: (data, signal) => pipeline.classify(data, signal).then((d) => ({ decisionEntryId: d.id })),
    decide: (data) => pipeline.decide(data),
    mirror: (data) => pipeline.mirror(data).then(() => ({ mirrored: true })),
    'crm-batch': given['crm-batch'] ?? missing('crm-batch'),
    notify: given.notify ?? missing('notify'),
    'sync-inbox': given['sync-inbox'] ?? missing('sync-inbox'),
  };
}

function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

async function recordFailure(
  journal: JournalClient,
  queue: QueueName,
  job: Job,
  finality: 'attempts-exhausted' | 'invalid-payload' | 'permanent',
  reason: string,
): Promise<void> {
  const data = (typeof job.data === 'object' && job.data !== null ? job.data : {}) as { correlationId?: unknown; entryId?: unknown };
  const correlationId =
    typeof data.correlationId === 'string' && data.correlationId.length > 0 ? data.correlationId : `job/${queue}/${job.id ?? 'unknown'}`;
  const entryId = typeof data.entryId === 'string' && /^[0-9a-f-]{36}$/.test(data.entryId) ? data.entryId : undefined;
  await journal.append({
    kind: 'job.failed',
    source: 'pipeline',
    actor: `worker:${queue}`,
    correlationId: correlationId.slice(0, 512),
    ...(entryId ? { causationId: entryId } : {}),
    idempotencyKey: `job-failed/${queue}/${job.id ?? 'unknown'}`,
    payload: {
      queue,
      jobId: String(job.id ?? 'unknown'),
      attempts: job.attemptsMade + 1,
      error: reason.slice(0, 4000),
      finality,
      ...(entryId ? { entryId } : {}),
    },
  });
}
