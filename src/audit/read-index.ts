/**
 * The audit read index: a separate SQLite file derived from the journal, so the audit pages can filter and page
 * a million entries quickly. It is NOT evidence (the journal is): it holds no bodies, subjects or addresses
 * (contacts only as keyed hashes: HMAC-SHA256 under a secret the file does not hold, see ContactHasher), it is
 * written only by its own indexer, which tails the journal by seq, and it can be deleted and rebuilt from the
 * journal at any time. When the journal it was built from is replaced (another genesis entry), or the contact
 * key changes, it rebuilds itself.
 *
 * The file and its -wal and -shm are mode 0600. Deleted rows are overwritten (secure_delete) and a forget
 * truncates the WAL, so nothing of a forgotten person stays readable in any of the three files.
 */
import Database from 'better-sqlite3';
import { createHmac } from 'node:crypto';
import { chmodSync } from 'node:fs';
import { createPrivateFile } from '../journal/sqlite.ts';
import type { JournalReader } from '../journal/reader.ts';
import type { JournalEntry } from '../journal/entry.ts';
import { isJsonObject } from '../journal/json-object.ts';
import { normaliseAddress } from '../journal/key-store.ts';

/** 4: contacts keyed by an HMAC (3 and before: plain SHA-256, which a list of candidate addresses reverses). */
const SCHEMA_VERSION = '4';
/** Hashed under the contact key into meta.contact_key: names the key (without revealing it), so a change is seen. */
const KEY_CHECK = 'activity-journal/audit-index/contact-key-check';

/** Matches are counted up to this many; beyond, a page says "10,000+" (counting stops early, so it stays cheap). */
export const COUNT_CAP = 10_000;
/**
 * A date window that does not reach the newest interaction, with at most this many interactions, is searched
 * through its date index and its seqs sorted (a covering index: integers only, about 1 ms per 15,000 on the build
 * machine). A larger one is walked newest first from the newest seq of its days (one seek a day on
 * interactions_day), and a window that reaches the newest interaction from the top.
 */
