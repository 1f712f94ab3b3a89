/**
 * Verification: recompute every payload hash, leaf, chain hash, seal and stored tree node from the rows, check
 * every checkpoint recorded in the journal and, when given, checkpoints held by anchors. It stops at the first
 * entry that is wrong and says which and why.
 */
import { timingSafeEqual } from 'node:crypto';
import { sha256, sha256Pair } from './sha256.ts';
import type Database from 'better-sqlite3';
import { canonicalHeader } from './entry.ts';
import { CompactTree } from './merkle.ts';
import { ENTRY_COLUMNS, StoredNodes, archivedRanges, archivedUpTo, rowHeader, type EntryRow } from './store.ts';
import { parseVerifierKey, type Verifier } from './keys.ts';
import { parseSignedCheckpoint, verifySignedCheckpoint } from './checkpoint.ts';
import { sealOf } from './identity.ts';
import { journaledPolicies, type RetentionAssignment } from './retention.ts';
import { droppedPayloadProblem, indexPrunes, pruneRecordOf, type PruneRecord } from './dropped-payload.ts';
import { CONTAINMENT_REASON, containedPayloadProblem } from './contained-payload.ts';

export interface AnchoredNote {
  /** Where it came from, for messages (e.g. the anchor file's path). */
  readonly source: string;
  readonly note: string;
}

export interface VerifyOptions {
  /** Check each entry's seal; without the key, seals are skipped (and the report says so). */
  readonly sealKey?: Buffer | null;
  /** The checkpoint key to trust (e.g. pinned by an anchor); otherwise the key named in the journal's first entry. */
  readonly verifier?: Verifier | null;
  readonly anchoredNotes?: readonly AnchoredNote[];
  /** Verify only from this seq on, trusting the stored chain hash and tree nodes before it (the writer's start-up check). */
  readonly fromSeq?: number;
  readonly onProgress?: (done: number, total: number) => void;
  /**
   * The archived segments, opened (read-only) in seq order: verification then starts at seq 0 in the archives
   * and continues the chain and the tree into hot storage. Without them, a journal with archived segments is
   * verified from its first hot seq, trusting the chain head and tree frontier recorded when it was archived.
   */
  readonly archives?: readonly ArchivedSegmentSource[];
}

/** An archived segment file opened for reading. */
export interface ArchivedSegmentSource {
  readonly segmentId: string;
  readonly fromSeq: number;
  readonly toSeq: number;
  readonly db: Database.Database;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly entries: number;
  readonly verifiedFrom: number;
  readonly firstBadSeq: number | null;
  readonly reason: string | null;
  readonly checkpointsChecked: number;
  readonly anchorsChecked: number;
  readonly sealsChecked: boolean;
  readonly rootHash: string;
  readonly chainHead: string;
}

const ZERO = Buffer.alloc(32);

/**
 * Verifies the journal behind `db` (read-only is enough). Never throws for a bad journal: the report says what is wrong.
 *
 * The phases, in order (each stops the run at its first finding):
 * 1. `planRun`: where verification starts (seq 0 through the archives, or the first hot / requested seq) and how many entries it will read;
 * 2. `startingPoint`: the chain hash and Merkle tree before that seq (zero, or trusted from storage after checking the kept journal.created entry);
 * 3. the claims read up front: anchored checkpoints (`anchorClaims`), segment.sealed checkpoints (`sealedClaims`), and the
 *    retention evidence that excuses a dropped payload (`expiryEvidence`);
 * 4. `scanEntries`: every row in seq order, recomputing its hashes and checking what its kind promises;
 * 5. `checkAnchors`: each anchored checkpoint against the roots and chain heads the scan captured.
 */
