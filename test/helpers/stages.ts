/**
 * The pipeline's stages in a unit test: a real local journal in a temp directory, the real offline classifier,
 * the dry-run CRM, and in-memory fakes for the queues (an `Enqueue` that records what it was given), the
 * decision cache and the notifier. No Redis, no network.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { JournalWriter } from '../../src/journal/writer.ts';
import { JournalReader } from '../../src/journal/reader.ts';
import { LocalJournalClient } from '../../src/journal/local-client.ts';
import type { JournalEntry } from '../../src/journal/entry.ts';
import { Pipeline, type PipelineDeps } from '../../src/pipeline/pipeline.ts';
import { OfflineClassifier } from '../../src/pipeline/offline-classifier.ts';
import { DryRunCrm } from '../../src/pipeline/dry-run-crm.ts';
import { DEFAULT_MINIMISE_OPTIONS } from '../../src/pipeline/minimise.ts';
import { loadPrompt } from '../../src/pipeline/prompts.ts';
import { RulesetSchema, type Ruleset } from '../../src/pipeline/rules.ts';
import type { Interaction } from '../../src/pipeline/interaction.ts';
import type { DecisionCache, Enqueue, Notifier, NotifyChannelName } from '../../src/pipeline/ports.ts';
import type { JobData, QueueName } from '../../src/pipeline/job-catalog.ts';

/** One job handed to the queues. */
export interface Enqueued {
  readonly queue: QueueName;
  readonly data: unknown;
  readonly jobKey: string;
}

/** An `Enqueue` that keeps every job it is given, in order (and, as BullMQ does, one per queue and key). */
export class RecordingQueues {
  readonly jobs: Enqueued[] = [];
  readonly enqueue: Enqueue = <Q extends QueueName>(queue: Q, data: JobData<Q>, jobKey: string): Promise<void> => {
    if (!this.jobs.some((j) => j.queue === queue && j.jobKey === jobKey)) this.jobs.push({ queue, data, jobKey });
    return Promise.resolve();
  };
  /** The data of the jobs of one queue. */
  of<Q extends QueueName>(queue: Q): JobData<Q>[] {
    return this.jobs.filter((j) => j.queue === queue).map((j) => j.data as JobData<Q>);
  }
  clear(): void {
    this.jobs.length = 0;
  }
}

/** The decision cache in a Map. */
export class MemoryDecisionCache implements DecisionCache {
  readonly entries = new Map<string, number>();
  get(promptHash: string, inputHash: string): Promise<number | null> {
    return Promise.resolve(this.entries.get(`${promptHash}/${inputHash}`) ?? null);
  }
  set(promptHash: string, inputHash: string, decisionSeq: number): Promise<void> {
    this.entries.set(`${promptHash}/${inputHash}`, decisionSeq);
    return Promise.resolve();
  }
}

/** Every group is notified on the channels given (default: the log, a dry run). */
export const notifierOn = (channels: readonly NotifyChannelName[] = ['log']): Notifier => ({ channelsFor: () => channels });

export const OWN_DOMAIN = 'northwind-analytics.example';

/** A small ruleset in the shape of config/rules.json: every section's first rule can be told apart from its catch-all. */
export const TEST_RULES: Ruleset = RulesetSchema.parse({
  version: 'test-1',
  ownDomains: [OWN_DOMAIN],
  exclusions: [
    { id: 'internal-only-mail', when: { channel: ['email'], allParticipantsInOwnDomains: true } },
    { id: 'blocked-domains', description: 'never logged', when: { anyParticipantDomainIn: ['spam-sender.example'] } },
  ],
  mirror: [
    { id: 'never-mirror-noise', when: { categoryIn: ['spam', 'personal', 'internal'] }, outcome: 'skip' },
    { id: 'mirror-everything-else', when: {}, outcome: 'mirror' },
  ],
  review: [
    { id: 'model-failed', when: { decisionOutcomeIn: ['fallback'] }, outcome: 'review' },
    { id: 'sensitive-categories', when: { categoryIn: ['billing'] }, outcome: 'review' },
    { id: 'no-review', when: {}, outcome: 'none' },
  ],
  notifications: [{ id: 'billing-to-finance', when: { categoryIn: ['billing'] }, notify: 'finance' }],
  recipients: { finance: { email: { to: ['finance@northwind-analytics.example'] } } },
});

