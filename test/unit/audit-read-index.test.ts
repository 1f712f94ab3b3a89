/**
 * The audit read index: folds the journal's entries into filterable rows (no content, contacts hashed), pages
 * newest first, follows overrides, catches up incrementally, and rebuilds itself for another journal.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tempDir } from '../helpers/tmp.ts';
import { JournalWriter } from '../../src/journal/writer.ts';
import { JournalReader } from '../../src/journal/reader.ts';
import { ReadIndex } from '../../src/audit/read-index.ts';
import type { AppendInput } from '../../src/journal/entry.ts';

let tmp: { dir: string; cleanup: () => void };
beforeEach(() => {
  tmp = tempDir('aj-index-');
});
afterEach(() => tmp.cleanup());

const HEX = 'a'.repeat(64);

/** The entries the pipeline writes for one interaction: received, decision, review rule. */
function interaction(i: number, opts: { category: string; confidence: number; review: boolean; source?: string; from?: string }): { received: AppendInput; decision: (receivedId: string) => AppendInput; review: (decisionId: string) => AppendInput } {
  const correlationId = `c-${i}`;
  return {
    received: {
      kind: 'interaction.received',
      source: opts.source ?? 'gmail',
      actor: 'connector:gmail',
      correlationId,
      idempotencyKey: `ix/${i}`,
      occurredAt: new Date(Date.UTC(2026, 10, 1 + (i % 20))).toISOString(),
      payload: { channel: 'email', sourceId: `m-${i}`, direction: 'inbound', occurredAt: new Date(Date.UTC(2026, 10, 1 + (i % 20))).toISOString(), participants: [{ role: 'from', address: opts.from ?? `buyer${i}@example.com` }], subject: `Secret subject ${i}`, text: 'body text' },
    },
    decision: (receivedId) => ({
      kind: 'ai.decision',
      source: 'pipeline',
      actor: 'classifier:offline',
      correlationId,
      causationId: receivedId,
      idempotencyKey: `d/${i}`,
      payload: { inputEntryId: receivedId, inputHash: HEX, promptId: 'p', promptVersion: 'v1', promptHash: HEX, provider: 'offline', model: 'rules', outcome: 'ok', output: { category: opts.category, summary: 's', intent: 'i', sentiment: 'neutral', urgency: 'low', nextSteps: [], confidence: opts.confidence }, confidence: opts.confidence, tokens: null, latencyMs: 1, requestId: null, attempts: 1 },
    }),
    review: (decisionId) => ({
      kind: 'rule.decision',
      source: 'pipeline',
      actor: 'rules',
      correlationId,
      idempotencyKey: `r/${i}`,
      payload: { ruleId: opts.review ? 'low-confidence' : 'no-review', ruleVersion: '1', inputEntryId: decisionId, evaluated: { section: 'review' }, outcome: opts.review ? 'review' : 'none' },
    }),
  };
}

async function fill(writer: JournalWriter, n: number, offset = 0): Promise<string[]> {
  const decisions: string[] = [];
  for (let i = offset; i < offset + n; i++) {
    const spec = interaction(i, { category: i % 3 === 0 ? 'billing' : 'new_lead', confidence: (i % 10) / 10, review: i % 3 === 0, source: i % 2 === 0 ? 'gmail' : 'twilio', ...(i === 7 ? { from: 'Dana@Example.com' } : {}) });
    const r = await writer.append(spec.received);
    const d = await writer.append(spec.decision(r.entry.id));
    await writer.append(spec.review(d.entry.id));
    decisions.push(d.entry.id);
  }
  return decisions;
}

describe('the audit read index', () => {
  it('filters by source, category, contact, date, confidence and review state; pages newest first without gaps', async () => {
    const path = join(tmp.dir, 'journal.sqlite');
    const writer = await JournalWriter.open({ path, keysDir: join(tmp.dir, 'keys'), checkpointEveryMs: 0 });
    const decisions = await fill(writer, 30);
    const reader = JournalReader.open(path);
    const indexPath = join(tmp.dir, 'index.sqlite');
    const index = ReadIndex.open(indexPath);
    expect(index.catchUp(reader)).toBe(reader.size());
    expect(index.query({ limit: 500 }).rows).toHaveLength(30);
    expect(index.query({ source: 'twilio', limit: 500 }).rows.every((r) => r.source === 'twilio')).toBe(true);
    expect(index.query({ source: 'twilio', limit: 500 }).rows).toHaveLength(15);
    expect(index.query({ category: 'billing', limit: 500 }).rows).toHaveLength(10);
    expect(index.query({ contact: ' dana@example.COM ' }).rows.map((r) => r.correlationId)).toEqual(['c-7']);
    expect(index.query({ maxConfidence: 0.1, limit: 500 }).rows.every((r) => (r.confidence as number) <= 0.1)).toBe(true);
    expect(index.query({ reviewState: 'pending', limit: 500 }).rows).toHaveLength(10);
    expect(index.query({ from: '2026-11-05', until: '2026-11-06', limit: 500 }).rows.every((r) => r.occurredAt.startsWith('2026-11-05'))).toBe(true);
    expect(() => index.query({ from: 'yesterday' })).toThrow(RangeError);
    // Paging: every row once, newest first.
    const seen: number[] = [];
    let before: number | undefined;
    for (;;) {
      const page = index.query({ limit: 7, before });
      seen.push(...page.rows.map((r) => r.seq));
      if (page.next === null) break;
      before = page.next;
    }
    expect(seen).toHaveLength(30);
    expect([...seen].sort((a, b) => b - a)).toEqual(seen);
    // No content in the index file: subjects, bodies and addresses stay in the journal.
    index.close();
    const bytes = readFileSync(indexPath).toString('latin1');
    expect(bytes).not.toContain('Secret subject');
    expect(bytes.toLowerCase()).not.toContain('dana@example.com');

    // Incremental: an override moves the category and takes the decision out of the queue.
    const again = ReadIndex.open(indexPath);
    const target = decisions[3] as string;
    await writer.append({ kind: 'human.override', source: 'cli', actor: 'user:alice', correlationId: 'c-3', causationId: target, idempotencyKey: `o/${randomUUID()}`, payload: { supersedes: target, field: 'category', from: 'billing', to: 'customer_support', reason: 'r' } });
    expect(again.catchUp(reader)).toBe(1);
    const row = again.byDecisionId(target);
    expect(row).toMatchObject({ category: 'customer_support', modelCategory: 'billing', reviewState: 'overridden', overrides: 1 });
    expect(again.query({ reviewState: 'pending', limit: 500 }).rows).toHaveLength(9);
    expect(again.catchUp(reader)).toBe(0);
    again.close();
    reader.close();
    await writer.close();

    // Another journal at the same index path: the index notices and rebuilds from it.
    const other = join(tmp.dir, 'other.sqlite');
    const w2 = await JournalWriter.open({ path: other, keysDir: join(tmp.dir, 'keys2'), checkpointEveryMs: 0 });
    await fill(w2, 2, 100);
    const r2 = JournalReader.open(other);
    const third = ReadIndex.open(indexPath);
    third.catchUp(r2);
    expect(third.query({ limit: 500 }).rows.map((r) => r.correlationId).sort()).toEqual(['c-100', 'c-101']);
    third.close();
    r2.close();
    await w2.close();
  });
});
