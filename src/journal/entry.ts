/**
 * The entry model: validation of what a caller asks to append, and the canonical header that every hash commits to.
 */
import { randomBytes } from 'node:crypto';
import { sha256Hex } from './sha256.ts';
import type { z } from 'zod';
import { canonicalize, MAX_JSON_DEPTH, nestingTooDeep } from './canonical.ts';
import { SEALED } from './sealed-payload.ts';
import { CanonicalEncodingError } from './errors/canonical-encoding.error.ts';
import { EntryValidationError } from './errors/entry-validation.error.ts';
import { KINDS, isEntryKind, type EntryKind, type PayloadOf } from './kinds.ts';

/** The header fields of an append: who, where from, and the keys that tie it to the rest of the record. */
interface AppendHeader {
  readonly source: string;
  readonly actor: string;
  readonly correlationId: string;
  readonly causationId?: string | null | undefined;
  /** When it happened at the source (RFC 3339); defaults to the journal's clock. */
  readonly occurredAt?: string | undefined;
  /** Defaults to a key derived from the content, so that re-sending the same input adds nothing. */
  readonly idempotencyKey?: string | undefined;
  readonly retentionClass?: string | undefined;
}

/**
 * What a caller asks to append: an entry of kind K whose payload has that kind's schema type (kinds.ts).
 * `AppendInput` alone is the union over the catalogue, one member per kind (the conditional type distributes),
 * so `{ kind: 'ai.decision', payload }` is checked against the ai.decision schema's type, not any kind's.
 * The types only help callers in this program: the journal validates every append at run time all the same
 * (prepareEntry), and what arrives as JSON from outside goes in through `appendReceived`, validated the same way.
 */
export type AppendInput<K extends EntryKind = EntryKind> = K extends EntryKind
  ? AppendHeader & { readonly kind: K; readonly payload: PayloadOf<K> }
  : never;

/** An entry as stored: header, payload and the hashes that bind it into the journal. */
export interface JournalEntry {
  readonly seq: number;
  readonly id: string;
  readonly recordedAt: string;
  readonly occurredAt: string;
  readonly kind: EntryKind;
  readonly source: string;
  readonly actor: string;
  readonly correlationId: string;
  readonly causationId: string | null;
  readonly idempotencyKey: string;
  readonly retentionClass: string;
  readonly payload: unknown;
  /** Hex SHA-256 of the payload's canonical UTF-8 bytes. */
  readonly payloadHash: string;
  /** Hex RFC 6962 leaf hash of the canonical header. */
  readonly leafHash: string;
  /** Hex running chain hash after this entry. */
  readonly chainHash: string;
}

/** A validated append, ready for the writer to number and hash. */
export interface PreparedEntry {
  readonly kind: EntryKind;
  readonly source: string;
  readonly actor: string;
  readonly correlationId: string;
  readonly causationId: string | null;
  /** Null when the caller gave none: the writer stamps its own clock. */
  readonly occurredAt: string | null;
  readonly idempotencyKey: string;
  /** True when the key was derived from the content rather than given. */
  readonly derivedKey: boolean;
  readonly retentionClass: string;
  readonly retentionGiven: boolean;
  readonly payloadText: string;
  readonly payloadHash: string;
  /** The payload as given (what `payloadText` encodes), returned to the caller without re-parsing. */
  readonly payload: unknown;
}

/**
 * Whether a prepared entry is of `kind`; narrows its payload to that kind's schema type, which prepareEntry
 * checked it against.
 */
export function isPreparedKind<K extends EntryKind>(
  p: PreparedEntry,
  kind: K,
): p is PreparedEntry & { readonly kind: K; readonly payload: PayloadOf<K> } {
  return p.kind === kind;
}

export interface PrepareOptions {
  readonly maxPayloadBytes: number;
  /** Allow the kinds the journal writes about itself (never from clients). */
  readonly allowInternal?: boolean;
  /**
   * Turns the validated payload into what is stored and hashed (privacy.ts seals personal fields here). The
   * prepared entry keeps the payload as given, for the caller.
   */
  readonly seal?: (kind: EntryKind, payload: unknown, ids: { causationId: string | null; correlationId: string }) => unknown;
}

const SOURCE = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;
const RETENTION = /^[a-z][a-z0-9_-]{0,63}$/;
// Identifiers are printable and free of white space, so that they can be shown, grepped and passed on a command line.
const IDENT = /^[\x21-\x7e\u00a0-\uffff]{1,512}$/u;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

const ENTRY_FIELDS: ReadonlySet<string> = new Set([
  'kind',
  'source',
  'actor',
  'correlationId',
  'payload',
  'causationId',
  'occurredAt',
  'idempotencyKey',
  'retentionClass',
]);

