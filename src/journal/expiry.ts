/**
 * Retention expiry: in archived segments, the payloads of entries whose longest promise says `onExpiry:
 * drop-payload` and has ended (per `expiryOf`, over the journaled policy versions and the `retention.assigned`
 * raises of each entry: a billing interaction raised to financial-7y is kept whole) are dropped.
 *
 * Hot storage is never pruned: expiry acts on archived segments only (an entry expires long after its month is
 * closed, and a hot row cannot be changed: the journal is insert-only). A segment is pruned by writing a NEW object
 * (`<segment>.pruned-<n>.sqlite.gz`; stores are write-once) that is the current copy with those payloads replaced
 * by a `{"$dropped": {at, policyVersion}}` marker; every header column, payload hash, leaf, chain hash, tree node
 * and seal stays, so existence and order stay provable. The object is read back and checked against the current
 * copy, then `segment.pruned` is journaled, and only then are superseded objects deleted, from stores that can
 * (a directory). A bucket under a retention lock cannot delete: the old object stays and readers use the newest
 * copy (`pruned_segments`).
 *
 * Crash safety, as the archive steps: every step first checks what is done. A crash after the upload finds the
 * object on the re-run (the same generation's name), reads it back, checks it and commits what it holds; a crash
 * after journaling finishes the deletions on the next run.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { canonicalHeader } from './entry.ts';
import { sha256 } from './sha256.ts';
import { ENTRY_COLUMNS, archivedRanges, rowHeader, type EntryRow } from './store.ts';
import { openReadConnection } from './sqlite.ts';
import { storeFor, type ArchiveStore } from './archive-store.ts';
import { expiryOf, journaledPolicies, retentionAssignments, type JournaledPolicy, type RetentionAssignment } from './retention.ts';
import { droppedPayload, expiredProblem, parseDroppedPayload } from './dropped-payload.ts';
import { ArchiveError, SEGMENT_APPLICATION_ID, objectsOf, type CurrentObject } from './segments.ts';
import type { JournalWriter } from './writer.ts';

export type PruneStep = 'pruned-uploaded' | 'pruned-committed' | 'pruned-deleted';

export interface ExpiryOptions {
  /** Where pruned copies are written. */
  readonly store: ArchiveStore;
  /** Every store archived objects may be read from (default: just `store`). */
  readonly stores?: readonly ArchiveStore[];
  readonly stagingDir?: string;
  /** The readers' cache of decompressed segments: a pruned segment's cached copy (still holding the payloads) is removed. */
  readonly cacheDir?: string;
  readonly dryRun?: boolean;
  readonly now?: () => number;
  /** Called after each step commits (tests inject crashes here). */
  readonly onStep?: (step: PruneStep, segmentId: string) => void | Promise<void>;
}

export interface ExpirySummary {
  readonly segmentId: string;
  readonly fromSeq: number;
  readonly toSeq: number;
  /** `pruned`: payloads dropped now; `would prune`: dry run; `cleaned`: only superseded objects deleted (an interrupted run finished). */
  readonly action: 'pruned' | 'would prune' | 'cleaned';
  readonly generation: number | null;
  readonly location: string | null;
  readonly droppedEntries: number;
  /** Dropped (or to drop) entries per retention class. */
  readonly classes: Readonly<Record<string, number>>;
  /** Superseded objects deleted from their store. */
  readonly deleted: readonly string[];
  /** Superseded objects left because their store cannot delete (a bucket under a retention lock). */
  readonly kept: readonly string[];
}

