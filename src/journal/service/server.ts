/**
 * The journal service's HTTP API (loopback TCP or a Unix socket). It offers append, read, prove and checkpoint;
 * there is no update or delete. Bad requests get a 4xx with a clear message and write nothing.
 *
 * Routes (the health check needs no credential; writes need the append credential, reads the read credential):
 * - `GET /healthz`: `health`
 * - `POST /v1/entries` (one entry, or `{ entries: [...] }`): `appendEntries`
 * - `POST /v1/checkpoints`: `createCheckpoint`
 * - any other method than GET: 405 (PUT, PATCH, DELETE) or 404, before the credential is checked
 * - `GET /metrics`, `/v1/entries`, `/v1/entries/<seq>`, `/v1/proofs/inclusion/<seq>`, `/v1/proofs/consistency`,
 *   `/v1/checkpoints/latest`: `routeRead`
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AppendResult, JournalWriter } from '../writer.ts';
import type { JournalEntry } from '../entry.ts';
import type { JournalReader } from '../reader.ts';
import { CredentialChecker, type ServiceCredentials } from './credentials.ts';
import { EntryValidationError } from '../errors/entry-validation.error.ts';
import { IdempotencyConflictError } from '../errors/idempotency-conflict.error.ts';
import { JournalWriteError } from '../errors/journal-write.error.ts';
import { ProofUnavailableError } from '../errors/proof-unavailable.error.ts';
import { silentLogger, type Logger } from '../../config/logger.ts';
import { journalAppendSeconds, registry, secondsSince } from '../../metrics/registry.ts';
import { HttpError } from '../../errors/http.error.ts';

export interface JournalApiOptions {
  readonly writer: JournalWriter;
  readonly reader: JournalReader;
  readonly credentials: ServiceCredentials;
  /** Largest request body accepted (default 16 MiB). */
  readonly maxBodyBytes?: number;
  /** Most entries in one batch (default 10,000). */
  readonly maxBatch?: number;
  readonly logger?: Logger;
}

type Role = 'append' | 'read';

/** What every route handler shares: the journal, the limits, and the credential check. */
interface Api {
  readonly writer: JournalWriter;
  readonly reader: JournalReader;
  readonly maxBody: number;
  readonly maxBatch: number;
  /** Throws 401 without a known credential, 403 with the other role's. */
  readonly need: (req: IncomingMessage, role: Role) => void;
}

export function createJournalServer(options: JournalApiOptions): Server {
  const log = (options.logger ?? silentLogger).child({ component: 'journal.service' });
  const credentials = new CredentialChecker(options.credentials);
  const api: Api = {
    writer: options.writer,
    reader: options.reader,
    maxBody: options.maxBodyBytes ?? 16 * 1024 * 1024,
    maxBatch: options.maxBatch ?? 10_000,
    need: (req, role) => {
      const has = credentials.roleOf(req.headers.authorization);
      if (has === null) throw new HttpError(401, 'UNAUTHORIZED', 'missing or unknown credential: send Authorization: Bearer <token>');
      if (has !== role) throw new HttpError(403, 'FORBIDDEN', `this operation needs the ${role} credential`);
    },
  };
  return createServer((req, res) => {
    route(api, req, res).catch((err: unknown) => {
      const e = toHttpError(err);
      if (e.status >= 500)
        log.error({ err: { name: (err as Error).name, message: (err as Error).message }, path: req.url?.split('?')[0] }, 'request failed');
      if (e.status === 503) res.setHeader('retry-after', '1');
      // Drain what the client is still sending, so it can read our answer instead of hitting a closed socket.
      if (e.status === 413) req.resume();
      send(res, e.status, { error: { code: e.code, message: e.message, ...(e.issues ? { issues: e.issues } : {}) } });
    });
  });
}