export function verifyJournal(db: Database.Database, options: VerifyOptions = {}): VerifyReport {
  const run = planRun(db, options);
  const position = startingPoint(run);
  if (position instanceof Finding) return failedReport(run, position);
  const anchors = anchorClaims(run, position);
  if (anchors instanceof Finding) return failedReport(run, anchors);
  const sealed = sealedClaims(run);
  if (sealed instanceof Finding) return failedReport(run, sealed);
  const evidence = expiryEvidence(run);
  if (evidence instanceof Finding) return failedReport(run, evidence);
  const entries = scanEntries(run, position, { anchored: anchors.seen, sealed }, evidence);
  if (entries instanceof Finding) return failedReport(run, entries);
  const anchorsChecked = checkAnchors(run, anchors.parsed, anchors.seen, entries);
  if (anchorsChecked instanceof Finding) return failedReport(run, anchorsChecked);
  return {
    ok: true,
    entries,
    verifiedFrom: run.fromSeq,
    firstBadSeq: null,
    reason: null,
    checkpointsChecked: run.checkpoints,
    anchorsChecked,
    sealsChecked: run.sealKey !== null,
    rootHash: Buffer.from(position.tree.root()).toString('hex'),
    chainHead: position.chain.toString('hex'),
  };
}

/** What one verification run knows before it reads an entry, and the two things the scan updates as it goes. */
interface VerifyRun {
  readonly db: Database.Database;
  readonly options: VerifyOptions;
  readonly ranges: ReturnType<typeof archivedRanges>;
  /** The first seq still in hot storage (0 when nothing is archived). */
  readonly hotFrom: number;
  /** The archived segments to verify first, or null when verification starts in hot storage. */
  readonly archives: readonly ArchivedSegmentSource[] | null;
  readonly fromSeq: number;
  readonly sealKey: Buffer | null;
  /** The entries the run will read (the progress callback's total, and the entry count of most failed reports). */
  readonly total: number;
  /** The trusted checkpoint key, or (once read) the one the journal.created entry names. */
  verifier: Verifier | null;
  /** Checkpoint entries checked so far. */
  checkpoints: number;
}

/** The first thing found wrong: at which seq (null when no entry is to blame), why, and how many entries the report counts. */
class Finding {
  constructor(
    readonly seq: number | null,
    readonly reason: string,
    readonly entries?: number,
  ) {}
}

/** The chain hash and Merkle tree after the entries verified (or trusted) so far; the scan advances both. */
interface Position {
  chain: Buffer;
  readonly tree: CompactTree;
}

/** A root and chain head captured when the scan passed a tree size some checkpoint claims. */
interface Seen {
  readonly root: Buffer;
  readonly chain: Buffer;
}

interface ParsedAnchor {
  readonly source: string;
  readonly note: string;
  readonly size: number;
}

interface AnchorClaims {
  /** The anchored checkpoints at or after the run's start, in the order given. */
  readonly parsed: ParsedAnchor[];
  /** Each claimed tree size, with what the scan saw there (null until it passes it). */
  readonly seen: Map<number, Seen | null>;
}

/** A segment.sealed entry's checkpoint, keyed by the tree size it covers (its segment's last seq + 1). */
type SealedClaims = Map<number, { seq: number; note: string }>;

/** What excuses a payload that no longer matches its hash: the prune records, the journaled policies, later assignments. */
interface ExpiryEvidence {
  readonly droppedAt: Map<number, PruneRecord>;
  readonly history: ReturnType<typeof journaledPolicies>;
  readonly assignments: Map<number, RetentionAssignment[]>;
}

function failedReport(run: VerifyRun, finding: Finding): VerifyReport {
  return {
    ok: false,
    entries: finding.entries ?? run.total,
    verifiedFrom: run.fromSeq,
    firstBadSeq: finding.seq,
    reason: finding.reason,
    checkpointsChecked: run.checkpoints,
    anchorsChecked: 0,
    sealsChecked: run.sealKey !== null,
    rootHash: '',
    chainHead: '',
  };
}

/** Phase 1: where to start (with the archives, seq 0; without, not before the first hot row) and how many entries to read. */
function planRun(db: Database.Database, options: VerifyOptions): VerifyRun {
  const ranges = archivedRanges(db);
  const hotFrom = archivedUpTo(ranges);
  const archives = options.archives !== undefined && (options.fromSeq ?? 0) === 0 && hotFrom > 0 ? options.archives : null;
  // Without the archives, verification cannot start before the first hot row.
  const fromSeq = archives !== null ? 0 : Math.max(options.fromSeq ?? 0, hotFrom);
  let total = (db.prepare('SELECT count(*) AS n FROM entries WHERE seq >= ?').get(archives !== null ? hotFrom : fromSeq) as { n: number })
    .n;
  for (const a of archives ?? []) total += (a.db.prepare('SELECT count(*) AS n FROM entries').get() as { n: number }).n;
  return {
    db,
    options,
    ranges,
    hotFrom,
    archives,
    fromSeq,
    sealKey: options.sealKey ?? null,
    total,
    verifier: options.verifier ?? null,
    checkpoints: 0,
  };
}

