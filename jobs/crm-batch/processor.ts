/**
 * The crm-batch job handler. An upsert job claims up to 100 pending plans of one object type with a lease,
 * rebuilds each plan from the journal, writes them in one batch upsert, hands the written activities to the
 * associations stage and acknowledges each item by its outcome; a links job claims the written activities and
 * associates them in one go. Exactly once comes from the upsert by journal_entry_id: running a claim twice
 * updates the activity, it never creates a second one.
 */
import type { Queue } from 'bullmq';
import { Worker, type Job } from 'bullmq';
import { jobIdFor, jobOptions } from '../../src/pipeline/job-catalog.ts';
import type { BatchCrmClient, MirrorPlan, RequestGate } from '../../src/pipeline/ports.ts';
import type { JournalClient } from '../../src/journal/journal-client.ts';
import type { Logger } from '../../src/config/logger.ts';
import { PermanentJobError } from '../../src/pipeline/errors/permanent-job.error.ts';
import { RateLimitError } from '../../src/pipeline/errors/rate-limit.error.ts';
import type { LinkRef, PendingPlans, PlanRef } from './pending-plans.ts';
import { firstFree } from './request-gate.ts';
import { scheduleBatch, scheduleLinks } from './schedule.ts';

export interface CrmBatchSettings {
  /** Requests allowed per window, shared by every worker (default 9 per 1000 ms). */
  readonly limitMax: number;
  readonly limitDurationMs: number;
  /** How long plans are gathered before a batch is written (default 1000 ms): the quiet gap that ends a gathering. */
  readonly windowMs: number;
  /** The longest a plan waits for its batch to fill while plans keep arriving (default 10 windows). */
  readonly maxWaitMs?: number;
  /** Plans per batch (at most 100, HubSpot's batch size). */
  readonly batchSize: number;
  /** How long a claim is held before it returns to pending (a worker that died); renewed while its job runs. */
  readonly leaseMs: number;
  /** Tries per plan (retryable item failures) before it is given up with a job.failed entry. */
  readonly maxItemAttempts?: number;
  /** How long written activities are gathered for their associations (default 5 × windowMs). */
  readonly linkWindowMs?: number;
  /** Activities associated per job (default 1,000): one v4 call per activity type and target type. */
  readonly linkBatchSize?: number;
}

/** The crm-batch queue's two kinds of job: upsert the waiting plans, or associate the written activities. */
export type CrmBatchStage = 'upsert' | 'links';

export interface CrmBatchDeps {
  readonly crm: BatchCrmClient;
  /** Plans waiting for their upsert. */
  readonly pending: PendingPlans;
  /** Written activities waiting for their associations. */
  readonly links: PendingPlans<LinkRef>;
  readonly queue: Queue;
  readonly gate: RequestGate;
  readonly journal: JournalClient;
  /** Rebuilds a plan from the journal (the pipeline's planFor: the newest decision or override wins). */
  readonly planFor: (ref: PlanRef) => Promise<MirrorPlan>;
  readonly settings: CrmBatchSettings;
  readonly logger: Logger;
}

export type CrmBatchResult = { stage: CrmBatchStage; claimed: number; mirrored: number; failed: number; retried: number };

const linkWindowOf = (s: CrmBatchSettings): number => s.linkWindowMs ?? s.windowMs * 5;
const maxWaitOf = (s: CrmBatchSettings): number => s.maxWaitMs ?? s.windowMs * 10;
const linkBatchOf = (s: CrmBatchSettings): number => Math.max(1, s.linkBatchSize ?? 1000);