/** Picks the handler for a request; anything a handler throws becomes the error answer (see `toHttpError`). */
async function route(api: Api, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://journal');
  const path = url.pathname;
  const method = req.method ?? 'GET';
  if (path === '/healthz' && method === 'GET') return health(api, res);
  if (path === '/v1/entries' && method === 'POST') return appendEntries(api, req, res);
  if (path === '/v1/checkpoints' && method === 'POST') return createCheckpoint(api, req, res);
  if (method !== 'GET')
    throw new HttpError(
      method === 'PUT' || method === 'PATCH' || method === 'DELETE' ? 405 : 404,
      'NO_SUCH_OPERATION',
      `${method} ${path}: the journal offers no such operation (entries can only be appended)`,
    );
  api.need(req, 'read');
  return routeRead(api, path, url.searchParams, res);
}

/** Up but not writing (its disk full): 503, saying since when and why, so that every health check above says so. */
function health(api: Api, res: ServerResponse): void {
  const { writer } = api;
  const writing = writer.writeHealth;
  if (writing.ok) return send(res, 200, { ok: true, size: writer.size });
  return send(res, 503, {
    ok: false,
    size: writer.size,
    error: { code: 'WRITE_FAILED', message: `the journal is refusing writes since ${writing.failingSince}: ${writing.reason}` },
  });
}

/**
 * One entry (201, or 200 for a duplicate) or a batch `{ entries: [...] }` (201, or 200 when every entry is a
 * duplicate). Each request's duration is observed by request type and outcome, refusals and failures included.
 */
async function appendEntries(api: Api, req: IncomingMessage, res: ServerResponse): Promise<void> {
  api.need(req, 'append');
  const started = process.hrtime.bigint();
  let request: 'single' | 'batch' = 'single';
  try {
    const body = await readJson(req, api.maxBody);
    const isBatch = typeof body === 'object' && body !== null && !Array.isArray(body) && 'entries' in body;
    if (isBatch) {
      request = 'batch';
      return await appendBatch(api, body.entries, started, res);
    }
    const result = await api.writer.appendReceived(body);
    journalAppendSeconds.observe({ request, outcome: result.duplicate ? 'duplicate' : 'appended' }, secondsSince(started));
    return send(res, result.duplicate ? 200 : 201, { result: withoutPayload(result) });
  } catch (err) {
    journalAppendSeconds.observe({ request, outcome: toHttpError(err).status < 500 ? 'refused' : 'failed' }, secondsSince(started));
    throw err;
  }
}

async function appendBatch(api: Api, entries: unknown, started: bigint, res: ServerResponse): Promise<void> {
  if (!Array.isArray(entries) || entries.length === 0) throw new HttpError(422, 'INVALID_BATCH', '`entries` must be a non-empty array');
  if (entries.length > api.maxBatch) throw new HttpError(413, 'BATCH_TOO_LARGE', `a batch holds at most ${api.maxBatch} entries`);
  const results = await api.writer.appendBatchReceived(entries);
  const duplicate = results.every((r) => r.duplicate);
  journalAppendSeconds.observe({ request: 'batch', outcome: duplicate ? 'duplicate' : 'appended' }, secondsSince(started));
  return send(res, duplicate ? 200 : 201, { results: results.map(withoutPayload) });
}

/** A signed checkpoint of the journal as it stands: 201 when one was written, 200 when the latest already covers it. */
async function createCheckpoint(api: Api, req: IncomingMessage, res: ServerResponse): Promise<void> {
  api.need(req, 'append');
  const r = await api.writer.checkpoint();
  return send(res, r.created ? 201 : 200, { seq: r.seq, treeSize: r.checkpoint.treeSize, note: r.note, created: r.created });
}

/** The read-credential GET endpoints; anything else is 404. */
async function routeRead(api: Api, path: string, q: URLSearchParams, res: ServerResponse): Promise<void> {
  const { reader } = api;
  if (path === '/metrics') return sendMetrics(res);
  if (path === '/v1/entries') return readEntries(reader, q, res);
  const one = /^\/v1\/entries\/(\d+)$/.exec(path);
  if (one) return readEntry(reader, one[1] as string, res);
  const proof = /^\/v1\/proofs\/inclusion\/(\d+)$/.exec(path);
  if (proof) return send(res, 200, reader.proveInclusion(Number(proof[1]), { includePayload: q.get('payload') === 'true' }));
  if (path === '/v1/proofs/consistency')
    return send(res, 200, {
      from: intParam(q, 'from', 0),
      to: intParam(q, 'to', 0),
      proof: reader.proveConsistency(intParam(q, 'from', 0), intParam(q, 'to', 0)),
    });
  if (path === '/v1/checkpoints/latest') return readLatestCheckpoint(reader, res);
  throw new HttpError(404, 'NOT_FOUND', `GET ${path}: no such endpoint`);
}

