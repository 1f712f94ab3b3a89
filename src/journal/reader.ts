/**
 * Read-only queries over the journal. Opens its own read-only connection: readers can never write.
 */
import type Database from 'better-sqlite3';
import { openCheckConnection, openReadConnection } from './sqlite.ts';
import { checkReadable } from './schema.ts';
import { ENTRY_COLUMNS, StoredNodes, archivedRanges, rowHeader, rowToEntry, type ArchivedRange, type EntryRow } from './store.ts';
import type { ArchivedSegmentSource } from './verify.ts';
import type { EntryHeader, JournalEntry } from './entry.ts';
import { consistencyProof, inclusionProof } from './merkle.ts';
import { parseSignedCheckpoint, type Checkpoint } from './checkpoint.ts';
import { ProofUnavailableError } from './errors/proof-unavailable.error.ts';
import type { Privacy } from './privacy.ts';

export interface KindQuery {
  readonly kind: string;
  /** Inclusive lower bound on recordedAt (RFC 3339). */
  readonly since?: string | undefined;
  /** Exclusive upper bound on recordedAt. */
  readonly until?: string | undefined;
  readonly limit?: number | undefined;
  /** Continue after this seq (paging). */
  readonly afterSeq?: number | undefined;
}

export interface StoredCheckpoint {
  readonly seq: number;
  readonly note: string;
  readonly checkpoint: Checkpoint;
}

/** A self-contained inclusion proof: everything `verify-proof` needs, offline. */
export interface InclusionProofBundle {
  readonly format: 'activity-journal/inclusion-proof/v1';
  readonly seq: number;
  readonly treeSize: number;
  readonly header: EntryHeader;
  readonly leafHash: string;
  readonly proof: readonly string[];
  readonly checkpoint: string;
  readonly verifierKey: string;
  readonly payload?: unknown;
}

export const MAX_PAGE = 10_000;

export class JournalReader {
  private readonly nodes: StoredNodes;
  // Prepared once: the pipeline reads single entries on every job, and preparing is most of a point read's cost.
  private readonly bySeqStmt: Database.Statement<[number], EntryRow>;
  private readonly byKeyStmt: Database.Statement<[string], EntryRow>;
  private readonly byCorrelationStmt: Database.Statement<[string, number, number], EntryRow>;
  private archives: readonly ArchivedSegmentSource[] = [];
  private privacy: Privacy | null = null;
  private ownsPrivacy = false;
  /** Opens the key store once it exists (attachPrivacyWhenPresent); tried when a sealed payload is read. */
  private lateOpen: (() => Privacy | null) | null = null;
  private lateTriedAt = 0;
  private readonly toEntry = (row: EntryRow): JournalEntry => {
    if (this.privacy === null && this.lateOpen !== null && row.payload.includes('"$sealed"')) this.tryLateOpen();
    const entry = rowToEntry(row);
    return this.privacy ? this.privacy.open(entry) : entry;
  };

  private tryLateOpen(): void {
    const now = Date.now();
    if (now - this.lateTriedAt < 1000) return;
    this.lateTriedAt = now;
    const privacy = (this.lateOpen as () => Privacy | null)();
    if (privacy !== null) {
      this.lateOpen = null;
      this.attachPrivacy(privacy, { owned: true });
    }
  }
  private constructor(private readonly db: Database.Database) {
    this.nodes = new StoredNodes(db);
    this.bySeqStmt = db.prepare(`SELECT ${ENTRY_COLUMNS} FROM entries WHERE seq = ?`);
    this.byKeyStmt = db.prepare(`SELECT ${ENTRY_COLUMNS} FROM entries WHERE idempotency_key = ?`);
    this.byCorrelationStmt = db.prepare(`SELECT ${ENTRY_COLUMNS} FROM entries WHERE correlation_id = ? AND seq > ? ORDER BY seq LIMIT ?`);
  }

  /** With `check`, the connection leaves no file behind (openCheckConnection): for verify and status. */
  static open(path: string, options: { check?: boolean } = {}): JournalReader {
    const db = options.check === true ? openCheckConnection(path) : openReadConnection(path);
    try {
      checkReadable(db);
    } catch (err) {
      db.close();
      throw err;
    }
    return new JournalReader(db);
  }

  /** The connection, for verification (read-only). */
  get connection(): Database.Database {
    return this.db;
  }

  size(): number {
    const row = this.db.prepare('SELECT max(seq) AS m FROM entries').get() as { m: number | null };
    return row.m === null ? 0 : row.m + 1;
  }

