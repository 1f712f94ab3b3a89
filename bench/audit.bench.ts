/**
 * The audit suite: how fast the audit UI's pages answer on a 1,000,000-entry journal, against a baseline
 * measured in the same run.
 *
 *  1. A journal of ENTRIES entries is generated through the real writer (appendBatch, group commit): per
 *     interaction, interaction.received, ai.decision, two rule.decisions (mirror, review) and a crm.write, with
 *     categories, sources, contacts and confidences spread as a sales inbox would have them.
 *  2. The read index is built from scratch (ReadIndex.catchUp): entries/s.
 *  3. Each page query goes through AuditService (the index query plus reading the page's entries from the
 *     journal for subjects and summaries, exactly what the page and the API do): the first timeline page, each
 *     filter (source, kind, category, contact, date) alone and in pairs, the review queue, a page deep in history.
 *     The first page of each also counts its matches (up to 10,000), as the page shows it.
 *     Baseline: the journal's own best indexed query for a page of 50 interactions (`kind = ? ORDER BY
 *     recorded_at DESC LIMIT 50` on entries_by_kind_time), plus the same 50 point reads, its runs interleaved with
 *     each query's (so both see the same machine load). Ratio = baseline /
 *     ours (1.0: as fast as the bare indexed query; the bar is 0.25, i.e. at most 4x its time). For context:
 *     the category filter done without the index (json_extract over the journal's decisions).
 *
 * Set AUDIT_BENCH_ENTRIES for a smaller run (e.g. 100000 on a laptop in a hurry). Set AUDIT_BENCH_JOURNAL_DIR
 * to keep the generated journal in that directory and reuse it on the next run (the read index is always built
 * from scratch; the baseline is always measured in the same run).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { JournalWriter } from '../src/journal/writer.ts';
import { JournalReader } from '../src/journal/reader.ts';
import type { AppendInput } from '../src/journal/entry.ts';
import { keyedContactHasher, ReadIndex, type InteractionQuery } from '../src/audit/read-index.ts';
import { randomBytes } from 'node:crypto';
import { AuditService } from '../src/audit/audit-service.ts';
import type { JournalClient } from '../src/journal/journal-client.ts';
import { fmtFixed, fmtInt, median, ratio, table, type Ratio, type Suite, type SuiteContext, type SuiteResult } from './suite.ts';

const ENTRIES = Number(process.env.AUDIT_BENCH_ENTRIES ?? 1_000_000);
const PER_INTERACTION = 5;
const BATCH_INTERACTIONS = 200;
const RUNS = 30;
const BAR = 0.25;
const HEX = 'b'.repeat(64);
const CATEGORIES = ['new_lead', 'sales_conversation', 'customer_support', 'billing', 'scheduling', 'other'] as const;
const SOURCES = ['gmail', 'twilio', 'aircall', 'webform'] as const;

function entriesFor(i: number): AppendInput[] {
  const correlationId = `bench/${i}`;
  const category = CATEGORIES[i % CATEGORIES.length] as string;
  const confidence = ((i * 7919) % 100) / 100;
  const source = SOURCES[i % SOURCES.length] as string;
  const occurredAt = new Date(Date.UTC(2025, 0, 1) + i * 60_000).toISOString();
  const decisionId = 'PLACEHOLDER';
  const review = confidence < 0.1 || category === 'billing';
  return [
    {
      kind: 'interaction.received',
      source,
      actor: `connector:${source}`,
      correlationId,
      idempotencyKey: `bench/ix/${i}`,
      occurredAt,
      payload: {
        channel: source === 'webform' ? 'form' : source === 'gmail' ? 'email' : 'call',
        sourceId: `s-${i}`,
        direction: 'inbound',
        occurredAt,
        participants: [
          { role: 'from', address: `buyer${i % 5000}@customer${i % 997}.example` },
          { role: 'to', address: 'sales@northwind.example' },
        ],
        subject: `Subject ${i}`,
        text: 'A short body of an interaction, as the minimised text would be.',
      },
    },
    // The decision's inputEntryId is filled in after the received entry is appended (see below).
    {
      kind: 'ai.decision',
      source: 'pipeline',
      actor: 'classifier:offline',
      correlationId,
      idempotencyKey: `bench/d/${i}`,
      payload: {
        inputEntryId: 'PLACEHOLDER',
        inputHash: HEX,
        promptId: 'classify-interaction',
        promptVersion: 'v1',
        promptHash: HEX,
        provider: 'offline',
        model: 'rules',
        outcome: 'ok',
        output: { category, summary: `Summary ${i}`, intent: 'ask', sentiment: 'neutral', urgency: 'normal', nextSteps: [], confidence },
        confidence,
        tokens: null,
        latencyMs: 1,
        requestId: null,
        attempts: 1,
      },
    },
    {
      kind: 'rule.decision',
      source: 'pipeline',
      actor: 'rules',
      correlationId,
      idempotencyKey: `bench/rm/${i}`,
      payload: {
        ruleId: 'mirror-everything-else',
        ruleVersion: '1',
        inputEntryId: decisionId,
        evaluated: { section: 'mirror', category },
        outcome: 'mirror',
      },
    },
    {
      kind: 'rule.decision',
      source: 'pipeline',
      actor: 'rules',
      correlationId,
      idempotencyKey: `bench/rr/${i}`,
      payload: {
        ruleId: review ? 'low-confidence' : 'no-review',
        ruleVersion: '1',
        inputEntryId: decisionId,
        evaluated: { section: 'review', category },
        outcome: review ? 'review' : 'none',
      },
    },
    {
      kind: 'crm.write',
      source: 'hubspot',
      actor: 'crm:dry-run',
      correlationId,
      idempotencyKey: `bench/crm/${i}`,
      payload: {
        system: 'hubspot',
        method: 'POST',
        path: '/crm/v3/objects/emails/batch/upsert',
        status: 0,
        durationMs: 0,
        dryRun: true,
        properties: { journal_entry_id: `ix-${i}` },
      },
    },
  ];
}

async function generate(path: string, ctx: SuiteContext): Promise<{ seconds: number; entries: number }> {
  const writer = await JournalWriter.open({ path, keysDir: join(path, '..', 'keys'), checkpointEveryMs: 0 });
  const started = performance.now();
  const interactions = Math.floor(ENTRIES / PER_INTERACTION);
  for (let i = 0; i < interactions; i += BATCH_INTERACTIONS) {
    // Two appends per batch: the received entries first, then what refers to their ids.
    const group = Array.from({ length: Math.min(BATCH_INTERACTIONS, interactions - i) }, (_, k) => entriesFor(i + k));
    const received = await writer.appendBatch(group.map((g) => g[0] as AppendInput));
    const decisions = await writer.appendBatchReceived(
      group.map((g, k) => ({
        ...(g[1] as AppendInput),
        payload: { ...((g[1] as AppendInput).payload as object), inputEntryId: (received[k] as { entry: { id: string } }).entry.id },
      })),
    );
    await writer.appendBatchReceived(
      group.flatMap((g, k) =>
        [g[2], g[3]].map((e) => ({
          ...(e as AppendInput),
          payload: { ...((e as AppendInput).payload as object), inputEntryId: (decisions[k] as { entry: { id: string } }).entry.id },
        })),
      ),
    );
    await writer.appendBatchReceived(
      group.map((g, k) => ({
        ...(g[4] as AppendInput),
        payload: {
          ...((g[4] as AppendInput).payload as object),
          properties: { journal_entry_id: (received[k] as { entry: { id: string } }).entry.id },
        },
      })),
    );
    if (i % 20_000 === 0) ctx.progress(`audit: generated ${fmtInt(i * PER_INTERACTION)} of ${fmtInt(ENTRIES)} entries`);
  }
  await writer.checkpoint();
  await writer.close();
  return { seconds: (performance.now() - started) / 1000, entries: interactions * PER_INTERACTION };
}

/**
 * Medians of `fn` and of the baseline, their runs interleaved (baseline, fn, baseline, fn...): on a shared
 * machine whose load changes from minute to minute, both see the same load, so their ratio holds.
 */
