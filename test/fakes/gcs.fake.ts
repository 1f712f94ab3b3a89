/**
 * A fake Google Cloud Storage JSON API (v1), in memory, for the real `googleapis` client
 * (`google.storage({ version: 'v1', auth, rootUrl })`). The routes that client uses:
 *   GET    /storage/v1/b/{bucket}                                 bucket metadata, with retentionPolicy
 *   POST   /upload/storage/v1/b/{bucket}/o?uploadType=multipart   objects.insert with requestBody + media
 *   POST   /upload/storage/v1/b/{bucket}/o?uploadType=media&name= objects.insert with media only
 *   GET    /storage/v1/b/{bucket}/o/{object}[?alt=media]          metadata (md5Hash, crc32c, generation) or bytes
 *   DELETE /storage/v1/b/{bucket}/o/{object}                      403 while the object is retained
 * Preconditions as GCS applies them: `ifGenerationMatch=0` on insert answers 412 when the name exists (and on
 * any other generation that does not match). An object under the bucket's retention policy cannot be deleted
 * or replaced before creation + retentionPeriod (403 "retentionPolicyNotMet"). Every call needs
 * `Authorization: Bearer <token>` (401 otherwise; a token in `forbiddenTokens` gets 403). `fail(n, status)`
 * answers the next n calls with a 503/429; `failAfterWrite(n)` stores the upload and then answers 503 (the
 * response lost on the way back). `tamper()` changes stored bytes behind the client's back (as someone with
 * storage admin rights could on a bucket without a lock).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeGcsObject {
  readonly bucket: string;
  readonly name: string;
  data: Buffer;
  readonly generation: string;
  readonly contentType: string;
  readonly metadata: Record<string, string>;
  readonly timeCreated: string;
  readonly retentionExpirationTime: string | null;
}

export interface FakeGcsBucket {
  readonly name: string;
  /** Seconds; null: no retention policy. */
  retentionPeriodSeconds: number | null;
  isLocked: boolean;
}

export interface FakeGcs {
  readonly rootUrl: string;
  readonly token: string;
  readonly requests: { method: string; path: string; query: Record<string, string>; status: number }[];
  readonly objects: Map<string, FakeGcsObject>;
  addBucket(name: string, retention?: { periodSeconds: number; locked?: boolean } | null): FakeGcsBucket;
  object(bucket: string, name: string): FakeGcsObject | undefined;
  /** Flips one byte of a stored object (md5/crc32c are recomputed, as a real replacement would have them). */
  tamper(bucket: string, name: string): void;
  /** The next n API calls answer `status` (default 503) without doing anything. */
  fail(n: number, status?: number): void;
  /** The next n uploads are stored and then answered 503, as when the response is lost. */
  failAfterWrite(n: number): void;
  /** Tokens that authenticate but may do nothing (403). */
  readonly forbiddenTokens: Set<string>;
  close(): Promise<void>;
}

const key = (bucket: string, name: string): string => `${bucket}\u0000${name}`;

function send(res: ServerResponse, status: number, body: unknown): number {
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
  res.end(JSON.stringify(body));
  return status;
}

const gcsError = (res: ServerResponse, code: number, reason: string, message: string): number =>
  send(res, code, { error: { code, message, errors: [{ domain: 'global', reason, message }] } });

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** crc32c (Castagnoli), big-endian, base64: how GCS reports it. */
export function crc32c(data: Buffer): string {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  const out = Buffer.alloc(4);
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0);
  return out.toString('base64');
}

/** The two parts of a multipart/related upload: JSON metadata, then the media. */
function parseMultipart(body: Buffer, contentType: string): { metadata: Record<string, unknown>; media: Buffer; mediaType: string } | null {
  const m = /boundary=("?)([^";]+)\1/.exec(contentType);
  if (!m) return null;
  const delimiter = Buffer.from(`--${m[2] as string}`);
  const parts: Buffer[] = [];
  let at = body.indexOf(delimiter);
  while (at !== -1) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, start);
    if (next === -1) return null;
    parts.push(body.subarray(start, next));
    at = next;
  }
  if (parts.length !== 2) return null;
  const split = (p: Buffer): { headers: string; content: Buffer } | null => {
    const h = p.indexOf('\r\n\r\n');
    if (h === -1) return null;
    let content = p.subarray(h + 4);
    // The CRLF before the next delimiter belongs to the delimiter.
    if (content.subarray(content.length - 2).toString() === '\r\n') content = content.subarray(0, content.length - 2);
    return { headers: p.subarray(0, h).toString('utf8'), content };
  };
  const meta = split(parts[0] as Buffer);
  const media = split(parts[1] as Buffer);
  if (!meta || !media) return null;
  try {
    return {
      metadata: JSON.parse(meta.content.toString('utf8')) as Record<string, unknown>,
      media: media.content,
      mediaType: /content-type:\s*([^\r\n]+)/i.exec(media.headers)?.[1] ?? 'application/octet-stream',
    };
  } catch {
    return null;
  }
}