  /** The seq ranges whose rows were moved to archive stores. */
  archivedRanges(): ArchivedRange[] {
    return archivedRanges(this.db);
  }

  /** Makes bySeq and byCorrelation also read these archived segments (opened by openArchivedSegments); closed with the reader. */
  attachArchives(archives: readonly ArchivedSegmentSource[]): void {
    this.archives = archives;
  }

  /**
   * Makes every read open sealed payloads through `privacy` (erased subjects read as `erased: true, erasedAt`).
   * Without it, readers see payloads as stored (envelopes). With `owned`, the reader closes it when it is closed.
   */
  attachPrivacy(privacy: Privacy, options: { owned?: boolean } = {}): void {
    this.privacy = privacy;
    this.ownsPrivacy = options.owned === true;
  }

  /**
   * For a journal that has no key store yet (a fresh install: it is created with the first personal data):
   * `open` is asked again, at most once a second, whenever a sealed payload is read, and what it returns is
   * attached. A long-running reader (the web process) thus opens payloads sealed after it started.
   */
  attachPrivacyWhenPresent(open: () => Privacy | null): void {
    if (this.privacy === null) this.lateOpen = open;
  }

  /** The privacy layer reads open payloads through (attachPrivacy), or null when they are read as stored. */
  get attachedPrivacy(): Privacy | null {
    return this.privacy;
  }

  bySeq(seq: number): JournalEntry | null {
    const row = this.bySeqStmt.get(seq);
    if (row) return this.toEntry(row);
    const seg = this.archives.find((a) => seq >= a.fromSeq && seq <= a.toSeq);
    const archived = seg?.db.prepare(`SELECT ${ENTRY_COLUMNS} FROM entries WHERE seq = ?`).get(seq) as EntryRow | undefined;
    return archived ? this.toEntry(archived) : null;
  }

  /** Entries with fromSeq <= seq, in order, at most `limit`. */
  range(fromSeq: number, limit: number): JournalEntry[] {
    return this.all(`SELECT ${ENTRY_COLUMNS} FROM entries WHERE seq >= ? ORDER BY seq LIMIT ?`, fromSeq, clamp(limit));
  }

  /** Every entry from `fromSeq` on, in order, streamed (memory stays flat on large journals). */
  *iterate(fromSeq = 0): Generator<JournalEntry> {
    const rows = this.db
      .prepare(`SELECT ${ENTRY_COLUMNS} FROM entries WHERE seq >= ? ORDER BY seq`)
      .iterate(fromSeq) as IterableIterator<EntryRow>;
    for (const row of rows) yield this.toEntry(row);
  }

  /** The entries of one correlation, in the order they were recorded. */
  byCorrelation(correlationId: string, options: { afterSeq?: number | undefined; limit?: number | undefined } = {}): JournalEntry[] {
    const limit = clamp(options.limit ?? MAX_PAGE);
    const after = options.afterSeq ?? -1;
    if (this.archives.length === 0) return this.byCorrelationStmt.all(correlationId, after, limit).map(this.toEntry);
    const out: JournalEntry[] = [];
    let last = after;
    for (const a of this.archives) {
      if (a.toSeq <= last || out.length >= limit) continue;
      const rows = a.db
        .prepare(`SELECT ${ENTRY_COLUMNS} FROM entries WHERE correlation_id = ? AND seq > ? ORDER BY seq LIMIT ?`)
        .all(correlationId, last, limit - out.length) as EntryRow[];
      for (const r of rows) out.push(this.toEntry(r));
      if (out.length > 0) last = (out[out.length - 1] as JournalEntry).seq;
    }
    // Seq 0 stays hot although its segment is archived: skip what the archives already gave.
    if (out.length < limit) for (const r of this.byCorrelationStmt.all(correlationId, last, limit - out.length)) out.push(this.toEntry(r));
    return out;
  }

  /** Entries of one kind, optionally within [since, until) of recordedAt, in seq order. */
  byKind(q: KindQuery): JournalEntry[] {
    return this.all(
      `SELECT ${ENTRY_COLUMNS} FROM entries WHERE kind = ? AND recorded_at >= ? AND recorded_at < ? AND seq > ? ORDER BY seq LIMIT ?`,
      q.kind,
      q.since ? new Date(q.since).toISOString() : '',
      q.until ? new Date(q.until).toISOString() : '\uffff',
      q.afterSeq ?? -1,
      clamp(q.limit ?? MAX_PAGE),
    );
  }

