/**
 * The audit read index: folds the journal's entries into filterable rows (no content, contacts hashed), pages
 * newest first, follows overrides, catches up incrementally, and rebuilds itself for another journal.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import { tempDir } from '../helpers/tmp.ts';
import { JournalWriter } from '../../src/journal/writer.ts';
import { JournalReader } from '../../src/journal/reader.ts';
import { keyedContactHasher, ReadIndex, type InteractionQuery } from '../../src/audit/read-index.ts';
import type { AppendInput } from '../../src/journal/entry.ts';

let tmp: { dir: string; cleanup: () => void };
beforeEach(() => {
  tmp = tempDir('aj-index-');
});
afterEach(() => tmp.cleanup());

const HEX = 'a'.repeat(64);
/** The contact key of these tests (production takes the key store's, see configured-index.ts). */
const KEY = keyedContactHasher(randomBytes(32));

/** The entries the pipeline writes for one interaction: received, decision, review rule. */
function interaction(
  i: number,
  opts: { category: string; confidence: number; review: boolean; source?: string; from?: string },
): { received: AppendInput; decision: (receivedId: string) => AppendInput; review: (decisionId: string) => AppendInput } {
  const correlationId = `c-${i}`;
  return {
    received: {
      kind: 'interaction.received',
      source: opts.source ?? 'gmail',
      actor: 'connector:gmail',
      correlationId,
      idempotencyKey: `ix/${i}`,
      occurredAt: new Date(Date.UTC(2026, 10, 1 + (i % 20))).toISOString(),
      payload: {
        channel: 'email',
        sourceId: `m-${i}`,
        direction: 'inbound',
        occurredAt: new Date(Date.UTC(2026, 10, 1 + (i % 20))).toISOString(),
        participants: [{ role: 'from', address: opts.from ?? `buyer${i}@example.com` }],
        subject: `Secret subject ${i}`,
        text: 'body text',
      },
    },
    decision: (receivedId) => ({
      kind: 'ai.decision',
      source: 'pipeline',
      actor: 'classifier:offline',
      correlationId,
      causationId: receivedId,
      idempotencyKey: `d/${i}`,
      payload: {
        inputEntryId: receivedId,
        inputHash: HEX,
        promptId: 'p',
        promptVersion: 'v1',
        promptHash: HEX,
        provider: 'offline',
        model: 'rules',
        outcome: 'ok',
        output: {
          category: opts.category,
          summary: 's',
          intent: 'i',
          sentiment: 'neutral',
          urgency: 'low',
          nextSteps: [],
          confidence: opts.confidence,
        },
        confidence: opts.confidence,
        tokens: null,
        latencyMs: 1,
        requestId: null,
        attempts: 1,
      },
    }),
    review: (decisionId) => ({
      kind: 'rule.decision',
      source: 'pipeline',
      actor: 'rules',
      correlationId,
      idempotencyKey: `r/${i}`,
      payload: {
        ruleId: opts.review ? 'low-confidence' : 'no-review',
        ruleVersion: '1',
        inputEntryId: decisionId,
        evaluated: { section: 'review' },
        outcome: opts.review ? 'review' : 'none',
      },
    }),
  };
}