/**
 * Phase 2: the chain and tree before `fromSeq`. From seq 0 they are empty; otherwise the previous row's chain hash (or
 * the chain head recorded when its segment was archived) and the stored tree nodes are trusted, the kept
 * journal.created entry is checked, and (unless one is trusted already) its checkpoint key is taken.
 */
function startingPoint(run: VerifyRun): Position | Finding {
  const { db, fromSeq, hotFrom } = run;
  if (fromSeq === 0) return { chain: ZERO, tree: new CompactTree() };
  const prev = db.prepare('SELECT chain_hash FROM entries WHERE seq = ?').get(fromSeq - 1) as { chain_hash: Buffer } | undefined;
  const recorded = run.ranges.find((r) => r.toSeq === fromSeq - 1);
  if (!prev && !recorded) return new Finding(fromSeq - 1, `entry seq ${fromSeq - 1} is missing`);
  const chain = prev ? prev.chain_hash : (recorded as { chainHead: Buffer }).chainHead;
  let tree: CompactTree;
  try {
    tree = CompactTree.fromNodeSource(fromSeq, new StoredNodes(db));
  } catch (err) {
    return new Finding(fromSeq - 1, `stored tree nodes before seq ${fromSeq} are unreadable: ${(err as Error).message}`);
  }
  const genesis = db.prepare(`SELECT ${ENTRY_COLUMNS} FROM entries WHERE seq = 0`).get() as EntryRow | undefined;
  if (hotFrom > 0 && genesis) {
    // The journal.created entry stays hot when its segment is archived: check it still is what was chained.
    const leaf = sha256('\u0000' + canonicalHeader(rowHeader(genesis)));
    if (
      !equal(sha256(genesis.payload), genesis.payload_hash) ||
      !equal(leaf, genesis.leaf_hash) ||
      !equal(sha256Pair(ZERO, leaf), genesis.chain_hash)
    ) {
      return new Finding(0, 'the journal.created entry does not match its hashes');
    }
  }
  if (run.verifier === null) run.verifier = genesisVerifier(genesis?.payload);
  return { chain, tree };
}

/** Phase 3a: the anchored checkpoints' tree sizes, so the scan can capture the root and chain head as it passes each. */
function anchorClaims(run: VerifyRun, start: Position): AnchorClaims | Finding {
  // Roots and chain heads at the sizes that anchored checkpoints claim, captured as the scan passes them.
  const seen = new Map<number, Seen | null>();
  const parsed: ParsedAnchor[] = [];
  for (const a of run.options.anchoredNotes ?? []) {
    try {
      const size = parseSignedCheckpoint(a.note).checkpoint.treeSize;
      // Checkpoints inside archived segments are checked when the archives are verified too.
      if (size < run.fromSeq) continue;
      parsed.push({ ...a, size });
      seen.set(size, null);
    } catch (err) {
      return new Finding(null, `anchored checkpoint ${a.source} is malformed: ${(err as Error).message}`);
    }
  }
  if (seen.has(run.fromSeq)) seen.set(run.fromSeq, { root: Buffer.from(start.tree.root()), chain: start.chain });
  return { parsed, seen };
}

/** The rows of one kind at or after the run's start, from the archives (when given) and then hot storage. */
function entriesOfKind(run: VerifyRun, kind: string): { seq: number; payload: string }[] {
  const out: { seq: number; payload: string }[] = [];
  for (const source of [...(run.archives ?? []).map((a) => a.db), run.db]) {
    out.push(
      ...(source.prepare(`SELECT seq, payload FROM entries WHERE kind = ? AND seq >= ?`).all(kind, run.fromSeq) as {
        seq: number;
        payload: string;
      }[]),
    );
  }
  return out;
}

