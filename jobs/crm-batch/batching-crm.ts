import type { Queue } from 'bullmq';
import type { CrmClient, MirrorPlan, MirrorResult } from '../../src/pipeline/ports.ts';
import type { PendingPlans } from './pending-plans.ts';
import { scheduleBatch } from './schedule.ts';

/** The CrmClient the mirror stage uses when HubSpot is configured: pending + a job for the window. */
export class BatchingCrm implements CrmClient {
  readonly dryRun = false;
  constructor(
    private readonly pending: PendingPlans,
    private readonly queue: Queue,
    private readonly windowMs: number,
  ) {}

  async mirror(plan: MirrorPlan): Promise<MirrorResult> {
    await this.pending.submit({
      entryId: plan.entryId,
      entrySeq: plan.entrySeq,
      correlationId: plan.correlationId,
      decisionEntryId: plan.decisionEntryId,
      decisionSeq: plan.decisionSeq,
      objectType: plan.objectType,
    });
    await scheduleBatch(this.queue, this.windowMs);
    return { objectId: null, dryRun: false };
  }
}
