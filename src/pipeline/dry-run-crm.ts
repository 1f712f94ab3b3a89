/**
 * The CRM until the HubSpot adapter is configured: it sends nothing and journals exactly what it would have
 * written (a crm.write with dryRun: true and status 0), once per interaction.
 */
import type { JournalClient } from '../journal/journal-client.ts';
import type { CrmClient, MirrorPlan, MirrorResult } from './ports.ts';

export class DryRunCrm implements CrmClient {
  readonly dryRun = true;
  constructor(private readonly journal: JournalClient, private readonly options: { latencyMs?: number } = {}) {}

  async mirror(plan: MirrorPlan): Promise<MirrorResult> {
    const started = Date.now();
    if (this.options.latencyMs) await new Promise((r) => setTimeout(r, this.options.latencyMs));
    await this.journal.append({
      kind: 'crm.write',
      source: 'hubspot',
      actor: 'crm:dry-run',
      correlationId: plan.correlationId,
      causationId: plan.overrideEntryId ?? plan.decisionEntryId,
      // An override re-drives the mirror: its write is a new one (keyed by the overrides), not a duplicate.
      idempotencyKey: `crm/${plan.entryId}/upsert${plan.overrideEntryId ? `/override/${plan.overrideEntryId}` : ''}${plan.associationOverride ? `/associations/${plan.associationOverride.entryId}` : ''}`,
      payload: {
        system: 'hubspot',
        method: 'POST',
        path: `/crm/v3/objects/${plan.objectType}/batch/upsert`,
        status: 0,
        durationMs: Date.now() - started,
        dryRun: true,
        entryId: plan.entryId,
        objectType: plan.objectType,
        idProperty: 'journal_entry_id',
        properties: plan.properties,
        associations: plan.associationOverride
          ? (['contacts', 'companies', 'deals'] as const).flatMap((t) => (plan.associationOverride?.to[t] ?? []).map((id) => ({ objectType: t, id })))
          : plan.counterparts.map((c) => ({ objectType: c.includes('@') ? 'contact-email' : 'contact-phone', id: c })),
        ...(plan.associationOverride
          ? { override: plan.associationOverride.entryId, removedAssociations: (['contacts', 'companies', 'deals'] as const).flatMap((t) => (plan.associationOverride?.remove[t] ?? []).map((id) => ({ objectType: t, id }))) }
          : {}),
      },
    });
    return { objectId: null, dryRun: true };
  }
}
