/**
 * Drift: does HubSpot still hold, for every activity the journal says we mirrored, the properties we last wrote?
 * Reads the journal's successful upserts (crm.write), reads the activities back by journal_entry_id in batches,
 * and reports what is missing or changed. With repair, writes the plan again (the upsert recreates or restores
 * it) and journals each restored field as a state.changed from HubSpot's value to the journal's.
 */
import type { JournalClient } from '../journal/journal-client.ts';
import type { AppendInput, JournalEntry } from '../journal/entry.ts';
import { filterKind } from '../journal/entry-payload.ts';
import { ACTIVITY_WRITE_PATH, type BatchCrmClient, type MirrorPlan } from './ports.ts';

export interface DriftField {
  readonly field: string;
  readonly expected: string | null;
  readonly actual: string | null;
}

export interface DriftItem {
  readonly entryId: string;
  readonly objectType: MirrorPlan['objectType'];
  readonly objectId: string | null;
  readonly status: 'missing' | 'changed';
  readonly fields: readonly DriftField[];
  readonly repaired: boolean;
}

export interface DriftReport {
  readonly since: string | null;
  readonly checked: number;
  readonly missing: number;
  readonly changed: number;
  readonly repaired: number;
  readonly items: readonly DriftItem[];
}

interface Written {
  readonly entryId: string;
  readonly objectType: MirrorPlan['objectType'];
  readonly properties: Record<string, string>;
  readonly correlationId: string;
}

export interface DriftDeps {
  readonly journal: JournalClient;
  readonly crm: BatchCrmClient;
  /** The plan to write back for a mirrored entry (planFromJournal: rebuilt from the journal as the mirror stage does). */
  readonly planFor: (mirrored: { entryId: string; correlationId: string }) => Promise<MirrorPlan>;
}

type PlanRefFor = (ref: {
  entryId: string;
  entrySeq: number;
  correlationId: string;
  decisionEntryId: string;
  decisionSeq: number;
}) => Promise<MirrorPlan>;

/**
 * Finds a mirrored entry's interaction and newest decision in its correlation, and builds the plan from them. A
 * call activity whose anchor has no decision (a transcript's section written first) is planned from the newest
 * decision of an interaction its writes say it holds (`members`).
 */
export function planFromJournal(journal: JournalClient, planFor: PlanRefFor): DriftDeps['planFor'] {
  return async (w) => {
    const chain = await journal.byCorrelation(w.correlationId);
    const entry = chain.find((e) => e.id === w.entryId);
    const held = new Set([w.entryId]);
    for (const e of filterKind(chain, 'crm.write', (x) => x.payload.entryId === w.entryId))
      for (const m of e.payload.members ?? []) held.add(m.entryId);
    const decisionOf = (ids: ReadonlySet<string>): JournalEntry | undefined =>
      filterKind(chain, 'ai.decision', (e) => ids.has(e.payload.inputEntryId ?? '') && e.payload.output !== null).at(-1);
    const decision = decisionOf(new Set([w.entryId])) ?? decisionOf(held);
    if (!entry || !decision) throw new Error(`the journal has no interaction and decision for mirrored entry ${w.entryId}`);
    return planFor({
      entryId: entry.id,
      entrySeq: entry.seq,
      correlationId: entry.correlationId,
      decisionEntryId: decision.id,
      decisionSeq: decision.seq,
    });
  };
}

