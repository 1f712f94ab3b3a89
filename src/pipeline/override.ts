/**
 * Human corrections of automated decisions. Nothing is edited: an approval or an override is a new
 * `human.override` entry that names the decision it supersedes, the new outcome, the reason and (as its actor)
 * the user. A category override re-drives the mirror, which builds its plan from the newest override.
 */
import { randomUUID } from 'node:crypto';
import type { JournalClient } from '../journal/journal-client.ts';
import type { JournalEntry } from '../journal/entry.ts';
import { isKind, type EntryOf } from '../journal/entry-payload.ts';
import { classificationOf, type Category } from './classification.ts';
import { CATEGORIES } from '../journal/categories.ts';
import type { AssociationOverride, AssociationTargets, Enqueue } from './ports.ts';
import { OverrideError } from './errors/override.error.ts';

export interface OverrideRequest {
  readonly decisionEntryId: string;
  readonly decisionSeq: number;
  /**
   * approve: the decision stands (it leaves the review queue); override: the category changes; associate: the
   * CRM associations change (the target types given replace the matched ones; the others stay).
   */
  readonly action: 'approve' | 'override' | 'associate';
  readonly category?: Category | undefined;
  readonly associations?: Partial<Record<keyof AssociationTargets, readonly string[] | undefined>> | undefined;
  readonly reason: string;
  /** A configured user id (the entry's actor is `user:<id>`). */
  readonly userId: string;
  /** Where it was made: the entry's source. */
  readonly via: 'audit-ui' | 'api' | 'cli';
}

export interface OverrideResult {
  readonly entry: JournalEntry;
  /** True when the mirror job was queued again. */
  readonly redriven: boolean;
}

/** The category now in force for a decision: the newest category override's, else the model's. */
export interface EffectiveCategory {
  readonly category: Category;
  readonly modelCategory: Category;
  readonly override: JournalEntry | null;
}

export function isCategory(value: unknown): value is Category {
  return typeof value === 'string' && (CATEGORIES as readonly string[]).includes(value);
}

/** Reads the newest category override of `decision` among the entries of its correlation (in seq order). */
export function effectiveCategory(decision: EntryOf<'ai.decision'>, chain: readonly JournalEntry[]): EffectiveCategory {
  const modelCategory = classificationOf(decision).category;
  let override: JournalEntry | null = null;
  let category = modelCategory;
  for (const e of chain) {
    if (!isKind(e, 'human.override')) continue;
    const p = e.payload;
    if (p.supersedes === decision.id && p.field === 'category' && isCategory(p.to) && (override === null || e.seq > override.seq)) {
      override = e;
      category = p.to;
    }
  }
  return { category, modelCategory, override };
}

const TARGETS = ['contacts', 'companies', 'deals'] as const;
const NO_TARGETS: AssociationTargets = { contacts: [], companies: [], deals: [] };
const CRM_ID = /^[0-9]{1,20}$/;

function targetsOf(value: unknown): AssociationTargets {
  const v = (value ?? {}) as Partial<Record<string, unknown>>;
  const ids = (x: unknown): string[] =>
    Array.isArray(x) ? [...new Set(x.filter((i): i is string => typeof i === 'string' && CRM_ID.test(i)))] : [];
  return { contacts: ids(v['contacts']), companies: ids(v['companies']), deals: ids(v['deals']) };
}

/** Association targets as a journal payload holds them (JSON arrays). */
function targetsJson(t: AssociationTargets): { contacts: string[]; companies: string[]; deals: string[] } {
  return { contacts: [...t.contacts], companies: [...t.companies], deals: [...t.deals] };
}

/** What the matching rule associated the interaction with: its newest crm-match rule.decision, if any. */
function matchedTargets(interactionId: string, chain: readonly JournalEntry[]): AssociationTargets {
  let newest: EntryOf<'rule.decision'> | null = null;
  for (const e of chain) {
    if (
      isKind(e, 'rule.decision') &&
      e.payload.ruleId === 'crm-match' &&
      e.payload.inputEntryId === interactionId &&
      (newest === null || e.seq > newest.seq)
    )
      newest = e;
  }
  return newest ? targetsOf(newest.payload.evaluated) : NO_TARGETS;
}

/**
 * The association override in force for a decision (its newest human.override of field "associations"), with
 * what it removes: every target an earlier match or override named that the newest one does not.
 */
