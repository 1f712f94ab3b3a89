/**
 * Row-level access shared by the writer, the reader and the verifier: one place knows the column layout.
 */
import type Database from 'better-sqlite3';
import { canonicalHeader, type EntryHeader, type JournalEntry } from './entry.ts';
import type { EntryKind } from './kinds.ts';
import { HASH_SIZE, type Hash, type NodeSource } from './merkle.ts';

export interface EntryRow {
  seq: number;
  id: string;
  recorded_at: string;
  occurred_at: string;
  kind: string;
  source: string;
  actor: string;
  correlation_id: string;
  causation_id: string | null;
  idempotency_key: string;
  retention_class: string;
  payload: string;
  payload_hash: Buffer;
  leaf_hash: Buffer;
  chain_hash: Buffer;
  tree_nodes: Buffer;
  seal: Buffer;
}

export const ENTRY_COLUMNS =
  'seq, id, recorded_at, occurred_at, kind, source, actor, correlation_id, causation_id, idempotency_key, retention_class, payload, payload_hash, leaf_hash, chain_hash, tree_nodes, seal';

export function rowHeader(row: EntryRow): EntryHeader {
  return {
    seq: row.seq,
    id: row.id,
    recordedAt: row.recorded_at,
    occurredAt: row.occurred_at,
    kind: row.kind,
    source: row.source,
    actor: row.actor,
    correlationId: row.correlation_id,
    causationId: row.causation_id,
    idempotencyKey: row.idempotency_key,
    retentionClass: row.retention_class,
    payloadHash: row.payload_hash.toString('hex'),
  };
}

export function rowToEntry(row: EntryRow): JournalEntry {
  return {
    ...rowHeader(row),
    kind: row.kind as EntryKind,
    payload: JSON.parse(row.payload) as unknown,
    leafHash: row.leaf_hash.toString('hex'),
    chainHash: row.chain_hash.toString('hex'),
  };
}

export { canonicalHeader };

/**
 * Perfect-subtree hashes straight from the rows: level 0 is a row's leaf hash; a node at level l >= 1 was
 * completed by the append of leaf (index+1)·2^l − 1 and is stored in that row's `tree_nodes` at (l−1)·32.
 */
export class StoredNodes implements NodeSource {
  private readonly leafStmt: Database.Statement<[number], { leaf_hash: Buffer }>;
  private readonly nodesStmt: Database.Statement<[number], { tree_nodes: Buffer }>;
  private archivedStmt: Database.Statement<[number, number], { hash: Buffer }> | null | undefined;
  constructor(private readonly db: Database.Database) {
    this.leafStmt = db.prepare('SELECT leaf_hash FROM entries WHERE seq = ?');
    this.nodesStmt = db.prepare('SELECT tree_nodes FROM entries WHERE seq = ?');
  }
  node(level: number, index: number): Hash {
    if (level === 0) {
      const row = this.leafStmt.get(index);
      if (!row) return this.archived(0, index, `no entry at seq ${index}`);
      return row.leaf_hash;
    }
    const seq = (index + 1) * 2 ** level - 1;
    const row = this.nodesStmt.get(seq);
    if (!row) return this.archived(level, index, `no entry at seq ${seq}`);
    const start = (level - 1) * HASH_SIZE;
    if (row.tree_nodes.length < start + HASH_SIZE) throw new RangeError(`entry seq ${seq} holds no level-${level} node`);
    return row.tree_nodes.subarray(start, start + HASH_SIZE);
  }

  /** Rows of archived segments have left hot storage; the tree frontier at each archive's end was kept. */
  private archived(level: number, index: number, missing: string): Hash {
    if (this.archivedStmt === undefined) {
      const has = this.db.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'archived_nodes'`).get();
      this.archivedStmt = has ? this.db.prepare('SELECT hash FROM archived_nodes WHERE level = ? AND idx = ?') : null;
    }
    const row = this.archivedStmt?.get(level, index);
    if (!row) throw new RangeError(`${missing} (and no archived node ${level}/${index})`);
    return row.hash;
  }
}

/** Seq ranges whose rows were archived (moved out of hot storage), in order; empty for journals without any. */
export interface ArchivedRange {
  readonly segmentId: string;
  readonly fromSeq: number;
  readonly toSeq: number;
  readonly archivedSeq: number;
  readonly chainHead: Buffer;
  readonly store: string;
  readonly location: string;
  readonly sha256: string;
}

export function archivedRanges(db: Database.Database): ArchivedRange[] {
  const has = db.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'archived_ranges'`).get();
  if (!has) return [];
  const rows = db
    .prepare(
      'SELECT segment_id, from_seq, to_seq, archived_seq, chain_head, store, location, sha256 FROM archived_ranges ORDER BY from_seq',
    )
    .all() as {
    segment_id: string;
    from_seq: number;
    to_seq: number;
    archived_seq: number;
    chain_head: Buffer;
    store: string;
    location: string;
    sha256: string;
  }[];
  return rows.map((r) => ({
    segmentId: r.segment_id,
    fromSeq: r.from_seq,
    toSeq: r.to_seq,
    archivedSeq: r.archived_seq,
    chainHead: r.chain_head,
    store: r.store,
    location: r.location,
    sha256: r.sha256,
  }));
}

/** The first seq after the archived prefix (0 when nothing is archived): hot rows start here (seq 0 always stays hot). */
export function archivedUpTo(ranges: readonly ArchivedRange[]): number {
  let next = 0;
  for (const r of ranges) if (r.fromSeq <= next) next = Math.max(next, r.toSeq + 1);
  return next;
}
