/**
 * The pipeline's stages one at a time (src/pipeline/pipeline.ts), over a real local journal, the offline
 * classifier and the dry-run CRM, with the queues and the decision cache in memory: what each stage journals,
 * what it hands on, and that running it again adds nothing.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.ts';
import { billingEmail, email, OWN_DOMAIN, stageHarness, throughDecide, type StageHarness } from '../helpers/stages.ts';
import { PermanentJobError } from '../../src/pipeline/errors/permanent-job.error.ts';
import { ClassifierError } from '../../src/pipeline/errors/classifier.error.ts';
import type { Classifier } from '../../src/pipeline/classification.ts';
import type { JournalEntry } from '../../src/journal/entry.ts';

let tmp: { dir: string; cleanup: () => void };
let h: StageHarness;
beforeEach(async () => {
  tmp = tempDir('aj-stages-');
  h = await stageHarness(tmp.dir);
});
afterEach(async () => {
  await h.close();
  tmp.cleanup();
});

const payload = (e: JournalEntry): Record<string, unknown> => e.payload as Record<string, unknown>;
const kinds = (entries: readonly JournalEntry[]): string[] => entries.map((e) => e.kind);

describe('intake', () => {
  it('journals an interaction with its exclusion decision and hands it to classify; taking it in again adds nothing', async () => {
    const first = await h.pipeline.intake(email('m-1'));
    expect(first).toMatchObject({ status: 'accepted', duplicate: false });
    if (first.status !== 'accepted') throw new Error('excluded');
    expect(kinds(await h.entries())).toEqual(['interaction.received', 'rule.decision']);
    const [, rule] = await h.entries();
    expect(payload(rule as JournalEntry)).toMatchObject({ ruleId: 'exclusions', outcome: 'included', inputEntryId: first.entry.id });
    expect(h.queues.jobs).toEqual([
      {
        queue: 'classify',
        data: { entryId: first.entry.id, seq: first.entry.seq, correlationId: first.entry.correlationId },
        jobKey: first.entry.id,
      },
    ]);

    const again = await h.pipeline.intake(email('m-1'));
    expect(again).toMatchObject({ status: 'accepted', duplicate: true });
    expect(await h.entries()).toHaveLength(2);
    expect(await h.pipeline.accounted('gmail', 'm-1')).toBe('received');
    expect(await h.pipeline.accounted('gmail', 'never-seen')).toBeNull();
  });

  it('keeps an excluded interaction out: one rule.decision with keyed hashes, nothing of its addresses, no job', async () => {
    const internal = email('m-internal', {
      participants: [
        { role: 'from', address: `ann@${OWN_DOMAIN}` },
        { role: 'to', address: `bob@${OWN_DOMAIN}` },
      ],
    });
    const out = await h.pipeline.intake(internal);
    expect(out).toMatchObject({ status: 'excluded', ruleId: 'internal-only-mail' });
    const entries = await h.entries();
    expect(kinds(entries)).toEqual(['rule.decision']);
    const text = JSON.stringify(entries[0]);
    expect(text).not.toContain(`ann@${OWN_DOMAIN}`);
    expect(text).not.toContain('m-internal');
    expect(payload(entries[0] as JournalEntry)).toMatchObject({ outcome: 'excluded', ruleId: 'internal-only-mail' });
    expect(h.queues.jobs).toEqual([]);
    expect(await h.pipeline.accounted('gmail', 'm-internal')).toBe('excluded');
  });

  it('refuses an interaction that is not one, for good', async () => {
    await expect(h.pipeline.intake(email('m-bad', { occurredAt: 'yesterday' }))).rejects.toThrow(PermanentJobError);
    await expect(h.pipeline.ingest({ source: 'nowhere', sourceId: 'x' })).rejects.toThrow(/no source named nowhere/);
  });
});

describe('classify', () => {
  it('records one ai.decision per interaction and prompt, remembers it in the cache, and hands on to decide once', async () => {
    const out = await h.pipeline.intake(email('m-2'));
    const job = h.queues.of('classify')[0];
    if (out.status !== 'accepted' || !job) throw new Error('not accepted');
    const decision = await h.pipeline.classify(job);
    expect(decision.kind).toBe('ai.decision');
    expect(payload(decision)).toMatchObject({ inputEntryId: out.entry.id, outcome: 'ok', provider: 'offline', reviewRequired: false });
    expect([...h.cache.entries.values()]).toEqual([decision.seq]);
    expect(h.queues.of('decide')).toEqual([{ ...job, decisionEntryId: decision.id, decisionSeq: decision.seq }]);
    // A redelivered job: the same decision, no new entry.
    const before = (await h.entries()).length;
    expect((await h.pipeline.classify(job)).id).toBe(decision.id);
    expect(await h.entries()).toHaveLength(before);
  });

  it('reuses the decision of identical input (cached), pointing at it', async () => {
    const a = await throughDecide(h, email('m-3'));
    const b = await throughDecide(h, email('m-4'));
    expect(payload(b.decision)).toMatchObject({ outcome: 'cached', reusedEntryId: a.decision.id, attempts: 0 });
    expect(payload(b.decision)['output']).toEqual(payload(a.decision)['output']);
  });

  it('records a failed model call, then the offline fallback that replaces it, both for review', async () => {
    await h.close();
    const failing: Classifier = {
      provider: 'test-model',
      model: 'broken-1',
      classify: () => Promise.reject(new ClassifierError('PROVIDER_ERROR', 'the model is down', { attempts: 3 })),
    };
    h = await stageHarness(tempDir('aj-stages-failing-').dir, { classifier: failing });
    const { decision, decided } = await throughDecide(h, email('m-5'));
    const decisions = (await h.entries()).filter((e) => e.kind === 'ai.decision');
    expect(decisions.map((e) => payload(e)['outcome'])).toEqual(['failed', 'fallback']);
    expect(payload(decisions[0] as JournalEntry)).toMatchObject({
      provider: 'test-model',
      attempts: 3,
      error: 'PROVIDER_ERROR: the model is down',
    });
    expect(payload(decision)).toMatchObject({ replacesEntryId: decisions[0]?.id, reviewRequired: true, provider: 'offline' });
    // The review rules look at the outcome: a fallback is reviewed.
    expect(decided.review).toBe(true);
    expect(h.cache.entries.size).toBe(0); // a fallback is not reused
  });

  it('refuses a job that does not point at its interaction, for good', async () => {
    const out = await h.pipeline.intake(email('m-6'));
    if (out.status !== 'accepted') throw new Error('excluded');
    await expect(h.pipeline.classify({ entryId: out.entry.id, seq: out.entry.seq + 1, correlationId: 'x' })).rejects.toThrow(
      PermanentJobError,
    );
  });
});

describe('decide and mirror', () => {
  it('records the mirror, review and notification decisions, and queues the notify and mirror jobs they call for', async () => {
    const { entry, decision, decided } = await throughDecide(h, billingEmail('m-7'));
    expect(decided).toEqual({ mirror: true, review: true, notified: ['finance'] });
    const rules = (await h.entries()).filter((e) => e.kind === 'rule.decision' && payload(e)['inputEntryId'] === decision.id);
    expect(
      rules.map((e) => [(payload(e)['evaluated'] as { section: string }).section, payload(e)['ruleId'], payload(e)['outcome']]),
    ).toEqual([
      ['mirror', 'mirror-everything-else', 'mirror'],
      ['review', 'sensitive-categories', 'review'],
      ['notify/billing-to-finance', 'billing-to-finance', 'notify:finance'],
    ]);
    expect(h.queues.of('notify')).toEqual([expect.objectContaining({ entryId: entry.id, ruleId: 'billing-to-finance', channel: 'log' })]);
    const [mirrorJob] = h.queues.of('mirror');
    expect(mirrorJob).toMatchObject({ entryId: entry.id, decisionEntryId: decision.id });

    await h.pipeline.mirror(mirrorJob as NonNullable<typeof mirrorJob>);
    const writes = (await h.entries()).filter((e) => e.kind === 'crm.write');
    expect(writes).toHaveLength(1);
    expect(payload(writes[0] as JournalEntry)).toMatchObject({ dryRun: true, entryId: entry.id, objectType: 'emails', status: 0 });
  });

  it('keeps noise out of the CRM: a spam decision is skipped, and no mirror job is queued', async () => {
    const spam = email('m-8', { subject: 'win a prize', text: 'Congratulations you won a free lottery prize, click here to claim viagra' });
    const { decided } = await throughDecide(h, spam);
    expect(decided).toEqual({ mirror: false, review: false, notified: [] });
    expect(h.queues.of('mirror')).toEqual([]);
  });
});