/** One crm-batch job: the window's upserts, or (stage "links") the gathered associations. */
export async function processCrmBatch(job: Pick<Job, 'id' | 'data'>, deps: CrmBatchDeps): Promise<CrmBatchResult> {
  const stage: CrmBatchStage = (job.data as { stage?: CrmBatchStage } | undefined)?.stage === 'links' ? 'links' : 'upsert';
  try {
    const store = stage === 'links' ? deps.links : deps.pending;
    return await store.holding(String(job.id), deps.settings.leaseMs, () =>
      stage === 'links' ? processLinks(job, deps) : processUpserts(job, deps),
    );
  } catch (err) {
    // One HubSpot account is behind the whole queue: a rate limit (HubSpot's daily limit, by the connector) stops
    // every worker fetching crm-batch jobs until it ends; this job's claims stay its own and resume. A limit that
    // says no time is left to the job's own backoff.
    if (err instanceof RateLimitError && err.retryAfterMs !== undefined) {
      await deps.queue.rateLimit(err.retryAfterMs);
      throw Worker.RateLimitError();
    }
    throw err;
  }
}

/** Claim up to 100 plans, upsert them, hand the written ones to the associations stage, acknowledge item by item. */
async function processUpserts(job: Pick<Job, 'id'>, deps: CrmBatchDeps): Promise<CrmBatchResult> {
  const jobId = String(job.id);
  const { pending, links, settings } = deps;
  // The window grows while plans keep arriving: a lane is written once it holds a full batch, once its oldest
  // plan has waited `maxWaitOf` (10 windows), or once arrivals pause for a window (a lone interaction goes out
  // after one window). At a steady flow that fills batches instead of writing a few plans per window.
  const last = await pending.lastSubmitted();
  const quiet = last === null || Date.now() - last >= settings.windowMs;
  const size = Math.min(100, settings.batchSize);
  const refs = await pending.claim(jobId, size, settings.leaseMs, maxWaitOf(settings), quiet ? 0 : size);
  const counts: CrmBatchResult = { stage: 'upsert', claimed: refs.length, mirrored: 0, failed: 0, retried: 0 };
  // A backlog of full batches does not wait for the next window: a follow-up job (one per job, so a retry adds
  // none) runs beside this one, under the same shared limit.
  if (refs.length > 0 && (await pending.waiting()) >= settings.batchSize) {
    await deps.queue.add('crm-batch', { window: 0 }, jobOptions('crm-batch', jobIdFor('crm-batch', `next-${jobId}`)));
  }
  if (refs.length > 0) {
    const plans = await plansOf(refs, jobId, deps, pending, counts);
    const outcomes = await deps.crm.upsertBatch(plans, jobId, firstFree(deps.gate));
    // The written activities wait for their associations before their plans are acknowledged: a crash between
    // the two re-upserts (an update, never a second activity) and re-submits (idempotent by entry id).
    const written: LinkRef[] = [];
    for (const o of outcomes) {
      const ref = refs.find((r) => r.entryId === o.entryId);
      if (ref && o.status === 'mirrored' && o.objectId) written.push({ ...pick(ref), objectId: o.objectId, lane: 'links' });
    }
    await links.submitMany(written);
    for (const o of outcomes) {
      if (o.status === 'mirrored') {
        counts.mirrored++;
        await pending.finish(jobId, 'ack', [o.entryId]);
      } else if (o.retryable && (await pending.failedOnce(o.entryId)) < (settings.maxItemAttempts ?? 10)) {
        counts.retried++;
        await pending.finish(jobId, 'retry', [o.entryId]);
      } else {
        counts.failed++;
        const ref = refs.find((r) => r.entryId === o.entryId) as PlanRef;
        if (o.retryable) await recordGivenUp(deps.journal, jobId, ref, o.reason ?? 'failed too often');
        await pending.finish(jobId, 'ack', [o.entryId]);
      }
    }
  }
  const left = await pending.outstanding();
  if (left > 0) await scheduleBatch(deps.queue, settings.windowMs);
  // Associations are gathered while upserts keep coming: their job is due when the oldest waiting activity has
  // waited the link window, or now once no upsert is left or a full batch waits (one job per window either way,
  // and none that would find nothing to take: every fetched job costs a request slot).
  const oldest = await links.oldestWaiting();
  if (oldest !== null) {
    const now = Date.now();
    const due = left === 0 || (await links.waiting()) >= linkBatchOf(settings) ? now : oldest + linkWindowOf(settings) + 1;
    await scheduleLinks(deps.queue, settings.windowMs, due, now);
  }
  return counts;
}

