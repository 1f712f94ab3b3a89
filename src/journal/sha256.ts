/**
 * SHA-256 on the hot paths. Node's one-shot `crypto.hash` (20.12+) avoids a Hash object per call, which is a
 * measurable share of an append; older Node falls back to createHash.
 */
import * as crypto from 'node:crypto';

type OneShot = (algorithm: string, data: string | Uint8Array, encoding: 'buffer' | 'hex') => Buffer | string;
const oneShot = (crypto as unknown as { hash?: OneShot }).hash;

/** SHA-256 of a string's UTF-8 bytes or of bytes. */
export function sha256(data: string | Uint8Array): Buffer {
  return oneShot ? (oneShot('sha256', data, 'buffer') as Buffer) : crypto.createHash('sha256').update(data).digest();
}

export function sha256Hex(data: string | Uint8Array): string {
  return oneShot ? (oneShot('sha256', data, 'hex') as string) : crypto.createHash('sha256').update(data).digest('hex');
}

/** SHA-256(a ‖ b) of two short byte strings (the chain step). */
export function sha256Pair(a: Uint8Array, b: Uint8Array): Buffer {
  return sha256(Buffer.concat([a, b]));
}