function timePaired(fn: () => unknown, base: () => unknown): { ms: number; baselineMs: number } {
  const ours: number[] = [];
  const theirs: number[] = [];
  fn();
  base();
  for (let r = 0; r < RUNS; r++) {
    let t = performance.now();
    base();
    theirs.push(performance.now() - t);
    t = performance.now();
    fn();
    ours.push(performance.now() - t);
  }
  return { ms: median(ours), baselineMs: median(theirs) };
}

function time(fn: () => unknown): number {
  const samples: number[] = [];
  fn(); // warm the statement cache and the page cache
  for (let r = 0; r < RUNS; r++) {
    const t = performance.now();
    fn();
    samples.push(performance.now() - t);
  }
  return median(samples);
}

export const auditSuite: Suite = {
  name: 'audit',
  description: "audit UI page queries on a 1,000,000-entry journal vs the journal's own indexed query",
  async run(ctx: SuiteContext): Promise<SuiteResult> {
    const dir = mkdtempSync(join(tmpdir(), 'aj-bench-audit-'));
    const keep = process.env.AUDIT_BENCH_JOURNAL_DIR ? join(process.env.AUDIT_BENCH_JOURNAL_DIR, String(ENTRIES)) : null;
    try {
      const path = join(keep ?? dir, 'journal.sqlite');
      let gen: { seconds: number; entries: number } | null = null;
      if (keep && existsSync(join(keep, 'complete'))) {
        ctx.progress(`audit: reusing the journal in ${keep}`);
      } else {
        if (keep) {
          rmSync(keep, { recursive: true, force: true });
          mkdirSync(keep, { recursive: true });
        }
        gen = await generate(path, ctx);
        if (keep) writeFileSync(join(keep, 'complete'), JSON.stringify(gen));
        ctx.progress(`audit: journal of ${fmtInt(gen.entries)} entries written in ${fmtFixed(gen.seconds, 1)} s`);
      }
      gen ??= JSON.parse(readFileSync(join(keep as string, 'complete'), 'utf8')) as { seconds: number; entries: number };
      const reader = JournalReader.open(path);
      const index = ReadIndex.open(join(dir, 'audit-index.sqlite'), keyedContactHasher(randomBytes(32)));
      const t0 = performance.now();
      index.catchUp(reader, { batch: 10_000 });
      const buildSeconds = (performance.now() - t0) / 1000;
      ctx.progress(`audit: index built in ${fmtFixed(buildSeconds, 1)} s`);
      const refusing = (): Promise<never> => Promise.reject(new Error('read-only'));
      const service = new AuditService({
        reader,
        index,
        journal: { append: refusing } as unknown as JournalClient,
        enqueue: refusing,
        connectors: () => ({ inboxes: [], webhooks: [], gmailConfigured: false }),
        refreshEveryMs: 3_600_000,
      });
      service.refresh(true);

      const db = reader.connection;
      const baselineStmt = db.prepare(`SELECT seq FROM entries WHERE kind = 'interaction.received' ORDER BY recorded_at DESC LIMIT 50`);
      const baselineRun = (): void => {
        for (const r of baselineStmt.all() as { seq: number }[]) reader.bySeq(r.seq);
      };
      const baseline = time(baselineRun);
      const mid = Math.floor(reader.size() / 2);
      // The data: one interaction a minute from 2025-01-01 (200,000 of them: until mid-May 2025), four sources, six
      // categories; each from its own buyer address, all to the same sales address.
      const queries: [string, InteractionQuery][] = [
        ['timeline, first page', {}],
        ['source = twilio', { source: 'twilio' }],
        ['kind = call', { channel: 'call' }],
        ['category = billing', { category: 'billing' }],
        ['category + source', { category: 'billing', source: 'twilio' }],
        ['contact: one interaction', { contact: 'buyer4242@customer254.example' }],
        ['contact: on every interaction', { contact: 'sales@northwind.example' }],
        ['7-day window, 4 months back', { from: '2025-02-01', until: '2025-02-08' }],
        ['source + 7-day window', { source: 'twilio', from: '2025-02-01', until: '2025-02-08' }],
        ['since a month ago (open-ended)', { from: '2025-04-19' }],
        ['45-day window, 4 months back', { from: '2025-01-01', until: '2025-02-15' }],
        ['review queue', { reviewState: 'pending' }],
        ['page deep in history (no count)', { before: mid }],
      ];
      const rows: string[][] = [
        ['journal indexed query + 50 reads (baseline, alone)', fmtFixed(baseline, 2), fmtFixed(baseline, 2), '1.00', ''],
      ];
      const data: Record<string, unknown> = {
        entries: gen.entries,
        generateSeconds: gen.seconds,
        indexBuildSeconds: buildSeconds,
        indexBuildEntriesPerSecond: gen.entries / buildSeconds,
        baselineMs: baseline,
        queries: {},
      };
      for (const [name, q] of queries) {
        let n = 0;
        let matches = '';
        const { ms, baselineMs } = timePaired(() => {
          const page = service.timeline({ ...q, limit: 50 });
          n = page.rows.length;
          matches = page.matches ? `${fmtInt(page.matches.count)}${page.matches.capped ? '+' : ''} match` : 'not counted';
        }, baselineRun);
        const r: Ratio = ratio(baselineMs / ms, BAR);
        (data.queries as Record<string, unknown>)[name] = { ms, baselineMs, rows: n, matches, ratio: r, plan: index.explain(q) };
        rows.push([
          `${name} (${n} rows; ${matches})`,
          fmtFixed(ms, 2),
          fmtFixed(baselineMs, 2),
          fmtFixed(r.value, 2),
          r.pass ? 'ok' : `below ${BAR}`,
        ]);
      }
      // Context: the category filter without the read index.
      const naiveStmt = db.prepare(
        `SELECT seq FROM entries WHERE kind = 'ai.decision' AND json_extract(payload, '$.output.category') = 'billing' ORDER BY seq DESC LIMIT 50`,
      );
      const naive = time(() => naiveStmt.all());
      data.withoutIndexCategoryMs = naive;
      rows.push([
        'category = billing WITHOUT the index (json_extract)',
        fmtFixed(naive, 2),
        fmtFixed(baseline, 2),
        fmtFixed(baseline / naive, 2),
        'context',
      ]);
      index.close();
      reader.close();
      const text = [
        `audit: ${fmtInt(gen.entries)} entries (generated in ${fmtFixed(gen.seconds, 1)} s); read index built in ${fmtFixed(buildSeconds, 1)} s (${fmtInt(gen.entries / buildSeconds)} entries/s)`,
        `median of ${RUNS} runs per query, page of 50 including the journal reads for subjects and summaries, and on first pages the count of matches (capped at 10,000); ratio = baseline / ours, their runs interleaved (bar ${BAR})`,
        table(['query', 'ms', 'baseline ms', 'ratio', 'bar'], rows),
      ].join('\n');
      return { text, data };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
