/**
 * The pipeline end to end on real Redis and a real journal: intake → classify → decide → mirror.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { tempDir } from '../helpers/tmp.ts';
import { pollUntil } from '../helpers/wait.ts';
import { join } from 'node:path';
import {
  REDIS_URL,
  allEntries,
  drained,
  generatedInteractions,
  inProcessPipeline,
  obliterate,
  testConfig,
  type InProcessPipeline,
} from '../helpers/pipeline.ts';
import { JournalWriter } from '../../src/journal/writer.ts';
import { LocalJournalClient } from '../../src/journal/local-client.ts';
import { startPipeline } from '../../jobs/main.ts';
import { silentLogger } from '../../src/config/logger.ts';
import { verifyJournal } from '../../src/journal/verify.ts';
import { JournalReader } from '../../src/journal/reader.ts';
import type { JournalEntry } from '../../src/journal/entry.ts';
import type { Interaction } from '../../src/pipeline/interaction.ts';
import { openWriterPrivacy } from '../../src/journal/configured-privacy.ts';

let tmp: { dir: string; cleanup: () => void };
let p: InProcessPipeline | null = null;
beforeEach(() => {
  tmp = tempDir('aj-pipeline-');
});
afterEach(async () => {
  await p?.stop();
  p = null;
  tmp.cleanup();
});

const payload = (e: JournalEntry): Record<string, unknown> => e.payload as Record<string, unknown>;

describe('the pipeline', () => {
  it('turns 1,000 interactions (some delivered twice) into exactly 1,000 records, each fully decided under its correlation', async () => {
    p = await inProcessPipeline(tmp.dir);
    const items = generatedInteractions(1000);
    // Deliver everything once, and 100 of them a second time (a webhook retry, a re-sync).
    for (const ix of [...items, ...items.slice(0, 100)]) await p.runtime.pipeline.intake(ix);
    await drained(p.prefix);
    const entries = allEntries(p.path);
    const received = entries.filter((e) => e.kind === 'interaction.received');
    expect(received).toHaveLength(1000);
    expect(new Set(received.map((e) => payload(e).sourceId)).size).toBe(1000);
    const byCorrelation = new Map<string, JournalEntry[]>();
    for (const e of entries) byCorrelation.set(e.correlationId, [...(byCorrelation.get(e.correlationId) ?? []), e]);
    for (const r of received) {
      const chain = byCorrelation.get(r.correlationId) ?? [];
      const decisions = chain.filter((e) => e.kind === 'ai.decision' && payload(e).inputEntryId === r.id);
      expect(decisions).toHaveLength(1);
      const d = decisions[0] as JournalEntry;
      expect(['ok', 'cached']).toContain(payload(d).outcome);
      expect(d.causationId).toBe(r.id);
      const rules = chain.filter((e) => e.kind === 'rule.decision');
      const sections = rules.map((e) => (payload(e).evaluated as { section: string }).section).sort();
      expect(sections.filter((s) => !s.startsWith('notify/'))).toEqual(['exclusions', 'mirror', 'review']);
      // Each notification rule that fired left a notification under the same correlation.
      expect(chain.filter((e) => e.kind === 'notification.sent')).toHaveLength(sections.filter((s) => s.startsWith('notify/')).length);
      const mirror = rules.find((e) => (payload(e).evaluated as { section: string }).section === 'mirror') as JournalEntry;
      const writes = chain.filter((e) => e.kind === 'crm.write');
      expect(writes).toHaveLength(payload(mirror).outcome === 'mirror' ? 1 : 0);
    }
    expect(entries.filter((e) => e.kind === 'job.failed')).toHaveLength(0);
    const reader = JournalReader.open(p.path);
    expect(verifyJournal(reader.connection).ok).toBe(true);
    reader.close();
  });

  it('classifies identical content once and journals the reuse', async () => {
    p = await inProcessPipeline(tmp.dir);
    const [a] = generatedInteractions(1, 'same');
    const twin: Interaction = { ...(a as Interaction), sourceId: 'same-twin' };
    await p.runtime.pipeline.intake(a as Interaction);
    await drained(p.prefix);
    await p.runtime.pipeline.intake(twin);
    await drained(p.prefix);
    const decisions = allEntries(p.path).filter((e) => e.kind === 'ai.decision');
    expect(decisions.map((d) => payload(d).outcome)).toEqual(['ok', 'cached']);
    const [first, reuse] = decisions as [JournalEntry, JournalEntry];
    expect(payload(reuse).reusedEntryId).toBe(first.id);
    expect(payload(reuse).inputHash).toBe(payload(first).inputHash);
    expect(payload(reuse).output).toEqual(payload(first).output);
  });

  it('leaves only keyed hashes of an excluded interaction, saying which rule excluded it', async () => {
    p = await inProcessPipeline(tmp.dir);
    const internal: Interaction = {
      channel: 'email',
      source: 'gmail',
      sourceId: 'internal-1',
      direction: 'internal',
      occurredAt: '2026-11-20T10:00:00Z',
      participants: [
        { role: 'from', address: 'alex.secret-name@northwind-analytics.example' },
        { role: 'to', address: 'sam@northwind-analytics.example' },
      ],
      subject: 'Lunch plans and salary talk',
      text: 'Confidential: let us discuss the salary review over lunch.',
    };
    const out = await p.runtime.pipeline.intake(internal);
    expect(out.status).toBe('excluded');
    await drained(p.prefix);
    const entries = allEntries(p.path);
    expect(entries.filter((e) => e.kind === 'interaction.received')).toHaveLength(0);
    const excluded = entries.filter((e) => e.kind === 'rule.decision');
    expect(excluded).toHaveLength(1);
    expect(payload(excluded[0] as JournalEntry)).toMatchObject({ ruleId: 'internal-only-mail', outcome: 'excluded' });
    // Nothing identifying is stored anywhere in the file, in any column.
    const db = new Database(p.path, { readonly: true });
    const dump = JSON.stringify(db.prepare('SELECT * FROM entries').all());
    db.close();
    for (const secret of ['alex.secret-name', 'internal-1', 'salary', 'Lunch plans']) expect(dump).not.toContain(secret);
  });

  it('mirrors in dry run an interaction with a participant address as long as intake admits (512), with 150 counterparts', async () => {
    // The dry-run crm.write refused addresses over 256 characters and more than 100 associations, which intake
    // admits: each such mirror was retried 10 times over 13 minutes, then given up.
    p = await inProcessPipeline(tmp.dir);
    const [ix] = generatedInteractions(1, 'long-address');
    const long = `${'l'.repeat(500)}@example.com`;
    const crowd = Array.from({ length: 150 }, (_, i) => ({ role: 'cc' as const, address: `person-${i}@crowd.example` }));
    await p.runtime.pipeline.intake({ ...(ix as Interaction), participants: [{ role: 'from', address: long }, ...crowd] });
    await drained(p.prefix, 30_000);
    const entries = allEntries(p.path);
    expect(entries.filter((e) => e.kind === 'job.failed')).toHaveLength(0);
    const [write] = entries.filter((e) => e.kind === 'crm.write');
    expect((payload(write as JournalEntry).associations as { id: string }[]).map((a) => a.id)).toContain(long);
  });

  it('fails a job at once, with its reason on the record, when the journal refuses what it writes', async () => {
    // Workers for every stage but the mirror: its job waits while a conflicting crm.write is planted under the
    // key it will use, so the journal refuses its write (IDEMPOTENCY_CONFLICT): retrying cannot help.
    p = await inProcessPipeline(tmp.dir, { queues: ['ingest', 'classify', 'decide'] });
    const [ix] = generatedInteractions(1, 'refused');
    const out = await p.runtime.pipeline.intake(ix as Interaction);
    if (out.status !== 'accepted') throw new Error('not accepted');
    const mirrorQueue = p.runtime.queues.mirror;
    await pollUntil(async () => (await mirrorQueue.getWaitingCount()) >= 1, { timeoutMs: 30_000, intervalMs: 50 });
    await p.journal.append({
      kind: 'crm.write',
      source: 'hubspot',
      actor: 'planted',
      correlationId: out.entry.correlationId,
      idempotencyKey: `crm/${out.entry.id}/upsert`,
      payload: { system: 'hubspot', method: 'POST', path: '/planted', status: 0, durationMs: 0, dryRun: true },
    });
    const mirror = await startPipeline(testConfig(tmp.dir), silentLogger, { journal: p.journal, prefix: p.prefix, queues: ['mirror'] });
    await drained(p.prefix, 30_000);
    const [job] = await p.runtime.queues.mirror.getFailed();
    await mirror.close();
    expect(job?.attemptsMade).toBe(1); // no retries: it is permanent
    const failed = allEntries(p.path).filter((e) => e.kind === 'job.failed');
    expect(failed).toHaveLength(1);
    expect(payload(failed[0] as JournalEntry)).toMatchObject({ queue: 'mirror', finality: 'permanent' });
    expect(String(payload(failed[0] as JournalEntry).error)).toMatch(/IdempotencyConflict|already holds/i);
  });

  it('refuses a malformed job with its reason on the record, without retrying it', async () => {
    p = await inProcessPipeline(tmp.dir);
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const queue = new Queue('classify', { connection: redis, prefix: p.prefix });
    await queue.add(
      'classify',
      { entryId: 'not-a-uuid', seq: -1, correlationId: 'c-bad', body: 'should never be here' },
      { jobId: 'classify-malformed-1', attempts: 5 },
    );
    await drained(p.prefix);
    const job = await queue.getJob('classify-malformed-1');
    expect(await job?.getState()).toBe('failed');
    expect(job?.attemptsMade).toBe(1); // UnrecoverableError: no retries
    await queue.close();
    redis.disconnect();
    const failed = allEntries(p.path).filter((e) => e.kind === 'job.failed');
    expect(failed).toHaveLength(1);
    const f = payload(failed[0] as JournalEntry);
    expect(f).toMatchObject({ queue: 'classify', jobId: 'classify-malformed-1', finality: 'invalid-payload' });
    expect(String(f.error)).toMatch(/entryId/);
    expect(String(f.error)).toMatch(/seq/);
    expect(String(f.error)).toMatch(/body/);
    expect((failed[0] as JournalEntry).correlationId).toBe('c-bad');
  });
});

/** Stops a producer-only pipeline, starts workers on its journal and queues, re-drives, drains; the entries. */
async function finishWithWorkers(producer: InProcessPipeline): Promise<JournalEntry[]> {
  await producer.runtime.close();
  await producer.journal.close();
  // Built as production builds it: the same key store seals new entries and opens the producer's sealed ones.
  const privacy = openWriterPrivacy(testConfig(tmp.dir));
  const writer = await JournalWriter.open({ path: producer.path, keysDir: join(tmp.dir, 'keys'), checkpointEveryMs: 0, privacy });
  const reader = JournalReader.open(producer.path);
  reader.attachPrivacy(privacy, { owned: true });
  const journal = new LocalJournalClient(writer, reader);
  const runtime = await startPipeline(testConfig(tmp.dir, { REDRIVE_GRACE_SECONDS: '0' }), silentLogger, {
    journal,
    prefix: producer.prefix,
  });
  await runtime.redrive?.runOnce();
  await drained(producer.prefix);
  await runtime.close();
  await journal.close();
  await obliterate(producer.prefix);
  return allEntries(producer.path);
}