/**
 * Claim up to 1,000 written activities (once that many wait, once the oldest has waited the link window, or
 * once no upsert is left to gather for), match and associate them in one go, and acknowledge them.
 */
async function processLinks(job: Pick<Job, 'id'>, deps: CrmBatchDeps): Promise<CrmBatchResult> {
  const jobId = String(job.id);
  const { pending, links, settings } = deps;
  const max = linkBatchOf(settings);
  const gathering = (await pending.outstanding()) > 0;
  const refs = await links.claim(jobId, max, settings.leaseMs, linkWindowOf(settings), gathering ? max : 0);
  const counts: CrmBatchResult = { stage: 'links', claimed: refs.length, mirrored: 0, failed: 0, retried: 0 };
  if (refs.length > 0) {
    const plans = await plansOf(refs, jobId, deps, links, counts);
    const byId = new Map(refs.map((r) => [r.entryId, r.objectId]));
    const items = plans.map((plan) => ({ plan, objectId: byId.get(plan.entryId) as string }));
    await deps.crm.associateBatch(items, `links-${jobId}`, firstFree(deps.gate));
    await links.finish(
      jobId,
      'ack',
      items.map((i) => i.plan.entryId),
    );
    counts.mirrored = items.length;
  }
  const oldest = await links.oldestWaiting();
  if (oldest !== null) {
    // The follow-up of this job (one per job, so a retry adds none): now when a full batch was taken or nothing
    // is left to gather for, else when the oldest waiting activity has waited the link window.
    const stillGathering = (await pending.outstanding()) > 0;
    const delay = refs.length >= max || !stillGathering ? 0 : Math.max(0, oldest + linkWindowOf(settings) + 1 - Date.now());
    await deps.queue.add(
      'crm-batch',
      { window: 0, stage: 'links' },
      { ...jobOptions('crm-batch', jobIdFor('crm-batch', `links-next-${jobId}`)), delay },
    );
  }
  return counts;
}

/** Each ref's plan rebuilt from the journal; a ref that can no longer be planned is given up on the record. */
async function plansOf<R extends PlanRef>(
  refs: readonly R[],
  jobId: string,
  deps: CrmBatchDeps,
  store: PendingPlans<R>,
  counts: CrmBatchResult,
): Promise<MirrorPlan[]> {
  const plans: MirrorPlan[] = [];
  for (const ref of refs) {
    try {
      plans.push(await deps.planFor(ref));
    } catch (err) {
      if (!(err instanceof PermanentJobError)) throw err;
      await recordGivenUp(deps.journal, jobId, ref, err.message);
      await store.finish(jobId, 'ack', [ref.entryId]);
      counts.failed++;
    }
  }
  return plans;
}

function pick(ref: PlanRef): PlanRef {
  return {
    entryId: ref.entryId,
    entrySeq: ref.entrySeq,
    correlationId: ref.correlationId,
    decisionEntryId: ref.decisionEntryId,
    decisionSeq: ref.decisionSeq,
    objectType: ref.objectType,
  };
}

async function recordGivenUp(journal: JournalClient, jobId: string, ref: PlanRef, reason: string): Promise<void> {
  await journal.append({
    kind: 'job.failed',
    source: 'pipeline',
    actor: 'worker:crm-batch',
    correlationId: ref.correlationId,
    causationId: ref.entryId,
    idempotencyKey: `job-failed/crm-batch/${ref.entryId}/${jobId}`,
    payload: { queue: 'crm-batch', jobId, attempts: 1, error: reason.slice(0, 4000), finality: 'permanent', entryId: ref.entryId },
  });
}
