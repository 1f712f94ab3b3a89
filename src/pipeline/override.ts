/**
 * Human corrections of automated decisions. Nothing is edited: an approval or an override is a new
 * `human.override` entry that names the decision it supersedes, the new outcome, the reason and (as its actor)
 * the user. A category override re-drives the mirror, which builds its plan from the newest override.
 */
import { randomUUID } from 'node:crypto';
import type { JournalClient } from '../journal/journal-client.ts';
import type { JournalEntry } from '../journal/entry.ts';
import { CATEGORIES, type Category, type Classification } from './classification.ts';
import type { Enqueue } from './ports.ts';
import { OverrideError } from './errors/override.error.ts';

export interface OverrideRequest {
  readonly decisionEntryId: string;
  readonly decisionSeq: number;
  /** approve: the decision stands (it leaves the review queue); override: the category changes. */
  readonly action: 'approve' | 'override';
  readonly category?: Category | undefined;
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
export function effectiveCategory(decision: JournalEntry, chain: readonly JournalEntry[]): EffectiveCategory {
  const modelCategory = (decision.payload as { output: Classification }).output.category;
  let override: JournalEntry | null = null;
  for (const e of chain) {
    if (e.kind !== 'human.override') continue;
    const p = e.payload as { supersedes: string; field: string; to: unknown };
    if (p.supersedes === decision.id && p.field === 'category' && isCategory(p.to) && (override === null || e.seq > override.seq)) override = e;
  }
  const category = override ? ((override.payload as { to: Category }).to) : modelCategory;
  return { category, modelCategory, override };
}

export async function recordOverride(deps: { journal: JournalClient; enqueue: Enqueue }, req: OverrideRequest): Promise<OverrideResult> {
  const reason = req.reason.trim();
  if (reason.length === 0) throw new OverrideError('INVALID', 'a reason is required');
  if (reason.length > 10_000) throw new OverrideError('INVALID', 'the reason is longer than 10,000 characters');
  if (req.action === 'override' && !isCategory(req.category)) throw new OverrideError('INVALID', `an override needs a category (one of ${CATEGORIES.join(', ')})`);
  const decision = await deps.journal.bySeq(req.decisionSeq);
  if (!decision || decision.id !== req.decisionEntryId) throw new OverrideError('NOT_FOUND', `no decision ${req.decisionEntryId} in the journal`);
  const p = decision.payload as { outcome?: string; output?: unknown; inputEntryId?: string };
  if (decision.kind !== 'ai.decision' || p.outcome === 'failed' || !p.output || typeof p.inputEntryId !== 'string') {
    throw new OverrideError('NOT_A_DECISION', `entry ${decision.id} is a ${decision.kind}${p.outcome === 'failed' ? ' (a failed one; its fallback is the decision)' : ''}, not a decision that can be overridden`);
  }
  const chain = await deps.journal.byCorrelation(decision.correlationId);
  const current = effectiveCategory(decision, chain);
  if (req.action === 'override' && req.category === current.category) throw new OverrideError('UNCHANGED', `the category is already ${current.category}`);
  const payload =
    req.action === 'approve'
      ? { supersedes: decision.id, field: 'review', from: 'pending', to: 'approved', reason }
      : { supersedes: decision.id, field: 'category', from: current.category, to: req.category as Category, reason };
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
  const interaction = chain.find((e) => e.kind === 'interaction.received' && e.id === p.inputEntryId);
  if (!interaction) return { entry, redriven: false };
  // A job key per override: BullMQ would drop a second mirror job with the original key as a duplicate.
  await deps.enqueue('mirror', { entryId: interaction.id, seq: interaction.seq, correlationId: decision.correlationId, decisionEntryId: decision.id, decisionSeq: decision.seq }, `${interaction.id}-override-${entry.id}`);
  return { entry, redriven: true };
}
