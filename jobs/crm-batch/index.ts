/**
 * Batching the HubSpot mirror over BullMQ and Redis, by concern:
 * - pending-plans.ts: the Redis store of plans waiting for their upsert and written activities waiting for their
 *   associations (ids only), with leases so a killed worker's claims go back to pending (Lua: CLAIM, RENEW, FINISH);
 * - request-gate.ts: the one HubSpot request limit shared by every worker process (the crm-batch queue's BullMQ
 *   limiter key; a halt is BullMQ's manual rate limit on the queue);
 * - batching-crm.ts: the CrmClient the mirror stage uses: it records the plan as pending and schedules the window;
 * - schedule.ts: one crm-batch job per short window (a deterministic id), the associations job, the sweeper;
 * - processor.ts: the crm-batch job: claim, rebuild from the journal, batch upsert, associate, acknowledge; a
 *   RateLimitError (HubSpot's daily limit) becomes BullMQ's rate limit of the whole queue.
 *
 * The mirror stage does not call HubSpot: it records the plan's ids as pending (idempotent by entry id) and adds
 * a `crm-batch` job for the next short window, so a burst of mirrors makes one job. Exactly once comes from the
 * upsert by journal_entry_id: running a claim twice updates the activity, it never creates a second one. A 429
 * TEN_SECONDLY_ROLLING sets BullMQ's manual rate limit on the queue (Queue.rateLimit), which stops every worker;
 * a 429 DAILY does the same until the reset.
 */
export { PendingPlans, type LinkRef, type PlanRef } from './pending-plans.ts';
export { QueueRequestGate } from './request-gate.ts';
export { BatchingCrm } from './batching-crm.ts';
export { scheduleBatch, scheduleLinks, startBatchSweeper } from './schedule.ts';
export { processCrmBatch, type CrmBatchDeps, type CrmBatchResult, type CrmBatchSettings, type CrmBatchStage } from './processor.ts';
