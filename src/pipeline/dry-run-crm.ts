/**
 * The CRM until the HubSpot adapter is configured: it sends nothing and journals exactly what it would have
 * written (a crm.write with dryRun: true and status 0), once per interaction, and once more for a call each time
 * what its activity would hold changes (a transcript's section added to its call's activity: under the call's
 * entry id, naming the interactions the activity holds as `members`).
 */
import { createHash } from 'node:crypto';
import type { JournalClient } from '../journal/journal-client.ts';
import type { CrmClient, MirrorPlan, MirrorResult } from './ports.ts';

export class DryRunCrm implements CrmClient {
  readonly dryRun = true;
  constructor(
    private readonly journal: JournalClient,
    private readonly options: { latencyMs?: number } = {},
  ) {}

  async mirror(plan: MirrorPlan): Promise<MirrorResult> {
    // An override re-drives the mirror: its write is a new one (keyed by the overrides), not a duplicate. So is
    // an activity that holds more than its own entry (a call with transcripts): keyed by what it would hold.
    const idempotencyKey = `crm/${plan.entryId}/upsert${plan.overrideEntryId ? `/override/${plan.overrideEntryId}` : ''}${plan.associationOverride ? `/associations/${plan.associationOverride.entryId}` : ''}${plan.members?.length ? `/holds/${holding(plan)}` : ''}`;
    // The same plan is the same write, byte for byte (a redelivered job, or a call's plan made again by another of
    // its interactions, even at the same moment in another worker): nothing is sent, so its duration is 0, never a
    // measured time that would differ between two writers and make the second a conflicting entry.
    if (this.options.latencyMs) await new Promise((r) => setTimeout(r, this.options.latencyMs));
    await this.journal.append({
      kind: 'crm.write',
      source: 'hubspot',
      actor: 'crm:dry-run',
      correlationId: plan.correlationId,
      causationId: plan.overrideEntryId ?? plan.decisionEntryId,
      idempotencyKey,
      payload: {
        system: 'hubspot',
        method: 'POST',
        path: `/crm/v3/objects/${plan.objectType}/batch/upsert`,
        status: 0,
        durationMs: 0,
        dryRun: true,
        entryId: plan.entryId,
        ...(plan.members?.length
          ? {
              members: plan.members.map((m) => ({
                entryId: m.entryId,
                decisionEntryId: m.decisionEntryId,
                ...(m.overrideEntryId ? { overrideEntryId: m.overrideEntryId } : {}),
              })),
            }
          : {}),
        objectType: plan.objectType,
        idProperty: 'journal_entry_id',
        properties: plan.properties,
        associations: plan.associationOverride
          ? (['contacts', 'companies', 'deals'] as const).flatMap((t) =>
              (plan.associationOverride?.to[t] ?? []).map((id) => ({ objectType: t, id })),
            )
          : plan.counterparts.map((c) => ({ objectType: c.includes('@') ? 'contact-email' : 'contact-phone', id: c })),
        ...(plan.associationOverride
          ? {
              override: plan.associationOverride.entryId,
              removedAssociations: (['contacts', 'companies', 'deals'] as const).flatMap((t) =>
                (plan.associationOverride?.remove[t] ?? []).map((id) => ({ objectType: t, id })),
              ),
            }
          : {}),
      },
    });
    return { objectId: null, dryRun: true };
  }
}

/** What a call activity would hold, by the ids of the decisions and overrides its sections are built from (never the text). */
function holding(plan: MirrorPlan): string {
  const ids = (plan.members ?? []).map((m) => [m.entryId, m.decisionEntryId, m.overrideEntryId ?? null]);
  return createHash('sha256')
    .update(JSON.stringify([plan.decisionEntryId, ids]))
    .digest('hex')
    .slice(0, 32);
}
