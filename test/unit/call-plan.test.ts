/**
 * A call and its transcripts are one CRM call activity (issue 16, finding 8): the pipeline's stages run one by one
 * here (a real journal, the dry-run CRM, a scripted classifier), in the orders the queues may run them, and every
 * order gives one activity per call, anchored on the call's first interaction, its body holding a section per
 * transcript.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { tempDir } from '../helpers/tmp.ts';
import { JournalWriter } from '../../src/journal/writer.ts';
import { JournalReader } from '../../src/journal/reader.ts';
import { LocalJournalClient } from '../../src/journal/local-client.ts';
import type { JournalEntry } from '../../src/journal/entry.ts';
import { Pipeline } from '../../src/pipeline/pipeline.ts';
import { DryRunCrm } from '../../src/pipeline/dry-run-crm.ts';
import { loadRuleset } from '../../src/pipeline/rules.ts';
import { loadPrompt } from '../../src/pipeline/prompts.ts';
import { DEFAULT_MINIMISE_OPTIONS } from '../../src/pipeline/minimise.ts';
import { callOf, type Interaction } from '../../src/pipeline/interaction.ts';
import { recordOverride } from '../../src/pipeline/override.ts';
import { redrive } from '../../src/pipeline/redrive.ts';
import { describeEntry } from '../../src/cli/describe.ts';
import { ReadIndex, keyedContactHasher } from '../../src/audit/read-index.ts';
import type { Category, Classifier, ClassifierInput } from '../../src/pipeline/classification.ts';
import type { MirrorPlan } from '../../src/pipeline/ports.ts';
import type { JobData, QueueName } from '../../src/pipeline/job-catalog.ts';

/** Decides what the text says: `[category confidence]`, the first sentence as the summary, `next: ...` as the next step. */
const scripted: Classifier = {
  provider: 'scripted',
  model: 'v1',
  classify: (input: ClassifierInput) => {
    const [, category, confidence] = /\[(\w+) ([\d.]+)\]/.exec(input.text) ?? ['', 'other', '0.5'];
    const next = /next: ([^.]+)/.exec(input.text)?.[1];
    return Promise.resolve({
      output: {
        summary: input.text.split('.')[0] as string,
        category: category as Category,
        intent: 'talk',
        sentiment: 'neutral',
        urgency: 'normal',
        nextSteps: next ? [next] : [],
        confidence: Number(confidence),
      },
      provider: 'scripted',
      model: 'v1',
      requestId: null,
      tokens: null,
      attempts: 1,
      latencyMs: 1,
    });
  },
};

const T0 = Date.parse('2026-11-20T10:00:00Z');
const callIx = (id: string, text: string): Interaction => ({
  channel: 'call',
  source: 'calls',
  sourceId: id,
  threadId: id,
  direction: 'inbound',
  occurredAt: new Date(T0).toISOString(),
  participants: [
    { role: 'caller', address: '+15555550123' },
    { role: 'callee', address: '+15555550188' },
  ],
  subject: `Pricing call ${id}`,
  text,
  metadata: { durationSeconds: 320, recordingUrl: `https://rec.example/${id}.mp3` },
});
const transcriptIx = (id: string, t: string, text: string): Interaction => ({
  channel: 'call',
  source: 'calls',
  sourceId: `${id}/transcript/${t}`,
  threadId: id,
  direction: 'inbound',
  occurredAt: new Date(T0 + 60_000).toISOString(),
  participants: [],
  subject: 'Call transcript',
  text,
});

let tmp: { dir: string; cleanup: () => void };
let path: string;
let journal: LocalJournalClient;
let pipeline: Pipeline;
let jobs: { queue: QueueName; data: unknown; key: string }[];

beforeEach(async () => {
  tmp = tempDir('aj-call-plan-');
  path = join(tmp.dir, 'journal.sqlite');
  const writer = await JournalWriter.open({ path, keysDir: join(tmp.dir, 'keys'), checkpointEveryMs: 0 });
  journal = new LocalJournalClient(writer, JournalReader.open(path));
  jobs = [];
  pipeline = new Pipeline({
    journal,
    classifier: scripted,
    fallback: scripted,
    prompt: loadPrompt('classify-interaction', 'v1'),
    rules: loadRuleset(resolve('config/rules.json')),
    minimise: DEFAULT_MINIMISE_OPTIONS,
    crm: new DryRunCrm(journal),
    notifier: { channelsFor: () => [] },
    cache: { get: () => Promise.resolve(null), set: () => Promise.resolve() },
    enqueue: (queue, data, key) => {
      jobs.push({ queue, data, key });
      return Promise.resolve();
    },
    identifierKey: Buffer.alloc(32, 7),
  });
});
afterEach(async () => {
  await journal.close();
  tmp.cleanup();
});