export const DATE_SORT_MAX = 5_000;
/** Beyond this many days, a window in the past is walked from the top (no per-day bound). */
const MAX_BOUND_DAYS = 3_700;

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
-- The newest seq of each day of occurrence, in one seek: bounds the walk of a date window in the past.
CREATE INDEX IF NOT EXISTS interactions_day ON interactions (substr(occurred_at, 1, 10));
CREATE TABLE IF NOT EXISTS contacts (contact_hash TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (contact_hash, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counts (dim TEXT NOT NULL, value TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (dim, value)) WITHOUT ROWID;
`;

/**
 * Exact counts of the equality filters, alone and in pairs, kept in `counts` by triggers as rows are inserted and
 * change category or review state (an override): a page filtered by one or two of them is counted by one lookup.
 * `dim` names the columns ("category,source"), `value` their values joined by U+001F.
 */
const COUNTED = ['source', 'channel', 'category', 'review_state'] as const;
const COUNTED_DIMS: readonly (readonly string[])[] = [
  ...COUNTED.map((c) => [c]),
  ...COUNTED.flatMap((a, i) => COUNTED.slice(i + 1).map((b) => [a, b])),
];
const dimValue = (row: 'NEW' | 'OLD', columns: readonly string[]): string => columns.map((c) => `${row}.${c}`).join(` || char(31) || `);
const countUp = (dim: readonly string[]): string =>
  `INSERT INTO counts (dim, value, n) SELECT '${dim.join(',')}', v, 1 FROM (SELECT ${dimValue('NEW', dim)} AS v) WHERE v IS NOT NULL ON CONFLICT (dim, value) DO UPDATE SET n = n + 1;`;
const countDown = (dim: readonly string[]): string =>
  `UPDATE counts SET n = n - 1 WHERE dim = '${dim.join(',')}' AND value = ${dimValue('OLD', dim)};`;
const MUTABLE_DIMS = COUNTED_DIMS.filter((d) => d.includes('category') || d.includes('review_state'));
const COUNT_TRIGGERS = `
DROP TRIGGER IF EXISTS interactions_counted;
DROP TRIGGER IF EXISTS interactions_recounted;
CREATE TRIGGER interactions_counted AFTER INSERT ON interactions BEGIN
${COUNTED_DIMS.map(countUp).join('\n')}
END;
CREATE TRIGGER interactions_recounted AFTER UPDATE OF category, review_state ON interactions
WHEN OLD.category IS NOT NEW.category OR OLD.review_state IS NOT NEW.review_state BEGIN
${MUTABLE_DIMS.map((d) => `${countDown(d)}\n${countUp(d)}`).join('\n')}
END;
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
  /**
   * How many interactions match the filters (all pages), counted on the first page only (null on later ones):
   * exact up to COUNT_CAP; `capped` when there are more (shown as "10,000+").
   */
  readonly matches: { readonly count: number; readonly capped: boolean } | null;
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

/**
 * The keyed hash under which a contact (email address, phone number) is indexed: HMAC-SHA256 under a secret kept
 * outside the index (the key store's subject-hash key, see configured-index.ts), never a plain hash, which a list
 * of candidate phone numbers reverses in seconds. Hex.
 */
export type ContactHasher = (address: string) => string;

/** A ContactHasher under `key`: HMAC-SHA256 of the normalised address (the key store's subject hash, with its key). */
export function keyedContactHasher(key: Uint8Array): ContactHasher {
  const k = Buffer.from(key);
  return (address) => createHmac('sha256', k).update(normaliseAddress(address), 'utf8').digest('hex');
}

const INDEX_FILE_MODE = 0o600;

/**
 * The index file and its -wal and -shm, owner-only: created 0600 before SQLite opens it, whatever the umask
 * (SQLite gives the -wal and -shm the file's mode); existing ones chmodded. An existing file is never opened
 * here: closing a descriptor of it would drop the POSIX locks of every SQLite connection to it in this process.
 */
function makePrivate(path: string): void {
  createPrivateFile(path);
  for (const f of indexFiles(path)) {
    try {
      chmodSync(f, INDEX_FILE_MODE);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // no -wal or -shm (yet): nothing to fix
    }
  }
}

/** The files SQLite keeps an index in. */
export function indexFiles(path: string): string[] {
  return [path, `${path}-wal`, `${path}-shm`];
}

function normaliseTime(value: string, what: string): string {
  const text = /^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value;
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new RangeError(`${what} must be a date (YYYY-MM-DD) or an RFC 3339 time, got ${JSON.stringify(value)}`);
  return new Date(ms).toISOString();
}

/** The defaults suit a million entries; tests set them small to exercise both ways. */
export interface IndexLimits {
  readonly countCap?: number;
  readonly dateSortMax?: number;
  /**
   * Whether a privacy.erased payload is authentic (the key store's check). When given, one that is not drops no
   * rows: a forged erasure (anyone with the append credential can write one) must not hide a person's
   * interactions from the contact filter. Without it (no key store), erasures are folded as they come.
   */
  readonly erasureAuthentic?: (payload: { subjectHash: string; keyIds: readonly string[]; authentication?: unknown }) => boolean;
}

/** The rows to select, as SQL over `interactions i` (and `contacts c` for a contact), ordered by `key`. */
interface Plan {
  readonly from: string;
  readonly where: string[];
  readonly params: unknown[];
  /** The seq column the chosen index is ordered by (c.seq for a contact: the same value, no sort). */
  readonly key: string;
  /** The same filter for counting: the date terms free to use the covering date index. */
  readonly countFrom: string;
  readonly countWhere: string[];
  /** One or two equality filters and nothing else: (dim, value) of their exact count in `counts`. */
  readonly kept: readonly [string, string] | null;
  /** The window's size when only the date (and source) filter: already counted while choosing the plan. */
  readonly windowSize: number | null;
  /** No matching row has a larger seq (a window in the past): the walk starts there. */
  readonly seqBound: number | null;
}

export class ReadIndex {
  private readonly stmts;
  /** Prepared filter queries by SQL text (there are a few dozen shapes at most). */
  private readonly cache = new Map<string, Database.Statement>();
  private readonly countCap: number;
  private readonly dateSortMax: number;
  private readonly erasureAuthentic: IndexLimits['erasureAuthentic'] | null;
  private constructor(
    private readonly db: Database.Database,
    private readonly contactHash: ContactHasher,
    limits: IndexLimits,
  ) {
    this.erasureAuthentic = limits.erasureAuthentic ?? null;
    this.countCap = limits.countCap ?? COUNT_CAP;
    this.dateSortMax = limits.dateSortMax ?? DATE_SORT_MAX;
    this.stmts = {
      countAll: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM interactions'),
      reviewBacklog: db.prepare<[], { n: number; oldest: string | null }>(
        "SELECT count(*) AS n, (SELECT recorded_at FROM interactions WHERE review_state = 'pending' ORDER BY seq LIMIT 1) AS oldest FROM interactions WHERE review_state = 'pending'",
      ),
      oldest: db.prepare<[], { occurred_at: string }>(
        'SELECT occurred_at FROM interactions INDEXED BY interactions_occurred ORDER BY occurred_at LIMIT 1',
      ),
      newestOfDay: db.prepare<[string], { m: number | null }>(
        'SELECT max(seq) AS m FROM interactions WHERE substr(occurred_at, 1, 10) = ?',
      ),
      newest: db.prepare<[], { occurred_at: string }>('SELECT occurred_at FROM interactions ORDER BY seq DESC LIMIT 1'),
      newestOf: db.prepare<[string], { occurred_at: string }>(
        'SELECT occurred_at FROM interactions INDEXED BY interactions_source WHERE source = ? ORDER BY seq DESC LIMIT 1',
      ),
      countOf: db.prepare<[string, string], { n: number }>('SELECT n FROM counts WHERE dim = ? AND value = ?'),
      meta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare<[string, string]>(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      ),
      insertInteraction: db.prepare(
        'INSERT OR IGNORE INTO interactions (seq, entry_id, correlation_id, source, channel, direction, occurred_at, recorded_at) VALUES (@seq, @entryId, @correlationId, @source, @channel, @direction, @occurredAt, @recordedAt)',
      ),
      insertContact: db.prepare<[string, number]>('INSERT OR IGNORE INTO contacts (contact_hash, seq) VALUES (?, ?)'),
      dropContact: db.prepare<[string]>('DELETE FROM contacts WHERE contact_hash = ?'),
      dropContactsOf: db.prepare<[number]>('DELETE FROM contacts WHERE seq = ?'),
      decision: db.prepare(
        `UPDATE interactions SET decision_seq = @seq, decision_id = @id, decision_outcome = @outcome, model = @model, confidence = @confidence,
           model_category = @category, category = CASE WHEN overrides > 0 AND decision_id = @id THEN category ELSE @category END
         WHERE entry_id = @inputEntryId`,
      ),
      review: db.prepare<[string, string]>(
        `UPDATE interactions SET review_rule = ?, review_state = CASE WHEN review_state = 'none' THEN 'pending' ELSE review_state END WHERE decision_id = ?`,
      ),
      mirror: db.prepare<[string, string]>('UPDATE interactions SET mirror = ? WHERE decision_id = ?'),
      crmWrite: db.prepare<[string]>('UPDATE interactions SET crm_writes = crm_writes + 1 WHERE entry_id = ?'),
      overrideCategory: db.prepare<[string, string]>(
        `UPDATE interactions SET category = ?, review_state = 'overridden', overrides = overrides + 1 WHERE decision_id = ?`,
      ),
      approve: db.prepare<[string]>(
        `UPDATE interactions SET review_state = CASE WHEN review_state = 'overridden' THEN 'overridden' ELSE 'approved' END, overrides = overrides + 1 WHERE decision_id = ?`,
      ),
      byDecision: db.prepare<[string], Row>('SELECT * FROM interactions WHERE decision_id = ?'),
      byEntry: db.prepare<[string], Row>('SELECT * FROM interactions WHERE entry_id = ?'),
      sources: db.prepare<[], { source: string; n: number; lo: string | null; lr: string | null }>(
        'SELECT source, count(*) AS n, max(occurred_at) AS lo, max(recorded_at) AS lr FROM interactions GROUP BY source ORDER BY source',
      ),
    };
  }

  /**
   * Opens (creating) the index file, contacts keyed by `contactHash`; it is only ever written through this class.
   * An index of another schema version, or built under another contact key, is emptied (and so rebuilt).
   * Production code opens it through configured-index.ts, which picks the key.
   */
  static open(path: string, contactHash: ContactHasher, limits: IndexLimits = {}): ReadIndex {
    if (path !== ':memory:') makePrivate(path);
    const db = new Database(path, { timeout: 5000 });
    try {
      // Freed bytes are overwritten with zeros: a deleted contact hash does not linger in free pages.
      db.pragma('secure_delete = ON');
      db.pragma('journal_mode = WAL');
      // The index is rebuildable: losing its last commits on power loss costs a re-read, never evidence.
      db.pragma('synchronous = NORMAL');
      db.exec(SCHEMA);
      db.exec(COUNT_TRIGGERS);
      // The -wal and -shm SQLite just created have the file's mode; this catches any left by an older version.
      if (path !== ':memory:') makePrivate(path);
    } catch (err) {
      db.close();
      throw err;
    }
    const index = new ReadIndex(db, contactHash, limits);
    if (index.getMeta('schema') !== SCHEMA_VERSION || index.getMeta('contact_key') !== contactHash(KEY_CHECK)) index.reset();
    return index;
  }

  /**
   * Empties the index; the next catch-up rebuilds it from the journal's first entry. The deleted rows are
   * overwritten (secure_delete) and the WAL truncated, so an emptied index keeps no old contact hash.
   */
  reset(): void {
    this.db.exec('DELETE FROM interactions; DELETE FROM contacts; DELETE FROM counts; DELETE FROM meta;');
    this.stmts.setMeta.run('schema', SCHEMA_VERSION);
    this.stmts.setMeta.run('contact_key', this.contactHash(KEY_CHECK));
    this.truncateWal();
  }

  /**
   * Forgets a person: deletes the contact rows of `address` and every contact row of the interactions `seqs`
   * (an erased interaction must not stay findable by any of its contacts), overwriting the freed bytes
   * (secure_delete), then checkpoints and truncates the WAL, where older copies of those pages would stay.
   * `walTruncated` is false when another connection kept the WAL in use past the busy timeout (the next
   * checkpoint overwrites it); the rows are gone either way.
   */
  forget(address: string, seqs: readonly number[] = []): { removed: number; walTruncated: boolean } {
    const hash = this.contactHash(address);
    const removed = this.db.transaction(() =>
      seqs.reduce((n, s) => n + this.stmts.dropContactsOf.run(s).changes, this.stmts.dropContact.run(hash).changes),
    )();
    return { removed, walTruncated: this.truncateWal() };
  }

  /** Copies the WAL into the file and truncates it to nothing; false when readers kept it busy. */
  private truncateWal(): boolean {
    const rows = this.db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number; checkpointed: number }[];
    return rows[0]?.busy === 0;
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
    // Rows folded while the reader could not open sealed payloads (no key store yet) hold no participants or
    // categories, and contacts hashed under another key: once it can, and whenever the contact key changed,
    // the index is rebuilt from the journal.
    const opened = reader.attachedPrivacy !== null ? '1' : '0';
    if (
      this.getMeta('journal') !== genesis.id ||
      this.getMeta('contact_key') !== this.contactHash(KEY_CHECK) ||
      (opened === '1' && this.getMeta('opened') === '0')
    ) {
      this.reset();
      this.stmts.setMeta.run('journal', genesis.id);
    }
    this.stmts.setMeta.run('opened', opened);
    const from = this.lastSeq() + 1;
    const size = reader.size();
    if (from >= size) return 0;
    const batch = options.batch ?? 5000;
    let pending: JournalEntry[] = [];
    let done = 0;
    let forgotten = false;
    const flush = this.db.transaction((entries: JournalEntry[]) => {
      for (const e of entries) forgotten = this.fold(e) || forgotten;
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
    // An erasure folded: the WAL still holds the deleted rows' old pages.
    if (forgotten) this.truncateWal();
    return done;
  }

  /**
   * One page of interactions, newest first, with keyset paging (`before` a seq; never OFFSET). Every filter has an
   * index whose order is seq (SQLite appends the rowid, which is seq, to each index): source, channel (kind),
   * category and review state walk theirs newest first and stop after a page; a contact walks its hash's rows of
   * `contacts` (ordered by c.seq, not i.seq: ordering by the joined column would sort every row of a frequent
   * contact); a date window small enough is searched through the covering date index ((source,) occurred_at) and
   * only its seqs are sorted, a larger one is walked newest first. The page's rows are then read by seq.
   */
  query(q: InteractionQuery): InteractionPage {
    const limit = Math.max(1, Math.min(MAX_INDEX_PAGE, Math.floor(q.limit ?? 50)));
    const plan = this.plan(q);
    const { sql, params } = pageSql(plan, q.before);
    const rows = (this.prepared(sql).all(...params, limit + 1) as Row[]).map(toInteraction);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return { rows: page, next: rows.length > limit && last ? last.seq : null, matches: q.before === undefined ? this.count(plan) : null };
  }

  /** How many interactions match, up to COUNT_CAP: through the same index as the page, stopping at the cap. */
  count(plan: Plan): { count: number; capped: boolean } {
    // A contact alone is counted on its own index, without reading the interactions.
    const from = plan.key === 'c.seq' && plan.where.length === 1 ? 'contacts c' : plan.countFrom;
    let n: number;
    if (plan.where.length === 0)
      n = this.stmts.countAll.get()?.n ?? 0; // a b-tree count: it reads pages, not rows
    else if (plan.kept) n = this.stmts.countOf.get(plan.kept[0], plan.kept[1])?.n ?? 0;
    else if (plan.windowSize !== null) n = plan.windowSize;
    else
      n = (
        this.prepared(
          `SELECT count(*) AS n FROM (SELECT 1 FROM ${from} WHERE ${plan.countWhere.join(' AND ')} LIMIT ${this.countCap + 1})`,
        ).get(...plan.params) as { n: number }
      ).n;
    return n > this.countCap ? { count: this.countCap, capped: true } : { count: n, capped: false };
  }

  /** Decisions waiting for review, and when the oldest one's interaction was recorded (null: none waits). */
  reviewBacklog(): { count: number; oldestRecordedAt: string | null } {
    const r = this.stmts.reviewBacklog.get();
    return { count: r?.n ?? 0, oldestRecordedAt: r?.oldest ?? null };
  }

  /** EXPLAIN QUERY PLAN of a page query (for the bench and for checking that each filter uses an index). */
  explain(q: InteractionQuery): string[] {
    const { sql, params } = pageSql(this.plan(q), q.before);
    return (this.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params, 51) as { detail: string }[]).map((r) => r.detail);
  }

  private plan(q: InteractionQuery): Plan {
    const where: string[] = [];
    const params: unknown[] = [];
    let from = 'interactions i';
    let key = 'i.seq';
    const since = q.from ? normaliseTime(q.from, 'from') : null;
    const until = q.until ? normaliseTime(q.until, 'until') : null;
    // Whether the date terms may drive the search (else they only filter rows met on another index's walk).
    let dateDrives = false;
    let window: number | null = null;
    let seqBound: number | null = null;
    if (q.contact) {
      from = 'contacts c JOIN interactions i ON i.seq = c.seq';
      key = 'c.seq';
      where.push('c.contact_hash = ?');
      params.push(this.contactHash(q.contact));
    } else if (since !== null || until !== null) {
      const source = q.source !== undefined && q.source !== '' ? q.source : null;
      // Walking newest first fills the page at once when the window holds the newest rows (occurrence times
      // follow the journal's order closely); otherwise search the window, if it is small enough to sort.
      const newest = (source !== null ? this.stmts.newestOf.get(source) : this.stmts.newest.get())?.occurred_at;
      const reachesNewest = newest !== undefined && (since === null || newest >= since) && (until === null || newest < until);
      if (!reachesNewest) {
        window = this.windowSize(source, since, until);
        dateDrives = window <= this.dateSortMax;
        if (!dateDrives) seqBound = this.newestSeqOfDays(since, until);
      }
      if (dateDrives) from = `interactions i INDEXED BY ${source !== null ? 'interactions_source_occurred' : 'interactions_occurred'}`;
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
    // A unary + keeps SQLite from searching the date index when the window is too large to sort.
    const date = dateDrives ? 'i.occurred_at' : '+i.occurred_at';
    if (since !== null) {
      where.push(`${date} >= ?`);
      params.push(since);
    }
    if (until !== null) {
      where.push(`${date} < ?`);
      params.push(until);
    }
    if (q.routedToReview) where.push('i.review_rule IS NOT NULL');
    if (q.decided) where.push('i.decision_id IS NOT NULL');
    if (q.maxConfidence !== undefined) {
      where.push('i.confidence <= ?');
      params.push(q.maxConfidence);
    }
    const countWhere = where.map((w) => w.replace('+i.occurred_at', 'i.occurred_at'));
    // Equality terms are pushed in COUNTED's order, so their columns name the dim and their params its value.
    const columns = where.map((w) => /^i\.(\w+) = \?$/.exec(w)?.[1]);
    const dim = columns.every((c) => c !== undefined) ? columns.join(',') : null;
    const kept =
      !q.contact && dim !== null && COUNTED_DIMS.some((d) => d.join(',') === dim)
        ? ([dim, params.map(String).join('\u001f')] as const)
        : null;
    // Only the window (of a source) filters: its size, counted above to past countCap, is the count.
    const onlyWindow = window !== null && where.length === (q.source ? 1 : 0) + (since !== null ? 1 : 0) + (until !== null ? 1 : 0);
    return {
      from,
      where,
      params,
      key,
      countFrom: q.contact ? from : 'interactions i',
      countWhere,
      kept,
      windowSize: onlyWindow ? window : null,
      seqBound,
    };
  }

  /**
   * The newest seq among the interactions of the window's days (widened by a day each side, so that no time
   * zone moves a row out of them): an upper bound of the seqs in the window. Null when there are too many days.
   */
  private newestSeqOfDays(since: string | null, until: string | null): number | null {
    const first = since ?? this.stmts.oldest.get()?.occurred_at;
    if (first === undefined) return null;
    const DAY = 86_400_000;
    const start = Date.parse(first.slice(0, 10)) - DAY;
    const end = Date.parse((until ?? new Date().toISOString()).slice(0, 10)) + DAY;
    if (Number.isNaN(start) || Number.isNaN(end) || (end - start) / DAY > MAX_BOUND_DAYS) return null;
    let bound = -1;
    for (let t = start; t <= end; t += DAY)
      bound = Math.max(bound, this.stmts.newestOfDay.get(new Date(t).toISOString().slice(0, 10))?.m ?? -1);
    return bound;
  }

  /** Interactions in a date window (of one source), counted on the covering index up to the larger of dateSortMax and countCap, + 1. */
  private windowSize(source: string | null, from: string | null, until: string | null): number {
    const terms = [...(source !== null ? ['source = ?'] : []), 'occurred_at >= ?', 'occurred_at < ?'];
    const sql = `SELECT count(*) AS n FROM (SELECT 1 FROM interactions INDEXED BY ${source !== null ? 'interactions_source_occurred' : 'interactions_occurred'} WHERE ${terms.join(' AND ')} LIMIT ${Math.max(this.dateSortMax, this.countCap) + 1})`;
    return (this.prepared(sql).get(...(source !== null ? [source] : []), from ?? '', until ?? '\uffff') as { n: number }).n;
  }

  private prepared(sql: string): Database.Statement {
    let stmt = this.cache.get(sql);
    if (!stmt) {
      if (this.cache.size >= 256) this.cache.clear();
      stmt = this.db.prepare(sql);
      this.cache.set(sql, stmt);
    }
    return stmt;
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

  /** Folds one entry; true when it was an erasure that deleted contact rows. */
  private fold(e: JournalEntry): boolean {
    if (!isJsonObject(e.payload)) return false; // an archived or shredded payload: nothing to index
    const p = e.payload;
    switch (e.kind) {
      case 'interaction.received': {
        this.stmts.insertInteraction.run({
          seq: e.seq,
          entryId: e.id,
          correlationId: e.correlationId,
          source: e.source,
          channel: String(p.channel),
          direction: String(p.direction),
          occurredAt: e.occurredAt,
          recordedAt: e.recordedAt,
        });
        const participants = Array.isArray(p.participants) ? (p.participants as { address?: unknown }[]) : [];
        for (const part of participants)
          if (part !== null && typeof part === 'object' && typeof part.address === 'string')
            this.stmts.insertContact.run(this.contactHash(part.address), e.seq);
        return false;
      }
      case 'privacy.erased': {
        // Under the key store's subject hash (the production contact key), the erased subject's rows are found
        // by the hash the erasure names: every process's index drops them, whoever ran the forget.
        if (typeof p.subjectHash !== 'string' || !Array.isArray(p.keyIds)) return false;
        if (
          this.erasureAuthentic &&
          !this.erasureAuthentic({ subjectHash: p.subjectHash, keyIds: p.keyIds as string[], authentication: p.authentication })
        )
          return false;
        return this.stmts.dropContact.run(p.subjectHash).changes > 0;
      }
      case 'ai.decision': {
        if (p.outcome === 'failed' || typeof p.inputEntryId !== 'string') return false;
        const out = p.output as { category?: unknown } | null;
        this.stmts.decision.run({
          seq: e.seq,
          id: e.id,
          outcome: String(p.outcome),
          model: `${String(p.provider)}/${String(p.model)}`,
          confidence: typeof p.confidence === 'number' ? p.confidence : null,
          category: typeof out?.category === 'string' ? out.category : null,
          inputEntryId: p.inputEntryId,
        });
        return false;
      }
      case 'rule.decision': {
        const section = (p.evaluated as { section?: unknown } | undefined)?.section;
        if (typeof p.inputEntryId !== 'string') return false;
        if (section === 'review' && p.outcome === 'review') this.stmts.review.run(String(p.ruleId), p.inputEntryId);
        else if (section === 'mirror') this.stmts.mirror.run(String(p.outcome), p.inputEntryId);
        return false;
      }
      case 'crm.write': {
        const entryId = (p.properties as { journal_entry_id?: unknown } | undefined)?.journal_entry_id;
        // A call activity's write counts for every interaction it holds (a transcript is mirrored onto its call's).
        const members = Array.isArray(p.members) ? (p.members as { entryId?: unknown }[]).map((m) => m.entryId) : [];
        const written = new Set(
          [entryId, ...(typeof entryId === 'string' ? members : [])].filter((x): x is string => typeof x === 'string'),
        );
        for (const id of written) this.stmts.crmWrite.run(id);
        return false;
      }
      case 'human.override': {
        if (typeof p.supersedes !== 'string') return false;
        if (p.field === 'category' && typeof p.to === 'string') this.stmts.overrideCategory.run(p.to, p.supersedes);
        else if (p.field === 'review') this.stmts.approve.run(p.supersedes);
        return false;
      }
      default:
        return false;
    }
  }
}

/** The page's SQL: the seqs through the plan's index, newest first (the limit is the last parameter), then their rows. */
function pageSql(plan: Plan, before: number | undefined): { sql: string; params: unknown[] } {
  const where = [...plan.where];
  const params = [...plan.params];
  if (plan.seqBound !== null) {
    where.push(`${plan.key} <= ?`);
    params.push(plan.seqBound);
  }
  if (before !== undefined) {
    where.push(`${plan.key} < ?`);
    params.push(before);
  }
  const ids = `SELECT ${plan.key} FROM ${plan.from}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${plan.key} DESC LIMIT ?`;
  return { sql: `SELECT * FROM interactions WHERE seq IN (${ids}) ORDER BY seq DESC`, params };
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
