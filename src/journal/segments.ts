/**
 * Segments and archive. A closed period (a calendar month of recordedAt, UTC) is sealed: its rows are copied
 * into a segment file (an SQLite file of exactly those rows), whose hash goes into a `segment.sealed` entry
 * with a checkpoint signed at the segment's end. Archiving a sealed segment compresses the file, writes it to an
 * archive store, reads it back and verifies it against the seal (leaves, chain, tree root), appends
 * `segment.archived`, and only then deletes the rows from hot storage (the DELETE trigger allows nothing else).
 *
 * Every step can crash and be re-run: the state lives in the journal (segments, archived_ranges) and the store
 * (write-once objects), never in memory, and each step first checks whether it was already done.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { canonicalHeader } from './entry.ts';
import { CompactTree } from './merkle.ts';
import { sha256, sha256Pair } from './sha256.ts';
import { ENTRIES_DDL } from './schema.ts';
import { ENTRY_COLUMNS, StoredNodes, archivedRanges, rowHeader, type ArchivedRange, type EntryRow } from './store.ts';
import { openReadConnection } from './sqlite.ts';
import { parseVerifierKey } from './keys.ts';
import { verifySignedCheckpoint } from './checkpoint.ts';
import { storeFor, type ArchiveStore } from './archive-store.ts';
import { expiryOf, journaledPolicies, retentionAssignments } from './retention.ts';
import type { ArchivedSegmentSource } from './verify.ts';
import type { JournalWriter } from './writer.ts';
import { ArchiveError } from './errors/archive.error.ts';

/** "AJSG": a segment file, told apart from a journal. */
export const SEGMENT_APPLICATION_ID = 0x414a5347;
const ZERO = Buffer.alloc(32);

export type ArchiveStep = 'sealed' | 'uploaded' | 'verified' | 'committed' | 'dropped';

