/**
 * The journal entries of HubSpot calls: one per activity for an activity write (under the interaction's
 * correlation, naming the interactions a call activity holds), one per call for everything else (lookups,
 * bootstrap, reads, refused attempts, under the batch's correlation). Idempotent by HubSpot's correlation id.
 */
import type { AppendInput } from '../../src/journal/entry.ts';
import type { PayloadOf } from '../../src/journal/kinds.ts';
import type { MirrorPlan } from '../../src/pipeline/ports.ts';
import type { CallRecord } from './hubspot.http.ts';

/** What an entry says beyond the call itself: what it was for, the object type and ids, properties, associations… */
export type CallDetails = Omit<PayloadOf<'crm.write'>, 'system' | 'method' | 'path' | 'status' | 'durationMs' | 'providerCorrelationId'>;
/** Why a call failed, and whether trying again can help. */
export interface CallFailure {
  readonly error: string;
  readonly retryable: boolean;
}

function callFields(
  record: CallRecord,
): Pick<PayloadOf<'crm.write'>, 'system' | 'method' | 'path' | 'status' | 'durationMs' | 'providerCorrelationId'> {
  return {
    system: 'hubspot',
    method: record.method,
    path: record.path,
    status: record.status,
    durationMs: record.durationMs,
    providerCorrelationId: record.correlationId,
  };
}

/** One journal entry per activity for one call (naming the interactions a call activity holds: its transcripts too). */
export function itemEntry(
  kind: 'crm.write',
  plan: MirrorPlan,
  record: CallRecord,
  op: string,
  extra: CallDetails,
): AppendInput<'crm.write'>;
export function itemEntry(
  kind: 'crm.write_failed',
  plan: MirrorPlan,
  record: CallRecord,
  op: string,
  extra: CallDetails & CallFailure,
): AppendInput<'crm.write_failed'>;
export function itemEntry(
  kind: 'crm.write' | 'crm.write_failed',
  plan: MirrorPlan,
  record: CallRecord,
  op: string,
  extra: CallDetails & Partial<CallFailure>,
): AppendInput {
  const members = plan.members?.length
    ? {
        members: plan.members.map((m) => ({
          entryId: m.entryId,
          decisionEntryId: m.decisionEntryId,
          ...(m.overrideEntryId ? { overrideEntryId: m.overrideEntryId } : {}),
        })),
      }
    : {};
  const header = {
    source: 'hubspot',
    actor: 'crm:hubspot',
    correlationId: plan.correlationId,
    causationId: plan.decisionEntryId,
    idempotencyKey: `crm/${plan.entryId}/${op}/${record.correlationId}`,
  };
  const payload = { ...callFields(record), entryId: plan.entryId, ...members, ...extra };
  if (kind === 'crm.write') return { ...header, kind, payload };
  return { ...header, kind, payload: { ...payload, error: extra.error ?? 'failed', retryable: extra.retryable ?? false } };
}

/** One journal entry for a call that is not an activity write (lookups, bootstrap, reads, refused attempts). */
export function callEntry(
  correlationId: string,
  record: CallRecord,
  extra: CallDetails,
  error?: string,
  retryable = false,
): AppendInput<'crm.write' | 'crm.write_failed'> {
  const failed = error !== undefined || record.status >= 400 || record.status === 0;
  const header = { source: 'hubspot', actor: 'crm:hubspot', correlationId, idempotencyKey: `crm/call/${record.correlationId}` };
  const payload = { ...callFields(record), ...extra };
  if (!failed) return { ...header, kind: 'crm.write', payload };
  return {
    ...header,
    kind: 'crm.write_failed',
    payload: { ...payload, error: (error ?? `HTTP ${record.status}`).slice(0, 2000), retryable },
  };
}