/** Validates one append against the catalogue; throws EntryValidationError saying every problem at once. */
export function prepareEntry(input: unknown, options: PrepareOptions): PreparedEntry {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new EntryValidationError('INVALID_ENTRY', 'an entry must be a JSON object');
  }
  const raw = input as Record<string, unknown>;
  const tooDeep = nestingTooDeep(raw);
  if (tooDeep !== null) {
    // Only the top-level field is named: member names deeper down are the caller's data.
    const field = /^\$\.([A-Za-z]+)/.exec(tooDeep)?.[1] ?? 'entry';
    throw new EntryValidationError('INVALID_ENTRY', `${field} nests deeper than ${MAX_JSON_DEPTH} levels`, [
      `${field}: nested deeper than ${MAX_JSON_DEPTH} levels`,
    ]);
  }
  const issues: string[] = [];
  for (const key in raw) if (!ENTRY_FIELDS.has(key)) issues.push(`${key}: not an entry field (fields: ${[...ENTRY_FIELDS].join(', ')})`);

  const kind = raw.kind;
  if (typeof kind !== 'string' || !isEntryKind(kind)) {
    const list = Object.keys(KINDS)
      .filter((k) => !KINDS[k as EntryKind].internal)
      .join(', ');
    throw new EntryValidationError('UNKNOWN_KIND', `unknown kind ${JSON.stringify(kind)}; known kinds: ${list}`, [`kind: unknown`]);
  }
  const spec = KINDS[kind];
  if (spec.internal && options.allowInternal !== true) {
    throw new EntryValidationError('INTERNAL_KIND', `kind ${kind} is written by the journal itself and cannot be appended`);
  }
  const str = (field: string, re: RegExp, what: string, optional = false): string | null => {
    const v = raw[field];
    if ((v === undefined || v === null) && optional) return null;
    if (typeof v !== 'string' || !re.test(v) || !v.isWellFormed()) {
      issues.push(`${field}: must be ${what}`);
      return null;
    }
    return v;
  };
  const source = str('source', SOURCE, 'a system name of 1-128 characters [A-Za-z0-9._:/-]');
  const actor = str('actor', IDENT, '1-512 printable characters without white space');
  const correlationId = str('correlationId', IDENT, '1-512 printable characters without white space');
  const causationId = str('causationId', IDENT, '1-512 printable characters without white space', true);
  const idempotencyKey = str('idempotencyKey', IDENT, '1-512 printable characters without white space', true);
  const retention = str('retentionClass', RETENTION, 'a lower-case class name like "standard"', true);
  let occurredAt: string | null = null;
  if (raw.occurredAt !== undefined && raw.occurredAt !== null) {
    const t = raw.occurredAt;
    const ms = typeof t === 'string' && RFC3339.test(t) ? Date.parse(t) : NaN;
    if (Number.isNaN(ms)) issues.push('occurredAt: must be an RFC 3339 timestamp with a time zone, e.g. 2026-01-31T09:30:00Z');
    else occurredAt = new Date(ms).toISOString();
  }

  if (!('payload' in raw)) issues.push('payload: required');
  else {
    const result = (spec.schema as z.ZodType).safeParse(raw.payload);
    if (!result.success) {
      for (const issue of result.error.issues)
        issues.push(`payload${issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}: ${issue.message}`);
    }
  }
  if (issues.length > 0) {
    const payloadOnly = issues.every((i) => i.startsWith('payload'));
    throw new EntryValidationError(
      payloadOnly ? 'INVALID_PAYLOAD' : 'INVALID_ENTRY',
      `invalid ${kind} entry: ${issues.join('; ')}`,
      issues,
    );
  }

  let payloadText: string;
  let stored: unknown;
  try {
    stored = options.seal ? options.seal(kind, raw.payload, { causationId, correlationId: correlationId as string }) : raw.payload;
    payloadText = canonicalize(stored);
  } catch (err) {
    if (err instanceof CanonicalEncodingError)
      throw new EntryValidationError('INVALID_PAYLOAD', `invalid ${kind} payload: ${err.message}`, [`payload: ${err.message}`]);
    throw err;
  }
  const payloadBytes = limitedBytes(payloadText, stored);
  if (payloadBytes > options.maxPayloadBytes) {
    throw new EntryValidationError('ENTRY_TOO_LARGE', `payload is ${payloadBytes} bytes; the limit is ${options.maxPayloadBytes}`);
  }
  const payloadHash = sha256Hex(payloadText);
  const base = {
    kind,
    source: source as string,
    actor: actor as string,
    correlationId: correlationId as string,
    causationId,
    occurredAt,
    retentionClass: retention ?? spec.defaultRetention,
    retentionGiven: retention !== null,
    payloadText,
    payloadHash,
    payload: raw.payload,
  };
  if (idempotencyKey !== null) return { ...base, idempotencyKey, derivedKey: false };
  return { ...base, idempotencyKey: derivedIdempotencyKey(base), derivedKey: true };
}

/**
 * The bytes a payload counts against the limit: its canonical size, with a sealed envelope's ciphertext counted
 * at the size of the plain text it holds rather than its base64 (4/3 larger). The limit is thus the same for a
 * payload whether or not it is sealed: sealing never turns an entry the limit admits into one it refuses. The
 * stored bytes of a sealed payload are then at most about 4/3 of the limit plus the envelope's few hundred bytes.
 */