/** The properties an activity write recorded: the plan's, all text (MirrorPlan.properties). */
function textProperties(recorded: Readonly<Record<string, unknown>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(recorded)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** HubSpot gives datetimes back in its own format: compare instants, and text without trailing blanks. */
export function sameValue(field: string, expected: string | null, actual: string | null): boolean {
  if (expected === actual) return true;
  if (expected === null || actual === null) return (expected ?? '') === (actual ?? '');
  if (field === 'hs_timestamp') {
    const a = Date.parse(expected);
    const b = Number.isNaN(Date.parse(actual)) ? Number(actual) : Date.parse(actual);
    return !Number.isNaN(a) && a === b;
  }
  return expected.trimEnd() === actual.trimEnd();
}

/** The newest successful activity write of every mirrored entry recorded since `since`. */
export async function mirroredSince(journal: JournalClient, since: Date | null): Promise<Map<string, Written>> {
  const out = new Map<string, Written>();
  let afterSeq: number | undefined;
  for (;;) {
    const page = await journal.byKind({
      kind: 'crm.write',
      ...(since ? { since: since.toISOString() } : {}),
      ...(afterSeq !== undefined ? { afterSeq } : {}),
      limit: 1000,
    });
    for (const e of filterKind(page, 'crm.write')) {
      const p = e.payload;
      if (!p.entryId || p.dryRun === true || !ACTIVITY_WRITE_PATH.test(p.path ?? '') || !p.properties) continue;
      if (p.objectType !== 'emails' && p.objectType !== 'calls' && p.objectType !== 'notes') continue;
      out.set(p.entryId, {
        entryId: p.entryId,
        objectType: p.objectType,
        properties: textProperties(p.properties),
        correlationId: e.correlationId,
      });
    }
    if (page.length < 1000) break;
    afterSeq = (page[page.length - 1] as JournalEntry).seq;
  }
  return out;
}

export async function crmDrift(deps: DriftDeps, options: { since: Date | null; repair: boolean; runId: string }): Promise<DriftReport> {
  const written = await mirroredSince(deps.journal, options.since);
  const items: DriftItem[] = [];
  for (const type of ['emails', 'calls', 'notes'] as const) {
    const mine = [...written.values()].filter((w) => w.objectType === type);
    if (mine.length === 0) continue;
    const fields = [...new Set(mine.flatMap((w) => Object.keys(w.properties)))];
    const found = await deps.crm.readMirrored(
      type,
      mine.map((w) => w.entryId),
      fields,
    );
    const drifted: { w: Written; item: DriftItem }[] = [];
    for (const w of mine) {
      const got = found.get(w.entryId);
      if (!got) {
        drifted.push({ w, item: { entryId: w.entryId, objectType: type, objectId: null, status: 'missing', fields: [], repaired: false } });
        continue;
      }
      const diffs = Object.entries(w.properties)
        .map(([field, expected]) => ({ field, expected, actual: got.properties[field] ?? null }))
        .filter((d) => !sameValue(d.field, d.expected, d.actual));
      if (diffs.length > 0)
        drifted.push({
          w,
          item: { entryId: w.entryId, objectType: type, objectId: got.objectId, status: 'changed', fields: diffs, repaired: false },
        });
    }
    if (!options.repair || drifted.length === 0) {
      items.push(...drifted.map((d) => d.item));
      continue;
    }
    for (let i = 0; i < drifted.length; i += 100) {
      const slice = drifted.slice(i, i + 100);
      const plans: MirrorPlan[] = [];
      for (const d of slice) plans.push(await deps.planFor(d.w));
      const outcomes = await deps.crm.mirrorBatch(plans, `drift-${options.runId}-${type}-${i / 100}`);
      const restored: AppendInput[] = [];
      for (const d of slice) {
        const o = outcomes.find((x) => x.entryId === d.w.entryId);
        const ok = o?.status === 'mirrored';
        items.push({ ...d.item, repaired: ok });
        if (!ok || !o?.objectId) continue;
        const plan = plans.find((p) => p.entryId === d.w.entryId) as MirrorPlan;
        const changes =
          d.item.status === 'missing'
            ? [{ field: 'exists', from: false, to: true }]
            : d.item.fields.map((f) => ({ field: f.field, from: f.actual, to: plan.properties[f.field] ?? f.expected }));
        for (const c of changes) {
          restored.push({
            kind: 'state.changed',
            source: 'hubspot',
            actor: 'crm:drift-repair',
            correlationId: plan.correlationId,
            causationId: plan.decisionEntryId,
            idempotencyKey: `crm-drift/${options.runId}/${plan.entryId}/${c.field}`,
            payload: { entity: `hubspot/${type}/${o.objectId}`, field: c.field, from: c.from, to: c.to },
          });
        }
      }
      if (restored.length > 0) await deps.journal.appendBatch(restored);
    }
  }
  return {
    since: options.since?.toISOString() ?? null,
    checked: written.size,
    missing: items.filter((i) => i.status === 'missing').length,
    changed: items.filter((i) => i.status === 'changed').length,
    repaired: items.filter((i) => i.repaired).length,
    items,
  };
}
