/**
 * A webhook's raw body, read by us rather than by fastify's limit: a body over the limit is still measured and
 * hashed (never kept), so that its refusal goes on the record like every other one.
 */
import { createHash } from 'node:crypto';
import { BodyTooLargeError } from './errors/body-too-large.error.ts';

/** What a rejection records of the body: the bytes (hashed here), a digest taken while reading, or nothing. */
export type RejectedBody = Buffer | BodyDigest | null;

export interface BodyDigest {
  readonly hash: string;
  readonly sizeBytes: number;
  readonly truncated: boolean;
}

export function bodyDigest(body: RejectedBody): BodyDigest | null {
  if (body === null) return null;
  if (Buffer.isBuffer(body)) return { hash: createHash('sha256').update(body).digest('hex'), sizeBytes: body.length, truncated: false };
  return body;
}

/**
 * Reads a request body into memory up to `max` bytes. Past that it keeps reading only to measure and hash what
 * is sent (nothing more is kept), up to `cap` bytes, so that the refusal can say how large it was and which
 * body it was.
 */
export function readBounded(
  stream: NodeJS.ReadableStream,
  max: number,
  cap: number,
): Promise<{ kind: 'body'; body: Buffer } | { kind: 'over'; error: BodyTooLargeError }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const hash = createHash('sha256');
    let size = 0;
    let settled = false;
    const finish = (truncated: boolean): void => {
      if (settled) return;
      settled = true;
      stream.removeListener('data', onData);
      if (size > max || truncated) resolve({ kind: 'over', error: new BodyTooLargeError(size, hash.digest('hex'), truncated) });
      else resolve({ kind: 'body', body: Buffer.concat(chunks, size) });
    };
    const onData = (chunk: Buffer): void => {
      if (size + chunk.length > cap) {
        hash.update(chunk.subarray(0, cap - size));
        size = cap;
        finish(true);
        return;
      }
      size += chunk.length;
      hash.update(chunk);
      if (size <= max) chunks.push(chunk);
      else chunks.length = 0;
    };
    stream.on('data', onData);
    stream.once('end', () => finish(false));
    stream.once('error', (err: Error) => {
      if (!settled) {
        settled = true;
        reject(err);
      }
    });
  });
}
