/**
 * The marker that replaces a payload dropped by retention expiry, and the rule verification applies to it.
 *
 * A dropped payload no longer matches its payload hash (the hash stays in the header, covered by the leaf, the
 * chain, the tree and the seal). Such a row is accepted only when (1) its payload is exactly the marker, (2) a
 * journaled `segment.pruned` entry lists its seq with the same time and policy version, and (3) by the retention
 * policy versions journaled before that entry, the row's longest promise (its class, or one a retention.assigned
 * journaled before that entry raised it to) says `drop-payload` and had ended at that time. Anything else is a payload that does not match its hash.
 */
import { canonicalize } from './canonical.ts';
import { expiryOf, type JournaledPolicy, type RetentionAssignment } from './retention.ts';

export interface DroppedMarker {
  readonly at: string;
  readonly policyVersion: number;
}

/** The stored payload text of a dropped payload (canonical JSON). */
export function droppedPayload(m: DroppedMarker): string {
  return canonicalize({ $dropped: { at: m.at, policyVersion: m.policyVersion } });
}

/** The marker a stored payload holds, or null when it is not exactly a dropped marker. */
export function parseDroppedPayload(payload: string): DroppedMarker | null {
  let v: unknown;
  try {
    v = JSON.parse(payload);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.keys(v).length !== 1) return null;
  const d = (v as { $dropped?: unknown }).$dropped;
  if (typeof d !== 'object' || d === null) return null;
  const { at, policyVersion } = d as { at?: unknown; policyVersion?: unknown };
  if (typeof at !== 'string' || Number.isNaN(Date.parse(at)) || typeof policyVersion !== 'number' || !Number.isInteger(policyVersion))
    return null;
  const m = { at, policyVersion };
  return droppedPayload(m) === payload ? m : null;
}

/** A dropped marker as a reader sees it (the parsed payload), or null. */
export function droppedOf(payload: unknown): DroppedMarker | null {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return null;
  const d = '$dropped' in payload ? payload.$dropped : undefined;
  if (typeof d !== 'object' || d === null || Object.keys(payload).length !== 1) return null;
  const { at, policyVersion } = d as { at?: unknown; policyVersion?: unknown };
  return typeof at === 'string' && typeof policyVersion === 'number' ? { at, policyVersion } : null;
}

/** One journaled prune: which seqs it dropped, when, by which policy version. */
export interface PruneRecord {
  /** Seq of the segment.pruned entry. */
  readonly seq: number;
  readonly segmentId: string;
  readonly dropped: readonly (readonly [number, number])[];
  readonly droppedAt: string;
  readonly policyVersion: number;
  /** Why the payloads were dropped: absent for retention expiry; `unsealed-personal-data` for containment (contained-payload.ts). */
  readonly reason?: string;
}

/** Seq → the prune record that lists it. */
export function indexPrunes(records: readonly PruneRecord[]): Map<number, PruneRecord> {
  const out = new Map<number, PruneRecord>();
  for (const r of records) for (const [a, b] of r.dropped) for (let s = a; s <= b; s++) if (!out.has(s)) out.set(s, r);
  return out;
}

/** Parses a segment.pruned payload into a PruneRecord (null when it is not one). */
export function pruneRecordOf(seq: number, payload: string): PruneRecord | null {
  try {
    const p = JSON.parse(payload) as {
      segmentId?: unknown;
      dropped?: unknown;
      droppedAt?: unknown;
      policyVersion?: unknown;
      reason?: unknown;
    };
    if (
      typeof p.segmentId !== 'string' ||
      !Array.isArray(p.dropped) ||
      typeof p.droppedAt !== 'string' ||
      typeof p.policyVersion !== 'number'
    )
      return null;
    if (p.reason !== undefined && typeof p.reason !== 'string') return null;
    return {
      seq,
      segmentId: p.segmentId,
      dropped: p.dropped as [number, number][],
      droppedAt: p.droppedAt,
      policyVersion: p.policyVersion,
      ...(p.reason !== undefined ? { reason: p.reason } : {}),
    };
  } catch {
    return null;
  }
}

/**
 * Why a row whose payload does not match its hash is NOT an accepted dropped payload, or null when it is.
 * `record` is the prune record listing the seq (undefined when none does).
 */
export function droppedPayloadProblem(
  row: { seq: number; recorded_at: string; retention_class: string; payload: string },
  record: PruneRecord | undefined,
  history: readonly JournaledPolicy[],
  assignments: readonly RetentionAssignment[] = [],
): string | null {
  const marker = parseDroppedPayload(row.payload);
  if (marker === null) return 'the payload does not match its hash';
  if (!record) return 'the payload was dropped, but no segment.pruned entry lists this seq';
  if (marker.at !== record.droppedAt || marker.policyVersion !== record.policyVersion)
    return `the dropped marker (${marker.at}, policy ${marker.policyVersion}) differs from the segment.pruned entry at seq ${record.seq}`;
  return expiredProblem(
    row,
    Date.parse(record.droppedAt),
    history.filter((h) => h.seq < record.seq),
    assignments.filter((a) => a.seq < record.seq),
  );
}

/**
 * Why the entry's payload may not be dropped at `at` by these policy versions and retention assignments (null:
 * it may).
 */
export function expiredProblem(
  row: { seq: number; recorded_at: string; retention_class: string },
  at: number,
  history: readonly JournaledPolicy[],
  assignments: readonly RetentionAssignment[] = [],
): string | null {
  const e = expiryOf({ seq: row.seq, recordedAt: row.recorded_at, retentionClass: row.retention_class }, history, assignments);
  const cls =
    e.retentionClass === row.retention_class
      ? `class ${row.retention_class}`
      : `class ${e.retentionClass} (raised from ${row.retention_class} by retention.assigned)`;
  if (e.onExpiry !== 'drop-payload') return `the payload was dropped, but ${cls} keeps payloads (onExpiry keep)`;
  if (e.expiresAt === null || e.expiresAt > at)
    return `the payload was dropped, but ${cls} keeps it until ${e.expiresAt === null ? 'forever' : new Date(e.expiresAt).toISOString()}`;
  return null;
}