describe('re-drive of jobs that failed without a record', () => {
  it('runs again a job that failed for good while its failure could not be journaled', async () => {
    const producer = await inProcessPipeline(tmp.dir, { queues: [] }, { REDRIVE_GRACE_SECONDS: '0' });
    const items = generatedInteractions(5, 'unrecorded');
    for (const ix of items) await producer.runtime.pipeline.intake(ix);
    // The classify jobs fail for good in a worker that cannot journal anything (as when the journal was down
    // through every attempt): BullMQ keeps them as failed under their deterministic ids.
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const failer = new Worker('classify', () => Promise.reject(new UnrecoverableError('the journal is unavailable')), {
      connection,
      prefix: producer.prefix,
    });
    const classify = producer.runtime.queues.classify;
    await pollUntil(async () => (await classify.getFailedCount()) >= items.length, { timeoutMs: 30_000, intervalMs: 50 });
    await failer.close();
    connection.disconnect();
    expect(await producer.runtime.queues.classify.getFailedCount()).toBe(items.length);
    const entries = await finishWithWorkers(producer);
    expect(entries.filter((e) => e.kind === 'ai.decision' && payload(e).outcome !== 'failed')).toHaveLength(items.length);
  });
});

describe('re-drive after Redis lost its jobs', () => {
  it('finishes every accepted interaction from the journal alone', async () => {
    // Producer only: interactions are accepted and journaled, their jobs queued...
    const producer = await inProcessPipeline(tmp.dir, { queues: [] }, { REDRIVE_GRACE_SECONDS: '0' });
    const items = generatedInteractions(120, 'lost');
    for (const ix of items) await producer.runtime.pipeline.intake(ix);
    // ...then Redis loses everything (a restart without persistence).
    await obliterate(producer.prefix);
    // Workers start on the same journal and the same (now empty) queues: the start-up re-drive finds the work.
    const entries = await finishWithWorkers(producer);
    expect(entries.filter((e) => e.kind === 'interaction.received')).toHaveLength(120);
    expect(entries.filter((e) => e.kind === 'ai.decision')).toHaveLength(120);
    const mirrorRules = entries.filter(
      (e) => e.kind === 'rule.decision' && (payload(e).evaluated as { section: string }).section === 'mirror',
    );
    expect(mirrorRules).toHaveLength(120);
    expect(entries.filter((e) => e.kind === 'crm.write')).toHaveLength(mirrorRules.filter((e) => payload(e).outcome === 'mirror').length);
  });
});
