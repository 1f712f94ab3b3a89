/**
 * The audit read index: a separate SQLite file derived from the journal, so the audit pages can filter and page
 * a million entries quickly. It is NOT evidence (the journal is): it holds no bodies, subjects or addresses
 * (contacts only as SHA-256 hashes), it is written only by its own indexer, which tails the journal by seq, and
 * it can be deleted and rebuilt from the journal at any time. When the journal it was built from is replaced
 * (another genesis entry), it rebuilds itself.
 */
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { JournalReader } from '../journal/reader.ts';
import type { JournalEntry } from '../journal/entry.ts';

const SCHEMA_VERSION = '2';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS interactions (
  seq INTEGER PRIMARY KEY,
  entry_id TEXT NOT NULL UNIQUE,
  correlation_id TEXT NOT NULL,
  source TEXT NOT NULL,
  channel TEXT NOT NULL,
  direction TEXT NOT NULL,
  occurred_at TEXT NOT NULL,
  recorded_at TEXT NOT NULL,
  decision_seq INTEGER,
  decision_id TEXT UNIQUE,
  decision_outcome TEXT,
  model TEXT,
  confidence REAL,
  model_category TEXT,
  category TEXT,
  review_rule TEXT,
  review_state TEXT NOT NULL DEFAULT 'none',
  mirror TEXT,
  crm_writes INTEGER NOT NULL DEFAULT 0,
  overrides INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS interactions_source ON interactions (source, seq);
CREATE INDEX IF NOT EXISTS interactions_source_occurred ON interactions (source, occurred_at);
CREATE INDEX IF NOT EXISTS interactions_channel ON interactions (channel, seq);
CREATE INDEX IF NOT EXISTS interactions_category ON interactions (category, seq);
CREATE INDEX IF NOT EXISTS interactions_review ON interactions (review_state, seq);
CREATE INDEX IF NOT EXISTS interactions_occurred ON interactions (occurred_at);
CREATE TABLE IF NOT EXISTS contacts (contact_hash TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (contact_hash, seq)) WITHOUT ROWID;
`;

export type ReviewState = 'none' | 'pending' | 'approved' | 'overridden';

/** One interaction as the index knows it: ids, filters and the decision's outcome; never content. */
export interface IndexedInteraction {
  readonly seq: number;
  readonly entryId: string;
  readonly correlationId: string;
  readonly source: string;
  readonly channel: string;
  readonly direction: string;
  readonly occurredAt: string;
  readonly recordedAt: string;
  readonly decisionSeq: number | null;
  readonly decisionId: string | null;
  readonly decisionOutcome: string | null;
  readonly model: string | null;
  readonly confidence: number | null;
  readonly modelCategory: string | null;
  /** The category in force: the newest override's, else the model's. */
  readonly category: string | null;
  readonly reviewRule: string | null;
  readonly reviewState: ReviewState;
  readonly mirror: string | null;
  readonly crmWrites: number;
  readonly overrides: number;
}

export interface InteractionQuery {
  readonly source?: string | undefined;
  readonly channel?: string | undefined;
  readonly category?: string | undefined;
  /** An email address or phone number; matched by its hash. */
  readonly contact?: string | undefined;
  /** Inclusive lower bound on occurredAt (RFC 3339 or YYYY-MM-DD). */
  readonly from?: string | undefined;
  /** Exclusive upper bound on occurredAt. */
  readonly until?: string | undefined;
  readonly reviewState?: ReviewState | undefined;
  /** Only decisions the rules routed to review (whatever happened since). */
  readonly routedToReview?: boolean | undefined;
  readonly maxConfidence?: number | undefined;
  /** Only interactions that have a decision. */
  readonly decided?: boolean | undefined;
  /** Paging: rows with a smaller seq than this (newest first). */
  readonly before?: number | undefined;
  readonly limit?: number | undefined;
}

export interface InteractionPage {
  readonly rows: IndexedInteraction[];
  /** Pass as `before` for the next page; null on the last page. */
  readonly next: number | null;
}

export interface SourceSummary {
  readonly source: string;
  readonly interactions: number;
  readonly lastOccurredAt: string | null;
  readonly lastRecordedAt: string | null;
}

interface Row {
  seq: number;
  entry_id: string;
  correlation_id: string;
  source: string;
  channel: string;
  direction: string;
  occurred_at: string;
  recorded_at: string;
  decision_seq: number | null;
  decision_id: string | null;
  decision_outcome: string | null;
  model: string | null;
  confidence: number | null;
  model_category: string | null;
  category: string | null;
  review_rule: string | null;
  review_state: ReviewState;
  mirror: string | null;
  crm_writes: number;
  overrides: number;
}

export const MAX_INDEX_PAGE = 500;

/** The hash under which a contact (email address, phone number) is indexed. */
export function contactHash(contact: string): string {
  return createHash('sha256').update(contact.trim().toLowerCase()).digest('hex');
}

function normaliseTime(value: string, what: string): string {
  const text = /^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value;
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new RangeError(`${what} must be a date (YYYY-MM-DD) or an RFC 3339 time, got ${JSON.stringify(value)}`);
  return new Date(ms).toISOString();
}

export class ReadIndex {
  private readonly stmts;
  private constructor(private readonly db: Database.Database) {
    this.stmts = {
      meta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare<[string, string]>('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
      insertInteraction: db.prepare(
        'INSERT OR IGNORE INTO interactions (seq, entry_id, correlation_id, source, channel, direction, occurred_at, recorded_at) VALUES (@seq, @entryId, @correlationId, @source, @channel, @direction, @occurredAt, @recordedAt)',
      ),
      insertContact: db.prepare<[string, number]>('INSERT OR IGNORE INTO contacts (contact_hash, seq) VALUES (?, ?)'),
      decision: db.prepare(
        `UPDATE interactions SET decision_seq = @seq, decision_id = @id, decision_outcome = @outcome, model = @model, confidence = @confidence,
           model_category = @category, category = CASE WHEN overrides > 0 AND decision_id = @id THEN category ELSE @category END
         WHERE entry_id = @inputEntryId`,
      ),
      review: db.prepare<[string, string]>(`UPDATE interactions SET review_rule = ?, review_state = CASE WHEN review_state = 'none' THEN 'pending' ELSE review_state END WHERE decision_id = ?`),
      mirror: db.prepare<[string, string]>('UPDATE interactions SET mirror = ? WHERE decision_id = ?'),
      crmWrite: db.prepare<[string]>('UPDATE interactions SET crm_writes = crm_writes + 1 WHERE entry_id = ?'),
      overrideCategory: db.prepare<[string, string]>(`UPDATE interactions SET category = ?, review_state = 'overridden', overrides = overrides + 1 WHERE decision_id = ?`),
      approve: db.prepare<[string]>(`UPDATE interactions SET review_state = CASE WHEN review_state = 'overridden' THEN 'overridden' ELSE 'approved' END, overrides = overrides + 1 WHERE decision_id = ?`),
      byDecision: db.prepare<[string], Row>('SELECT * FROM interactions WHERE decision_id = ?'),
      byEntry: db.prepare<[string], Row>('SELECT * FROM interactions WHERE entry_id = ?'),
      sources: db.prepare<[], { source: string; n: number; lo: string | null; lr: string | null }>(
        'SELECT source, count(*) AS n, max(occurred_at) AS lo, max(recorded_at) AS lr FROM interactions GROUP BY source ORDER BY source',
      ),
    };
  }

  /** Opens (creating) the index file; it is only ever written through this class. */
  static open(path: string): ReadIndex {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    // The index is rebuildable: losing its last commits on power loss costs a re-read, never evidence.
    db.pragma('synchronous = NORMAL');
    db.exec(SCHEMA);
    const index = new ReadIndex(db);
    if (index.getMeta('schema') !== SCHEMA_VERSION) index.reset();
    return index;
  }

  /** Empties the index; the next catch-up rebuilds it from the journal's first entry. */
  reset(): void {
    this.db.exec('DELETE FROM interactions; DELETE FROM contacts; DELETE FROM meta;');
    this.stmts.setMeta.run('schema', SCHEMA_VERSION);
  }

  /** The last journal seq folded into the index (-1 when empty). */
  lastSeq(): number {
    const v = this.getMeta('lastSeq');
    return v === null ? -1 : Number(v);
  }

  /**
   * Folds every journal entry after `lastSeq()` into the index, in transactions of `batch` entries.
   * Returns how many entries were read. Rebuilds from scratch when the journal is not the one indexed.
   */
  catchUp(reader: JournalReader, options: { batch?: number; onProgress?: (done: number, total: number) => void } = {}): number {
    const genesis = reader.bySeq(0);
    if (!genesis) return 0;
    if (this.getMeta('journal') !== genesis.id) {
      this.reset();
      this.stmts.setMeta.run('journal', genesis.id);
    }
    const from = this.lastSeq() + 1;
    const size = reader.size();
    if (from >= size) return 0;
    const batch = options.batch ?? 5000;
    let pending: JournalEntry[] = [];
    let done = 0;
    const flush = this.db.transaction((entries: JournalEntry[]) => {
      for (const e of entries) this.fold(e);
      const last = entries[entries.length - 1];
      if (last) this.stmts.setMeta.run('lastSeq', String(last.seq));
    });
    for (const e of reader.iterate(from)) {
      pending.push(e);
      if (pending.length >= batch) {
        flush(pending);
        done += pending.length;
        pending = [];
        options.onProgress?.(done, size - from);
      }
    }
    if (pending.length > 0) {
      flush(pending);
      done += pending.length;
      options.onProgress?.(done, size - from);
    }
    return done;
  }

  query(q: InteractionQuery): InteractionPage {
    const limit = Math.max(1, Math.min(MAX_INDEX_PAGE, Math.floor(q.limit ?? 50)));
    const where: string[] = [];
    const params: unknown[] = [];
    let from = 'interactions i';
    if (q.contact) {
      from = 'contacts c JOIN interactions i ON i.seq = c.seq';
      where.push('c.contact_hash = ?');
      params.push(contactHash(q.contact));
    }
    const eq = (column: string, value: string | undefined): void => {
      if (value === undefined || value === '') return;
      where.push(`i.${column} = ?`);
      params.push(value);
    };
    eq('source', q.source);
    eq('channel', q.channel);
    eq('category', q.category);
    eq('review_state', q.reviewState);
    if (q.from) {
      where.push('i.occurred_at >= ?');
      params.push(normaliseTime(q.from, 'from'));
    }
    if (q.until) {
      where.push('i.occurred_at < ?');
      params.push(normaliseTime(q.until, 'until'));
    }
    if (q.routedToReview) where.push('i.review_rule IS NOT NULL');
    if (q.decided) where.push('i.decision_id IS NOT NULL');
    if (q.maxConfidence !== undefined) {
      where.push('i.confidence <= ?');
      params.push(q.maxConfidence);
    }
    if (q.before !== undefined) {
      where.push('i.seq < ?');
      params.push(q.before);
    }
    const sql = `SELECT i.* FROM ${from}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY i.seq DESC LIMIT ?`;
    const rows = (this.db.prepare(sql).all(...params, limit + 1) as Row[]).map(toInteraction);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return { rows: page, next: rows.length > limit && last ? last.seq : null };
  }

  byDecisionId(decisionId: string): IndexedInteraction | null {
    const row = this.stmts.byDecision.get(decisionId);
    return row ? toInteraction(row) : null;
  }

  byEntryId(entryId: string): IndexedInteraction | null {
    const row = this.stmts.byEntry.get(entryId);
    return row ? toInteraction(row) : null;
  }

  sources(): SourceSummary[] {
    return this.stmts.sources.all().map((r) => ({ source: r.source, interactions: r.n, lastOccurredAt: r.lo, lastRecordedAt: r.lr }));
  }

  close(): void {
    this.db.close();
  }

  private getMeta(key: string): string | null {
    return this.stmts.meta.get(key)?.value ?? null;
  }

  private fold(e: JournalEntry): void {
    const p = e.payload as Record<string, unknown> | null;
    if (p === null) return; // an archived or shredded payload: nothing to index
    switch (e.kind) {
      case 'interaction.received': {
        this.stmts.insertInteraction.run({ seq: e.seq, entryId: e.id, correlationId: e.correlationId, source: e.source, channel: String(p.channel), direction: String(p.direction), occurredAt: e.occurredAt, recordedAt: e.recordedAt });
        const participants = Array.isArray(p.participants) ? (p.participants as { address?: unknown }[]) : [];
        for (const part of participants) if (typeof part.address === 'string') this.stmts.insertContact.run(contactHash(part.address), e.seq);
        return;
      }
      case 'ai.decision': {
        if (p.outcome === 'failed' || typeof p.inputEntryId !== 'string') return;
        const out = p.output as { category?: unknown } | null;
        this.stmts.decision.run({ seq: e.seq, id: e.id, outcome: String(p.outcome), model: `${String(p.provider)}/${String(p.model)}`, confidence: typeof p.confidence === 'number' ? p.confidence : null, category: typeof out?.category === 'string' ? out.category : null, inputEntryId: p.inputEntryId });
        return;
      }
      case 'rule.decision': {
        const section = (p.evaluated as { section?: unknown } | undefined)?.section;
        if (typeof p.inputEntryId !== 'string') return;
        if (section === 'review' && p.outcome === 'review') this.stmts.review.run(String(p.ruleId), p.inputEntryId);
        else if (section === 'mirror') this.stmts.mirror.run(String(p.outcome), p.inputEntryId);
        return;
      }
      case 'crm.write': {
        const entryId = (p.properties as { journal_entry_id?: unknown } | undefined)?.journal_entry_id;
        if (typeof entryId === 'string') this.stmts.crmWrite.run(entryId);
        return;
      }
      case 'human.override': {
        if (typeof p.supersedes !== 'string') return;
        if (p.field === 'category' && typeof p.to === 'string') this.stmts.overrideCategory.run(p.to, p.supersedes);
        else if (p.field === 'review') this.stmts.approve.run(p.supersedes);
        return;
      }
      default:
        return;
    }
  }
}

function toInteraction(r: Row): IndexedInteraction {
  return {
    seq: r.seq,
    entryId: r.entry_id,
    correlationId: r.correlation_id,
    source: r.source,
    channel: r.channel,
    direction: r.direction,
    occurredAt: r.occurred_at,
    recordedAt: r.recorded_at,
    decisionSeq: r.decision_seq,
    decisionId: r.decision_id,
    decisionOutcome: r.decision_outcome,
    model: r.model,
    confidence: r.confidence,
    modelCategory: r.model_category,
    category: r.category,
    reviewRule: r.review_rule,
    reviewState: r.review_state,
    mirror: r.mirror,
    crmWrites: r.crm_writes,
    overrides: r.overrides,
  };
}
