/**
 * The `x-aj-signature` header of our documented webhook scheme (generic calls and forms), parsed strictly:
 * comma-separated `v<n>=<value>` entries; every `v1` value is 64 hex digits (read case-insensitively, kept in
 * lower case). Entries of other versions are skipped (a sender may add a newer scheme beside v1); anything else
 * makes the whole header malformed, so that a header is either understood in full or refused.
 */
export type SignatureHeader = { readonly kind: 'parsed'; readonly v1: readonly string[] } | { readonly kind: 'malformed' };

import { createHmac } from 'node:crypto';

/** The `x-aj-signature` value a sender puts on a body: `v1=` and the hex HMAC-SHA256 of `<timestamp>.<raw body>`. */
export function signV1(secret: string, timestamp: string | number, rawBody: Buffer | string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.`, 'utf8').update(rawBody).digest('hex')}`;
}

const ENTRY = /^v(\d{1,3})=(.*)$/s;
const V1 = /^[0-9a-f]{64}$/i;

/** At most this many entries: a rotation needs two or three. */
export const MAX_SIGNATURE_ENTRIES = 8;

export function parseSignatureHeader(header: string): SignatureHeader {
  const parts = header.split(',');
  if (parts.length > MAX_SIGNATURE_ENTRIES) return { kind: 'malformed' };
  const v1: string[] = [];
  for (const part of parts) {
    const m = ENTRY.exec(part.trim());
    if (!m) return { kind: 'malformed' };
    if (m[1] !== '1') continue;
    const value = m[2] ?? '';
    if (!V1.test(value)) return { kind: 'malformed' };
    v1.push(value.toLowerCase());
  }
  return v1.length > 0 ? { kind: 'parsed', v1 } : { kind: 'malformed' };
}
