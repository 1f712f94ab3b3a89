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
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { sha256 } from './sha256.ts';
import { ENTRY_COLUMNS, archivedRanges, type EntryRow } from './store.ts';
import { openReadConnection } from './sqlite.ts';
import type { ArchiveStore } from './archive-store.ts';
import { expiryOf, journaledPolicies, retentionAssignments, type JournaledPolicy, type RetentionAssignment } from './retention.ts';
import { currentObject, monthOf, objectsOf, type CurrentObject } from './segments.ts';
import { ArchiveError } from './errors/archive.error.ts';
import { CONTAINMENT_REASON, containable, containedPayload, parseContainedPayload, unsealedFieldsOf } from './contained-payload.ts';
import type { JournalWriter } from './writer.ts';
import { checkCopy, fetchVerified, replaceSegmentCopy, sha256Hex, type CopyRules, type SegmentRef } from './pruned-copy.ts';

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
    for (const r of db
      .prepare('SELECT seq, kind, recorded_at, payload, payload_hash FROM entries ORDER BY seq')
      .iterate() as IterableIterator<ScanRow>) {
      hotEntries++;
      seen.add(r.seq);
      const u = unsealedFieldsOf(r.kind, r.payload);
      if (u)
        findings.push({
          seq: r.seq,
          kind: r.kind,
          recordedAt: r.recorded_at,
          fields: u.fields,
          byShape: u.byShape,
          where: 'hot',
          segmentId: null,
          month: monthOf(r.recorded_at).id,
          containable: containable(r.kind),
        });
    }
    const segments: ScannedSegment[] = [];
    for (const range of archivedRanges(db)) {
      const local = localCopy(db, range.segmentId, cacheDir);
      segments.push({
        segmentId: range.segmentId,
        fromSeq: range.fromSeq,
        toSeq: range.toSeq,
        scanned: local.file !== null,
        source: local.source,
      });
      if (local.file === null) continue;
      const seg = new Database(local.file, { readonly: true, fileMustExist: true });
      try {
        seg.pragma('trusted_schema = OFF');
        for (const r of seg
          .prepare('SELECT seq, kind, recorded_at, payload, payload_hash FROM entries ORDER BY seq')
          .iterate() as IterableIterator<ScanRow>) {
          if (seen.has(r.seq)) continue;
          if (!sha256(r.payload).equals(r.payload_hash)) {
            const m = parseContainedPayload(r.payload);
            if (m) contained.push({ seq: r.seq, kind: r.kind, recordedAt: r.recorded_at, segmentId: range.segmentId, droppedAt: m.at });
            continue;
          }
          const u = unsealedFieldsOf(r.kind, r.payload);
          if (u)
            findings.push({
              seq: r.seq,
              kind: r.kind,
              recordedAt: r.recorded_at,
              fields: u.fields,
              byShape: u.byShape,
              where: 'archive',
              segmentId: range.segmentId,
              month: monthOf(r.recorded_at).id,
              containable: containable(r.kind),
            });
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
  if (!cur.location.startsWith('dir:'))
    return {
      file: null,
      source: `not scanned: ${cur.location} is not on this machine (\`activity-journal verify --include-archives\` fetches it into the local cache; then scan again)`,
    };
  const gz = existsSync(cur.location.slice(4)) ? readFileSync(cur.location.slice(4)) : null;
  if (gz === null) return { file: null, source: `not scanned: ${cur.location} is missing` };
  if (sha256Hex(gz) !== cur.sha256) return { file: null, source: `not scanned: ${cur.location} does not match the hash journaled for it` };
  const raw = gunzipSync(gz);
  if (sha256Hex(raw) !== cur.fileSha256)
    return { file: null, source: `not scanned: ${cur.location} does not decompress to the journaled file hash` };
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
    // A promise raised after append (retention.assigned) lengthens how long the store must protect the copy.
    const assignments = retentionAssignments(db);
    for (const r of ranges) {
      const objects = objectsOf(db, r.segmentId);
      const cur = objects[objects.length - 1] as CurrentObject;
      mkdirSync(staging, { recursive: true, mode: 0o700 });
      const curFile = join(staging, `${r.segmentId}.contain.sqlite`);
      writeFileSync(curFile, await fetchVerified(r.segmentId, cur, stores), { mode: 0o600 });
      try {
        const due = dueForContainment(curFile, history, assignments);
        if (due.seqs.length === 0) continue;
        if (options.dryRun) {
          out.push({
            segmentId: r.segmentId,
            fromSeq: r.fromSeq,
            toSeq: r.toSeq,
            action: 'would contain',
            generation: null,
            location: null,
            entries: due.seqs.length,
            seqs: due.seqs,
            kinds: due.kinds,
            deleted: [],
            kept: [],
          });
          continue;
        }
        const latest = history[history.length - 1];
        if (!latest)
          throw new ArchiveError(
            `segment ${r.segmentId}: no retention policy version is journaled; open the journal once with a retention policy (activity-journal archive does) before containing`,
          );
        out.push(
          await contain(
            writer,
            { segmentId: r.segmentId, fromSeq: r.fromSeq, toSeq: r.toSeq },
            cur,
            curFile,
            due,
            latest.version,
            staging,
            stores,
            options,
            now,
          ),
        );
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
function dueForContainment(
  file: string,
  history: readonly JournaledPolicy[],
  assignments: ReadonlyMap<number, readonly RetentionAssignment[]>,
): Due {
  const seg = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const seqs: number[] = [];
    const classes: Record<string, number> = {};
    const kinds: Record<string, number> = {};
    let keepUntil: number | null = null;
    for (const row of seg.prepare(`SELECT ${ENTRY_COLUMNS} FROM entries ORDER BY seq`).iterate() as IterableIterator<EntryRow>) {
      const { expiresAt } = expiryOf(
        { seq: row.seq, recordedAt: row.recorded_at, retentionClass: row.retention_class },
        history,
        assignments.get(row.seq),
      );
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
  seg: SegmentRef,
  cur: CurrentObject,
  curFile: string,
  due: Due,
  policyVersion: number,
  staging: string,
  stores: readonly ArchiveStore[],
  options: ContainOptions,
  now: () => number,
): Promise<ContainSummary> {
  // A payload may carry the contained marker when it is of a kind containment drops and held personal data in clear.
  const rules: CopyRules = {
    word: 'contained',
    parse: parseContainedPayload,
    problem: (o) =>
      containable(o.kind) && unsealedFieldsOf(o.kind, o.payload) !== null ? null : 'its payload held no personal data in clear',
  };
  const r = await replaceSegmentCopy({
    writer,
    seg,
    cur,
    curFile,
    staging,
    stores,
    store: options.store,
    cacheDir: options.cacheDir,
    seqs: due.seqs,
    marker: containedPayload({ at: new Date(now()).toISOString(), policyVersion }),
    keepUntil: due.keepUntil,
    label: 'contained copy',
    check: (file) => checkCopy(curFile, file, seg, rules, now()),
    commitExtra: (checked) => ({ reason: CONTAINMENT_REASON, kinds: checked.kinds }),
    onStep: (step) => options.onStep?.(`contained-${step}`, seg.segmentId),
  });
  return {
    segmentId: seg.segmentId,
    fromSeq: seg.fromSeq,
    toSeq: seg.toSeq,
    action: 'contained',
    generation: r.generation,
    location: r.location,
    entries: r.result.seqs.length,
    seqs: r.result.seqs,
    kinds: r.result.kinds,
    deleted: r.deleted,
    kept: r.kept,
  };
}
