/**
 * Journals written before every personal field was sealed: finding what they hold in clear (`scanJournal`, read
 * only) and containing it (`containArchived`) without losing the record.
 *
 * Rows cannot change, so containment works as retention expiry does (expiry.ts): in an archived segment, the
 * payloads the scan finds are replaced by the contained marker (contained-payload.ts) in a NEW object
 * (`<segment>.pruned-<n>.sqlite.gz`), every header, payload hash, leaf, chain hash, tree node and seal kept; the
 * object is read back and checked against the copy it replaces, `segment.pruned` is journaled with the reason
 * `unsealed-personal-data` and the seqs, and only then are the superseded objects deleted (where the store can)
 * and the readers' cached copy removed. The hot file is then rewritten (`JournalWriter.compact`: VACUUM and a
 * truncated WAL) so that no byte of rows that already left hot storage stays in a free page.
 *
 * Hot rows of months not archived yet stay as they are until their month is sealed and archived (the journal is
 * insert-only). Containment runs only when the operator asks (`privacy contain`, which archives closed months
 * first): it drops records for good, so it is never a silent side effect of the scheduled archive.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { canonicalHeader } from './entry.ts';
import { sha256 } from './sha256.ts';
import { ENTRY_COLUMNS, archivedRanges, rowHeader, type EntryRow } from './store.ts';
import { openReadConnection } from './sqlite.ts';
import { storeFor, type ArchiveStore } from './archive-store.ts';
import { expiryOf, journaledPolicies, type JournaledPolicy } from './retention.ts';
import { ArchiveError, SEGMENT_APPLICATION_ID, currentObject, monthOf, objectsOf, type CurrentObject } from './segments.ts';
import { CONTAINMENT_REASON, containable, containedPayload, parseContainedPayload, unsealedFieldsOf } from './contained-payload.ts';
import type { JournalWriter } from './writer.ts';

// ---------------------------------------------------------------------------------------------------------
// Scan

export interface ScanFinding {
  readonly seq: number;
  readonly kind: string;
  readonly recordedAt: string;
  /** Field names (or paths, for `byShape`) holding personal data in clear; never the values. */
  readonly fields: readonly string[];
  readonly byShape: boolean;
  /** Where the clear bytes are: the hot file, or the archived segment's current object. */
  readonly where: 'hot' | 'archive';
  readonly segmentId: string | null;
  /** The month whose archive contains a hot entry (`YYYY-MM`). */
  readonly month: string;
  /** False for kinds containment never drops (privacy.erased): the value stays where it is. */
  readonly containable: boolean;
}

export interface ContainedEntry {
  readonly seq: number;
  readonly kind: string;
  readonly recordedAt: string;
  readonly segmentId: string;
  readonly droppedAt: string;
}

export interface ScannedSegment {
  readonly segmentId: string;
  readonly fromSeq: number;
  readonly toSeq: number;
  readonly scanned: boolean;
  /** Where the scanned copy came from (a location or the local cache), or why it was not scanned. */
  readonly source: string;
}

export interface ScanReport {
  readonly hotEntries: number;
  readonly segments: readonly ScannedSegment[];
  readonly findings: readonly ScanFinding[];
  readonly contained: readonly ContainedEntry[];
}

interface ScanRow {
  seq: number;
  kind: string;
  recorded_at: string;
  payload: string;
  payload_hash: Buffer;
}

/**
 * Reads the journal (read-only) and the archived segments available on this machine (a verified copy in
 * `cacheDir`, or an object in a directory store), and lists every entry whose stored payload holds personal
 * data in clear, and every entry containment already dropped. Never a value: seqs, kinds, times, field names.
 */