  byIdempotencyKey(key: string): JournalEntry | null {
    const row = this.byKeyStmt.get(key);
    return row ? this.toEntry(row) : null;
  }

  latestCheckpoint(): StoredCheckpoint | null {
    const row = this.db.prepare(`SELECT seq, payload FROM entries WHERE kind = 'checkpoint' ORDER BY seq DESC LIMIT 1`).get() as
      { seq: number; payload: string } | undefined;
    if (!row) return null;
    const note = (JSON.parse(row.payload) as { note: string }).note;
    return { seq: row.seq, note, checkpoint: parseSignedCheckpoint(note).checkpoint };
  }

  /** An inclusion proof of entry `seq` against the newest checkpoint. */
  proveInclusion(seq: number, options: { includePayload?: boolean } = {}): InclusionProofBundle {
    const cp = this.latestCheckpoint();
    if (!cp) throw new ProofUnavailableError('the journal has no checkpoint yet; write one with `activity-journal checkpoint`');
    const treeSize = cp.checkpoint.treeSize;
    if (!Number.isSafeInteger(seq) || seq < 0) throw new ProofUnavailableError(`seq must be a whole number >= 0`);
    if (seq >= treeSize)
      throw new ProofUnavailableError(
        `entry seq ${seq} is not covered by the newest checkpoint (size ${treeSize}); write a checkpoint first`,
      );
    const row = this.db.prepare(`SELECT ${ENTRY_COLUMNS} FROM entries WHERE seq = ?`).get(seq) as EntryRow | undefined;
    const archivedNote =
      'it is in an archived segment: its proof is the segment itself (`activity-journal verify --include-archives` checks it against the signed checkpoints)';
    if (!row)
      throw new ProofUnavailableError(
        `no entry at seq ${seq} in hot storage${this.archivedRanges().some((r) => seq >= r.fromSeq && seq <= r.toSeq) ? `: ${archivedNote}` : ''}`,
      );
    const genesis = this.db.prepare(`SELECT payload FROM entries WHERE seq = 0`).get() as { payload: string } | undefined;
    // journal.created stays hot when its segment is archived (verify.ts checks that it does).
    if (!genesis) throw new ProofUnavailableError('the journal.created entry (seq 0) is missing from hot storage');
    const verifierKey = (JSON.parse(genesis.payload) as { verifierKey: string }).verifierKey;
    let proof: string[];
    try {
      proof = inclusionProof(seq, treeSize, this.nodes).map((h) => Buffer.from(h).toString('base64'));
    } catch (err) {
      // A node the proof needs left hot storage with an archived segment and was not kept: say so, not a 500.
      if (err instanceof RangeError)
        throw new ProofUnavailableError(
          `entry seq ${seq} cannot be proven from hot storage (${err.message}); ${archivedNote.replace('it is', 'part of its tree is')}`,
        );
      throw err;
    }
    const bundle: InclusionProofBundle = {
      format: 'activity-journal/inclusion-proof/v1',
      seq,
      treeSize,
      header: rowHeader(row),
      leafHash: row.leaf_hash.toString('base64'),
      proof,
      checkpoint: cp.note,
      verifierKey,
    };
    return options.includePayload ? { ...bundle, payload: JSON.parse(row.payload) as unknown } : bundle;
  }

  /** An RFC 6962 consistency proof between two tree sizes (base64 hashes). */
  proveConsistency(size1: number, size2: number): string[] {
    const size = this.size();
    if (!(Number.isSafeInteger(size1) && Number.isSafeInteger(size2) && size1 > 0 && size1 <= size2 && size2 <= size)) {
      throw new ProofUnavailableError(`sizes must satisfy 0 < from <= to <= ${size}`);
    }
    return consistencyProof(size1, size2, this.nodes).map((h) => Buffer.from(h).toString('base64'));
  }

  close(): void {
    for (const a of this.archives) a.db.close();
    this.archives = [];
    if (this.ownsPrivacy) this.privacy?.close();
    this.privacy = null;
    this.db.close();
  }

  private all(sql: string, ...params: unknown[]): JournalEntry[] {
    return (this.db.prepare(sql).all(...params) as EntryRow[]).map(this.toEntry);
  }
}

function clamp(limit: number): number {
  return Math.max(1, Math.min(MAX_PAGE, Math.floor(limit)));
}