/** Runs the newest queued job of `queue` for the interaction `entryId` (as a worker would). */
async function run(queue: 'classify' | 'decide' | 'mirror', entryId: string): Promise<void> {
  const job = jobs.filter((j) => j.queue === queue && (j.data as { entryId: string }).entryId === entryId).at(-1);
  if (!job) throw new Error(`no ${queue} job for ${entryId}`);
  if (queue === 'classify') await pipeline.classify(job.data as JobData<'classify'>);
  else if (queue === 'decide') await pipeline.decide(job.data as JobData<'decide'>);
  else await pipeline.mirror(job.data as JobData<'mirror'>);
}
async function through(entryId: string): Promise<void> {
  for (const q of ['classify', 'decide', 'mirror'] as const) await run(q, entryId);
}
async function intake(ix: Interaction): Promise<JournalEntry> {
  const out = await pipeline.intake(ix);
  if (out.status !== 'accepted') throw new Error('excluded');
  return out.entry;
}
async function chainOf(e: JournalEntry): Promise<JournalEntry[]> {
  return journal.byCorrelation(e.correlationId);
}
const payload = (e: JournalEntry): Record<string, unknown> => e.payload as Record<string, unknown>;
const writes = (chain: readonly JournalEntry[]): JournalEntry[] => chain.filter((e) => e.kind === 'crm.write');
const bodyOf = (e: JournalEntry): string => (payload(e).properties as Record<string, string>)['hs_call_body'] as string;
async function planOf(e: JournalEntry): Promise<MirrorPlan> {
  const d = (await chainOf(e)).filter((x) => x.kind === 'ai.decision' && payload(x).inputEntryId === e.id).at(-1) as JournalEntry;
  return pipeline.planFor({ entryId: e.id, entrySeq: e.seq, correlationId: e.correlationId, decisionEntryId: d.id, decisionSeq: d.seq });
}
const decisionOf = async (e: JournalEntry): Promise<JournalEntry> =>
  (await chainOf(e)).filter((x) => x.kind === 'ai.decision' && payload(x).inputEntryId === e.id).at(-1) as JournalEntry;

describe('callOf', () => {
  it("names the call of a call or its transcript, by the thread, else by the transcript's source id; null for other channels", () => {
    expect(callOf({ channel: 'call', sourceId: 'CA1', threadId: 'CA1' })).toBe('CA1');
    expect(callOf({ channel: 'call', sourceId: 'CA1/transcript/GT9', threadId: 'CA1' })).toBe('CA1');
    expect(callOf({ channel: 'call', sourceId: 'CA1/transcript/GT9' })).toBe('CA1');
    expect(callOf({ channel: 'call', sourceId: 'CA2' })).toBe('CA2');
    expect(callOf({ channel: 'email', sourceId: 'm-1', threadId: 't-1' })).toBeNull();
  });
});

