/**
 * When crm-batch jobs run: one job per short window however many plans arrive (a deterministic job id per
 * window), one associations job per window, and a sweeper that keeps batches coming while anything is
 * outstanding (a lost job, an expired lease).
 */
import type { Queue } from 'bullmq';
import { jobIdFor, jobOptions } from '../../src/pipeline/job-catalog.ts';
import type { Logger } from '../../src/config/logger.ts';
import type { LinkRef, PendingPlans } from './pending-plans.ts';

/** Adds the crm-batch job of the window after `now` (deterministic id: one job per window however many plans). */
export async function scheduleBatch(queue: Queue, windowMs: number, now = Date.now()): Promise<void> {
  const window = Math.floor(now / windowMs) + 1;
  const jobId = jobIdFor('crm-batch', String(window));
  await queue.add('crm-batch', { window }, { ...jobOptions('crm-batch', jobId), delay: Math.max(0, window * windowMs - now) });
}

/** Adds the associations job due at `dueAt` (one per window of `windowMs`, however many batches ask for it). */
export async function scheduleLinks(queue: Queue, windowMs: number, dueAt: number, now = Date.now()): Promise<void> {
  const window = Math.ceil(dueAt / windowMs);
  const jobId = jobIdFor('crm-batch', `links-${window}`);
  await queue.add(
    'crm-batch',
    { window, stage: 'links' },
    { ...jobOptions('crm-batch', jobId), delay: Math.max(0, window * windowMs - now) },
  );
}

/** Keeps batches coming while plans or associations are outstanding (a lost job, an expired lease): a cheap tick per worker process. */
export function startBatchSweeper(
  pending: PendingPlans,
  links: PendingPlans<LinkRef>,
  queue: Queue,
  windowMs: number,
  linkWindowMs: number,
  everyMs: number,
  log: Logger,
): { stop(): void } {
  const timer = setInterval(() => {
    Promise.all([pending.outstanding(), links.outstanding()])
      .then(async ([plans, waitingLinks]) => {
        if (plans > 0) await scheduleBatch(queue, windowMs);
        if (waitingLinks > 0) await scheduleLinks(queue, windowMs, Date.now() + (plans > 0 ? linkWindowMs : 0));
      })
      .catch((err: unknown) => log.warn({ error: (err as Error).message }, 'crm-batch sweep failed'));
  }, everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