export interface ArchiveOptions {
  readonly store: ArchiveStore;
  /** Where segment files are built before upload (default `<journal>.segments`). */
  readonly stagingDir?: string;
  readonly dryRun?: boolean;
  readonly now?: () => number;
  /** Called after each step commits (tests inject crashes here). */
  readonly onStep?: (step: ArchiveStep, segmentId: string) => void | Promise<void>;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface SegmentSummary {
  readonly segmentId: string;
  readonly fromSeq: number;
  readonly toSeq: number;
  readonly entries: number;
  readonly action: 'sealed+archived' | 'archived' | 'would seal+archive' | 'would archive';
  readonly location: string | null;
  readonly fileBytes: number | null;
  readonly compressedBytes: number | null;
  readonly rowsDropped: number;
  /** Dry run only: why the store would refuse this segment (e.g. a bucket retention shorter than its entries need). */
  readonly wouldRefuse?: string;
}

interface SegmentRow {
  segment_id: string;
  period_start: string;
  period_end: string;
  from_seq: number;
  to_seq: number;
  sealed_seq: number;
  file_sha256: string;
  file_bytes: number;
}

export interface Period {
  readonly id: string;
  readonly start: string;
  readonly end: string;
}

/** The calendar month (UTC) holding `iso`. */
export function monthOf(iso: string | number): Period {
  const d = new Date(iso);
  const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  const end = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  return { id: new Date(start).toISOString().slice(0, 7), start: new Date(start).toISOString(), end: new Date(end).toISOString() };
}

/** Seals every closed month not sealed yet and archives every sealed segment not archived yet. */
export async function archiveJournal(writer: JournalWriter, options: ArchiveOptions): Promise<SegmentSummary[]> {
  const now = options.now ?? Date.now;
  const staging = options.stagingDir ?? `${writer.path}.segments`;
  const db = openReadConnection(writer.path);
  const summaries: SegmentSummary[] = [];
  try {
    const openMonth = monthOf(now()).start;
    // 1. What needs sealing: consecutive closed months after the last sealed segment.
    const toSeal: { period: Period; fromSeq: number; toSeq: number }[] = [];
    let from = ((db.prepare('SELECT max(to_seq) AS m FROM segments').get() as { m: number | null }).m ?? -1) + 1;
    for (;;) {
      const first = db.prepare('SELECT recorded_at FROM entries WHERE seq = ?').get(from) as { recorded_at: string } | undefined;
      if (!first) break;
      const period = monthOf(first.recorded_at);
      if (period.end > openMonth) break;
      const next = db.prepare('SELECT min(seq) AS m FROM entries WHERE seq > ? AND recorded_at >= ?').get(from, period.end) as {
        m: number | null;
      };
      const end = next.m ?? (db.prepare('SELECT max(seq) AS m FROM entries').get() as { m: number }).m + 1;
      toSeal.push({ period, fromSeq: from, toSeq: end - 1 });
      from = end;
    }
    const sealedPending = db
      .prepare('SELECT s.* FROM segments s LEFT JOIN archived_ranges a USING (segment_id) WHERE a.segment_id IS NULL ORDER BY s.from_seq')
      .all() as SegmentRow[];
    const total = toSeal.length + sealedPending.length;
    let done = 0;
    options.onProgress?.(done, total);
    if (options.dryRun) {
      const refusal = (fromSeq: number, toSeq: number): { wouldRefuse?: string } => {
        const why = options.store.refusal({ keepUntil: keepUntil(db, { from_seq: fromSeq, to_seq: toSeq }) });
        return why === null ? {} : { wouldRefuse: why };
      };
      for (const s of sealedPending)
        summaries.push({
          segmentId: s.segment_id,
          fromSeq: s.from_seq,
          toSeq: s.to_seq,
          entries: s.to_seq - s.from_seq + 1,
          action: 'would archive',
          location: null,
          fileBytes: s.file_bytes,
          compressedBytes: null,
          rowsDropped: 0,
          ...refusal(s.from_seq, s.to_seq),
        });
      for (const s of toSeal)
        summaries.push({
          segmentId: segmentIdFor(db, s.period, s.fromSeq),
          fromSeq: s.fromSeq,
          toSeq: s.toSeq,
          entries: s.toSeq - s.fromSeq + 1,
          action: 'would seal+archive',
          location: null,
          fileBytes: null,
          compressedBytes: null,
          rowsDropped: 0,
          ...refusal(s.fromSeq, s.toSeq),
        });
      // Rows of archived segments whose deletion was interrupted would also be dropped; nothing is written now.
      return summaries;
    }
    mkdirSync(staging, { recursive: true, mode: 0o700 });
    // 2. Archive what was sealed by an earlier (interrupted) run first, in seq order.
    for (const s of sealedPending) {
      summaries.push(await archiveSegment(writer, db, s, staging, options, 'archived'));
      options.onProgress?.(++done, total);
    }
    for (const s of toSeal) {
      const segmentId = segmentIdFor(db, s.period, s.fromSeq);
      const file = join(staging, `${segmentId}.sqlite`);
      const built = buildSegmentFile(
        db,
        s.fromSeq,
        s.toSeq,
        { segment_id: segmentId, journal_id: writer.identity.journalId, period_start: s.period.start, period_end: s.period.end },
        file,
      );
      await writer.sealSegment({
        segmentId,
        periodStart: s.period.start,
        periodEnd: s.period.end,
        fromSeq: s.fromSeq,
        toSeq: s.toSeq,
        fileSha256: built.sha256,
        fileBytes: built.bytes,
      });
      await options.onStep?.('sealed', segmentId);
      const row = db.prepare('SELECT * FROM segments WHERE segment_id = ?').get(segmentId) as SegmentRow;
      summaries.push(await archiveSegment(writer, db, row, staging, options, 'sealed+archived'));
      options.onProgress?.(++done, total);
    }
    // 3. Rows of archived segments still in hot storage (a run that crashed after committing the archive).
    for (const r of archivedRanges(db)) {
      const left = (
        db.prepare('SELECT count(*) AS n FROM entries WHERE seq BETWEEN ? AND ? AND seq > 0').get(r.fromSeq, r.toSeq) as { n: number }
      ).n;
      if (left > 0) await writer.dropArchivedRows(r.segmentId);
    }
    return summaries;
  } finally {
    db.close();
  }
}

/** `YYYY-MM`; `YYYY-MM.<fromSeq>` in the rare case that month was sealed before (entries recorded with a clock that went back). */
function segmentIdFor(db: Database.Database, period: Period, fromSeq: number): string {
  const taken = db.prepare('SELECT 1 FROM segments WHERE segment_id = ?').get(period.id);
  return taken ? `${period.id}.${fromSeq}` : period.id;
}

async function archiveSegment(
  writer: JournalWriter,
  db: Database.Database,
  seg: SegmentRow,
  staging: string,
  options: ArchiveOptions,
  action: SegmentSummary['action'],
): Promise<SegmentSummary> {
  const store = options.store;
  const file = join(staging, `${seg.segment_id}.sqlite`);
  // The staging file may be gone or half-written after a crash: rebuild it from hot rows; it must hash as sealed.
  if (!existsSync(file) || sha256Hex(readFileSync(file)) !== seg.file_sha256) {
    const rebuilt = buildSegmentFile(
      db,
      seg.from_seq,
      seg.to_seq,
      { segment_id: seg.segment_id, journal_id: writer.identity.journalId, period_start: seg.period_start, period_end: seg.period_end },
      file,
    );
    if (rebuilt.sha256 !== seg.file_sha256)
      throw new ArchiveError(
        `segment ${seg.segment_id}: rebuilt file hashes ${rebuilt.sha256}, not the sealed ${seg.file_sha256}; its hot rows changed since sealing`,
      );
  }
  const raw = readFileSync(file);
  // mtime 0 and a fixed level: the same file always compresses to the same object (a re-upload finds it equal).
  const gz = gzipSync(raw, { level: 9 });
  const gzHash = sha256Hex(gz);
  const objectName = `${writer.identity.journalId}/${seg.segment_id}.sqlite.gz`;
  const put = await store.put(objectName, gz, { keepUntil: keepUntil(db, seg) });
  await options.onStep?.('uploaded', seg.segment_id);
  // Read back what the store holds (never trust the local copy) and verify it against the seal.
  const back = await store.get(put.location);
  if (back === null)
    throw new ArchiveError(`segment ${seg.segment_id}: ${store.description} does not return ${put.location} after writing it`);
  const backHash = sha256Hex(back);
  if (backHash !== gzHash) {
    throw new ArchiveError(
      `segment ${seg.segment_id}: ${put.alreadyPresent ? 'an object already stored under that name' : 'the stored object'} (${put.location}) hashes ${backHash}, not ${gzHash}; it cannot be replaced (write-once store)`,
    );
  }
  const check = join(staging, `${seg.segment_id}.check.sqlite`);
  writeFileSync(check, gunzipSync(back));
  try {
    const segDb = new Database(check, { readonly: true, fileMustExist: true });
    try {
      verifySegmentFile(db, segDb, seg, writer.identity.signingKey.verifierKey);
    } finally {
      segDb.close();
    }
  } finally {
    rmSync(check, { force: true });
  }
  await options.onStep?.('verified', seg.segment_id);
  await writer.commitArchive({
    segmentId: seg.segment_id,
    store: store.kind,
    location: put.location,
    sha256: gzHash,
    fileSha256: seg.file_sha256,
    compressedBytes: gz.length,
  });
  await options.onStep?.('committed', seg.segment_id);
  const dropped = await writer.dropArchivedRows(seg.segment_id);
  await options.onStep?.('dropped', seg.segment_id);
  rmSync(file, { force: true });
  return {
    segmentId: seg.segment_id,
    fromSeq: seg.from_seq,
    toSeq: seg.to_seq,
    entries: seg.to_seq - seg.from_seq + 1,
    action,
    location: put.location,
    fileBytes: raw.length,
    compressedBytes: gz.length,
    rowsDropped: dropped,
  };
}

/**
 * The latest time (ms) until which an entry of the segment must be kept, over entries with a finite retention
 * (by every journaled policy version from the one in force when each was appended, and the retention assignments
 * journaled so far); null when none has one.
 */
export function keepUntil(db: Database.Database, seg: { from_seq: number; to_seq: number }): number | null {
  const history = journaledPolicies(db);
  const assignments = retentionAssignments(db);
  let latest: number | null = null;
  const rows = db
    .prepare('SELECT seq, recorded_at, retention_class FROM entries WHERE seq BETWEEN ? AND ?')
    .iterate(seg.from_seq, seg.to_seq) as IterableIterator<{ seq: number; recorded_at: string; retention_class: string }>;
  for (const r of rows) {
    const { expiresAt } = expiryOf(
      { seq: r.seq, recordedAt: r.recorded_at, retentionClass: r.retention_class },
      history,
      assignments.get(r.seq),
    );
    if (expiresAt !== null && (latest === null || expiresAt > latest)) latest = expiresAt;
  }
  return latest;
}

/** Writes the rows fromSeq..toSeq into a fresh segment file (deterministic bytes for the same rows); returns its hash and size. */
export function buildSegmentFile(
  src: Database.Database,
  fromSeq: number,
  toSeq: number,
  meta: Record<string, string>,
  out: string,
): { sha256: string; bytes: number } {
  const tmp = `${out}.tmp`;
  rmSync(tmp, { force: true });
  rmSync(`${tmp}-journal`, { force: true });
  const db = new Database(tmp);
  try {
    db.pragma('page_size = 4096');
    db.pragma('journal_mode = DELETE');
    db.pragma(`application_id = ${SEGMENT_APPLICATION_ID}`);
    db.pragma('user_version = 1');
    db.exec(ENTRIES_DDL);
    db.exec('CREATE TABLE segment_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT');
    const insMeta = db.prepare('INSERT INTO segment_meta (key, value) VALUES (?, ?)');
    const ins = db.prepare(
      `INSERT INTO entries (${ENTRY_COLUMNS}) VALUES (${ENTRY_COLUMNS.split(',')
        .map(() => '?')
        .join(',')})`,
    );
    let n = 0;
    db.transaction(() => {
      for (const [k, v] of Object.entries({ ...meta, from_seq: String(fromSeq), to_seq: String(toSeq) }).sort()) insMeta.run(k, v);
      for (const r of src
        .prepare(`SELECT ${ENTRY_COLUMNS} FROM entries WHERE seq BETWEEN ? AND ? ORDER BY seq`)
        .iterate(fromSeq, toSeq) as IterableIterator<EntryRow>) {
        ins.run(
          r.seq,
          r.id,
          r.recorded_at,
          r.occurred_at,
          r.kind,
          r.source,
          r.actor,
          r.correlation_id,
          r.causation_id,
          r.idempotency_key,
          r.retention_class,
          r.payload,
          r.payload_hash,
          r.leaf_hash,
          r.chain_hash,
          r.tree_nodes,
          r.seal,
        );
        n++;
      }
    })();
    if (n !== toSeq - fromSeq + 1)
      throw new ArchiveError(`cannot build segment ${fromSeq}..${toSeq}: only ${n} of its rows are in hot storage`);
    db.exec('VACUUM');
  } finally {
    db.close();
  }
  renameSync(tmp, out);
  const bytes = readFileSync(out);
  return { sha256: sha256Hex(bytes), bytes: bytes.length };
}

/**
 * Checks a segment file against its seal: every row's payload hash and leaf, the chain continued from the
 * entry before it, the stored tree nodes, and the tree root and chain head at its end equal to the signed
 * checkpoint in `segment.sealed`. Throws ArchiveError saying what is wrong.
 */
export function verifySegmentFile(
  journal: Database.Database,
  segDb: Database.Database,
  seg: { segment_id: string; from_seq: number; to_seq: number; sealed_seq?: number },
  verifierKey: string,
  sealedNote?: string,
): void {
  const where = `segment ${seg.segment_id}`;
  if ((segDb.pragma('application_id', { simple: true }) as number) !== SEGMENT_APPLICATION_ID)
    throw new ArchiveError(`${where}: not a segment file`);
  const meta = Object.fromEntries(
    (segDb.prepare('SELECT key, value FROM segment_meta').all() as { key: string; value: string }[]).map((r) => [r.key, r.value]),
  );
  if (meta.segment_id !== seg.segment_id || meta.from_seq !== String(seg.from_seq) || meta.to_seq !== String(seg.to_seq))
    throw new ArchiveError(
      `${where}: the file describes segment ${meta.segment_id ?? '?'} (${meta.from_seq ?? '?'}..${meta.to_seq ?? '?'})`,
    );
  let note = sealedNote;
  if (note === undefined) {
    const sealed = journal.prepare(`SELECT payload FROM entries WHERE idempotency_key = ?`).get(`segment/${seg.segment_id}/sealed`) as
      { payload: string } | undefined;
    if (!sealed) throw new ArchiveError(`${where}: no segment.sealed entry in hot storage`);
    note = (JSON.parse(sealed.payload) as { note: string }).note;
  }
  const cp = verifySignedCheckpoint(note, parseVerifierKey(verifierKey));
  if (cp === null || cp.treeSize !== seg.to_seq + 1)
    throw new ArchiveError(`${where}: the sealed checkpoint is not signed by this journal or does not end the segment`);
  // Start state: the chain and tree just before the segment, from hot storage or the archive before it.
  let chain: Buffer = ZERO;
  let tree = new CompactTree();
  if (seg.from_seq > 0) {
    const prev = journal.prepare('SELECT chain_hash FROM entries WHERE seq = ?').get(seg.from_seq - 1) as
      { chain_hash: Buffer } | undefined;
    const recorded = archivedRanges(journal).find((r) => r.toSeq === seg.from_seq - 1);
    if (!prev && !recorded) throw new ArchiveError(`${where}: the chain hash before seq ${seg.from_seq} is unknown`);
    chain = prev ? prev.chain_hash : (recorded as ArchivedRange).chainHead;
    tree = CompactTree.fromNodeSource(seg.from_seq, new StoredNodes(journal));
  }
  let expected = seg.from_seq;
  for (const row of segDb.prepare(`SELECT ${ENTRY_COLUMNS} FROM entries ORDER BY seq`).iterate() as IterableIterator<EntryRow>) {
    if (row.seq !== expected) throw new ArchiveError(`${where}: entry seq ${expected} is missing`);
    if (!sha256(row.payload).equals(row.payload_hash))
      throw new ArchiveError(`${where}: seq ${row.seq}: the payload does not match its hash`);
    const leaf = sha256('\u0000' + canonicalHeader(rowHeader(row)));
    if (!leaf.equals(row.leaf_hash)) throw new ArchiveError(`${where}: seq ${row.seq}: the header does not match its leaf hash`);
    chain = sha256Pair(chain, leaf);
    if (!chain.equals(row.chain_hash)) throw new ArchiveError(`${where}: seq ${row.seq}: the chain hash does not follow`);
    const nodes = tree.append(leaf);
    if (!Buffer.concat(nodes.map((n) => Buffer.from(n))).equals(row.tree_nodes))
      throw new ArchiveError(`${where}: seq ${row.seq}: the stored tree nodes are wrong`);
    expected++;
  }
  if (expected !== seg.to_seq + 1) throw new ArchiveError(`${where}: holds entries up to seq ${expected - 1}, not ${seg.to_seq}`);
  if (!Buffer.from(tree.root()).equals(Buffer.from(cp.rootHash)) || !chain.equals(Buffer.from(cp.chainHead)))
    throw new ArchiveError(`${where}: the tree root or chain head differs from the sealed checkpoint`);
}

/**
 * Opens every archived segment read-only, in seq order: fetched from its store (or the local cache), its hash
 * checked against the one journaled in `segment.archived`, decompressed into `cacheDir`.
 */
export async function openArchivedSegments(
  journal: Database.Database,
  stores: readonly ArchiveStore[],
  cacheDir: string,
): Promise<ArchivedSegmentSource[]> {
  const out: ArchivedSegmentSource[] = [];
  const ranges = archivedRanges(journal);
  if (ranges.length === 0) return out;
  mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
  try {
    for (const r of ranges) {
      // The newest copy: the last pruned generation when expiry dropped payloads, else the object archived.
      const cur = currentObject(journal, r.segmentId);
      const fileSha = cur.fileSha256;
      const file = join(cacheDir, `${r.segmentId}.sqlite`);
      if (!existsSync(file) || sha256Hex(readFileSync(file)) !== fileSha) {
        const gz = await storeFor(cur.location, stores).get(cur.location);
        if (gz === null) throw new ArchiveError(`archived segment ${r.segmentId} is missing from ${cur.location}`);
        if (sha256Hex(gz) !== cur.sha256)
          throw new ArchiveError(
            `archived segment ${r.segmentId} at ${cur.location} does not match the hash journaled when it was ${cur.generation > 0 ? 'pruned' : 'archived'}`,
          );
        const raw = gunzipSync(gz);
        if (sha256Hex(raw) !== fileSha)
          throw new ArchiveError(
            `archived segment ${r.segmentId}: the decompressed file does not match the ${cur.generation > 0 ? 'pruned' : 'sealed'} hash`,
          );
        writeFileSync(`${file}.tmp`, raw, { mode: 0o600 });
        renameSync(`${file}.tmp`, file);
      }
      const db = new Database(file, { readonly: true, fileMustExist: true });
      db.pragma('trusted_schema = OFF');
      out.push({ segmentId: r.segmentId, fromSeq: r.fromSeq, toSeq: r.toSeq, db });
    }
  } catch (err) {
    for (const s of out) s.db.close();
    throw err;
  }
  return out;
}

/** The object readers use for an archived segment: its newest pruned copy (generation >= 1), else the archived one (0). */
export interface CurrentObject {
  readonly generation: number;
  readonly store: string;
  readonly location: string;
  readonly sha256: string;
  readonly fileSha256: string;
}

export function currentObject(journal: Database.Database, segmentId: string): CurrentObject {
  return objectsOf(journal, segmentId).at(-1) as CurrentObject;
}

/** Every object a segment was stored as, oldest first: the archived one, then each pruned generation. */
export function objectsOf(journal: Database.Database, segmentId: string): CurrentObject[] {
  const a = journal
    .prepare(
      'SELECT a.store, a.location, a.sha256, s.file_sha256 FROM archived_ranges a JOIN segments s USING (segment_id) WHERE segment_id = ?',
    )
    .get(segmentId) as { store: string; location: string; sha256: string; file_sha256: string } | undefined;
  if (!a) throw new ArchiveError(`segment ${segmentId} is not archived`);
  const out: CurrentObject[] = [{ generation: 0, store: a.store, location: a.location, sha256: a.sha256, fileSha256: a.file_sha256 }];
  const has = journal.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'pruned_segments'`).get();
  if (has) {
    const rows = journal
      .prepare('SELECT generation, store, location, sha256, file_sha256 FROM pruned_segments WHERE segment_id = ? ORDER BY generation')
      .all(segmentId) as { generation: number; store: string; location: string; sha256: string; file_sha256: string }[];
    for (const p of rows)
      out.push({ generation: p.generation, store: p.store, location: p.location, sha256: p.sha256, fileSha256: p.file_sha256 });
  }
  return out;
}

function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