/** Phase 3b: signed checkpoints in segment.sealed entries; each must match the tree and chain at its segment's end. */
function sealedClaims(run: VerifyRun): SealedClaims | Finding {
  const sealed: SealedClaims = new Map();
  for (const r of entriesOfKind(run, 'segment.sealed')) {
    try {
      const p = JSON.parse(r.payload) as { note: string; toSeq: number };
      if (p.toSeq + 1 > run.fromSeq) sealed.set(p.toSeq + 1, { seq: r.seq, note: p.note });
    } catch {
      return new Finding(r.seq, 'the segment.sealed payload is not JSON');
    }
  }
  return sealed;
}

/**
 * Phase 3c: payloads dropped by retention expiry (archived segments only) are accepted where a segment.pruned entry
 * lists the seq and the policy allowed it (see dropped-payload.ts). The prune entries are themselves verified in the
 * scan. Promises raised later (retention.assigned) are read from the entries themselves (hashed, and verified in the
 * scan), not from the lookup table expiry reads; a table row missing or different from its entry is a failure.
 */
function expiryEvidence(run: VerifyRun): ExpiryEvidence | Finding {
  const { db } = run;
  const prunes: PruneRecord[] = [];
  for (const r of entriesOfKind(run, 'segment.pruned')) {
    const rec = pruneRecordOf(r.seq, r.payload);
    if (rec === null) return new Finding(r.seq, 'the segment.pruned payload is malformed');
    prunes.push(rec);
  }
  const droppedAt = indexPrunes(prunes);
  const history = droppedAt.size > 0 || run.archives !== null ? journaledPolicies(db) : [];
  const assignments = new Map<number, RetentionAssignment[]>();
  const hasAssignmentTable =
    db.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'retention_assignments'`).get() !== undefined;
  const assignmentRow = hasAssignmentTable
    ? db.prepare('SELECT target_seq, retention_class FROM retention_assignments WHERE assigned_seq = ?')
    : null;
  for (const r of entriesOfKind(run, 'retention.assigned')) {
    let a: { entrySeq?: unknown; retentionClass?: unknown };
    try {
      a = JSON.parse(r.payload) as typeof a;
    } catch {
      return new Finding(r.seq, 'the retention.assigned payload is not JSON');
    }
    if (typeof a.entrySeq !== 'number' || typeof a.retentionClass !== 'string')
      return new Finding(r.seq, 'the retention.assigned payload is malformed');
    const row = assignmentRow?.get(r.seq) as { target_seq: number; retention_class: string } | undefined;
    if (!row || row.target_seq !== a.entrySeq || row.retention_class !== a.retentionClass)
      return new Finding(
        r.seq,
        'the retention.assigned entry is missing from (or differs from) the retention_assignments table that expiry reads',
      );
    const list = assignments.get(a.entrySeq) ?? [];
    list.push({ seq: r.seq, targetSeq: a.entrySeq, retentionClass: a.retentionClass });
    assignments.set(a.entrySeq, list);
  }
  return { droppedAt, history, assignments };
}

/**
 * Phase 4: every row in seq order (the archives first, when given): no gap, its hashes (`checkEntryHashes`), then what
 * its kind promises (`checkEntryKind`). Captures the root and chain head at each size a checkpoint claims, and reports
 * progress every 16,384 entries and at the end. Returns the number of entries, or the first finding.
 */
function scanEntries(
  run: VerifyRun,
  position: Position,
  claims: { readonly anchored: Map<number, Seen | null>; readonly sealed: SealedClaims },
  evidence: ExpiryEvidence,
): number | Finding {
  const { options } = run;
  const sealedSeen = new Map<number, Seen>();
  let expected = run.fromSeq;
  for (const row of rowSources(run.db, run.archives, run.fromSeq, run.hotFrom)) {
    const seq = expected;
    if (row.seq !== seq)
      return new Finding(
        seq,
        row.seq > seq ? `entry seq ${seq} is missing (the next entry is seq ${row.seq})` : `unexpected entry seq ${row.seq}`,
      );
    const before = { root: row.kind === 'checkpoint' ? position.tree.root() : null, chain: position.chain };
    const problem = checkEntryHashes(run, position, evidence, row) ?? checkEntryKind(run, row, before, claims.sealed, sealedSeen);
    if (problem !== null) return new Finding(seq, problem);
    expected++;
    if (claims.sealed.has(expected)) sealedSeen.set(expected, { root: Buffer.from(position.tree.root()), chain: position.chain });
    if (claims.anchored.has(expected)) claims.anchored.set(expected, { root: Buffer.from(position.tree.root()), chain: position.chain });
    if (options.onProgress && (expected & 0x3fff) === 0) options.onProgress(expected, run.total);
  }
  options.onProgress?.(expected, run.total);
  return expected;
}

/**
 * One row's hashes: the payload hash (or a drop that retention or containment accounts for), the leaf hash of its
 * header, the chain hash, the seal (when the key is known) and the stored Merkle nodes. Advances the position.
 */
function checkEntryHashes(run: VerifyRun, position: Position, evidence: ExpiryEvidence, row: EntryRow): string | null {
  const seq = row.seq;
  if (!equal(sha256(row.payload), row.payload_hash)) {
    const record = evidence.droppedAt.get(seq);
    // Unsealed personal data an older version wrote, dropped by containment (contained-payload.ts), or an expired payload.
    const problem =
      record?.reason === CONTAINMENT_REASON
        ? containedPayloadProblem(row, record)
        : droppedPayloadProblem(row, record, evidence.history, evidence.assignments.get(seq));
    if (problem !== null) return problem;
  }
  const leaf = sha256('\u0000' + canonicalHeader(rowHeader(row)));
  if (!equal(leaf, row.leaf_hash)) return 'the header does not match its leaf hash';
  position.chain = sha256Pair(position.chain, leaf);
  if (!equal(position.chain, row.chain_hash)) return 'the chain hash does not follow from the previous entry';
  if (run.sealKey && !equal(sealOf(run.sealKey, position.chain), row.seal))
    return "the entry seal is wrong (written without the journal's seal key)";
  const nodes = position.tree.append(leaf);
  if (!nodesEqual(nodes, row.tree_nodes)) return 'the stored Merkle tree nodes are wrong';
  return null;
}

/**
 * What a row's kind promises: seq 0 is the journal.created entry naming the (trusted) checkpoint key; a checkpoint
 * entry is signed and matches the tree and chain before it; a segment.sealed entry's checkpoint matches its segment.
 */
function checkEntryKind(
  run: VerifyRun,
  row: EntryRow,
  before: { readonly root: Uint8Array | null; readonly chain: Buffer },
  sealed: SealedClaims,
  sealedSeen: ReadonlyMap<number, Seen>,
): string | null {
  const seq = row.seq;
  if (seq === 0) {
    if (row.kind !== 'journal.created') return 'the first entry is not the journal.created entry';
    const named = genesisVerifier(row.payload);
    if (named === null) return 'the journal.created entry names no valid checkpoint key';
    if (run.verifier !== null && run.verifier.verifierKey !== named.verifierKey)
      return `the journal names checkpoint key ${named.verifierKey}, not the trusted key ${run.verifier.verifierKey}`;
    run.verifier = named;
  } else if (row.kind === 'checkpoint') {
    run.checkpoints++;
    return checkCheckpointEntry(row, run.verifier, seq, before.root as Uint8Array, before.chain);
  } else if (row.kind === 'segment.sealed') {
    const claim = [...sealed.entries()].find(([, v]) => v.seq === seq);
    if (claim) {
      const seen = sealedSeen.get(claim[0]);
      const cp = run.verifier === null ? null : verifySignedCheckpoint(claim[1].note, run.verifier);
      if (cp === null) return "the segment.sealed checkpoint is not signed by the journal's key";
      if (!seen || cp.treeSize !== claim[0] || !equal(seen.root, cp.rootHash) || !equal(seen.chain, cp.chainHead))
        return `the segment.sealed checkpoint does not match the entries before seq ${claim[0]}`;
    }
  }
  return null;
}

/**
 * Phase 5: each anchored checkpoint, in size order so that the first mismatch bounds where the journal went wrong:
 * signed by the journal's key, not larger than the journal, and matching what the scan saw at its size.
 * Returns how many were checked.
 */
function checkAnchors(run: VerifyRun, parsed: ParsedAnchor[], seenAt: ReadonlyMap<number, Seen | null>, entries: number): number | Finding {
  const { verifier } = run;
  let anchorsChecked = 0;
  parsed.sort((a, b) => a.size - b.size);
  let lastGood = 0;
  for (const a of parsed) {
    if (verifier === null || verifySignedCheckpoint(a.note, verifier) === null)
      return new Finding(null, `anchor mismatch: ${a.source} is not signed by this journal's checkpoint key`, entries);
    const cp = parseSignedCheckpoint(a.note).checkpoint;
    if (cp.treeSize > entries) {
      return new Finding(
        entries,
        `anchor mismatch: ${a.source} holds a signed checkpoint of ${cp.treeSize} entries but the journal has ${entries}: entries from seq ${entries} were removed (truncated, or an older copy restored)`,
        entries,
      );
    }
    const seen = seenAt.get(cp.treeSize);
    if (!seen || !equal(seen.root, cp.rootHash) || !equal(seen.chain, cp.chainHead)) {
      return new Finding(
        lastGood,
        `anchor mismatch: the journal's first ${cp.treeSize} entries are not the ones signed in ${a.source} (the first difference is at or after seq ${lastGood})`,
        entries,
      );
    }
    lastGood = cp.treeSize;
    anchorsChecked++;
  }
  return anchorsChecked;
}

