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
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sha256 } from './sha256.ts';
import { ENTRY_COLUMNS, archivedRanges, type EntryRow } from './store.ts';
import { openReadConnection } from './sqlite.ts';
import type { ArchiveStore } from './archive-store.ts';
import { checkCopy, deleteSuperseded, fetchVerified, replaceSegmentCopy, type CopyRules, type SegmentRef } from './pruned-copy.ts';
import { expiryOf, journaledPolicies, retentionAssignments, type JournaledPolicy, type RetentionAssignment } from './retention.ts';
import { droppedPayload, expiredProblem, parseDroppedPayload } from './dropped-payload.ts';
import { objectsOf, type CurrentObject } from './segments.ts';
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
        if (cleaned.deleted.length > 0)
          out.push({
            segmentId: r.segmentId,
            fromSeq: r.fromSeq,
            toSeq: r.toSeq,
            action: 'cleaned',
            generation: cur.generation,
            location: cur.location,
            droppedEntries: 0,
            classes: {},
            deleted: cleaned.deleted,
            kept: [],
          });
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
          out.push({
            segmentId: r.segmentId,
            fromSeq: r.fromSeq,
            toSeq: r.toSeq,
            action: 'would prune',
            generation: null,
            location: null,
            droppedEntries: due.seqs.length,
            classes: due.classes,
            deleted: [],
            kept: [],
          });
          continue;
        }
        out.push(
          await prune(
            writer,
            { segmentId: r.segmentId, fromSeq: r.fromSeq, toSeq: r.toSeq },
            cur,
            curFile,
            due,
            history,
            assignments,
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
function dueForDrop(
  file: string,
  at: number,
  history: readonly JournaledPolicy[],
  assignments: ReadonlyMap<number, readonly RetentionAssignment[]>,
): Due {
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

function prune(
  writer: JournalWriter,
  seg: SegmentRef,
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
  const policyVersion = (history[history.length - 1] as JournaledPolicy).policy.version;
  // A payload may carry the dropped marker when a policy the journal recorded let its class (or the longest
  // promise it was given) drop it by then.
  const rules: CopyRules = {
    word: 'dropped',
    parse: parseDroppedPayload,
    problem: (o, m) =>
      history.some((h) => h.version === m.policyVersion)
        ? expiredProblem(o, Date.parse(m.at), history, assignments.get(o.seq))
        : `dropped by policy version ${m.policyVersion}, which the journal never recorded`,
  };
  return replaceSegmentCopy({
    writer,
    seg,
    cur,
    curFile,
    staging,
    stores,
    store: options.store,
    cacheDir: options.cacheDir,
    seqs: due.seqs,
    marker: droppedPayload({ at: new Date(now()).toISOString(), policyVersion }),
    keepUntil: due.keepUntil,
    label: 'pruned copy',
    check: (file) => checkCopy(curFile, file, seg, rules, now()),
    onStep: (step) => options.onStep?.(`pruned-${step}`, seg.segmentId),
  }).then((r) => ({
    segmentId: seg.segmentId,
    fromSeq: seg.fromSeq,
    toSeq: seg.toSeq,
    action: 'pruned' as const,
    generation: r.generation,
    location: r.location,
    droppedEntries: r.result.seqs.length,
    classes: r.result.classes,
    deleted: r.deleted,
    kept: r.kept,
  }));
}