export function scanJournal(journalPath: string, cacheDir: string): ScanReport {
  const db = openReadConnection(journalPath);
  try {
    const findings: ScanFinding[] = [];
    const contained: ContainedEntry[] = [];
    const seen = new Set<number>();
    let hotEntries = 0;
    for (const r of db.prepare('SELECT seq, kind, recorded_at, payload, payload_hash FROM entries ORDER BY seq').iterate() as IterableIterator<ScanRow>) {
      hotEntries++;
      seen.add(r.seq);
      const u = unsealedFieldsOf(r.kind, r.payload);
      if (u) findings.push({ seq: r.seq, kind: r.kind, recordedAt: r.recorded_at, fields: u.fields, byShape: u.byShape, where: 'hot', segmentId: null, month: monthOf(r.recorded_at).id, containable: containable(r.kind) });
    }
    const segments: ScannedSegment[] = [];
    for (const range of archivedRanges(db)) {
      const local = localCopy(db, range.segmentId, cacheDir);
      segments.push({ segmentId: range.segmentId, fromSeq: range.fromSeq, toSeq: range.toSeq, scanned: local.file !== null, source: local.source });
      if (local.file === null) continue;
      const seg = new Database(local.file, { readonly: true, fileMustExist: true });
      try {
        seg.pragma('trusted_schema = OFF');
        for (const r of seg.prepare('SELECT seq, kind, recorded_at, payload, payload_hash FROM entries ORDER BY seq').iterate() as IterableIterator<ScanRow>) {
          if (seen.has(r.seq)) continue;
          if (!sha256(r.payload).equals(r.payload_hash)) {
            const m = parseContainedPayload(r.payload);
            if (m) contained.push({ seq: r.seq, kind: r.kind, recordedAt: r.recorded_at, segmentId: range.segmentId, droppedAt: m.at });
            continue;
          }
          const u = unsealedFieldsOf(r.kind, r.payload);
          if (u) findings.push({ seq: r.seq, kind: r.kind, recordedAt: r.recorded_at, fields: u.fields, byShape: u.byShape, where: 'archive', segmentId: range.segmentId, month: monthOf(r.recorded_at).id, containable: containable(r.kind) });
        }
      } finally {
        seg.close();
      }
    }
    findings.sort((a, b) => a.seq - b.seq);
    return { hotEntries, segments, findings, contained };
  } finally {
    db.close();
  }
}