/** Drops expired `drop-payload` payloads from archived segments (see the module comment). */
export async function expireArchived(writer: JournalWriter, options: ExpiryOptions): Promise<ExpirySummary[]> {
  const now = options.now ?? Date.now;
  const staging = options.stagingDir ?? `${writer.path}.segments`;
  const stores = options.stores ?? [options.store];
  const db = openReadConnection(writer.path);
  const out: ExpirySummary[] = [];
  try {
    const history = journaledPolicies(db);
    // Promises raised after append (retention.assigned): an entry's longest promise decides.
    const assignments = retentionAssignments(db);
    // No policy version ever dropped payloads (the default: keep): nothing to fetch.
    const anyDrop = history.some((h) => Object.values(h.policy.doc.classes).some((c) => c.onExpiry === 'drop-payload'));
    for (const r of archivedRanges(db)) {
      const objects = objectsOf(db, r.segmentId);
      const cur = objects[objects.length - 1] as CurrentObject;
      // A run that crashed after journaling a pruned copy: delete what it superseded.
      const cleaned = options.dryRun ? { deleted: [], kept: [] } : await deleteSuperseded(objects.slice(0, -1), stores);
      const cleanedOnly = (): void => {
        if (cleaned.deleted.length > 0) out.push({ segmentId: r.segmentId, fromSeq: r.fromSeq, toSeq: r.toSeq, action: 'cleaned', generation: cur.generation, location: cur.location, droppedEntries: 0, classes: {}, deleted: cleaned.deleted, kept: [] });
      };
      if (!anyDrop) {
        cleanedOnly();
        continue;
      }
      mkdirSync(staging, { recursive: true, mode: 0o700 });
      const curFile = join(staging, `${r.segmentId}.expiry.sqlite`);
      writeFileSync(curFile, await fetchVerified(r.segmentId, cur, stores), { mode: 0o600 });
      try {
        const due = dueForDrop(curFile, now(), history, assignments);
        if (due.seqs.length === 0) {
          cleanedOnly();
          continue;
        }
        if (options.dryRun) {
          out.push({ segmentId: r.segmentId, fromSeq: r.fromSeq, toSeq: r.toSeq, action: 'would prune', generation: null, location: null, droppedEntries: due.seqs.length, classes: due.classes, deleted: [], kept: [] });
          continue;
        }
        out.push(await prune(writer, { segmentId: r.segmentId, fromSeq: r.fromSeq, toSeq: r.toSeq }, cur, curFile, due, history, assignments, staging, stores, options, now));
      } finally {
        rmSync(curFile, { force: true });
      }
    }
    return out;
  } finally {
    db.close();
  }
}

interface Due {
  readonly seqs: number[];
  readonly classes: Record<string, number>;
  /** Latest expiry (ms) over the entries with a finite retention: how long a store must protect the copy. */
  readonly keepUntil: number | null;
}

/** The entries of a segment file whose payload is still whole and may be dropped at `at`. */
function dueForDrop(file: string, at: number, history: readonly JournaledPolicy[], assignments: ReadonlyMap<number, readonly RetentionAssignment[]>): Due {
  const seg = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const seqs: number[] = [];
    const classes: Record<string, number> = {};
    let keepUntil: number | null = null;
    for (const row of seg.prepare(`SELECT ${ENTRY_COLUMNS} FROM entries ORDER BY seq`).iterate() as IterableIterator<EntryRow>) {
      const raised = assignments.get(row.seq);
      const { expiresAt } = expiryOf({ seq: row.seq, recordedAt: row.recorded_at, retentionClass: row.retention_class }, history, raised);
      if (expiresAt !== null && (keepUntil === null || expiresAt > keepUntil)) keepUntil = expiresAt;
      if (row.seq === 0 || !sha256(row.payload).equals(row.payload_hash)) continue; // seq 0 stays hot; already dropped
      if (expiredProblem(row, at, history, raised) !== null) continue;
      seqs.push(row.seq);
      classes[row.retention_class] = (classes[row.retention_class] ?? 0) + 1;
    }
    return { seqs, classes, keepUntil };
  } finally {
    seg.close();
  }
}