export async function startFakeGcs(): Promise<FakeGcs> {
  const token = `ya29.fake-gcs-${randomBytes(8).toString('hex')}`;
  const buckets = new Map<string, FakeGcsBucket>();
  const objects = new Map<string, FakeGcsObject>();
  const requests: FakeGcs['requests'] = [];
  const forbiddenTokens = new Set<string>();
  let failing = 0;
  let failStatus = 503;
  let failingAfterWrite = 0;
  let generation = 1_700_000_000_000_000;

  const resource = (o: FakeGcsObject): Record<string, unknown> => ({
    kind: 'storage#object',
    id: `${o.bucket}/${o.name}/${o.generation}`,
    bucket: o.bucket,
    name: o.name,
    generation: o.generation,
    metageneration: '1',
    contentType: o.contentType,
    size: String(o.data.length),
    md5Hash: createHash('md5').update(o.data).digest('base64'),
    crc32c: crc32c(o.data),
    timeCreated: o.timeCreated,
    updated: o.timeCreated,
    ...(o.retentionExpirationTime ? { retentionExpirationTime: o.retentionExpirationTime } : {}),
    ...(Object.keys(o.metadata).length > 0 ? { metadata: o.metadata } : {}),
  });

  const handle = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<number> => {
    const auth = req.headers.authorization ?? '';
    const bearer = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    if (bearer !== token && !forbiddenTokens.has(bearer))
      return gcsError(res, 401, 'required', 'Anonymous caller does not have storage.objects.get access.');
    if (forbiddenTokens.has(bearer))
      return gcsError(
        res,
        403,
        'forbidden',
        'archiver@project.iam.gserviceaccount.com does not have storage.objects.create access to the Google Cloud Storage bucket. Permission denied.',
      );
    if (failing > 0) {
      failing--;
      await readBody(req);
      return gcsError(
        res,
        failStatus,
        failStatus === 429 ? 'rateLimitExceeded' : 'backendError',
        failStatus === 429 ? 'The rate of change requests to the object is too high.' : 'Backend Error',
      );
    }
    const upload = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(url.pathname);
    if (upload && req.method === 'POST') {
      const bucket = buckets.get(decodeURIComponent(upload[1] as string));
      const body = await readBody(req);
      if (!bucket) return gcsError(res, 404, 'notFound', 'The specified bucket does not exist.');
      const uploadType = url.searchParams.get('uploadType');
      let name: string | null = url.searchParams.get('name');
      let data: Buffer;
      let contentType = req.headers['content-type'] ?? 'application/octet-stream';
      let metadata: Record<string, string> = {};
      if (uploadType === 'multipart') {
        const parsed = parseMultipart(body, contentType);
        if (!parsed) return gcsError(res, 400, 'badRequest', 'Invalid multipart request.');
        if (typeof parsed.metadata.name === 'string') name = parsed.metadata.name;
        if (parsed.metadata.metadata && typeof parsed.metadata.metadata === 'object')
          metadata = parsed.metadata.metadata as Record<string, string>;
        data = parsed.media;
        contentType = typeof parsed.metadata.contentType === 'string' ? parsed.metadata.contentType : parsed.mediaType;
      } else if (uploadType === 'media') {
        data = body;
      } else {
        return gcsError(res, 400, 'invalidParameter', `Invalid upload type ${uploadType ?? ''}`);
      }
      if (!name) return gcsError(res, 400, 'required', 'Required object name');
      const existing = objects.get(key(bucket.name, name));
      const ifGen = url.searchParams.get('ifGenerationMatch');
      if (ifGen !== null && ifGen !== (existing ? existing.generation : '0'))
        return gcsError(res, 412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.');
      if (existing?.retentionExpirationTime && Date.parse(existing.retentionExpirationTime) > Date.now()) {
        return gcsError(
          res,
          403,
          'retentionPolicyNotMet',
          `Object '${bucket.name}/${name}' is subject to bucket's retention policy or object retention and cannot be deleted or overwritten until ${existing.retentionExpirationTime}`,
        );
      }
      const created = new Date();
      const o: FakeGcsObject = {
        bucket: bucket.name,
        name,
        data: Buffer.from(data),
        generation: String(++generation),
        contentType,
        metadata,
        timeCreated: created.toISOString(),
        retentionExpirationTime:
          bucket.retentionPeriodSeconds === null ? null : new Date(created.getTime() + bucket.retentionPeriodSeconds * 1000).toISOString(),
      };
      objects.set(key(bucket.name, name), o);
      if (failingAfterWrite > 0) {
        failingAfterWrite--;
        return gcsError(res, 503, 'backendError', 'Backend Error');
      }
      return send(res, 200, resource(o));
    }
    const obj = /^\/storage\/v1\/b\/([^/]+)\/o\/(.+)$/.exec(url.pathname);
    if (obj) {
      const bucketName = decodeURIComponent(obj[1] as string);
      const name = decodeURIComponent(obj[2] as string);
      if (!buckets.has(bucketName)) return gcsError(res, 404, 'notFound', 'The specified bucket does not exist.');
      const o = objects.get(key(bucketName, name));
      if (req.method === 'GET') {
        if (!o) return gcsError(res, 404, 'notFound', `No such object: ${bucketName}/${name}`);
        if (url.searchParams.get('alt') === 'media') {
          res.writeHead(200, {
            'content-type': o.contentType,
            'x-goog-generation': o.generation,
            'x-goog-hash': `crc32c=${crc32c(o.data)},md5=${createHash('md5').update(o.data).digest('base64')}`,
          });
          res.end(o.data);
          return 200;
        }
        return send(res, 200, resource(o));
      }
      if (req.method === 'DELETE') {
        if (!o) return gcsError(res, 404, 'notFound', `No such object: ${bucketName}/${name}`);
        if (o.retentionExpirationTime && Date.parse(o.retentionExpirationTime) > Date.now()) {
          return gcsError(
            res,
            403,
            'retentionPolicyNotMet',
            `Object '${bucketName}/${name}' is subject to bucket's retention policy or object retention and cannot be deleted or overwritten until ${o.retentionExpirationTime}`,
          );
        }
        objects.delete(key(bucketName, name));
        res.writeHead(204);
        res.end();
        return 204;
      }
    }
    const b = /^\/storage\/v1\/b\/([^/]+)$/.exec(url.pathname);
    if (b && req.method === 'GET') {
      const bucket = buckets.get(decodeURIComponent(b[1] as string));
      if (!bucket) return gcsError(res, 404, 'notFound', 'The specified bucket does not exist.');
      return send(res, 200, {
        kind: 'storage#bucket',
        id: bucket.name,
        name: bucket.name,
        location: 'EU',
        storageClass: 'ARCHIVE',
        ...(bucket.retentionPeriodSeconds === null
          ? {}
          : {
              retentionPolicy: {
                retentionPeriod: String(bucket.retentionPeriodSeconds),
                effectiveTime: '2026-01-01T00:00:00.000Z',
                ...(bucket.isLocked ? { isLocked: true } : {}),
              },
            }),
      });
    }
    return gcsError(res, 404, 'notFound', `no route ${req.method ?? ''} ${url.pathname}`);
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    handle(req, res, url)
      .then((status) =>
        requests.push({ method: req.method ?? '', path: url.pathname, query: Object.fromEntries(url.searchParams), status }),
      )
      .catch((err: unknown) => {
        if (!res.headersSent) gcsError(res, 500, 'internalError', (err as Error).message);
      });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    rootUrl: `http://127.0.0.1:${port}/`,
    token,
    requests,
    objects,
    forbiddenTokens,
    addBucket(name, retention = null) {
      const bucket: FakeGcsBucket = {
        name,
        retentionPeriodSeconds: retention ? retention.periodSeconds : null,
        isLocked: retention?.locked === true,
      };
      buckets.set(name, bucket);
      return bucket;
    },
    object: (bucket, name) => objects.get(key(bucket, name)),
    tamper(bucket, name) {
      const o = objects.get(key(bucket, name));
      if (!o) throw new Error(`no object ${bucket}/${name}`);
      const data = Buffer.from(o.data);
      const i = data.length - 10;
      data[i] = (data[i] ?? 0) ^ 1;
      o.data = data;
    },
    fail(n, status = 503) {
      failing = n;
      failStatus = status;
    },
    failAfterWrite(n) {
      failingAfterWrite = n;
    },
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
