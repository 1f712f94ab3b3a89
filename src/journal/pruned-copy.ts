/**
 * Replacing an archived segment's object by a copy with some payloads dropped: what retention expiry
 * (expiry.ts, the dropped marker) and containment of unsealed personal data (containment.ts, the contained
 * marker) both do, in the same four steps:
 * 1. the copy: the current file with those payloads replaced by one marker, rebuilt (VACUUM) so no byte of them
 *    stays in a free page;
 * 2. read back what the store holds (after a crash it may be an earlier run's copy) and check it against the
 *    current copy, on its own terms;
 * 3. journal it (segment.pruned): from then on readers use the copy;
 * 4. only then delete what it supersedes, where the store can, and the readers' cached copy.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { canonicalHeader } from './entry.ts';
import { sha256 } from './sha256.ts';
import { ENTRY_COLUMNS, rowHeader, type EntryRow } from './store.ts';
import { openReadConnection } from './sqlite.ts';
import { storeFor, type ArchiveStore } from './archive-store.ts';
import { SEGMENT_APPLICATION_ID, objectsOf, type CurrentObject } from './segments.ts';
import { ArchiveError } from './errors/archive.error.ts';
import type { JournalWriter, PruneCommit } from './writer.ts';

export interface SegmentRef {
  readonly segmentId: string;
  readonly fromSeq: number;
  readonly toSeq: number;
}

/** What a checked copy drops: its seqs, counted by class and kind, and the one marker it carries. */
export interface CopyCheck {
  readonly seqs: number[];
  readonly classes: Record<string, number>;
  readonly kinds: Record<string, number>;
  readonly at: string;
  readonly policyVersion: number;
}

/** How one kind of copy marks a dropped payload, and when a row may carry that mark. */
export interface CopyRules {
  /** The marker's name in messages: "dropped", "contained". */
  readonly word: string;
  readonly parse: (payload: string) => { at: string; policyVersion: number } | null;
  /** Why the row `o` (its payload whole) may not be replaced by marker `m`, or null when it may. */
  readonly problem: (o: EntryRow, m: { at: string; policyVersion: number }) => string | null;
}

/**
 * A copy against the current copy it replaces (whose hash the journal holds): the same segment, the same rows
 * with every column but the payload identical (and each header still hashing to its leaf), and each payload
 * either unchanged or one marker the rules accept on that row. Throws what is wrong.
 */
export function checkCopy(curFile: string, copyFile: string, seg: SegmentRef, rules: CopyRules, now: number): CopyCheck {
  const a = new Database(curFile, { readonly: true, fileMustExist: true });
  const b = new Database(copyFile, { readonly: true, fileMustExist: true });
  try {
    b.pragma('trusted_schema = OFF');
    if ((b.pragma('application_id', { simple: true }) as number) !== SEGMENT_APPLICATION_ID) throw new ArchiveError('not a segment file');
    const meta = Object.fromEntries(
      (b.prepare('SELECT key, value FROM segment_meta').all() as { key: string; value: string }[]).map((r) => [r.key, r.value]),
    );
    if (meta.segment_id !== seg.segmentId || meta.from_seq !== String(seg.fromSeq) || meta.to_seq !== String(seg.toSeq))
      throw new ArchiveError(`it describes segment ${meta.segment_id ?? '?'} (${meta.from_seq ?? '?'}..${meta.to_seq ?? '?'})`);
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
      if (!sha256('\u0000' + canonicalHeader(rowHeader(p))).equals(p.leaf_hash))
        throw new ArchiveError(`seq ${p.seq}: the header does not match its leaf hash`);
      if (p.payload === o.payload) continue;
      const m = rules.parse(p.payload);
      if (m === null) throw new ArchiveError(`seq ${p.seq}: the payload changed and is not a ${rules.word} marker`);
      if (!sha256(o.payload).equals(o.payload_hash)) throw new ArchiveError(`seq ${p.seq}: was already dropped`);
      if (marker === null) marker = m;
      else if (marker.at !== m.at || marker.policyVersion !== m.policyVersion)
        throw new ArchiveError(`seq ${p.seq}: its ${rules.word} marker differs from the others in the copy`);
      if (Date.parse(m.at) > now) throw new ArchiveError(`seq ${p.seq}: ${rules.word} at ${m.at}, in the future`);
      const problem = rules.problem(o, m);
      if (problem !== null) throw new ArchiveError(`seq ${p.seq}: ${problem}`);
      seqs.push(p.seq);
      classes[p.retention_class] = (classes[p.retention_class] ?? 0) + 1;
      kinds[p.kind] = (kinds[p.kind] ?? 0) + 1;
    }
    if (marker === null) throw new ArchiveError(`it holds no ${rules.word} payload`);
    return { seqs, classes, kinds, at: marker.at, policyVersion: marker.policyVersion };
  } finally {
    a.close();
    b.close();
  }
}

