/**
 * `activity-journal crm drift [--since DAY] [--repair]`: the journal against HubSpot, on the record.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/config.ts';
import type { Logger } from '../config/logger.ts';
import { crmDrift, planFromJournal, type DriftReport } from '../pipeline/crm-drift.ts';
import { startPipeline } from '../../jobs/main.ts';
import { withJournal } from './journal-access.ts';
import { UsageError } from './usage-error.ts';

export function parseSince(value: string | undefined): Date | null {
  if (value === undefined) return null;
  const d = /^\d{4}-\d{2}-\d{2}$/.test(value) ? new Date(`${value}T00:00:00Z`) : new Date(value);
  if (Number.isNaN(d.getTime()))
    throw new UsageError(`--since must be a day like 2026-11-01 or an ISO time (got ${JSON.stringify(value)})`);
  return d;
}

export async function runCrmDrift(config: Config, logger: Logger, options: { since: Date | null; repair: boolean }): Promise<DriftReport> {
  if (!config.pipeline.hubspot)
    throw new UsageError('HubSpot is not configured: set HUBSPOT_ACCESS_TOKEN (drift compares the journal with HubSpot)');
  return withJournal(config, async (journal) => {
    const runtime = await startPipeline(config, logger, { journal, queues: [] });
    try {
      const hubspot = runtime.hubspot;
      if (!hubspot) throw new UsageError('HubSpot is not configured: set HUBSPOT_ACCESS_TOKEN');
      return await crmDrift(
        { journal, crm: hubspot.crm, planFor: planFromJournal(journal, (ref) => runtime.pipeline.planFor(ref)) },
        { ...options, runId: randomUUID() },
      );
    } finally {
      await runtime.close();
    }
  });
}

export function driftLines(r: DriftReport, repair: boolean): string[] {
  const lines = [
    `${r.checked} mirrored activit${r.checked === 1 ? 'y' : 'ies'} checked${r.since ? ` since ${r.since}` : ''}: ${r.missing} missing, ${r.changed} changed${repair ? `, ${r.repaired} repaired` : ''}`,
  ];
  for (const i of r.items) {
    const what = i.status === 'missing' ? 'missing' : `changed (${i.fields.map((f) => f.field).join(', ')})`;
    lines.push(
      `  ${i.objectType} ${i.objectId ?? '-'} entry ${i.entryId}: ${what}${repair ? (i.repaired ? ' -> repaired' : ' -> NOT repaired') : ''}`,
    );
  }
  if (!repair && r.items.length > 0) lines.push('run again with --repair to write them back (on the record)');
  return lines;
}