export function effectiveAssociations(decision: EntryOf<'ai.decision'>, chain: readonly JournalEntry[]): AssociationOverride | null {
  const interactionId = decision.payload.inputEntryId ?? '';
  const overrides = chain.flatMap((e) =>
    isKind(e, 'human.override') && e.payload.supersedes === decision.id && e.payload.field === 'associations' ? [e] : [],
  );
  const newest = overrides.reduce<EntryOf<'human.override'> | null>((a, e) => (a === null || e.seq > a.seq ? e : a), null);
  if (!newest) return null;
  const p = newest.payload;
  const to = targetsOf(p.to);
  const named = [matchedTargets(interactionId, chain), ...overrides.flatMap((e) => [targetsOf(e.payload.from), targetsOf(e.payload.to)])];
  const remove = Object.fromEntries(
    TARGETS.map((t) => [t, [...new Set(named.flatMap((n) => n[t]))].filter((id) => !to[t].includes(id))]),
  ) as unknown as AssociationTargets;
  return {
    entryId: newest.id,
    actor: newest.actor,
    reason: String(p.reason ?? ''),
    from: targetsOf(p.from),
    to,
    remove,
  };
}

export async function recordOverride(deps: { journal: JournalClient; enqueue: Enqueue }, req: OverrideRequest): Promise<OverrideResult> {
  const reason = req.reason.trim();
  if (reason.length === 0) throw new OverrideError('INVALID', 'a reason is required');
  if (reason.length > 10_000) throw new OverrideError('INVALID', 'the reason is longer than 10,000 characters');
  if (req.action === 'override' && !isCategory(req.category))
    throw new OverrideError('INVALID', `an override needs a category (one of ${CATEGORIES.join(', ')})`);
  if (req.action === 'associate') {
    const given = Object.entries(req.associations ?? {}).filter(([, ids]) => ids !== undefined);
    if (given.length === 0)
      throw new OverrideError(
        'INVALID',
        'an association override names at least one target type (contacts, companies or deals) and its CRM record ids',
      );
    for (const [type, ids] of given) {
      if (!(TARGETS as readonly string[]).includes(type))
        throw new OverrideError('INVALID', `unknown association target "${type}" (contacts, companies or deals)`);
      if (!Array.isArray(ids) || ids.length > 100 || ids.some((id) => typeof id !== 'string' || !CRM_ID.test(id)))
        throw new OverrideError('INVALID', `${type}: up to 100 numeric CRM record ids`);
    }
  }
  const decision = await deps.journal.bySeq(req.decisionSeq);
  if (!decision || decision.id !== req.decisionEntryId)
    throw new OverrideError('NOT_FOUND', `no decision ${req.decisionEntryId} in the journal`);
  if (!isKind(decision, 'ai.decision') || decision.payload.outcome === 'failed' || !decision.payload.output) {
    const failed = isKind(decision, 'ai.decision') && decision.payload.outcome === 'failed';
    throw new OverrideError(
      'NOT_A_DECISION',
      `entry ${decision.id} is a ${decision.kind}${failed ? ' (a failed one; its fallback is the decision)' : ''}, not a decision that can be overridden`,
    );
  }
  const p = decision.payload;
  // Present in every decision's payload, withheld or not (only a dropped payload has none, and it has no output either).
  const inputEntryId = p.inputEntryId ?? '';
  const chain = await deps.journal.byCorrelation(decision.correlationId);
  const current = effectiveCategory(decision, chain);
  if (req.action === 'override' && req.category === current.category)
    throw new OverrideError('UNCHANGED', `the category is already ${current.category}`);
  let payload;
  if (req.action === 'approve') payload = { supersedes: decision.id, field: 'review', from: 'pending', to: 'approved', reason };
  else if (req.action === 'override')
    payload = { supersedes: decision.id, field: 'category', from: current.category, to: req.category as Category, reason };
  else {
    const before = effectiveAssociations(decision, chain)?.to ?? matchedTargets(inputEntryId, chain);
    const after = Object.fromEntries(
      TARGETS.map((t) => [t, req.associations?.[t] ? [...new Set(req.associations[t])] : [...before[t]]]),
    ) as unknown as AssociationTargets;
    if (TARGETS.every((t) => [...after[t]].sort().join() === [...before[t]].sort().join()))
      throw new OverrideError('UNCHANGED', 'the associations are already those');
    payload = { supersedes: decision.id, field: 'associations', from: targetsJson(before), to: targetsJson(after), reason };
  }
  const { entry } = await deps.journal.append({
    kind: 'human.override',
    source: req.via,
    actor: `user:${req.userId}`,
    correlationId: decision.correlationId,
    causationId: decision.id,
    // Every override is its own act, even one that repeats an earlier correction.
    idempotencyKey: `override/${decision.id}/${randomUUID()}`,
    payload,
  });
  if (req.action === 'approve') return { entry, redriven: false };
  const interaction = chain.find((e) => e.kind === 'interaction.received' && e.id === inputEntryId);
  if (!interaction) return { entry, redriven: false };
  // A job key per override: BullMQ would drop a second mirror job with the original key as a duplicate.
  await deps.enqueue(
    'mirror',
    {
      entryId: interaction.id,
      seq: interaction.seq,
      correlationId: decision.correlationId,
      decisionEntryId: decision.id,
      decisionSeq: decision.seq,
    },
    `${interaction.id}-override-${entry.id}`,
  );
  return { entry, redriven: true };
}