/** The rows to verify in seq order: the archived segments first (when given), then hot storage. */
function* rowSources(
  db: Database.Database,
  archives: readonly ArchivedSegmentSource[] | null,
  fromSeq: number,
  hotFrom: number,
): Generator<EntryRow> {
  if (archives !== null) {
    for (const a of archives)
      yield* a.db.prepare(`SELECT ${ENTRY_COLUMNS} FROM entries ORDER BY seq`).iterate() as IterableIterator<EntryRow>;
    yield* db.prepare(`SELECT ${ENTRY_COLUMNS} FROM entries WHERE seq >= ? ORDER BY seq`).iterate(hotFrom) as IterableIterator<EntryRow>;
    return;
  }
  yield* db.prepare(`SELECT ${ENTRY_COLUMNS} FROM entries WHERE seq >= ? ORDER BY seq`).iterate(fromSeq) as IterableIterator<EntryRow>;
}

function checkCheckpointEntry(row: EntryRow, verifier: Verifier | null, seq: number, root: Uint8Array, chain: Buffer): string | null {
  if (verifier === null) return 'a checkpoint precedes the journal.created entry';
  let payload: { note?: unknown; treeSize?: unknown };
  try {
    payload = JSON.parse(row.payload) as typeof payload;
  } catch {
    return 'the checkpoint payload is not JSON';
  }
  if (typeof payload.note !== 'string') return 'the checkpoint entry holds no signed note';
  const cp = verifySignedCheckpoint(payload.note, verifier);
  if (cp === null) return "the checkpoint is not signed by the journal's key";
  if (cp.treeSize !== seq || payload.treeSize !== seq) return `the checkpoint covers ${cp.treeSize} entries but stands at seq ${seq}`;
  if (!equal(cp.rootHash, root)) return 'the signed Merkle root does not match the entries before the checkpoint';
  if (!equal(cp.chainHead, chain)) return 'the signed chain head does not match the entries before the checkpoint';
  return null;
}

function genesisVerifier(payload: string | undefined): Verifier | null {
  if (payload === undefined) return null;
  try {
    const p = JSON.parse(payload) as { verifierKey?: unknown };
    return typeof p.verifierKey === 'string' ? parseVerifierKey(p.verifierKey) : null;
  } catch {
    return null;
  }
}

/** The completed nodes against the stored concatenation, without building the concatenation. */
function nodesEqual(nodes: readonly Uint8Array[], stored: Buffer): boolean {
  if (stored.length !== nodes.length * 32) return false;
  for (let i = 0; i < nodes.length; i++) if (!timingSafeEqual(nodes[i] as Uint8Array, stored.subarray(i * 32, i * 32 + 32))) return false;
  return true;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
