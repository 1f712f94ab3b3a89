/**
 * Personal data that older versions stored in clear, and the rule that lets such a payload be dropped from an
 * archived segment without losing the record (see containment.ts for the step that does it).
 *
 * Detection (`unsealedFieldsOf`): a stored payload of a kind with a seal rule (privacy.ts `personalFieldsOf`)
 * that holds any of those fields outside the `$sealed` envelope with a non-null value; else, for any kind but the
 * journal's own, a string shaped like an e-mail address or an E.164 phone number anywhere in what is in clear
 * (so a kind whose seal rule was missing or incomplete in the version that wrote it is found too). Only field names and
 * paths are ever returned, never the values.
 *
 * The marker of a contained payload: `{"$dropped":{"at":…,"policyVersion":…,"reason":"unsealed-personal-data"}}`
 * (canonical JSON). Verification accepts it in place of a payload (whose hash stays in the header) only when a
 * journaled `segment.pruned` entry with that reason lists the seq, with the same time and policy version, the
 * entry's kind is one containment may drop, and the entry was recorded before it was dropped.
 */
import { canonicalize } from './canonical.ts';
import { isEntryKind, KINDS } from './kinds.ts';
import { clearByDesignOf, personalFieldsOf } from './privacy.ts';
import { SEALED } from './sealed-payload.ts';
import type { PruneRecord } from './dropped-payload.ts';

export const CONTAINMENT_REASON = 'unsealed-personal-data';

export interface ContainedMarker {
  readonly at: string;
  readonly policyVersion: number;
}

/** The stored payload text of a contained payload (canonical JSON). */
export function containedPayload(m: ContainedMarker): string {
  return canonicalize({ $dropped: { at: m.at, policyVersion: m.policyVersion, reason: CONTAINMENT_REASON } });
}

/** The marker a stored payload holds, or null when it is not exactly a contained marker. */
export function parseContainedPayload(payload: string): ContainedMarker | null {
  if (!payload.includes(CONTAINMENT_REASON)) return null;
  let v: unknown;
  try {
    v = JSON.parse(payload);
  } catch {
    return null;
  }
  const d = (v as { $dropped?: unknown } | null)?.$dropped as { at?: unknown; policyVersion?: unknown } | undefined;
  if (
    typeof d !== 'object' ||
    d === null ||
    typeof d.at !== 'string' ||
    Number.isNaN(Date.parse(d.at)) ||
    typeof d.policyVersion !== 'number' ||
    !Number.isInteger(d.policyVersion)
  )
    return null;
  const m = { at: d.at, policyVersion: d.policyVersion };
  return containedPayload(m) === payload ? m : null;
}

/**
 * Kinds whose payloads containment may drop: the records of people and systems. Never the journal's own entries
 * (checkpoints, seals, archive and prune records carry what verification needs) nor `privacy.erased` (which key
 * ids an erasure destroyed: `keys restore` re-applies them).
 */
export function containable(kind: string): boolean {
  if (!isEntryKind(kind)) return false;
  return !KINDS[kind].internal && kind !== 'privacy.erased';
}

/** Why a row whose payload does not match its hash is NOT an accepted contained payload, or null when it is. */
export function containedPayloadProblem(
  row: { seq: number; kind: string; recorded_at: string; payload: string },
  record: PruneRecord,
): string | null {
  const marker = parseContainedPayload(row.payload);
  if (marker === null) return 'the payload does not match its hash';
  if (marker.at !== record.droppedAt || marker.policyVersion !== record.policyVersion)
    return `the contained marker (${marker.at}, policy ${marker.policyVersion}) differs from the segment.pruned entry at seq ${record.seq}`;
  if (!containable(row.kind)) return `the payload was dropped as unsealed personal data, but kind ${row.kind} is never contained`;
  if (Date.parse(row.recorded_at) > Date.parse(record.droppedAt))
    return `the payload was dropped at ${record.droppedAt}, before the entry was recorded`;
  return null;
}

// An address anywhere in a string; a phone number as a whole value (E.164: +, 7 to 15 digits; spaces, dots,
// dashes and brackets allowed between them), so that ids and counts are not mistaken for numbers.
// The local part starts where no local-part character precedes it and is at most 64 long (RFC 5321), so the
// pattern runs in linear time over long runs of word characters.
const EMAIL = /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}/;
const E164 = /^\+[1-9][\d\s().-]{5,22}$/;

function shapedLikeContact(s: string): boolean {
  // The cheap tests first: the address pattern backtracks over long runs of word characters without an `@`.
  if (s.includes('@') && EMAIL.test(s)) return true;
  const t = s.trim();
  if (!t.startsWith('+') || !E164.test(t)) return false;
  const digits = t.replace(/\D/g, '').length;
  return digits >= 7 && digits <= 15;
}

/** Paths (`a.b[2]`) in `value` whose string (or key) is shaped like an address or a phone number. */
function contactPaths(value: unknown, path: string, out: string[]): void {
  if (out.length >= 20) return;
  if (typeof value === 'string') {
    if (shapedLikeContact(value)) out.push(path || '(payload)');
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => contactPaths(v, `${path}[${i}]`, out));
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const p = path ? `${path}.${k}` : k;
      if (shapedLikeContact(k)) out.push(`${p} (key)`);
      contactPaths(v, p, out);
    }
  }
}

export interface UnsealedFields {
  /** Field names (kinds with a seal rule) or paths (the heuristic), never values. */
  readonly fields: readonly string[];
  /** True when found by shape (outside any seal rule's fields), false for a seal rule's field in clear. */
  readonly byShape: boolean;
}

/** What of a stored payload is personal and not sealed; null when nothing is (or it is a marker, or not JSON). */
export function unsealedFieldsOf(kind: string, payloadText: string): UnsealedFields | null {
  let p: unknown;
  try {
    p = JSON.parse(payloadText);
  } catch {
    return null;
  }
  if (p === null || typeof p !== 'object' || Array.isArray(p)) return null;
  const o = p as Record<string, unknown>;
  if ('$dropped' in o && Object.keys(o).length === 1) return null;
  const rule = personalFieldsOf(kind);
  if (rule.length > 0) {
    const fields = rule.filter((f) => o[f] !== undefined && o[f] !== null);
    if (fields.length > 0) return { fields, byShape: false };
  }
  // The journal's own entries hold keys, hashes, notes and locations, written by the journal itself.
  if (isEntryKind(kind) && KINDS[kind].internal) return null;
  // What stays in clear, of any kind: nothing in it may look like an address or a phone number.
  const paths: string[] = [];
  const { [SEALED]: _sealed, ...rest } = o;
  for (const f of clearByDesignOf(kind)) delete rest[f];
  contactPaths(rest, '', paths);
  return paths.length > 0 ? { fields: paths, byShape: true } : null;
}