async function fill(writer: JournalWriter, n: number, offset = 0): Promise<string[]> {
  const decisions: string[] = [];
  for (let i = offset; i < offset + n; i++) {
    const spec = interaction(i, {
      category: i % 3 === 0 ? 'billing' : 'new_lead',
      confidence: (i % 10) / 10,
      review: i % 3 === 0,
      source: i % 2 === 0 ? 'gmail' : 'twilio',
      ...(i === 7 ? { from: 'Dana@Example.com' } : {}),
    });
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
    const index = ReadIndex.open(indexPath, KEY);
    expect(index.catchUp(reader)).toBe(reader.size());
    expect(index.query({ limit: 500 }).rows).toHaveLength(30);
    expect(index.query({ source: 'twilio', limit: 500 }).rows.every((r) => r.source === 'twilio')).toBe(true);
    expect(index.query({ source: 'twilio', limit: 500 }).rows).toHaveLength(15);
    expect(index.query({ category: 'billing', limit: 500 }).rows).toHaveLength(10);
    expect(index.query({ contact: ' dana@example.COM ' }).rows.map((r) => r.correlationId)).toEqual(['c-7']);
    expect(index.query({ maxConfidence: 0.1, limit: 500 }).rows.every((r) => (r.confidence as number) <= 0.1)).toBe(true);
    expect(index.query({ reviewState: 'pending', limit: 500 }).rows).toHaveLength(10);
    expect(
      index.query({ from: '2026-11-05', until: '2026-11-06', limit: 500 }).rows.every((r) => r.occurredAt.startsWith('2026-11-05')),
    ).toBe(true);
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
    const again = ReadIndex.open(indexPath, KEY);
    const target = decisions[3] as string;
    await writer.append({
      kind: 'human.override',
      source: 'cli',
      actor: 'user:alice',
      correlationId: 'c-3',
      causationId: target,
      idempotencyKey: `o/${randomUUID()}`,
      payload: { supersedes: target, field: 'category', from: 'billing', to: 'customer_support', reason: 'r' },
    });
    expect(again.catchUp(reader)).toBe(1);
    const row = again.byDecisionId(target);
    expect(row).toMatchObject({ category: 'customer_support', modelCategory: 'billing', reviewState: 'overridden', overrides: 1 });
    expect(again.query({ reviewState: 'pending', limit: 500 }).rows).toHaveLength(9);
    // The kept counts follow the override: one fewer billing and pending, one more customer_support and overridden.
    expect(again.query({ category: 'billing' }).matches).toEqual({ count: 9, capped: false });
    expect(again.query({ category: 'customer_support' }).matches).toEqual({ count: 1, capped: false });
    expect(again.query({ reviewState: 'pending' }).matches).toEqual({ count: 9, capped: false });
    expect(again.query({ reviewState: 'overridden' }).matches).toEqual({ count: 1, capped: false });
    for (const q of [
      { category: 'billing', reviewState: 'pending' },
      { category: 'customer_support', reviewState: 'overridden' },
      { source: 'twilio', category: 'billing' },
      { category: 'billing', reviewState: 'none' },
    ] as InteractionQuery[]) {
      expect(again.query(q).matches?.count, JSON.stringify(q)).toBe(again.query({ ...q, limit: 500 }).rows.length);
    }
    expect(again.catchUp(reader)).toBe(0);
    again.close();
    reader.close();
    await writer.close();

    // Another journal at the same index path: the index notices and rebuilds from it.
    const other = join(tmp.dir, 'other.sqlite');
    const w2 = await JournalWriter.open({ path: other, keysDir: join(tmp.dir, 'keys2'), checkpointEveryMs: 0 });
    await fill(w2, 2, 100);
    const r2 = JournalReader.open(other);
    const third = ReadIndex.open(indexPath, KEY);
    third.catchUp(r2);
    expect(
      third
        .query({ limit: 500 })
        .rows.map((r) => r.correlationId)
        .sort(),
    ).toEqual(['c-100', 'c-101']);
    third.close();
    r2.close();
    await w2.close();
  });

  it('counts matches up to a cap on the first page, and gives the same pages whichever way a date window is searched', async () => {
    const path = join(tmp.dir, 'journal.sqlite');
    const writer = await JournalWriter.open({ path, keysDir: join(tmp.dir, 'keys'), checkpointEveryMs: 0 });
    await fill(writer, 30);
    const reader = JournalReader.open(path);
    const index = ReadIndex.open(join(tmp.dir, 'index.sqlite'), KEY);
    index.catchUp(reader);
    // Exact counts of every page's filter (all pages), on the first page only.
    expect(index.query({ limit: 5 }).matches).toEqual({ count: 30, capped: false });
    expect(index.query({ source: 'twilio', limit: 5 }).matches).toEqual({ count: 15, capped: false });
    expect(index.query({ category: 'billing', source: 'gmail' }).matches).toEqual({ count: 5, capped: false });
    expect(index.query({ contact: 'dana@example.com' }).matches).toEqual({ count: 1, capped: false });
    expect(index.query({ contact: 'nobody@example.com' }).matches).toEqual({ count: 0, capped: false });
    // Days 1..20 of November, i % 20: days 5..9 hold i = 4..8 and 24..28.
    expect(index.query({ from: '2026-11-05', until: '2026-11-10' }).matches).toEqual({ count: 10, capped: false });
    expect(index.query({ limit: 5, before: 1_000 }).matches).toBeNull();
    const combos: InteractionQuery[] = [
      { source: 'gmail' },
      { channel: 'email' },
      { channel: 'call' },
      { category: 'new_lead' },
      { reviewState: 'pending' },
      { reviewState: 'none' },
      { source: 'twilio', category: 'billing' },
      { category: 'new_lead', reviewState: 'pending' },
      { source: 'gmail', reviewState: 'pending' },
      { source: 'gmail', channel: 'email', category: 'billing' },
      { from: '2026-11-19' },
      { source: 'twilio', until: '2026-11-04' },
      { category: 'billing', from: '2026-11-10' },
    ];
    for (const q of combos) {
      expect(index.query(q).matches?.count, JSON.stringify(q)).toBe(index.query({ ...q, limit: 500 }).rows.length);
    }
    const capped = ReadIndex.open(join(tmp.dir, 'index.sqlite'), KEY, { countCap: 12 });
    expect(capped.query({}).matches).toEqual({ count: 12, capped: true });
    expect(capped.query({ source: 'twilio' }).matches).toEqual({ count: 12, capped: true });
    expect(capped.query({ category: 'billing' }).matches).toEqual({ count: 10, capped: false });

    // A small window is searched through the date index and sorted; a large one walked newest first: same rows.
    const walked = ReadIndex.open(join(tmp.dir, 'index.sqlite'), KEY, { dateSortMax: 0 });
    const pages = (ix: ReadIndex, q: Parameters<ReadIndex['query']>[0]): number[][] => {
      const out: number[][] = [];
      let before: number | undefined;
      for (;;) {
        const page = ix.query({ ...q, limit: 3, before });
        out.push(page.rows.map((r) => r.seq));
        if (page.next === null) return out;
        before = page.next;
      }
    };
    for (const q of [
      { from: '2026-11-05', until: '2026-11-10' },
      { source: 'twilio', from: '2026-11-03' },
      { until: '2026-11-04', category: 'billing' },
      { contact: 'dana@example.com', from: '2026-11-01' },
      { from: '2026-11-02T12:00:00Z', until: '2026-11-04T06:00:00Z' },
      { source: 'gmail', from: '2026-11-01', until: '2026-11-09' },
      { from: '2026-11-01', until: '2026-11-02' },
    ]) {
      const sorted = pages(index, q);
      expect(sorted.flat().length).toBeGreaterThan(0);
      expect(pages(walked, q)).toEqual(sorted);
      expect([...sorted.flat()].sort((a, b) => b - a)).toEqual(sorted.flat());
    }
    expect(index.explain({ from: '2026-11-05', until: '2026-11-10' }).join('\n')).toContain('COVERING INDEX interactions_occurred');
    expect(index.explain({ source: 'twilio', from: '2026-11-01', until: '2026-11-05' }).join('\n')).toContain(
      'COVERING INDEX interactions_source_occurred',
    );
    // A window that holds the newest interaction is walked newest first.
    expect(index.explain({ from: '2026-11-05' }).join('\n')).not.toContain('interactions_occurred');
    expect(walked.explain({ from: '2026-11-05' }).join('\n')).not.toContain('interactions_occurred');
    // A large window in the past (dateSortMax 0 here) is walked down from the newest seq of its days.
    expect(walked.explain({ from: '2026-11-01', until: '2026-11-05' }).join('\n')).toContain('USING INTEGER PRIMARY KEY (rowid<?)');

    // Each filter searches an index that is in seq order: no full scan, no sort of the matches.
    const plans: [Parameters<ReadIndex['query']>[0], string][] = [
      [{ source: 'twilio' }, 'interactions_source'],
      [{ channel: 'call' }, 'interactions_channel'],
      [{ category: 'billing' }, 'interactions_category'],
      [{ reviewState: 'pending' }, 'interactions_review'],
      [{ contact: 'dana@example.com' }, 'PRIMARY KEY (contact_hash=?)'],
    ];
    for (const [q, used] of plans) {
      const plan = index.explain(q).join('\n');
      expect(plan, JSON.stringify(q)).toContain(used);
      expect(plan, JSON.stringify(q)).not.toContain('TEMP B-TREE');
    }
    for (const ix of [index, capped, walked]) ix.close();
    reader.close();
    await writer.close();
  });
});
