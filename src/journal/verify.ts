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

/** Verifies the journal behind `db` (read-only is enough). Never throws for a bad journal: the report says what is wrong. */
export function verifyJournal(db: Database.Database, options: VerifyOptions = {}): VerifyReport {
  const ranges = archivedRanges(db);
  const hotFrom = archivedUpTo(ranges);
  const archives = options.archives !== undefined && (options.fromSeq ?? 0) === 0 && hotFrom > 0 ? options.archives : null;
  // Without the archives, verification cannot start before the first hot row.
  const fromSeq = archives !== null ? 0 : Math.max(options.fromSeq ?? 0, hotFrom);
  const sealKey = options.sealKey ?? null;
  let total = (db.prepare('SELECT count(*) AS n FROM entries WHERE seq >= ?').get(archives !== null ? hotFrom : fromSeq) as { n: number })
    .n;
  for (const a of archives ?? []) total += (a.db.prepare('SELECT count(*) AS n FROM entries').get() as { n: number }).n;
  let checkpoints = 0;
  let verifier: Verifier | null = options.verifier ?? null;
  let tree: CompactTree;
  let chain: Buffer;
  const fail = (seq: number | null, reason: string, entries = total): VerifyReport => ({
    ok: false,
    entries,
    verifiedFrom: fromSeq,
    firstBadSeq: seq,
    reason,
    checkpointsChecked: checkpoints,
    anchorsChecked: 0,
    sealsChecked: sealKey !== null,
    rootHash: '',
    chainHead: '',
  });

  if (fromSeq > 0) {
    const prev = db.prepare('SELECT chain_hash FROM entries WHERE seq = ?').get(fromSeq - 1) as { chain_hash: Buffer } | undefined;
    const recorded = ranges.find((r) => r.toSeq === fromSeq - 1);
    if (!prev && !recorded) return fail(fromSeq - 1, `entry seq ${fromSeq - 1} is missing`);
    chain = prev ? prev.chain_hash : (recorded as { chainHead: Buffer }).chainHead;
    try {
      tree = CompactTree.fromNodeSource(fromSeq, new StoredNodes(db));
    } catch (err) {
      return fail(fromSeq - 1, `stored tree nodes before seq ${fromSeq} are unreadable: ${(err as Error).message}`);
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
        return fail(0, 'the journal.created entry does not match its hashes');
      }
    }
    if (verifier === null) verifier = genesisVerifier(genesis?.payload);
  } else {
    chain = ZERO;
    tree = new CompactTree();
  }

  // Roots and chain heads at the sizes that anchored checkpoints claim, captured as the scan passes them.
  const anchored = new Map<number, { root: Buffer; chain: Buffer } | null>();
  const parsedAnchors: { source: string; note: string; size: number }[] = [];
  for (const a of options.anchoredNotes ?? []) {
    try {
      const size = parseSignedCheckpoint(a.note).checkpoint.treeSize;
      // Checkpoints inside archived segments are checked when the archives are verified too.
      if (size < fromSeq) continue;
      parsedAnchors.push({ ...a, size });
      anchored.set(size, null);
    } catch (err) {
      return fail(null, `anchored checkpoint ${a.source} is malformed: ${(err as Error).message}`);
    }
  }
  if (anchored.has(fromSeq)) anchored.set(fromSeq, { root: Buffer.from(tree.root()), chain });

  // Signed checkpoints in segment.sealed entries: each must match the tree and chain at its segment's end.
  const sealed = new Map<number, { seq: number; note: string }>();
  for (const source of [...(archives ?? []).map((a) => a.db), db]) {
    for (const r of source.prepare(`SELECT seq, payload FROM entries WHERE kind = 'segment.sealed' AND seq >= ?`).all(fromSeq) as {
      seq: number;
      payload: string;
    }[]) {
      try {
        const p = JSON.parse(r.payload) as { note: string; toSeq: number };
        if (p.toSeq + 1 > fromSeq) sealed.set(p.toSeq + 1, { seq: r.seq, note: p.note });
      } catch {
        return fail(r.seq, 'the segment.sealed payload is not JSON');
      }
    }
  }
  const sealedSeen = new Map<number, { root: Buffer; chain: Buffer }>();

  // Payloads dropped by retention expiry (archived segments only): accepted where a segment.pruned entry lists the
  // seq and the policy allowed it (see dropped-payload.ts). The prune entries are themselves verified in the scan.
  const prunes: PruneRecord[] = [];
  for (const source of [...(archives ?? []).map((a) => a.db), db]) {
    for (const r of source.prepare(`SELECT seq, payload FROM entries WHERE kind = 'segment.pruned' AND seq >= ?`).all(fromSeq) as {
      seq: number;
      payload: string;
    }[]) {
      const rec = pruneRecordOf(r.seq, r.payload);
      if (rec === null) return fail(r.seq, 'the segment.pruned payload is malformed');
      prunes.push(rec);
    }
  }
  const droppedAt = indexPrunes(prunes);
  const history = droppedAt.size > 0 || archives !== null ? journaledPolicies(db) : [];
  // Promises raised later (retention.assigned), from the entries themselves (hashed, and verified in the scan),
  // not from the lookup table expiry reads; a table row missing or different from its entry is a failure.
  const assignments = new Map<number, RetentionAssignment[]>();
  const hasAssignmentTable =
    db.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'retention_assignments'`).get() !== undefined;
  const assignmentRow = hasAssignmentTable
    ? db.prepare('SELECT target_seq, retention_class FROM retention_assignments WHERE assigned_seq = ?')
    : null;
  for (const source of [...(archives ?? []).map((a) => a.db), db]) {
    for (const r of source.prepare(`SELECT seq, payload FROM entries WHERE kind = 'retention.assigned' AND seq >= ?`).all(fromSeq) as {
      seq: number;
      payload: string;
    }[]) {
      let a: { entrySeq?: unknown; retentionClass?: unknown };
      try {
        a = JSON.parse(r.payload) as typeof a;
      } catch {
        return fail(r.seq, 'the retention.assigned payload is not JSON');
      }
      if (typeof a.entrySeq !== 'number' || typeof a.retentionClass !== 'string')
        return fail(r.seq, 'the retention.assigned payload is malformed');
      const row = assignmentRow?.get(r.seq) as { target_seq: number; retention_class: string } | undefined;
      if (!row || row.target_seq !== a.entrySeq || row.retention_class !== a.retentionClass)
        return fail(
          r.seq,
          'the retention.assigned entry is missing from (or differs from) the retention_assignments table that expiry reads',
        );
      const list = assignments.get(a.entrySeq) ?? [];
      list.push({ seq: r.seq, targetSeq: a.entrySeq, retentionClass: a.retentionClass });
      assignments.set(a.entrySeq, list);
    }
  }

  let expected = fromSeq;
  const rows = rowSources(db, archives, fromSeq, hotFrom);
  for (const row of rows) {
    const seq = expected;
    if (row.seq !== seq)
      return fail(
        seq,
        row.seq > seq ? `entry seq ${seq} is missing (the next entry is seq ${row.seq})` : `unexpected entry seq ${row.seq}`,
      );
    if (!equal(sha256(row.payload), row.payload_hash)) {
      const record = droppedAt.get(seq);
      // Unsealed personal data an older version wrote, dropped by containment (contained-payload.ts), or an expired payload.
      const problem =
        record?.reason === CONTAINMENT_REASON
          ? containedPayloadProblem(row, record)
          : droppedPayloadProblem(row, record, history, assignments.get(seq));
      if (problem !== null) return fail(seq, problem);
    }
    const leaf = sha256('\u0000' + canonicalHeader(rowHeader(row)));
    if (!equal(leaf, row.leaf_hash)) return fail(seq, 'the header does not match its leaf hash');
    const rootBefore = row.kind === 'checkpoint' ? tree.root() : null;
    const chainBefore = chain;
    chain = sha256Pair(chain, leaf);
    if (!equal(chain, row.chain_hash)) return fail(seq, 'the chain hash does not follow from the previous entry');
    if (sealKey && !equal(sealOf(sealKey, chain), row.seal))
      return fail(seq, "the entry seal is wrong (written without the journal's seal key)");
    const nodes = tree.append(leaf);
    if (!nodesEqual(nodes, row.tree_nodes)) return fail(seq, 'the stored Merkle tree nodes are wrong');

    if (seq === 0) {
      if (row.kind !== 'journal.created') return fail(0, 'the first entry is not the journal.created entry');
      const named = genesisVerifier(row.payload);
      if (named === null) return fail(0, 'the journal.created entry names no valid checkpoint key');
      if (verifier !== null && verifier.verifierKey !== named.verifierKey)
        return fail(0, `the journal names checkpoint key ${named.verifierKey}, not the trusted key ${verifier.verifierKey}`);
      verifier = named;
    } else if (row.kind === 'checkpoint') {
      checkpoints++;
      const problem = checkCheckpointEntry(row, verifier, seq, rootBefore as Uint8Array, chainBefore);
      if (problem) return fail(seq, problem);
    } else if (row.kind === 'segment.sealed') {
      const claim = [...sealed.entries()].find(([, v]) => v.seq === seq);
      if (claim) {
        const seen = sealedSeen.get(claim[0]);
        const cp = verifier === null ? null : verifySignedCheckpoint(claim[1].note, verifier);
        if (cp === null) return fail(seq, "the segment.sealed checkpoint is not signed by the journal's key");
        if (!seen || cp.treeSize !== claim[0] || !equal(seen.root, cp.rootHash) || !equal(seen.chain, cp.chainHead))
          return fail(seq, `the segment.sealed checkpoint does not match the entries before seq ${claim[0]}`);
      }
    }
    expected++;
    if (sealed.has(expected)) sealedSeen.set(expected, { root: Buffer.from(tree.root()), chain });
    if (anchored.has(expected)) anchored.set(expected, { root: Buffer.from(tree.root()), chain });
    if (options.onProgress && (expected & 0x3fff) === 0) options.onProgress(expected, total);
  }
  options.onProgress?.(expected, total);

  let anchorsChecked = 0;
  // Check the anchors in size order so that the first mismatch bounds where the journal went wrong.
  parsedAnchors.sort((a, b) => a.size - b.size);
  let lastGood = 0;
  for (const a of parsedAnchors) {
    if (verifier === null || verifySignedCheckpoint(a.note, verifier) === null)
      return fail(null, `anchor mismatch: ${a.source} is not signed by this journal's checkpoint key`, expected);
    const cp = parseSignedCheckpoint(a.note).checkpoint;
    if (cp.treeSize > expected) {
      return fail(
        expected,
        `anchor mismatch: ${a.source} holds a signed checkpoint of ${cp.treeSize} entries but the journal has ${expected}: entries from seq ${expected} were removed (truncated, or an older copy restored)`,
        expected,
      );
    }
    const seen = anchored.get(cp.treeSize);
    if (!seen || !equal(seen.root, cp.rootHash) || !equal(seen.chain, cp.chainHead)) {
      return fail(
        lastGood,
        `anchor mismatch: the journal's first ${cp.treeSize} entries are not the ones signed in ${a.source} (the first difference is at or after seq ${lastGood})`,
        expected,
      );
    }
    lastGood = cp.treeSize;
    anchorsChecked++;
  }
  return {
    ok: true,
    entries: expected,
    verifiedFrom: fromSeq,
    firstBadSeq: null,
    reason: null,
    checkpointsChecked: checkpoints,
    anchorsChecked,
    sealsChecked: sealKey !== null,
    rootHash: Buffer.from(tree.root()).toString('hex'),
    chainHead: chain.toString('hex'),
  };
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
