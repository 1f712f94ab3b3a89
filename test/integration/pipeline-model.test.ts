/**
 * The pipeline with a model: the OpenAI adapter against the fake OpenAI server. Every kind of model failure
 * is journaled and the interaction falls back to the offline rules, marked for review.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.ts';
import { allEntries, drained, generatedInteractions, inProcessPipeline, type InProcessPipeline } from '../helpers/pipeline.ts';
import { startFakeOpenAi, type Behaviour, type FakeOpenAi } from '../fakes/openai.fake.ts';
import { OpenAiClassifier } from '../../connectors/openai/openai.classifier.ts';
import type { JournalEntry } from '../../src/journal/entry.ts';

let fake: FakeOpenAi;
let tmp: { dir: string; cleanup: () => void };
let p: InProcessPipeline | null = null;
beforeAll(async () => {
  fake = await startFakeOpenAi();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  tmp = tempDir('aj-model-');
});
afterEach(async () => {
  await p?.stop();
  p = null;
  tmp.cleanup();
});

const payload = (e: JournalEntry): Record<string, unknown> => e.payload as Record<string, unknown>;
const classifier = (): OpenAiClassifier =>
  new OpenAiClassifier({
    apiKey: 'sk-test-not-a-real-key-0123456789',
    baseURL: fake.baseURL,
    model: 'gpt-4o-mini',
    timeoutMs: 500,
    maxRetries: 0,
  });

describe('the pipeline with a model', () => {
  it('journals a successful model decision with full provenance', async () => {
    fake.setDefault({ kind: 'ok' });
    p = await inProcessPipeline(tmp.dir, { classifier: classifier() });
    const [ix] = generatedInteractions(1, 'ok');
    await p.runtime.pipeline.intake(ix as never);
    await drained(p.prefix);
    const entries = allEntries(p.path);
    const decision = entries.find((e) => e.kind === 'ai.decision') as JournalEntry;
    const received = entries.find((e) => e.kind === 'interaction.received') as JournalEntry;
    expect(payload(decision)).toMatchObject({
      outcome: 'ok',
      provider: 'openai',
      inputEntryId: received.id,
      promptId: 'classify-interaction',
      promptVersion: 'v1',
      attempts: 1,
      reviewRequired: false,
    });
    expect(payload(decision).requestId).toMatch(/^req_/);
    expect(payload(decision).promptHash).toMatch(/^[0-9a-f]{64}$/);
    expect(payload(decision).inputHash).toMatch(/^[0-9a-f]{64}$/);
    expect((payload(decision).tokens as { input: number }).input).toBeGreaterThan(0);
    expect(fake.requests.every((r) => r.valid)).toBe(true);
  });

  it('takes the fallback path for each kind of model failure, on the record', async () => {
    const failures: Behaviour[] = [
      { kind: 'rate-limit', retryAfterSeconds: 1 },
      { kind: 'server-error', status: 500 },
      { kind: 'slow', latencyMs: 2000 },
      { kind: 'refusal' },
      { kind: 'invalid-json' },
      { kind: 'schema-violation' },
      { kind: 'length' },
    ];
    fake.setDefault({ kind: 'server-error', status: 503 });
    fake.script(...failures);
    p = await inProcessPipeline(tmp.dir, { classifier: classifier() }, { MODEL_CONCURRENCY: '1' });
    const items = generatedInteractions(failures.length, 'fail');
    for (const ix of items) await p.runtime.pipeline.intake(ix);
    await drained(p.prefix, 60_000);
    const entries = allEntries(p.path);
    const decisions = entries.filter((e) => e.kind === 'ai.decision');
    const failed = decisions.filter((d) => payload(d).outcome === 'failed');
    const fallback = decisions.filter((d) => payload(d).outcome === 'fallback');
    expect(failed).toHaveLength(items.length);
    expect(fallback).toHaveLength(items.length);
    const codes = failed.map((d) => String(payload(d).error).split(':')[0]).sort();
    expect(codes).toEqual(['INVALID_OUTPUT', 'INVALID_OUTPUT', 'INVALID_OUTPUT', 'PROVIDER_ERROR', 'RATE_LIMITED', 'REFUSAL', 'TIMEOUT']);
    for (const f of fallback) {
      expect(payload(f)).toMatchObject({ provider: 'offline', reviewRequired: true });
      const replaced = failed.find((d) => d.id === payload(f).replacesEntryId) as JournalEntry;
      expect(replaced.correlationId).toBe(f.correlationId);
      const review = entries.find(
        (e) =>
          e.kind === 'rule.decision' &&
          e.correlationId === f.correlationId &&
          (payload(e).evaluated as { section: string }).section === 'review',
      ) as JournalEntry;
      expect(payload(review)).toMatchObject({ ruleId: 'model-failed', outcome: 'review' });
    }
    // No API key, and no interaction text, ever reached the journal.
    const dump = JSON.stringify(decisions);
    expect(dump).not.toContain('sk-test-not-a-real-key');
    expect(dump).not.toContain('Reference fail-');
    expect(entries.filter((e) => e.kind === 'job.failed')).toHaveLength(0);
  });
});