export interface ReplaceOptions {
  readonly writer: JournalWriter;
  readonly seg: SegmentRef;
  readonly cur: CurrentObject;
  /** The current object's file, fetched and verified (fetchVerified). */
  readonly curFile: string;
  readonly seqs: readonly number[];
  /** The marker text each of `seqs` gets. */
  readonly marker: string;
  /** How long the store must protect the copy (ms), or null. */
  readonly keepUntil: number | null;
  readonly staging: string;
  /** Where the copy goes, and every store objects may be read (and deleted) from. */
  readonly store: ArchiveStore;
  readonly stores: readonly ArchiveStore[];
  readonly cacheDir?: string | undefined;
  /** "pruned copy", "contained copy": in messages. */
  readonly label: string;
  readonly check: (copyFile: string) => CopyCheck;
  /** The segment.pruned fields beyond what every copy records (containment's reason and kinds). */
  readonly commitExtra?: (checked: CopyCheck) => Pick<PruneCommit, 'reason' | 'kinds'>;
  /** Called after each of the steps "uploaded", "committed", "deleted" (tests inject crashes here). */
  readonly onStep?: (step: 'uploaded' | 'committed' | 'deleted') => void | Promise<void>;
}

export interface Replaced {
  readonly generation: number;
  readonly location: string;
  readonly result: CopyCheck;
  readonly deleted: string[];
  readonly kept: string[];
}

/** The four steps of the module comment; returns what was journaled and cleaned up. */
export async function replaceSegmentCopy(o: ReplaceOptions): Promise<Replaced> {
  const { seg, cur, store } = o;
  const generation = cur.generation + 1;
  const built = join(o.staging, `${seg.segmentId}.pruned-${generation}.sqlite`);
  rmSync(built, { force: true });
  copyFileSync(o.curFile, built);
  const w = new Database(built);
  try {
    const upd = w.prepare('UPDATE entries SET payload = ? WHERE seq = ?');
    w.transaction(() => {
      for (const s of o.seqs) upd.run(o.marker, s);
      w.prepare('INSERT OR REPLACE INTO segment_meta (key, value) VALUES (?, ?)').run('pruned_generation', String(generation));
    })();
    w.exec('VACUUM');
  } finally {
    w.close();
  }
  const gz = gzipSync(readFileSync(built), { level: 9 });
  rmSync(built, { force: true });
  const put = await store.put(`${o.writer.identity.journalId}/${seg.segmentId}.pruned-${generation}.sqlite.gz`, gz, {
    keepUntil: o.keepUntil,
  });
  await o.onStep?.('uploaded');
  const back = await store.get(put.location);
  if (back === null)
    throw new ArchiveError(`segment ${seg.segmentId}: ${store.description} does not return ${put.location} after writing it`);
  const backHash = sha256Hex(back);
  if (!put.alreadyPresent && backHash !== sha256Hex(gz))
    throw new ArchiveError(`segment ${seg.segmentId}: the stored ${o.label} (${put.location}) hashes ${backHash}, not what was written`);
  const raw = gunzipSync(back);
  const checkFile = join(o.staging, `${seg.segmentId}.pruned-${generation}.check.sqlite`);
  writeFileSync(checkFile, raw, { mode: 0o600 });
  let result: CopyCheck;
  try {
    result = o.check(checkFile);
  } catch (err) {
    const why = (err as Error).message;
    throw new ArchiveError(
      `${put.alreadyPresent ? 'an object already stored under that name' : `the ${o.label}`} (${put.location}) is not a valid ${o.label}: ${why}${put.alreadyPresent ? '; it cannot be replaced (write-once store): remove it if the store allows, then re-run' : ''}`,
    );
  } finally {
    rmSync(checkFile, { force: true });
  }
  await o.writer.commitPrune({
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
    ...o.commitExtra?.(result),
  });
  await o.onStep?.('committed');
  const db = openReadConnection(o.writer.path);
  let cleaned: { deleted: string[]; kept: string[] };
  try {
    cleaned = await deleteSuperseded(objectsOf(db, seg.segmentId).slice(0, -1), o.stores);
  } finally {
    db.close();
  }
  if (o.cacheDir) rmSync(join(o.cacheDir, `${seg.segmentId}.sqlite`), { force: true });
  await o.onStep?.('deleted');
  return { generation, location: put.location, result, ...cleaned };
}

/** The current object's bytes, decompressed, checked against the hashes the journal holds. */
export async function fetchVerified(segmentId: string, cur: CurrentObject, stores: readonly ArchiveStore[]): Promise<Buffer> {
  const gz = await storeFor(cur.location, stores).get(cur.location);
  if (gz === null) throw new ArchiveError(`archived segment ${segmentId} is missing from ${cur.location}`);
  if (sha256Hex(gz) !== cur.sha256)
    throw new ArchiveError(`archived segment ${segmentId} at ${cur.location} does not match the hash journaled for it`);
  const raw = gunzipSync(gz);
  if (sha256Hex(raw) !== cur.fileSha256)
    throw new ArchiveError(`archived segment ${segmentId}: the decompressed file does not match the journaled hash`);
  return raw;
}

/** Deletes superseded objects from stores that can; returns which were deleted and which stay. */
export async function deleteSuperseded(
  objects: readonly CurrentObject[],
  stores: readonly ArchiveStore[],
): Promise<{ deleted: string[]; kept: string[] }> {
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

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
