/**
 * The job catalog: one place that says, for every queue, what its payload is and how hard to try.
 * Payloads carry ids only, never bodies: Redis keeps job data in plain text.
 * A field added to a payload later must be optional (jobs already queued do not have it).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Job, JobsOptions } from 'bullmq';
import { RateLimitError } from './errors/rate-limit.error.ts';

const entryRef = {
  /** The interaction.received entry. */
  entryId: z.string().uuid(),
  seq: z.number().int().nonnegative(),
  correlationId: z.string().min(1).max(512),
};

export const JOBS = {
  /** Fetch one item from its source by id, apply the exclusion rules, journal it. */
  ingest: {
    schema: z.strictObject({
      source: z.string().regex(/^[a-z][a-z0-9._-]{0,63}$/),
      sourceId: z.string().min(1).max(256),
      account: z.string().max(256).optional(),
    }),
    attempts: 8,
    backoffMs: 2_000,
    timeoutMs: 60_000,
  },
  /** Summarise and classify with the model (or the offline rules), journal the ai.decision. */
  classify: {
    schema: z.strictObject(entryRef),
    attempts: 6,
    backoffMs: 2_000,
    timeoutMs: 120_000,
  },
  /** Evaluate the rules (mirror, review, notifications), journal each rule.decision. */
  decide: {
    schema: z.strictObject({ ...entryRef, decisionEntryId: z.string().uuid(), decisionSeq: z.number().int().nonnegative() }),
    attempts: 6,
    backoffMs: 1_000,
    timeoutMs: 30_000,
  },
  /**
   * Write the CRM activity and journal every call: to HubSpot (connectors/hubspot/, batched by crm-batch) when a
   * HubSpot token is configured (HUBSPOT_ACCESS_TOKEN, src/config/config.ts), else the dry-run CRM, which
   * journals what it would have written.
   */
  mirror: {
    schema: z.strictObject({ ...entryRef, decisionEntryId: z.string().uuid(), decisionSeq: z.number().int().nonnegative() }),
    attempts: 10,
    backoffMs: 2_000,
    timeoutMs: 60_000,
  },
  /**
   * Deliver one notification on one channel of its rule's recipient group (journaled: attempted, then sent or
   * failed). Ids only: the addresses come from the rules, the text from the journaled decision, at send time.
   */
  notify: {
    schema: z.strictObject({
      ...entryRef,
      decisionEntryId: z.string().uuid(),
      decisionSeq: z.number().int().nonnegative(),
      ruleId: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/),
      channel: z.enum(['log', 'email', 'slack', 'webhook']),
    }),
    attempts: 8,
    backoffMs: 2_000,
    timeoutMs: 60_000,
    // A provider's Retry-After (Slack's 429, a webhook's 429 or 503) is waited out before the next attempt.
    honoursRetryAfter: true,
  },
  /**
   * Write the pending mirror plans of one short window to HubSpot in batches (jobs/crm-batch/). The plans wait
   * in Redis by entry id; the job only names its window. Waiting on rate limits happens inside, hence the timeout.
   */
  'crm-batch': {
    // stage "links": the gathered associations of activities already written (absent: the window's upserts).
    schema: z.strictObject({ window: z.number().int().nonnegative(), stage: z.enum(['upsert', 'links']).optional() }),
    attempts: 25,
    backoffMs: 2_000,
    timeoutMs: 10 * 60_000,
  },
  /**
   * Sync one connected account: a Gmail inbox (backfill or history), or a polled form (HubSpot form guid, Google
   * form id); journaled cursor advances. Gmail jobs queued before forms existed have the same shape as now.
   */
  'sync-inbox': {
    schema: z.discriminatedUnion('connector', [
      z.strictObject({ connector: z.literal('gmail'), mailbox: z.string().min(3).max(320) }),
      z.strictObject({ connector: z.literal('hubspot-forms'), formId: z.string().regex(/^[A-Za-z0-9-]{1,64}$/) }),
      z.strictObject({ connector: z.literal('google-forms'), formId: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/) }),
    ]),
    attempts: 5,
    backoffMs: 5_000,
    timeoutMs: 15 * 60_000,
  },
} as const;

export type QueueName = keyof typeof JOBS;
export type JobData<Q extends QueueName> = z.infer<(typeof JOBS)[Q]['schema']>;

