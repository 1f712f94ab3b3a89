/**
 * What a reader finds in an entry's payload, kind by kind, and the helpers that narrow an entry to its kind.
 *
 * Every payload in the journal matched its kind's schema when it was appended (entry.ts validates each append),
 * but a reader does not always see it whole:
 * - the fields privacy seals (privacy.ts `PersonalField`) are absent when the payload is still sealed (read
 *   without the key store: `$sealed` holds them), erased (`erased: true, erasedAt`: a subject was forgotten) or
 *   unavailable (`unavailable`: a key missing from the store, an envelope that does not authenticate);
 * - a payload dropped by retention expiry or containment is only its `$dropped` marker (dropped-payload.ts,
 *   contained-payload.ts): every field of the schema is absent.
 * `EntryPayload<K>` says all of that, so that reading a personal field, or any field of an entry that may have
 * been dropped, has to handle its absence: the field's type includes `undefined`.
 */
import type { JournalEntry } from './entry.ts';
import type { EntryKind, PayloadOf } from './kinds.ts';
import type { ErasedMarker, PersonalField } from './privacy.ts';
import type { Envelope } from './sealed-payload.ts';
import { EntryKindError } from './errors/entry-kind.error.ts';

/** Every field of T, absent. */
type Absent<T> = { readonly [P in keyof T]?: undefined };

/** Why a reader does not see a payload's personal fields (privacy.ts `openPayload`). */
export type WithheldMarker =
  /** Read without the key store: the personal fields are in the envelope (sealed-payload.ts). */
  | { readonly $sealed: Envelope }
  /** A subject of the entry was forgotten: its key destroyed. */
  | ErasedMarker
  /** The envelope could not be opened. */
  | { readonly unavailable: 'malformed-envelope' | 'key-missing' | 'does-not-authenticate' };

/** A payload whose personal fields the reader cannot see: the others as appended, and why. */
export type WithheldPayload<K extends EntryKind> = Omit<PayloadOf<K>, PersonalField<K>> & {
  readonly [P in PersonalField<K>]?: undefined;
} & WithheldMarker;

/** A payload dropped from an archived segment (retention expiry, or containment of unsealed personal data). */
export type DroppedPayload<K extends EntryKind> = Absent<PayloadOf<K>> & {
  readonly $dropped: { readonly at: string; readonly policyVersion: number; readonly reason?: 'unsealed-personal-data' };
};

/** The payload of a kind K entry as a reader may see it: whole, withheld or dropped (for a union K, of one of them). */
export type EntryPayload<K extends EntryKind> = K extends EntryKind ? PayloadOf<K> | WithheldPayload<K> | DroppedPayload<K> : never;

/** A journal entry of kind K, its payload typed (for a union K, a kind of K with a payload of any of them). */
export type KindEntry<K extends EntryKind> = JournalEntry & { readonly kind: K; readonly payload: EntryPayload<K> };

/**
 * A journal entry of kind K, its payload typed; for a union K, the union of each kind's entries, so that testing
 * `entry.kind` narrows the payload too.
 */
export type EntryOf<K extends EntryKind> = K extends EntryKind ? KindEntry<K> : never;

/**
 * Whether `entry` is of (one of) the kinds given; narrows it to `EntryOf<K>`, its payload typed. The journal
 * validated the payload against its kind's schema when it was appended: the kind is all there is to check.
 */
export function isKind<K extends EntryKind>(entry: JournalEntry | null | undefined, ...kinds: readonly K[]): entry is EntryOf<K> {
  return hasKind(entry, kinds);
}

function hasKind<K extends EntryKind>(entry: JournalEntry | null | undefined, kinds: readonly K[]): entry is KindEntry<K> {
  return entry !== null && entry !== undefined && (kinds as readonly string[]).includes(entry.kind);
}

/** The typed payload of an entry that must be of kind `kind`; throws EntryKindError when it is another. */
export function payloadOf<K extends EntryKind>(entry: JournalEntry, kind: K): EntryPayload<K> {
  if (!hasKind(entry, [kind])) throw new EntryKindError([kind], entry.kind, entry.id);
  return entry.payload;
}

/** The first of `entries` of kind `kind` that passes `test`. */
export function findKind<K extends EntryKind>(
  entries: readonly JournalEntry[],
  kind: K,
  test: (e: EntryOf<K>) => boolean = () => true,
): EntryOf<K> | undefined {
  for (const e of entries) if (isKind(e, kind) && test(e)) return e;
  return undefined;
}

/** The entries of `kinds` that pass `test`, in order. */
export function filterKind<K extends EntryKind>(
  entries: readonly JournalEntry[],
  kinds: K | readonly K[],
  test: (e: EntryOf<K>) => boolean = () => true,
): EntryOf<K>[] {
  const wanted: readonly K[] = typeof kinds === 'string' ? [kinds] : kinds;
  const out: EntryOf<K>[] = [];
  for (const e of entries) if (isKind(e, ...wanted) && test(e)) out.push(e);
  return out;
}