/** A verified local copy of a segment's current object (cached, or fetched from a directory store into the cache). */
function localCopy(db: Database.Database, segmentId: string, cacheDir: string): { file: string | null; source: string } {
  const cur = currentObject(db, segmentId);
  const file = join(cacheDir, `${segmentId}.sqlite`);
  if (existsSync(file) && sha256Hex(readFileSync(file)) === cur.fileSha256) return { file, source: `local cache ${file}` };
  if (!cur.location.startsWith('dir:')) return { file: null, source: `not scanned: ${cur.location} is not on this machine (\`activity-journal verify --include-archives\` fetches it into the local cache; then scan again)` };
  const gz = existsSync(cur.location.slice(4)) ? readFileSync(cur.location.slice(4)) : null;
  if (gz === null) return { file: null, source: `not scanned: ${cur.location} is missing` };
  if (sha256Hex(gz) !== cur.sha256) return { file: null, source: `not scanned: ${cur.location} does not match the hash journaled for it` };
  const raw = gunzipSync(gz);
  if (sha256Hex(raw) !== cur.fileSha256) return { file: null, source: `not scanned: ${cur.location} does not decompress to the journaled file hash` };
  mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
  writeFileSync(`${file}.tmp`, raw, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
  return { file, source: cur.location };
}

// ---------------------------------------------------------------------------------------------------------
// Containment

export type ContainStep = 'contained-uploaded' | 'contained-committed' | 'contained-deleted';

export interface ContainOptions {
  /** Where contained copies are written. */
  readonly store: ArchiveStore;
  /** Every store archived objects may be read from (default: just `store`). */
  readonly stores?: readonly ArchiveStore[];
  readonly stagingDir?: string;
  /** The readers' cache of decompressed segments: a contained segment's cached copy is removed. */
  readonly cacheDir?: string;
  readonly dryRun?: boolean;
  readonly now?: () => number;
  /** Rewrite the hot file even when nothing was contained now (an interrupted run, or rows an older version archived). */
  readonly compactAlways?: boolean;
  /** Called after each step commits (tests inject crashes here). */
  readonly onStep?: (step: ContainStep, segmentId: string) => void | Promise<void>;
}

export interface ContainSummary {
  readonly segmentId: string;
  readonly fromSeq: number;
  readonly toSeq: number;
  readonly action: 'contained' | 'would contain';
  readonly generation: number | null;
  readonly location: string | null;
  readonly entries: number;
  readonly seqs: readonly number[];
  /** Contained entries per kind. */
  readonly kinds: Readonly<Record<string, number>>;
  readonly deleted: readonly string[];
  readonly kept: readonly string[];
}

export interface ContainResult {
  readonly segments: readonly ContainSummary[];
  /** Set when the hot file was rewritten; `walTruncated` false when a reader kept its WAL busy. */
  readonly compacted: { readonly walTruncated: boolean } | null;
}

/** Contains, in every archived segment, the payloads an older version stored with personal data in clear. */
export async function containArchived(writer: JournalWriter, options: ContainOptions): Promise<ContainResult> {
  const now = options.now ?? Date.now;
  const staging = options.stagingDir ?? `${writer.path}.segments`;
  const stores = options.stores ?? [options.store];
  const db = openReadConnection(writer.path);
  const out: ContainSummary[] = [];
  try {
    const ranges = archivedRanges(db);
    const history = journaledPolicies(db);
    for (const r of ranges) {
      const objects = objectsOf(db, r.segmentId);
      const cur = objects[objects.length - 1] as CurrentObject;
      mkdirSync(staging, { recursive: true, mode: 0o700 });
      const curFile = join(staging, `${r.segmentId}.contain.sqlite`);
      writeFileSync(curFile, await fetchVerified(r.segmentId, cur, stores), { mode: 0o600 });
      try {
        const due = dueForContainment(curFile, history);
        if (due.seqs.length === 0) continue;
        if (options.dryRun) {
          out.push({ segmentId: r.segmentId, fromSeq: r.fromSeq, toSeq: r.toSeq, action: 'would contain', generation: null, location: null, entries: due.seqs.length, seqs: due.seqs, kinds: due.kinds, deleted: [], kept: [] });
          continue;
        }
        const latest = history[history.length - 1];
        if (!latest) throw new ArchiveError(`segment ${r.segmentId}: no retention policy version is journaled; open the journal once with a retention policy (activity-journal archive does) before containing`);
        out.push(await contain(writer, db, { segmentId: r.segmentId, fromSeq: r.fromSeq, toSeq: r.toSeq }, cur, curFile, due, latest.version, staging, stores, options, now));
      } finally {
        rmSync(curFile, { force: true });
      }
    }
  } finally {
    db.close();
  }
  const compacted = !options.dryRun && (out.length > 0 || options.compactAlways === true) ? await writer.compact() : null;
  return { segments: out, compacted };
}

interface Due {
  readonly seqs: number[];
  readonly classes: Record<string, number>;
  readonly kinds: Record<string, number>;
  /** Latest expiry (ms) over the entries with a finite retention: how long a store must protect the copy. */
  readonly keepUntil: number | null;
}

/** The entries of a segment file whose whole payload holds personal data in clear, of a kind containment drops. */
function dueForContainment(file: string, history: readonly JournaledPolicy[]): Due {
  const seg = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const seqs: number[] = [];
    const classes: Record<string, number> = {};
    const kinds: Record<string, number> = {};
    let keepUntil: number | null = null;
    for (const row of seg.prepare(`SELECT ${ENTRY_COLUMNS} FROM entries ORDER BY seq`).iterate() as IterableIterator<EntryRow>) {
      const { expiresAt } = expiryOf({ seq: row.seq, recordedAt: row.recorded_at, retentionClass: row.retention_class }, history);
      if (expiresAt !== null && (keepUntil === null || expiresAt > keepUntil)) keepUntil = expiresAt;
      if (row.seq === 0 || !containable(row.kind) || !sha256(row.payload).equals(row.payload_hash)) continue;
      if (unsealedFieldsOf(row.kind, row.payload) === null) continue;
      seqs.push(row.seq);
      classes[row.retention_class] = (classes[row.retention_class] ?? 0) + 1;
      kinds[row.kind] = (kinds[row.kind] ?? 0) + 1;
    }
    return { seqs, classes, kinds, keepUntil };
  } finally {
    seg.close();
  }
}