/** What a handler (and the job processing, jobs/process-job.ts) reads of a BullMQ job. */
export type JobRef = Pick<Job, 'id' | 'name' | 'data' | 'attemptsMade' | 'opts'>;

/** What processes a job of queue Q: its payload as the catalog's schema parsed it. */
export type JobHandler<Q extends QueueName> = (data: JobData<Q>, signal: AbortSignal, job: JobRef) => Promise<unknown>;

/** A processor for every queue. */
export type JobHandlers = { readonly [Q in QueueName]: JobHandler<Q> };

/** The schema of queue Q's payloads, typed by queue (so that what it parses is JobData<Q>). */
export function jobSchema<Q extends QueueName>(queue: Q): z.ZodType<JobData<Q>> {
  return JOB_SCHEMAS[queue];
}

// Each queue's schema listed by name: TypeScript checks the pairing here, once (indexing JOBS by a queue type
// loses it). A queue added to JOBS and not here does not compile.
const JOB_SCHEMAS: { readonly [P in QueueName]: z.ZodType<JobData<P>> } = {
  ingest: JOBS.ingest.schema,
  classify: JOBS.classify.schema,
  decide: JOBS.decide.schema,
  mirror: JOBS.mirror.schema,
  notify: JOBS.notify.schema,
  'crm-batch': JOBS['crm-batch'].schema,
  'sync-inbox': JOBS['sync-inbox'].schema,
};
export const QUEUE_NAMES = Object.keys(JOBS) as QueueName[];

/** The backoff of queues whose errors may say when to retry (a custom strategy: see retryAfterBackoff). */
export const RETRY_AFTER_BACKOFF = 'exponential-or-retry-after';
/** The longest Retry-After followed; a longer one is cut to this (the attempts run out later, not never). */
export const MAX_RETRY_AFTER_MS = 3_600_000;

/**
 * BullMQ's custom backoff strategy (Worker settings.backoffStrategy) for RETRY_AFTER_BACKOFF: the exponential
 * backoff with jitter the other queues use, or a RateLimitError's `retryAfterMs` (a provider's Retry-After) when that
 * is later, capped at MAX_RETRY_AFTER_MS.
 */
export function retryAfterBackoff(
  attemptsMade: number,
  _type: string | undefined,
  err: Error | undefined,
  job?: { opts: { backoff?: number | { delay?: number } } },
): number {
  const b = job?.opts.backoff;
  const delay = typeof b === 'number' ? b : (b?.delay ?? 1000);
  const max = Math.round(2 ** Math.max(0, attemptsMade - 1) * delay);
  const exponential = Math.floor(max * 0.5 + Math.random() * max * 0.5);
  const asked = err instanceof RateLimitError ? err.retryAfterMs : undefined;
  return typeof asked === 'number' && Number.isFinite(asked) && asked > exponential ? Math.min(asked, MAX_RETRY_AFTER_MS) : exponential;
}

/** BullMQ options for a job: attempts, exponential backoff with jitter, a deterministic id for dedupe, bounded retention. */
export function jobOptions(queue: QueueName, jobId: string): JobsOptions {
  const spec: { attempts: number; backoffMs: number; honoursRetryAfter?: boolean } = JOBS[queue];
  return {
    jobId,
    attempts: spec.attempts,
    backoff: { type: spec.honoursRetryAfter ? RETRY_AFTER_BACKOFF : 'exponential', delay: spec.backoffMs, jitter: 0.5 },
    // Completed jobs are kept for an hour so that a redelivered add with the same id is a no-op; the journal,
    // not Redis, is the record.
    removeOnComplete: { age: 3600, count: 50_000 },
    removeOnFail: { age: 7 * 24 * 3600 },
  };
}

/** A deterministic job id (BullMQ forbids ':' in custom ids): the key itself when it is plain, else its hash. */
export function jobIdFor(queue: QueueName, key: string): string {
  return /^[A-Za-z0-9._-]{1,200}$/.test(key)
    ? `${queue}-${key}`
    : `${queue}-h${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
}

/** The job key of one notification delivery: interaction, rule, channel (job id, delivery id, idempotency header). */
export function notifyJobKey(entryId: string, ruleId: string, channel: string): string {
  return `${entryId}.${ruleId}.${channel}`;
}
