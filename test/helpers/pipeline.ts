import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { attachConfiguredPrivacy, openWriterPrivacy } from '../../src/journal/configured-privacy.ts';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../src/config/config.ts';
import { silentLogger } from '../../src/config/logger.ts';
import { JournalWriter } from '../../src/journal/writer.ts';
import { RetentionPolicy } from '../../src/journal/retention.ts';
import { JournalReader } from '../../src/journal/reader.ts';
import { LocalJournalClient } from '../../src/journal/local-client.ts';
import type { JournalEntry } from '../../src/journal/entry.ts';
import type { Interaction } from '../../src/pipeline/interaction.ts';
import { closeQueues, createQueues, removeAllUnder, waitUntilDrained } from '../../jobs/queues.ts';
import { startPipeline, type PipelineOverrides, type PipelineRuntime } from '../../jobs/main.ts';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A config for a test: its own journal dir, the machine's Redis, a unique queue prefix. */
export function testConfig(dir: string, env: NodeJS.ProcessEnv = {}): Config {
  // The key store's backup defaults to beside the data directory; a test keeps it inside its own.
  return loadConfig({
    JOURNAL_PATH: join(dir, 'journal.sqlite'),
    KEY_STORE_BACKUP: join(dir, 'key-backup', 'subject-keys.sqlite'),
    REDIS_URL,
    LOG_LEVEL: 'silent',
    JOB_LOCK_SECONDS: '5',
    ...env,
  });
}

export function uniquePrefix(): string {
  return `aj-test-${randomBytes(6).toString('hex')}`;
}

export interface InProcessPipeline {
  readonly runtime: PipelineRuntime;
  readonly journal: LocalJournalClient;
  /** The writer behind `journal` (e.g. to write a checkpoint now). */
  readonly writer: JournalWriter;
  readonly prefix: string;
  readonly path: string;
  stop(): Promise<void>;
}

/** The whole pipeline in this process: a local journal writer, real Redis queues, real workers. */
export async function inProcessPipeline(
  dir: string,
  overrides: Omit<PipelineOverrides, 'journal' | 'prefix'> = {},
  env: NodeJS.ProcessEnv = {},
): Promise<InProcessPipeline> {
  const config = testConfig(dir, env);
  const path = config.journal.path;
  // Sealing on, as in production: the pipeline runs end to end on sealed payloads.
  const privacy = openWriterPrivacy(config);
  // The configured retention policy, as the journal service stamps classes by it.
  const writer = await JournalWriter.open({
    path,
    keysDir: config.journal.keysDir,
    checkpointEveryMs: 0,
    privacy,
    retention: RetentionPolicy.load(config.journal.retentionPath),
  });
  const reader = JournalReader.open(path);
  reader.attachPrivacy(privacy, { owned: true });
  const journal = new LocalJournalClient(writer, reader);
  const prefix = uniquePrefix();
  const runtime = await startPipeline(config, silentLogger, { ...overrides, journal, prefix });
  return {
    runtime,
    journal,
    writer,
    prefix,
    path,
    async stop() {
      await runtime.close();
      await obliterate(prefix);
      await journal.close();
    },
  };
}

export async function obliterate(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  await removeAllUnder(redis, prefix);
  redis.disconnect();
}

/** Waits until the queues under `prefix` have nothing due or running. */
export async function drained(prefix: string, timeoutMs = 60_000): Promise<void> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queues = createQueues(redis, prefix);
  try {
    await waitUntilDrained(queues, timeoutMs);
  } finally {
    await closeQueues(queues);
    redis.disconnect();
  }
}

/** Every entry, opened (sealed payloads readable) when the directory has a key store. */
export function allEntries(path: string): JournalEntry[] {
  const reader = attachConfiguredPrivacy(JournalReader.open(path), testConfig(dirname(path)));
  try {
    return [...reader.iterate()];
  } finally {
    reader.close();
  }
}

const TOPICS = [
  {
    subject: 'Pricing for the analytics platform',
    text: 'Hello, we are evaluating vendors and would like a quote and a demo for 25 seats. What does the annual plan cost?',
  },
  {
    subject: 'Dashboard not loading',
    text: 'Since this morning our dashboards show an error 500 and nobody on the team can log in. Please help, this is urgent.',
  },
  { subject: 'Invoice question', text: 'Our invoice INV-2231 shows two charges for November; can you refund the duplicate payment?' },
  { subject: 'Move our call', text: "Can we reschedule Thursday's meeting to Friday at 10am?" },
  {
    subject: 'Renewal proposal',
    text: 'Thanks for the proposal. Legal has a few comments on the contract; can we discuss the renewal terms and the discount?',
  },
];

/** N distinct, valid inbound emails from customers (deterministic for a given seed). */
export function generatedInteractions(n: number, seed = 'run'): Interaction[] {
  return Array.from({ length: n }, (_, i) => {
    const t = TOPICS[i % TOPICS.length] as (typeof TOPICS)[number];
    return {
      channel: 'email' as const,
      source: 'gmail',
      sourceId: `${seed}-${i}`,
      direction: 'inbound' as const,
      occurredAt: new Date(Date.UTC(2026, 10, 1) + i * 60_000).toISOString(),
      participants: [
        { role: 'from' as const, address: `buyer${i}@customer${i % 37}.example` },
        { role: 'to' as const, address: 'sales@northwind-analytics.example' },
      ],
      subject: `${t.subject} #${i}`,
      text: `${t.text}\n\nReference ${seed}-${i}.`,
    };
  });
}