async function prune(
  writer: JournalWriter,
  seg: { segmentId: string; fromSeq: number; toSeq: number },
  cur: CurrentObject,
  curFile: string,
  due: Due,
  history: readonly JournaledPolicy[],
  assignments: ReadonlyMap<number, readonly RetentionAssignment[]>,
  staging: string,
  stores: readonly ArchiveStore[],
  options: ExpiryOptions,
  now: () => number,
): Promise<ExpirySummary> {
  const store = options.store;
  const generation = cur.generation + 1;
  const policyVersion = (history[history.length - 1] as JournaledPolicy).policy.version;
  const marker = droppedPayload({ at: new Date(now()).toISOString(), policyVersion });
  // 1. The pruned copy: the current file with the due payloads replaced, rebuilt (VACUUM) so no dropped byte stays in a free page.
  const built = join(staging, `${seg.segmentId}.pruned-${generation}.sqlite`);
  rmSync(built, { force: true });
  copyFileSync(curFile, built);
  const w = new Database(built);
  try {
    const upd = w.prepare('UPDATE entries SET payload = ? WHERE seq = ?');
    w.transaction(() => {
      for (const s of due.seqs) upd.run(marker, s);
      w.prepare('INSERT OR REPLACE INTO segment_meta (key, value) VALUES (?, ?)').run('pruned_generation', String(generation));
    })();
    w.exec('VACUUM');
  } finally {
    w.close();
  }
  const gz = gzipSync(readFileSync(built), { level: 9 });
  rmSync(built, { force: true });
  const objectName = `${writer.identity.journalId}/${seg.segmentId}.pruned-${generation}.sqlite.gz`;
  const put = await store.put(objectName, gz, { keepUntil: due.keepUntil });
  await options.onStep?.('pruned-uploaded', seg.segmentId);
  // 2. Read back what the store holds. After a crash it may be the copy an earlier run wrote (other drop time,
  // maybe fewer entries): that copy is checked on its own terms and committed as it is.
  const back = await store.get(put.location);
  if (back === null) throw new ArchiveError(`segment ${seg.segmentId}: ${store.description} does not return ${put.location} after writing it`);
  const backHash = sha256Hex(back);
  if (!put.alreadyPresent && backHash !== sha256Hex(gz)) throw new ArchiveError(`segment ${seg.segmentId}: the stored pruned copy (${put.location}) hashes ${backHash}, not what was written`);
  const check = join(staging, `${seg.segmentId}.pruned-${generation}.check.sqlite`);
  const raw = gunzipSync(back);
  writeFileSync(check, raw, { mode: 0o600 });
  let result: PrunedCheck;
  try {
    result = checkPrunedCopy(curFile, check, seg, history, assignments, now());
  } catch (err) {
    const why = err instanceof ArchiveError ? err.message : (err as Error).message;
    throw new ArchiveError(`${put.alreadyPresent ? 'an object already stored under that name' : 'the pruned copy'} (${put.location}) is not a valid pruned copy: ${why}${put.alreadyPresent ? '; it cannot be replaced (write-once store): remove it if the store allows, then re-run' : ''}`);
  } finally {
    rmSync(check, { force: true });
  }
  // 3. Journal it; from now on readers use this copy.
  await writer.commitPrune({
    segmentId: seg.segmentId,
    generation,
    store: store.kind,
    location: put.location,
    sha256: backHash,
    fileSha256: sha256Hex(raw),
    compressedBytes: back.length,
    replaces: cur.location,
    dropped: ranges(result.seqs),
    entries: result.seqs.length,
    classes: result.classes,
    droppedAt: result.at,
    policyVersion: result.policyVersion,
  });
  await options.onStep?.('pruned-committed', seg.segmentId);
  // 4. Only now may what it supersedes go (the original and earlier generations), where the store can delete.
  const db = openReadConnection(writer.path);
  let cleaned: { deleted: string[]; kept: string[] };
  try {
    cleaned = await deleteSuperseded(objectsOf(db, seg.segmentId).slice(0, -1), stores);
  } finally {
    db.close();
  }
  if (options.cacheDir) rmSync(join(options.cacheDir, `${seg.segmentId}.sqlite`), { force: true });
  await options.onStep?.('pruned-deleted', seg.segmentId);
  return { segmentId: seg.segmentId, fromSeq: seg.fromSeq, toSeq: seg.toSeq, action: 'pruned', generation, location: put.location, droppedEntries: result.seqs.length, classes: result.classes, deleted: cleaned.deleted, kept: cleaned.kept };
}

interface PrunedCheck {
  readonly seqs: number[];
  readonly classes: Record<string, number>;
  readonly at: string;
  readonly policyVersion: number;
}

/**
 * A pruned copy against the current copy it replaces (whose hash the journal holds): the same segment, the same
 * rows with every column but the payload identical (and each header still hashing to its leaf), and each payload
 * either unchanged or, for an entry whose class may drop it by then, one dropped marker. Throws what is wrong.
 */