export interface StageHarness {
  readonly pipeline: Pipeline;
  readonly journal: LocalJournalClient;
  readonly queues: RecordingQueues;
  readonly cache: MemoryDecisionCache;
  /** Every entry in the journal, in order. */
  entries(): Promise<JournalEntry[]>;
  close(): Promise<void>;
}

/** A Pipeline over a fresh journal in `dir`; `deps` replaces any of its parts (a classifier that fails, other rules...). */
export async function stageHarness(dir: string, deps: Partial<PipelineDeps> = {}): Promise<StageHarness> {
  const path = join(dir, 'journal.sqlite');
  const writer = await JournalWriter.open({ path, keysDir: join(dir, 'keys'), checkpointEveryMs: 0 });
  const journal = new LocalJournalClient(writer, JournalReader.open(path));
  const queues = new RecordingQueues();
  const cache = new MemoryDecisionCache();
  const rules = deps.rules ?? TEST_RULES;
  const offline = new OfflineClassifier({ ownDomains: rules.ownDomains });
  const pipeline = new Pipeline({
    journal,
    classifier: offline,
    fallback: offline,
    prompt: loadPrompt('classify-interaction', 'v1'),
    rules,
    minimise: DEFAULT_MINIMISE_OPTIONS,
    crm: new DryRunCrm(journal),
    notifier: notifierOn(),
    cache,
    enqueue: queues.enqueue,
    identifierKey: randomBytes(32),
    ...deps,
  });
  return {
    pipeline,
    journal,
    queues,
    cache,
    entries: () => journal.range(1, 10_000),
    close: () => journal.close(),
  };
}

/** An inbound e-mail from a customer; `over` changes any field. */
export function email(sourceId: string, over: Partial<Interaction> = {}): Interaction {
  return {
    channel: 'email',
    source: 'gmail',
    sourceId,
    direction: 'inbound',
    occurredAt: '2026-11-02T09:30:00.000Z',
    participants: [
      { role: 'from', address: 'buyer@customer.example' },
      { role: 'to', address: `sales@${OWN_DOMAIN}` },
    ],
    subject: 'Pricing for the analytics platform',
    text: 'Hello, we are evaluating vendors and would like a quote and a demo for 25 seats. What does the annual plan cost?',
    ...over,
  };
}

/** An e-mail the offline classifier files under billing (a duplicate charge, a refund). */
export const billingEmail = (sourceId: string): Interaction =>
  email(sourceId, {
    subject: 'Invoice question',
    text: 'Our invoice INV-2231 shows two charges for November; can you refund the duplicate payment?',
  });

/** Runs an accepted interaction through classify and decide, as the workers would, and returns the jobs' results. */
export async function throughDecide(
  h: StageHarness,
  ix: Interaction,
): Promise<{ entry: JournalEntry; decision: JournalEntry; decided: Awaited<ReturnType<Pipeline['decide']>> }> {
  const out = await h.pipeline.intake(ix);
  if (out.status !== 'accepted') throw new Error(`${ix.sourceId} was excluded by ${out.ruleId}`);
  const classify = h.queues.of('classify').find((j) => j.entryId === out.entry.id);
  if (!classify) throw new Error('intake queued no classify job');
  const decision = await h.pipeline.classify(classify);
  const decide = h.queues.of('decide').find((j) => j.entryId === out.entry.id);
  if (!decide) throw new Error('classify queued no decide job');
  return { entry: out.entry, decision, decided: await h.pipeline.decide(decide) };
}