describe('one call activity per call', () => {
  it("a transcript after its call updates the call's activity: its section in the body, under the call's entry id", async () => {
    const call = await intake(callIx('CA1', 'We talked about 40 seats [new_lead 0.70]. next: send a quote.'));
    await through(call.id);
    const before = writes(await chainOf(call));
    expect(before).toHaveLength(1);
    expect(payload(before[0] as JournalEntry).members).toBeUndefined();
    const alone = bodyOf(before[0] as JournalEntry);
    expect(alone).toBe(
      `Summary: We talked about 40 seats [new_lead 0\nCategory: new_lead (confidence 0.70)\nNext steps: send a quote\nJournal entry: ${call.id}`,
    );

    const transcript = await intake(
      transcriptIx('CA1', 'GT1', 'Customer asks for a discount on the annual plan [sales_conversation 0.90]. next: call back Friday.'),
    );
    expect(transcript.correlationId).toBe(call.correlationId);
    await through(transcript.id);
    const chain = await chainOf(call);
    const all = writes(chain);
    // Every write is of the call's activity; none of the transcript's own.
    expect(all.map((e) => payload(e).entryId)).toEqual([call.id, call.id]);
    const last = all[1] as JournalEntry;
    expect(bodyOf(last)).toBe(
      `${alone}\n\nTranscript (journal entry ${transcript.id}):\nSummary: Customer asks for a discount on the annual plan [sales_conversation 0\nCategory: sales_conversation (confidence 0.90)\nNext steps: call back Friday`,
    );
    expect((payload(last).properties as Record<string, string>)['journal_entry_id']).toBe(call.id);
    expect((payload(last).properties as Record<string, string>)['hs_call_title']).toBe('Pricing call CA1');
    const [callDecision, transcriptDecision] = [await decisionOf(call), await decisionOf(transcript)];
    expect(last.causationId).toBe(callDecision.id);
    expect(payload(last).members).toEqual([
      { entryId: call.id, decisionEntryId: callDecision.id },
      { entryId: transcript.id, decisionEntryId: transcriptDecision.id },
    ]);
    expect(describeEntry(last)).toContain(`activity of ${call.id}, also holding ${transcript.id}`);

    // Either member plans the same activity; its category is the most confident decision's.
    const [fromCall, fromTranscript] = [await planOf(call), await planOf(transcript)];
    expect(fromTranscript).toEqual(fromCall);
    expect(fromCall).toMatchObject({
      entryId: call.id,
      entrySeq: call.seq,
      decisionEntryId: callDecision.id,
      decisionSeq: callDecision.seq,
      objectType: 'calls',
      category: 'sales_conversation',
      counterparts: ['+15555550123'],
    });
    expect(fromCall.properties['hs_call_duration']).toBe('320000');
    expect(fromCall.properties['hs_call_recording_url']).toBe('https://rec.example/CA1.mp3');

    // Mirroring either again writes nothing new; the re-drive finds both finished.
    await run('mirror', transcript.id);
    await run('mirror', call.id);
    expect(writes(await chainOf(call))).toHaveLength(2);
    jobs = [];
    const report = await redrive({
      journal,
      enqueue: (q, d, k) => (jobs.push({ queue: q, data: d, key: k }), Promise.resolve()),
      fromSeq: 1,
      graceMs: 0,
    });
    expect(jobs).toEqual([]);
    expect(report.redriven).toBe(0);
    // The audit index counts the call activity's writes for the transcript too: it was mirrored, onto its call's.
    const reader = JournalReader.open(path);
    const index = ReadIndex.open(join(tmp.dir, 'index.sqlite'), keyedContactHasher(randomBytes(32)));
    try {
      index.catchUp(reader);
      expect(index.byEntryId(call.id)?.crmWrites).toBe(2);
      expect(index.byEntryId(transcript.id)?.crmWrites).toBe(1);
    } finally {
      index.close();
      reader.close();
    }

    // A reviewer's category counts above any model's confidence: overriding the call's (0.70) decides the plan's.
    const { entry: override } = await recordOverride(
      { journal, enqueue: (q, d, k) => (jobs.push({ queue: q, data: d, key: k }), Promise.resolve()) },
      {
        decisionEntryId: callDecision.id,
        decisionSeq: callDecision.seq,
        action: 'override',
        category: 'billing',
        reason: 'they asked about the invoice',
        userId: 'rita',
        via: 'cli',
      },
    );
    await run('mirror', call.id);
    const overridden = writes(await chainOf(call));
    expect(overridden).toHaveLength(3);
    expect(bodyOf(overridden[2] as JournalEntry)).toMatch(
      new RegExp(
        `^Summary: We talked .*\\nCategory: billing \\(set by a reviewer, override ${override.id}; the model said new_lead with confidence 0\\.70\\)\\n.*\\n\\nTranscript \\(journal entry ${transcript.id}\\):\\n.*\\nCategory: sales_conversation \\(confidence 0\\.90\\)`,
        's',
      ),
    );
    expect(await planOf(transcript)).toMatchObject({ entryId: call.id, category: 'billing', overrideEntryId: override.id });
  });

  it('the same call plan written again, one after the other or at the same moment, is the same dry-run write', async () => {
    const call = await intake(callIx('CA6', 'Pricing call [new_lead 0.70].'));
    await run('classify', call.id);
    await run('decide', call.id);
    const transcript = await intake(transcriptIx('CA6', 'GT6', 'Customer wants 40 seats [new_lead 0.80].'));
    await run('classify', transcript.id);
    await run('decide', transcript.id);
    const plan = await planOf(transcript);
    expect(plan.members?.map((m) => m.entryId)).toEqual([call.id, transcript.id]);
    // The call's and the transcript's mirror jobs in two workers at once (the demo's race), then a redelivery.
    await Promise.all([
      new DryRunCrm(journal, { latencyMs: 30 }).mirror(plan),
      new DryRunCrm(journal, { latencyMs: 5 }).mirror(await planOf(call)),
    ]);
    await new DryRunCrm(journal).mirror(await planOf(call));
    const [w] = writes(await chainOf(call));
    expect(writes(await chainOf(call))).toHaveLength(1);
    expect(payload(w as JournalEntry).durationMs).toBe(0);
  });

  it('a transcript journaled before its call is the anchor: the call joins its activity', async () => {
    const transcript = await intake(transcriptIx('CA2', 'GT2', 'Customer wants a demo next week [new_lead 0.80].'));
    await through(transcript.id);
    const call = await intake(callIx('CA2', 'Demo scheduling call [scheduling 0.60].'));
    await through(call.id);
    const all = writes(await chainOf(call));
    expect(all.map((e) => payload(e).entryId)).toEqual([transcript.id, transcript.id]);
    const body = bodyOf(all[1] as JournalEntry);
    expect(body).toBe(
      `Summary: Customer wants a demo next week [new_lead 0\nCategory: new_lead (confidence 0.80)\nJournal entry: ${transcript.id}\n\nCall (journal entry ${call.id}):\nSummary: Demo scheduling call [scheduling 0\nCategory: scheduling (confidence 0.60)`,
    );
    // The call's own properties replace the transcript's.
    const plan = await planOf(call);
    expect(plan).toMatchObject({ entryId: transcript.id, decisionEntryId: (await decisionOf(transcript)).id, category: 'new_lead' });
    expect(plan.properties['hs_call_title']).toBe('Pricing call CA2');
    expect(plan.properties['hs_call_duration']).toBe('320000');
  });

  it("a transcript decided before its call: the call's activity gets the transcript first, the call's own lines once it is decided", async () => {
    const call = await intake(callIx('CA3', 'Renewal call [sales_conversation 0.75].'));
    const transcript = await intake(transcriptIx('CA3', 'GT3', 'Legal has comments on the contract [sales_conversation 0.85].'));
    await through(transcript.id);
    const first = writes(await chainOf(call));
    expect(first.map((e) => payload(e).entryId)).toEqual([call.id]);
    const transcriptDecision = await decisionOf(transcript);
    expect(first[0]?.causationId).toBe(transcriptDecision.id);
    expect(bodyOf(first[0] as JournalEntry)).toBe(
      `Journal entry: ${call.id}\n\nTranscript (journal entry ${transcript.id}):\nSummary: Legal has comments on the contract [sales_conversation 0\nCategory: sales_conversation (confidence 0.85)`,
    );
    await through(call.id);
    const second = writes(await chainOf(call));
    expect(second.map((e) => payload(e).entryId)).toEqual([call.id, call.id]);
    expect(bodyOf(second[1] as JournalEntry)).toMatch(
      new RegExp(
        `^Summary: Renewal call .*\\nJournal entry: ${call.id}\\n\\nTranscript \\(journal entry ${transcript.id}\\):\\nSummary: Legal has comments`,
        's',
      ),
    );
    expect(second[1]?.causationId).toBe((await decisionOf(call)).id);
  });

  it("a part the rules keep out of the CRM adds nothing to its call's activity; a reviewer's category wins the plan's category", async () => {
    const call = await intake(callIx('CA4', "My daughter's school play tonight [personal 0.95]."));
    await run('classify', call.id);
    await run('decide', call.id);
    // The rules skip a personal call: no mirror job, no write.
    expect(jobs.some((j) => j.queue === 'mirror' && (j.data as { entryId: string }).entryId === call.id)).toBe(false);
    const transcript = await intake(transcriptIx('CA4', 'GT4', 'Customer asks about invoice INV-7 [billing 0.65].'));
    await through(transcript.id);
    const all = writes(await chainOf(call));
    expect(all).toHaveLength(1);
    expect(payload(all[0] as JournalEntry).entryId).toBe(call.id);
    const body = bodyOf(all[0] as JournalEntry);
    expect(body).not.toContain('school play');
    expect(body).toBe(
      `Journal entry: ${call.id}\n\nTranscript (journal entry ${transcript.id}):\nSummary: Customer asks about invoice INV-7 [billing 0\nCategory: billing (confidence 0.65)`,
    );

    // A reviewer corrects the transcript's category: the re-driven mirror writes the call's activity again.
    const decision = await decisionOf(transcript);
    const { entry: override, redriven } = await recordOverride(
      { journal, enqueue: (q, d, k) => (jobs.push({ queue: q, data: d, key: k }), Promise.resolve()) },
      {
        decisionEntryId: decision.id,
        decisionSeq: decision.seq,
        action: 'override',
        category: 'customer_support',
        reason: 'a support question',
        userId: 'rita',
        via: 'cli',
      },
    );
    expect(redriven).toBe(true);
    await run('mirror', transcript.id);
    const again = writes(await chainOf(call));
    expect(again).toHaveLength(2);
    expect(bodyOf(again[1] as JournalEntry)).toContain(
      `Category: customer_support (set by a reviewer, override ${override.id}; the model said billing with confidence 0.65)`,
    );
    const plan = await planOf(transcript);
    expect(plan).toMatchObject({ entryId: call.id, category: 'customer_support', overrideEntryId: override.id });
    expect(again[1]?.causationId).toBe(override.id);
  });

  it('a call without transcripts, and an email, are planned as before', async () => {
    const call = await intake(callIx('CA5', 'Short call [new_lead 0.70].'));
    await through(call.id);
    const [w] = writes(await chainOf(call));
    expect(w?.idempotencyKey).toBe(`crm/${call.id}/upsert`);
    expect(payload(w as JournalEntry).members).toBeUndefined();
    expect(await planOf(call)).not.toHaveProperty('members');
  });
});
