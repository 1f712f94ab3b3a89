/**
 * What happens to one job, whatever runs it: its payload is checked against the job catalog
 * (src/pipeline/job-catalog.ts) first, its queue's handler runs under the stage's deadline, and a malformed job,
 * a permanent error, or a job out of attempts ends in a `job.failed` journal entry that says which stage failed
 * and why (no silent dead letters). Nothing here needs Redis: jobs/workers.ts gives it BullMQ's jobs, the unit
 * tests (test/unit/workers.test.ts) give it plain objects.
 */
import { UnrecoverableError } from 'bullmq';
import {
  JOBS,
  jobSchema,
  type JobData,
  type JobHandler,
  type JobHandlers,
  type JobRef,
  type QueueName,
} from '../src/pipeline/job-catalog.ts';
import type { Pipeline } from '../src/pipeline/pipeline.ts';
import type { JournalClient } from '../src/journal/journal-client.ts';
import { PermanentJobError } from '../src/pipeline/errors/permanent-job.error.ts';
import { journalRefusal } from '../src/journal/errors/refusal.ts';
import { StageTimeoutError } from '../src/pipeline/errors/stage-timeout.error.ts';
import { secondsSince, stageSeconds } from '../src/metrics/registry.ts';

/** The pipeline's stages, one per stage queue. */
export type PipelineStages = Pick<Pipeline, 'ingest' | 'classify' | 'decide' | 'mirror'>;

/** Processors of the queues that are not pipeline stages (e.g. sync-inbox); a queue left out fails permanently. */
export type OtherHandlers = Partial<Pick<JobHandlers, 'crm-batch' | 'notify' | 'sync-inbox'>>;

export interface ProcessJobDeps {
  /** The processor of every queue (see jobHandlers). */
  readonly handlers: JobHandlers;
  /** Where `job.failed` is journaled. */
  readonly journal: JournalClient;
  /** The stage's deadline (default: the catalog's timeoutMs of the queue). */
  readonly timeoutMs?: number;
}

/**
 * Processes one job of `queue`: resolves with its handler's result, or rejects with UnrecoverableError (no retry:
 * a malformed payload, a PermanentJobError, a journal refusal), or with the stage's own error (BullMQ retries it
 * while attempts remain; the last attempt's failure is journaled first).
 */
export async function processJob<Q extends QueueName>(queue: Q, job: JobRef, deps: ProcessJobDeps): Promise<unknown> {
  const timeoutMs = deps.timeoutMs ?? JOBS[queue].timeoutMs;
  const parsed = jobSchema(queue).safeParse(job.data);
  if (!parsed.success) {
    const reason = `invalid ${queue} job payload: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`;
    await recordFailure(deps.journal, queue, job, 'invalid-payload', reason);
    throw new UnrecoverableError(reason);
  }
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new StageTimeoutError(queue, timeoutMs)), timeoutMs);
  const started = process.hrtime.bigint();
  let outcome: 'completed' | 'retry' | 'failed' = 'completed';
  try {
    return await raceAbort(runStage(deps.handlers, queue, parsed.data, controller.signal, job), controller.signal);
  } catch (err) {
    // A journal refusal of what the stage wrote (invalid payload, too large, a conflicting idempotency key) is
    // as permanent as a PermanentJobError: retrying writes the same refused entry again.
    const refused = journalRefusal(err);
    const permanent = err instanceof PermanentJobError || refused !== null;
    const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    outcome = permanent || lastAttempt ? 'failed' : 'retry';
    if (permanent || lastAttempt) {
      const reason = `${(err as Error).name}: ${(err as Error).message}`;
      await recordFailure(deps.journal, queue, job, permanent ? 'permanent' : 'attempts-exhausted', reason);
      if (permanent) throw new UnrecoverableError(reason);
    }
    throw err;
  } finally {
    clearTimeout(timer);
    stageSeconds.observe({ stage: queue, outcome }, secondsSince(started));
  }
}

function runStage<Q extends QueueName>(
  handlers: JobHandlers,
  queue: Q,
  data: JobData<Q>,
  signal: AbortSignal,
  job: JobRef,
): Promise<unknown> {
  const handler: JobHandler<Q> = handlers[queue];
  return handler(data, signal, job);
}

/** The processor of every queue: the pipeline's stages, and the handlers given for the others. */
export function jobHandlers(pipeline: PipelineStages, given: OtherHandlers = {}): JobHandlers {
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
  job: JobRef,
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
