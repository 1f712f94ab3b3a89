/**
 * Human corrections (src/pipeline/override.ts) over a real local journal: an approval, a category override and an
 * association override are each a new human.override; the category and associations in force are the newest
 * ones; an override re-drives the mirror, and the mirror's plan carries it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.ts';
import { billingEmail, email, stageHarness, throughDecide, type StageHarness } from '../helpers/stages.ts';
import { effectiveAssociations, effectiveCategory, isCategory, recordOverride, type OverrideRequest } from '../../src/pipeline/override.ts';
import { OverrideError } from '../../src/pipeline/errors/override.error.ts';
import { isKind } from '../../src/journal/entry-payload.ts';
import type { JournalEntry } from '../../src/journal/entry.ts';

let tmp: { dir: string; cleanup: () => void };
let h: StageHarness;
beforeEach(async () => {
  tmp = tempDir('aj-override-');
  h = await stageHarness(tmp.dir);
});
afterEach(async () => {
  await h.close();
  tmp.cleanup();
});

const request = (decision: JournalEntry, over: Partial<OverrideRequest>): OverrideRequest => ({
  decisionEntryId: decision.id,
  decisionSeq: decision.seq,
  action: 'approve',
  reason: 'checked',
  userId: 'rita',
  via: 'cli',
  ...over,
});
const asDecision = (e: JournalEntry) => {
  if (!isKind(e, 'ai.decision')) throw new Error(`${e.kind} is not a decision`);
  return e;
};
const deps = (): Parameters<typeof recordOverride>[0] => ({ journal: h.journal, enqueue: h.queues.enqueue });
const chainOf = (e: JournalEntry): Promise<JournalEntry[]> => h.journal.byCorrelation(e.correlationId);

describe('recordOverride', () => {
  it('approves without re-driving; overrides the category, re-drives the mirror, and the plan carries the override', async () => {
    const { entry, decision } = await throughDecide(h, billingEmail('o-1'));
    h.queues.clear();
    const approved = await recordOverride(deps(), request(decision, {}));
    expect(approved.redriven).toBe(false);
    expect(approved.entry).toMatchObject({ kind: 'human.override', actor: 'user:rita', source: 'cli', causationId: decision.id });
    expect(approved.entry.payload).toMatchObject({ field: 'review', from: 'pending', to: 'approved' });
    expect(h.queues.jobs).toEqual([]);

    const changed = await recordOverride(
      deps(),
      request(decision, { action: 'override', category: 'customer_support', reason: ' a support case ' }),
    );
    expect(changed.redriven).toBe(true);
    expect(changed.entry.payload).toMatchObject({
      supersedes: decision.id,
      field: 'category',
      from: 'billing',
      to: 'customer_support',
      reason: 'a support case',
    });
    expect(h.queues.jobs).toEqual([
      {
        queue: 'mirror',
        data: {
          entryId: entry.id,
          seq: entry.seq,
          correlationId: decision.correlationId,
          decisionEntryId: decision.id,
          decisionSeq: decision.seq,
        },
        jobKey: `${entry.id}-override-${changed.entry.id}`,
      },
    ]);
    const inForce = effectiveCategory(asDecision(decision), await chainOf(decision));
    expect(inForce).toMatchObject({ category: 'customer_support', modelCategory: 'billing' });
    expect(inForce.override?.id).toBe(changed.entry.id);
    const plan = await h.pipeline.planFor({
      entryId: entry.id,
      entrySeq: entry.seq,
      correlationId: entry.correlationId,
      decisionEntryId: decision.id,
      decisionSeq: decision.seq,
    });
    expect(plan.overrideEntryId).toBe(changed.entry.id);
    expect(plan.category).toBe('customer_support');

    // The newest override wins; the same category again is refused as unchanged.
    await expect(recordOverride(deps(), request(decision, { action: 'override', category: 'customer_support' }))).rejects.toMatchObject({
      code: 'UNCHANGED',
    });
    await recordOverride(deps(), request(decision, { action: 'override', category: 'sales_conversation' }));
    expect(effectiveCategory(asDecision(decision), await chainOf(decision)).category).toBe('sales_conversation');
  });

  it('replaces the associations given, keeps the others, and removes what no longer applies', async () => {
    const { decision } = await throughDecide(h, email('o-2'));
    const first = await recordOverride(deps(), request(decision, { action: 'associate', associations: { contacts: ['101', '102'] } }));
    expect(first.entry.payload).toMatchObject({
      field: 'associations',
      from: { contacts: [], companies: [], deals: [] },
      to: { contacts: ['101', '102'], companies: [], deals: [] },
    });
    await recordOverride(deps(), request(decision, { action: 'associate', associations: { contacts: ['102'], deals: ['7'] } }));
    const now = effectiveAssociations(asDecision(decision), await chainOf(decision));
    expect(now).toMatchObject({
      actor: 'user:rita',
      to: { contacts: ['102'], companies: [], deals: ['7'] },
      remove: { contacts: ['101'], companies: [], deals: [] },
    });
    await expect(recordOverride(deps(), request(decision, { action: 'associate', associations: { deals: ['7'] } }))).rejects.toMatchObject({
      code: 'UNCHANGED',
    });
  });

  it('refuses what is not a correction of a decision', async () => {
    const { entry, decision } = await throughDecide(h, email('o-3'));
    const invalid = (over: Partial<OverrideRequest>): Promise<unknown> => recordOverride(deps(), request(decision, over));
    await expect(invalid({ reason: '   ' })).rejects.toMatchObject({ code: 'INVALID' });
    await expect(invalid({ action: 'override' })).rejects.toMatchObject({ code: 'INVALID' });
    await expect(invalid({ action: 'associate', associations: {} })).rejects.toMatchObject({ code: 'INVALID' });
    await expect(invalid({ action: 'associate', associations: { contacts: ['not-a-crm-id'] } })).rejects.toMatchObject({ code: 'INVALID' });
    await expect(invalid({ decisionSeq: decision.seq + 1000 })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(recordOverride(deps(), request(entry, {}))).rejects.toMatchObject({ code: 'NOT_A_DECISION' });
    await expect(invalid({ reason: '' })).rejects.toThrow(OverrideError);
    // Nothing was written by any of them.
    expect((await h.entries()).filter((e) => e.kind === 'human.override')).toEqual([]);
    expect(isCategory('billing')).toBe(true);
    expect(isCategory('nonsense')).toBe(false);
  });
});