function limitedBytes(payloadText: string, stored: unknown): number {
  const bytes = Buffer.byteLength(payloadText, 'utf8');
  const envelope = stored !== null && typeof stored === 'object' ? (stored as Record<string, unknown>)[SEALED] : undefined;
  const ct = envelope !== null && typeof envelope === 'object' ? (envelope as { ct?: unknown }).ct : undefined;
  if (typeof ct !== 'string') return bytes;
  const padding = ct.endsWith('==') ? 2 : ct.endsWith('=') ? 1 : 0;
  return bytes - ct.length + Math.floor(ct.length / 4) * 3 - padding;
}

/** `auto/<hex>`: a hash of everything the caller said, so an identical re-send is recognised as the same entry. */
function derivedIdempotencyKey(
  e: Pick<PreparedEntry, 'kind' | 'source' | 'actor' | 'correlationId' | 'causationId' | 'occurredAt' | 'payloadHash'>,
): string {
  return (
    'auto/' +
    sha256Hex(
      canonicalize({
        kind: e.kind,
        source: e.source,
        actor: e.actor,
        correlationId: e.correlationId,
        causationId: e.causationId,
        occurredAt: e.occurredAt,
        payloadHash: e.payloadHash,
      }),
    )
  );
}

/** The header fields that the leaf hash commits to; the payload enters only through its hash. */
export interface EntryHeader {
  readonly seq: number;
  readonly id: string;
  readonly recordedAt: string;
  readonly occurredAt: string;
  readonly kind: string;
  readonly source: string;
  readonly actor: string;
  readonly correlationId: string;
  readonly causationId: string | null;
  readonly idempotencyKey: string;
  readonly retentionClass: string;
  readonly payloadHash: string;
}

export const HEADER_VERSION = 1;

/** The canonical (RFC 8785) header text: `{"actor":…,"causationId":…,…,"v":1}`; see the README's "Journal format". */
export function canonicalHeader(h: EntryHeader): string {
  // Hot path (every append and every verified row): the members written out in RFC 8785 order, each string
  // through JSON.stringify, which escapes exactly as RFC 8785 requires. A test checks it equals canonicalize().
  if (!Number.isSafeInteger(h.seq) || !wellFormed(h)) return canonicalize(headerObject(h));
  const q = JSON.stringify;
  return (
    `{"actor":${q(h.actor)},"causationId":${h.causationId === null ? 'null' : q(h.causationId)},"correlationId":${q(h.correlationId)},` +
    `"id":${q(h.id)},"idempotencyKey":${q(h.idempotencyKey)},"kind":${q(h.kind)},"occurredAt":${q(h.occurredAt)},` +
    `"payloadHash":${q(h.payloadHash)},"recordedAt":${q(h.recordedAt)},"retentionClass":${q(h.retentionClass)},` +
    `"seq":${h.seq},"source":${q(h.source)},"v":${HEADER_VERSION}}`
  );
}

/** The header as the object that canonicalHeader encodes (the reference form). */
export function headerObject(h: EntryHeader): Record<string, unknown> {
  return {
    v: HEADER_VERSION,
    seq: h.seq,
    id: h.id,
    recordedAt: h.recordedAt,
    occurredAt: h.occurredAt,
    kind: h.kind,
    source: h.source,
    actor: h.actor,
    correlationId: h.correlationId,
    causationId: h.causationId,
    idempotencyKey: h.idempotencyKey,
    retentionClass: h.retentionClass,
    payloadHash: h.payloadHash,
  };
}

function wellFormed(h: EntryHeader): boolean {
  return (
    h.actor.isWellFormed() &&
    h.correlationId.isWellFormed() &&
    h.id.isWellFormed() &&
    h.idempotencyKey.isWellFormed() &&
    h.kind.isWellFormed() &&
    h.occurredAt.isWellFormed() &&
    h.payloadHash.isWellFormed() &&
    h.recordedAt.isWellFormed() &&
    h.retentionClass.isWellFormed() &&
    h.source.isWellFormed() &&
    (h.causationId === null || h.causationId.isWellFormed())
  );
}

export { sha256Hex };

let lastMs = 0;
let lastRand = Buffer.alloc(10);

/** RFC 9562 UUIDv7: time-ordered ids keep the id index append-only; monotonic within a millisecond. */
export function uuidv7(now: number = Date.now()): string {
  const b = Buffer.alloc(16);
  if (now <= lastMs) {
    now = lastMs;
    // Increment the random tail so ids made within one millisecond still sort in creation order.
    for (let i = 9; i >= 0; i--) {
      lastRand[i] = ((lastRand[i] ?? 0) + 1) & 0xff;
      if (lastRand[i] !== 0) break;
    }
  } else {
    lastMs = now;
    lastRand = randomBytes(10);
    lastRand[0] = (lastRand[0] ?? 0) & 0x0f; // leave headroom so increments do not overflow into the version bits
  }
  b.writeUIntBE(now, 0, 6);
  lastRand.copy(b, 6);
  b[6] = 0x70 | ((b[6] ?? 0) & 0x0f);
  b[8] = 0x80 | ((b[8] ?? 0) & 0x3f);
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
