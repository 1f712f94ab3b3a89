/**
 * The envelope of a sealed payload: the personal fields of a payload, encrypted with AES-256-GCM under a key
 * derived from the keys of every data subject the entry concerns, stored in the payload as
 *
 *   "$sealed": { "v": 1, "keys": [{ "subject": <keyed hash>, "keyId": <id> }, ...], "iv", "ct", "tag" }
 *
 * The journal hashes the payload as stored, so its hashes commit to this envelope: destroying a key later
 * changes nothing stored and the journal still verifies.
 *
 * Opening needs every listed key: destroying the key of any one subject erases the whole envelope (an email
 * between two people reads as erased once either is forgotten; nothing of the forgotten one stays readable).
 *
 * The IV is synthetic: HMAC(iv key, aad ‖ plaintext), so sealing the same fields under the same keys gives the
 * same envelope, and a retried append keeps its idempotency (same payload hash). Distinct plaintexts get
 * distinct IVs; equal plaintexts reveal only that they are equal, as their ciphertexts would anyway.
 */
import { createHash, createHmac, hkdfSync } from 'node:crypto';
import { canonicalize } from './canonical.ts';
import { aesGcmDecrypt, aesGcmEncrypt } from './master-key.ts';
import { SealedPayloadError } from './errors/sealed-payload.error.ts';

export const SEALED = '$sealed';

export interface KeyRef {
  /** Keyed hash (hex HMAC-SHA256) of the subject's normalised address. */
  readonly subject: string;
  readonly keyId: string;
}

export interface Envelope {
  readonly v: 1;
  readonly keys: readonly KeyRef[];
  readonly iv: string;
  readonly ct: string;
  readonly tag: string;
}

/**
 * HKDF's info is at most 1,024 bytes (RFC 5869 as Node enforces it): an entry with many subjects (a meeting with
 * dozens of attendees) has a longer key id list, which then goes in as its SHA-256. Lists that fit are used as
 * they are, as they always were, so every envelope written before still opens.
 */
function hkdfInfo(keyIds: string): string {
  return Buffer.byteLength(keyIds) <= 1024 ? keyIds : `sha256:${createHash('sha256').update(keyIds).digest('hex')}`;
}

interface ContentKeys {
  readonly enc: Buffer;
  readonly ivKey: Buffer;
  readonly aad: Buffer;
}

/**
 * Content keys derived before, by the first subject key's bytes (the key store hands out one Buffer per key id,
 * so identity is exact), then by kind and key list; a hit must hold the very same key Buffers. Most entries of
 * a mailbox are sealed under the same few key sets: deriving once saves an HKDF and an encoding per entry (about
 * a fifth of sealing's CPU, bench/sealing-cost.ts). Entries go with their keys' Buffers (a WeakMap).
 */
const derivedKeys = new WeakMap<Uint8Array, Map<string, { readonly keys: readonly Uint8Array[]; readonly value: ContentKeys }>>();
const DERIVED_PER_KEY = 64;

function contentKeys(kind: string, keys: readonly (KeyRef & { key: Uint8Array })[]): ContentKeys {
  const first = keys[0]?.key;
  if (first === undefined) return deriveContentKeys(kind, keys);
  const id = `${kind}\n${keys.map((k) => `${k.keyId}/${k.subject}`).join(',')}`;
  let known = derivedKeys.get(first);
  const hit = known?.get(id);
  if (hit && hit.keys.length === keys.length && hit.keys.every((b, i) => b === keys[i]?.key)) return hit.value;
  const value = deriveContentKeys(kind, keys);
  if (!known) {
    known = new Map();
    derivedKeys.set(first, known);
  }
  if (known.size >= DERIVED_PER_KEY) known.delete(known.keys().next().value as string);
  known.set(id, { keys: keys.map((k) => k.key), value });
  return value;
}

function deriveContentKeys(kind: string, keys: readonly (KeyRef & { key: Uint8Array })[]): ContentKeys {
  const ikm = Buffer.concat(keys.map((k) => k.key));
  const okm = Buffer.from(hkdfSync('sha256', ikm, 'activity-journal/sealed-payload/v1', hkdfInfo(keys.map((k) => k.keyId).join(',')), 64));
  const aad = Buffer.from(canonicalize({ kind, keys: keys.map((k) => ({ keyId: k.keyId, subject: k.subject })) }), 'utf8');
  return { enc: okm.subarray(0, 32), ivKey: okm.subarray(32), aad };
}

/** Seals `fields` (a JSON object) for `kind` under the keys of its subjects (at least one). */
export function sealFields(kind: string, fields: Record<string, unknown>, keys: readonly (KeyRef & { key: Uint8Array })[]): Envelope {
  if (keys.length === 0) throw new SealedPayloadError('a sealed payload needs at least one subject key');
  const { enc, ivKey, aad } = contentKeys(kind, keys);
  const plain = Buffer.from(canonicalize(fields), 'utf8');
  const iv = createHmac('sha256', ivKey).update(aad).update(Buffer.of(0)).update(plain).digest().subarray(0, 12);
  const { ct, tag } = aesGcmEncrypt(enc, iv, plain, aad);
  return {
    v: 1,
    keys: keys.map((k) => ({ subject: k.subject, keyId: k.keyId })),
    iv: iv.toString('base64'),
    ct: ct.toString('base64'),
    tag: tag.toString('base64'),
  };
}

/** Reads an envelope out of a stored payload value; null when `value` is not one. */
export function asEnvelope(value: unknown): Envelope | null {
  if (value === null || typeof value !== 'object') return null;
  const e = value as Partial<Envelope>;
  if (e.v !== 1 || !Array.isArray(e.keys) || typeof e.iv !== 'string' || typeof e.ct !== 'string' || typeof e.tag !== 'string') return null;
  if (
    !e.keys.every(
      (k) => typeof k === 'object' && k !== null && typeof (k as KeyRef).subject === 'string' && typeof (k as KeyRef).keyId === 'string',
    )
  )
    return null;
  return e as Envelope;
}

/** Opens an envelope with its keys (in the envelope's order); throws SealedPayloadError when it does not authenticate. */
export function openFields(kind: string, envelope: Envelope, keys: readonly Uint8Array[]): Record<string, unknown> {
  if (keys.length !== envelope.keys.length)
    throw new SealedPayloadError(`the envelope names ${envelope.keys.length} keys, ${keys.length} were given`);
  const { enc, aad } = contentKeys(
    kind,
    envelope.keys.map((k, i) => ({ ...k, key: keys[i] as Uint8Array })),
  );
  const plain = aesGcmDecrypt(
    enc,
    Buffer.from(envelope.iv, 'base64'),
    Buffer.from(envelope.ct, 'base64'),
    Buffer.from(envelope.tag, 'base64'),
    aad,
  );
  if (plain === null)
    throw new SealedPayloadError('the sealed payload does not authenticate: its ciphertext, tag, iv or key list was altered');
  const fields = JSON.parse(plain.toString('utf8')) as unknown;
  if (fields === null || typeof fields !== 'object' || Array.isArray(fields))
    throw new SealedPayloadError('the sealed payload does not hold an object');
  return fields as Record<string, unknown>;
}