async function contain(
  writer: JournalWriter,
  db: Database.Database,
  seg: { segmentId: string; fromSeq: number; toSeq: number },
  cur: CurrentObject,
  curFile: string,
  due: Due,
  policyVersion: number,
  staging: string,
  stores: readonly ArchiveStore[],
  options: ContainOptions,
  now: () => number,
): Promise<ContainSummary> {
  const store = options.store;
  const generation = cur.generation + 1;
  const marker = containedPayload({ at: new Date(now()).toISOString(), policyVersion });
  // 1. The contained copy: the current file with those payloads replaced, rebuilt (VACUUM) so no byte of them stays in a free page.
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
  const put = await store.put(`${writer.identity.journalId}/${seg.segmentId}.pruned-${generation}.sqlite.gz`, gz, { keepUntil: due.keepUntil });
  await options.onStep?.('contained-uploaded', seg.segmentId);
  // 2. Read back what the store holds; after a crash it may be an earlier run's copy, checked on its own terms.
  const back = await store.get(put.location);
  if (back === null) throw new ArchiveError(`segment ${seg.segmentId}: ${store.description} does not return ${put.location} after writing it`);
  const backHash = sha256Hex(back);
  if (!put.alreadyPresent && backHash !== sha256Hex(gz)) throw new ArchiveError(`segment ${seg.segmentId}: the stored contained copy (${put.location}) hashes ${backHash}, not what was written`);
  const raw = gunzipSync(back);
  const check = join(staging, `${seg.segmentId}.pruned-${generation}.check.sqlite`);
  writeFileSync(check, raw, { mode: 0o600 });
  let result: ContainedCheck;
  try {
    result = checkContainedCopy(curFile, check, seg, now());
  } catch (err) {
    const why = (err as Error).message;
    throw new ArchiveError(`${put.alreadyPresent ? 'an object already stored under that name' : 'the contained copy'} (${put.location}) is not a valid contained copy: ${why}${put.alreadyPresent ? '; it cannot be replaced (write-once store): remove it if the store allows, then re-run' : ''}`);
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
    kinds: result.kinds,
    droppedAt: result.at,
    policyVersion: result.policyVersion,
    reason: CONTAINMENT_REASON,
  });
  await options.onStep?.('contained-committed', seg.segmentId);
  // 4. Only now may the copies holding the clear payloads go, where the store can delete; and the readers' cached copy.
  const cleaned = await deleteSuperseded(objectsOf(db, seg.segmentId).slice(0, -1), stores);
  if (options.cacheDir) rmSync(join(options.cacheDir, `${seg.segmentId}.sqlite`), { force: true });
  await options.onStep?.('contained-deleted', seg.segmentId);
  return { segmentId: seg.segmentId, fromSeq: seg.fromSeq, toSeq: seg.toSeq, action: 'contained', generation, location: put.location, entries: result.seqs.length, seqs: result.seqs, kinds: result.kinds, deleted: cleaned.deleted, kept: cleaned.kept };
}

interface ContainedCheck {
  readonly seqs: number[];
  readonly classes: Record<string, number>;
  readonly kinds: Record<string, number>;
  readonly at: string;
  readonly policyVersion: number;
}

/**
 * A contained copy against the current copy it replaces: the same segment and rows, every column but the payload
 * identical (each header still hashing to its leaf), and each payload either unchanged or one contained marker
 * on an entry whose whole payload held personal data in clear. Throws what is wrong.
 */
function checkContainedCopy(curFile: string, copyFile: string, seg: { segmentId: string; fromSeq: number; toSeq: number }, now: number): ContainedCheck {
  const a = new Database(curFile, { readonly: true, fileMustExist: true });
  const b = new Database(copyFile, { readonly: true, fileMustExist: true });
  try {
    b.pragma('trusted_schema = OFF');
    if ((b.pragma('application_id', { simple: true }) as number) !== SEGMENT_APPLICATION_ID) throw new ArchiveError('not a segment file');
    const meta = Object.fromEntries((b.prepare('SELECT key, value FROM segment_meta').all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
    if (meta.segment_id !== seg.segmentId || meta.from_seq !== String(seg.fromSeq) || meta.to_seq !== String(seg.toSeq)) throw new ArchiveError(`it describes segment ${meta.segment_id ?? '?'} (${meta.from_seq ?? '?'}..${meta.to_seq ?? '?'})`);
    const left = a.prepare(`SELECT ${ENTRY_COLUMNS} FROM entries ORDER BY seq`).iterate() as IterableIterator<EntryRow>;
    const right = b.prepare(`SELECT ${ENTRY_COLUMNS} FROM entries ORDER BY seq`).iterate() as IterableIterator<EntryRow>;
    const seqs: number[] = [];
    const classes: Record<string, number> = {};
    const kinds: Record<string, number> = {};
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
      const m = parseContainedPayload(p.payload);
      if (m === null) throw new ArchiveError(`seq ${p.seq}: the payload changed and is not a contained marker`);
      if (!sha256(o.payload).equals(o.payload_hash)) throw new ArchiveError(`seq ${p.seq}: was already dropped`);
      if (!containable(o.kind) || unsealedFieldsOf(o.kind, o.payload) === null) throw new ArchiveError(`seq ${p.seq}: its payload held no personal data in clear`);
      if (marker === null) marker = m;
      else if (marker.at !== m.at || marker.policyVersion !== m.policyVersion) throw new ArchiveError(`seq ${p.seq}: its contained marker differs from the others in the copy`);
      if (Date.parse(m.at) > now) throw new ArchiveError(`seq ${p.seq}: contained at ${m.at}, in the future`);
      seqs.push(p.seq);
      classes[p.retention_class] = (classes[p.retention_class] ?? 0) + 1;
      kinds[p.kind] = (kinds[p.kind] ?? 0) + 1;
    }
    if (marker === null) throw new ArchiveError('it contains no payload');
    return { seqs, classes, kinds, at: marker.at, policyVersion: marker.policyVersion };
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