function checkPrunedCopy(
  curFile: string,
  prunedFile: string,
  seg: { segmentId: string; fromSeq: number; toSeq: number },
  history: readonly JournaledPolicy[],
  assignments: ReadonlyMap<number, readonly RetentionAssignment[]>,
  now: number,
): PrunedCheck {
  const a = new Database(curFile, { readonly: true, fileMustExist: true });
  const b = new Database(prunedFile, { readonly: true, fileMustExist: true });
  try {
    b.pragma('trusted_schema = OFF');
    if ((b.pragma('application_id', { simple: true }) as number) !== SEGMENT_APPLICATION_ID) throw new ArchiveError('not a segment file');
    const meta = Object.fromEntries((b.prepare('SELECT key, value FROM segment_meta').all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
    if (meta.segment_id !== seg.segmentId || meta.from_seq !== String(seg.fromSeq) || meta.to_seq !== String(seg.toSeq)) throw new ArchiveError(`it describes segment ${meta.segment_id ?? '?'} (${meta.from_seq ?? '?'}..${meta.to_seq ?? '?'})`);
    const left = a.prepare(`SELECT ${ENTRY_COLUMNS} FROM entries ORDER BY seq`).iterate() as IterableIterator<EntryRow>;
    const right = b.prepare(`SELECT ${ENTRY_COLUMNS} FROM entries ORDER BY seq`).iterate() as IterableIterator<EntryRow>;
    const seqs: number[] = [];
    const classes: Record<string, number> = {};
    let marker: { at: string; policyVersion: number } | null = null;
    for (;;) {
      const x = left.next();
      const y = right.next();
      if (x.done || y.done) {
        if (!x.done || !y.done) throw new ArchiveError('it does not hold the same entries as the copy it replaces');
        break;
      }
      const o = x.value;
      const p = y.value;
      for (const col of ENTRY_COLUMNS.split(',').map((c) => c.trim()) as (keyof EntryRow)[]) {
        if (col === 'payload') continue;
        const u = o[col];
        const v = p[col];
        const same = Buffer.isBuffer(u) && Buffer.isBuffer(v) ? u.equals(v) : u === v;
        if (!same) throw new ArchiveError(`seq ${o.seq}: ${col} differs from the copy it replaces`);
      }
      if (!sha256('\u0000' + canonicalHeader(rowHeader(p))).equals(p.leaf_hash)) throw new ArchiveError(`seq ${p.seq}: the header does not match its leaf hash`);
      if (p.payload === o.payload) continue;
      const m = parseDroppedPayload(p.payload);
      if (m === null) throw new ArchiveError(`seq ${p.seq}: the payload changed and is not a dropped marker`);
      if (!sha256(o.payload).equals(o.payload_hash)) throw new ArchiveError(`seq ${p.seq}: was already dropped`);
      if (marker === null) marker = m;
      else if (marker.at !== m.at || marker.policyVersion !== m.policyVersion) throw new ArchiveError(`seq ${p.seq}: its dropped marker differs from the others in the copy`);
      if (!history.some((h) => h.version === m.policyVersion)) throw new ArchiveError(`seq ${p.seq}: dropped by policy version ${m.policyVersion}, which the journal never recorded`);
      if (Date.parse(m.at) > now) throw new ArchiveError(`seq ${p.seq}: dropped at ${m.at}, in the future`);
      const problem = expiredProblem(p, Date.parse(m.at), history, assignments.get(p.seq));
      if (problem !== null) throw new ArchiveError(`seq ${p.seq}: ${problem}`);
      seqs.push(p.seq);
      classes[p.retention_class] = (classes[p.retention_class] ?? 0) + 1;
    }
    if (marker === null) throw new ArchiveError('it drops no payload');
    return { seqs, classes, at: marker.at, policyVersion: marker.policyVersion };
  } finally {
    a.close();
    b.close();
  }
}

/** The current object's bytes, decompressed, checked against the hashes the journal holds. */
async function fetchVerified(segmentId: string, cur: CurrentObject, stores: readonly ArchiveStore[]): Promise<Buffer> {
  const gz = await storeFor(cur.location, stores).get(cur.location);
  if (gz === null) throw new ArchiveError(`archived segment ${segmentId} is missing from ${cur.location}`);
  if (sha256Hex(gz) !== cur.sha256) throw new ArchiveError(`archived segment ${segmentId} at ${cur.location} does not match the hash journaled for it`);
  const raw = gunzipSync(gz);
  if (sha256Hex(raw) !== cur.fileSha256) throw new ArchiveError(`archived segment ${segmentId}: the decompressed file does not match the journaled hash`);
  return raw;
}

/** Deletes superseded objects from stores that can; returns which were deleted and which stay. */
async function deleteSuperseded(objects: readonly CurrentObject[], stores: readonly ArchiveStore[]): Promise<{ deleted: string[]; kept: string[] }> {
  const deleted: string[] = [];
  const kept: string[] = [];
  for (const o of objects) {
    const store = storeFor(o.location, stores);
    if (!store.delete) {
      kept.push(o.location);
      continue;
    }
    if (await store.delete(o.location)) deleted.push(o.location);
  }
  return { deleted, kept };
}

/** Sorted seqs as inclusive ranges. */
function ranges(seqs: readonly number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const s of [...seqs].sort((x, y) => x - y)) {
    const last = out[out.length - 1];
    if (last && last[1] === s - 1) last[1] = s;
    else out.push([s, s]);
  }
  return out;
}

function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