async function sendMetrics(res: ServerResponse): Promise<void> {
  res.writeHead(200, { 'content-type': registry.contentType });
  res.end(await registry.metrics());
}

/** `GET /v1/entries`: by idempotency key, by correlation id, by kind (and time), or a seq range (`from`, `limit`). */
function readEntries(reader: JournalReader, q: URLSearchParams, res: ServerResponse): void {
  const limit = intParam(q, 'limit', 1000);
  if (q.has('idempotencyKey')) return send(res, 200, { entry: reader.byIdempotencyKey(q.get('idempotencyKey') as string) });
  if (q.has('correlationId'))
    return send(res, 200, {
      entries: reader.byCorrelation(q.get('correlationId') as string, { afterSeq: intParam(q, 'afterSeq', -1), limit }),
    });
  if (q.has('kind')) {
    const since = timeParam(q, 'since');
    const until = timeParam(q, 'until');
    return send(res, 200, {
      entries: reader.byKind({ kind: q.get('kind') as string, since, until, limit, afterSeq: intParam(q, 'afterSeq', -1) }),
    });
  }
  return send(res, 200, { entries: reader.range(intParam(q, 'from', 0), limit) });
}

function readEntry(reader: JournalReader, seq: string, res: ServerResponse): void {
  const entry = reader.bySeq(Number(seq));
  if (!entry) throw new HttpError(404, 'NOT_FOUND', `no entry at seq ${seq}`);
  return send(res, 200, { entry });
}

function readLatestCheckpoint(reader: JournalReader, res: ServerResponse): void {
  const cp = reader.latestCheckpoint();
  if (!cp) throw new HttpError(404, 'NOT_FOUND', 'no checkpoint yet');
  return send(res, 200, { seq: cp.seq, treeSize: cp.checkpoint.treeSize, note: cp.note });
}

/**
 * Append answers leave the payload out: the client sent it, and a duplicate's stored payload is the same
 * (same payload hash, or the append would have been a conflict). It halves the bytes on the hot path.
 */
function withoutPayload(r: AppendResult): { entry: Omit<JournalEntry, 'payload'>; duplicate: boolean } {
  const { payload: _payload, ...entry } = r.entry;
  return { entry, duplicate: r.duplicate };
}

function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof EntryValidationError)
    return new HttpError(err.code === 'ENTRY_TOO_LARGE' ? 413 : 422, err.code, err.message, err.issues);
  if (err instanceof IdempotencyConflictError) return new HttpError(409, err.code, err.message);
  if (err instanceof ProofUnavailableError) return new HttpError(404, err.code, err.message);
  if (err instanceof JournalWriteError) return new HttpError(503, err.code, err.message);
  return new HttpError(500, 'INTERNAL', 'internal error; see the service log');
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

async function readJson(req: IncomingMessage, max: number): Promise<unknown> {
  const type = req.headers['content-type'] ?? '';
  if (!type.startsWith('application/json')) throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send the entry as application/json');
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > max) throw new HttpError(413, 'BODY_TOO_LARGE', `the request body is larger than ${max} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) {
        req.off('data', onData);
        reject(new HttpError(413, 'BODY_TOO_LARGE', `the request body is larger than ${max} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve());
    req.once('error', reject);
  });
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HttpError(400, 'MALFORMED_JSON', `the body is not valid JSON: ${(err as Error).message}`);
  }
}

function intParam(q: URLSearchParams, name: string, def: number): number {
  const v = q.get(name);
  if (v === null) return def;
  if (!/^-?\d{1,15}$/.test(v)) throw new HttpError(400, 'BAD_QUERY', `${name} must be a whole number`);
  return Number(v);
}

function timeParam(q: URLSearchParams, name: string): string | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  if (Number.isNaN(Date.parse(v))) throw new HttpError(400, 'BAD_QUERY', `${name} must be an RFC 3339 timestamp`);
  return v;
}
