/**
 * Webhook intake: POST /webhooks/<provider>. The raw body is kept for signature checks; each rejection (unknown
 * provider, wrong content type, body over the limit, bad or missing signature, stale timestamp, replay,
 * malformed body) gets a 4xx with a clear message and a webhook.rejected entry (reason, size, SHA-256 of the
 * body, never the body), capped per configured provider, and for all unknown names together, so that a flood
 * cannot flood the journal. Accepted interactions
 * are answered 2xx only after interaction.received is committed.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { JournalClient } from '../journal/journal-client.ts';
import { journalRefusal } from '../journal/errors/refusal.ts';
import type { Logger } from '../config/logger.ts';
import type { IntakeOutcome } from '../pipeline/pipeline.ts';
import type { Interaction } from '../pipeline/interaction.ts';
import type { WebhookReceiver, WebhookRequest } from '../pipeline/webhook.ts';
import { QueueUnavailableError } from '../pipeline/errors/queue-unavailable.error.ts';
import { webhookResponseSeconds, webhooksRefused } from '../metrics/registry.ts';

/** What a 503 asks the provider to wait before retrying, in seconds. */
const RETRY_AFTER_S = 5;

export interface ReplayGuard {
  /** Whether a request with this key was accepted within the memory window. */
  seen(key: string): Promise<boolean>;
  /** Remembers an accepted request for `ttlMs`. */
  remember(key: string, ttlMs: number): Promise<void>;
}

export interface WebhookOptions {
  readonly receivers: ReadonlyMap<string, WebhookReceiver>;
  readonly intake: (ix: Interaction) => Promise<IntakeOutcome>;
  readonly journal: JournalClient;
  readonly replays: ReplayGuard;
  /** The public base URL providers call (e.g. https://hooks.example.com); signatures cover it. */
  readonly publicUrl: string;
  readonly maxBodyBytes: number;
  /** How much of a body over the limit is still read to measure and hash it (default 16 MiB or 4 × maxBodyBytes). */
  readonly drainBytes?: number;
  /** At most this many webhook.rejected entries per minute per configured provider, and for all unknown names together; the rest are counted. */
  readonly rejectionsPerMinute?: number;
  readonly logger: Logger;
  readonly now?: () => number;
}

type Rejection = { status: number; reason: string };
/** What a rejection records of the body: the bytes (hashed here), a digest taken while reading, or nothing. */
type RejectedBody = Buffer | { hash: string; sizeBytes: number; truncated: boolean } | null;

function bodyDigest(body: RejectedBody): { hash: string; sizeBytes: number; truncated: boolean } | null {
  if (body === null) return null;
  if (Buffer.isBuffer(body)) return { hash: createHash('sha256').update(body).digest('hex'), sizeBytes: body.length, truncated: false };
  return body;
}

/** A body over the webhook limit, measured and hashed while it was drained (up to a cap). */
class BodyTooLargeError extends Error {
  readonly statusCode = 413;
  constructor(
    readonly sizeBytes: number,
    readonly sha256: string,
    /** True when the sender sent more than the drain cap: size and hash then cover the first sizeBytes bytes. */
    readonly truncated: boolean,
  ) {
    super('the body is over the limit');
    this.name = 'BodyTooLargeError';
  }
}

/**
 * Reads a request body into memory up to `max` bytes. Past that it keeps reading only to measure and hash what
 * is sent (nothing more is kept), up to `cap` bytes, so that the refusal can say how large it was and which
 * body it was.
 */
function readBounded(
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

/** The rejection window of every provider name that has no receiver (not a valid name: it has a space). */
const UNKNOWN_PROVIDERS = 'unknown providers';

export function registerWebhooks(app: FastifyInstance, options: WebhookOptions): void {
  const log = options.logger.child({ component: 'web.webhooks' });
  const now = options.now ?? Date.now;
  const cap = options.rejectionsPerMinute ?? 60;
  const windows = new Map<string, { start: number; journaled: number; suppressed: number }>();

  // Answer time and refusals per provider: a name nobody configured is counted as "unknown" (the path segment is
  // the caller's to choose; a label per made-up name would grow without end).
  app.addHook('onResponse', async (req, reply) => {
    if (req.routeOptions.url !== '/webhooks/:provider') return;
    const named = providerOf(req);
    const labels = { provider: options.receivers.has(named) ? named : 'unknown', status: String(reply.statusCode) };
    webhookResponseSeconds.observe(labels, reply.elapsedTime / 1000);
    if (reply.statusCode >= 400 && reply.statusCode < 500) webhooksRefused.inc(labels);
  });

  const journalRejection = async (provider: string, r: Rejection, body: RejectedBody): Promise<void> => {
    const endpoint = `/webhooks/${provider}`.slice(0, 200);
    const t = now();
    // Names nobody configured share one window: the path segment is the caller's to choose, so counting per
    // segment would let made-up names write without limit (and grow this map without end). With that, the map
    // holds at most one window per configured receiver plus this one.
    const windowKey = options.receivers.has(provider) ? provider : UNKNOWN_PROVIDERS;
    let w = windows.get(windowKey);
    let suppressed = 0;
    if (!w || t - w.start >= 60_000) {
      suppressed = w?.suppressed ?? 0;
      w = { start: t, journaled: 0, suppressed: 0 };
      windows.set(windowKey, w);
    }
    if (w.journaled >= cap) {
      w.suppressed++;
      return;
    }
    w.journaled++;
    const digest = bodyDigest(body);
    const requestHash = digest?.hash;
    await options.journal.append({
      kind: 'webhook.rejected',
      source: 'web',
      actor: `webhook:${provider}`.slice(0, 256),
      correlationId: `webhook/${provider}`.slice(0, 256),
      // The same bad request sent again is the same rejection: it adds nothing.
      idempotencyKey: `webhook-rejected/${provider}/${r.status}/${createHash('sha256')
        .update(r.reason)
        .update('\0')
        .update(requestHash ?? '')
        .digest('hex')}${suppressed > 0 ? `/${t}` : ''}`.slice(0, 512),
      payload: {
        endpoint,
        status: r.status,
        reason: r.reason,
        ...(digest ? { requestHash: digest.hash, sizeBytes: digest.sizeBytes } : {}),
        ...(digest?.truncated ? { bodyTruncated: true } : {}),
        ...(suppressed > 0 ? { suppressed } : {}),
      },
    });
  };

  const reject = async (reply: FastifyReply, provider: string, r: Rejection, body: RejectedBody): Promise<FastifyReply> => {
    try {
      await journalRejection(provider, r, body);
    } catch (err) {
      log.error({ provider, status: r.status, err: (err as Error).message }, 'could not journal a webhook rejection');
    }
    return reply.code(r.status).send({ error: r.reason });
  };

  app.removeAllContentTypeParsers();
  // The body is read here, not by fastify's limit, so that a body over the limit is still measured and hashed:
  // its refusal goes on the record like every other one (size, SHA-256, its own idempotency key).
  const drainCap = options.drainBytes ?? Math.max(16 * 1024 * 1024, 4 * options.maxBodyBytes);
  app.addContentTypeParser('*', (_req, payload, done) => {
    readBounded(payload, options.maxBodyBytes, drainCap).then(
      (r) => (r.kind === 'body' ? done(null, r.body) : done(r.error)),
      (err: Error) => done(err),
    );
  });

  app.setErrorHandler(async (err: { statusCode?: number; code?: string; message: string }, req, reply) => {
    const provider = providerOf(req);
    if (err instanceof BodyTooLargeError) {
      const overCap = err.truncated ? ` (stopped reading after ${err.sizeBytes} bytes)` : '';
      if (err.truncated) reply.header('connection', 'close');
      return reject(
        reply,
        provider,
        { status: 413, reason: `the body is larger than ${options.maxBodyBytes} bytes${overCap}` },
        { hash: err.sha256, sizeBytes: err.sizeBytes, truncated: err.truncated },
      );
    }
    if (err.statusCode === 413 || err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reject(reply, provider, { status: 413, reason: `the body is larger than ${options.maxBodyBytes} bytes` }, null);
    }
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      return reject(reply, provider, { status: err.statusCode, reason: `malformed request (${err.code ?? 'bad request'})` }, null);
    }
    log.error({ provider, err: err.message }, 'webhook failed');
    return reply.code(500).send({ error: 'internal error; see the server log' });
  });

  app.post('/webhooks/:provider', async (req, reply) => {
    const provider = providerOf(req);
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const receiver = options.receivers.get(provider);
    if (!receiver)
      return reject(
        reply,
        provider,
        { status: 404, reason: `no webhook receiver named ${JSON.stringify(provider.slice(0, 64))} is configured` },
        raw,
      );
    const contentType =
      String(req.headers['content-type'] ?? '')
        .split(';')[0]
        ?.trim()
        .toLowerCase() ?? '';
    if (!receiver.contentTypes.includes(contentType)) {
      return reject(
        reply,
        provider,
        {
          status: 415,
          reason: `content type ${JSON.stringify(contentType.slice(0, 100))} is not accepted here (expected ${receiver.contentTypes.join(' or ')})`,
        },
        raw,
      );
    }
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
    const request: WebhookRequest = {
      url: options.publicUrl.replace(/\/$/, '') + req.url,
      method: req.method,
      headers,
      rawBody: raw,
      contentType,
      receivedAt: new Date(now()),
    };
    const outcome = receiver.handle(request);
    if (outcome.kind === 'rejected') return reject(reply, provider, outcome, raw);
    // A signed request accepted before is a replay and is refused. It is remembered only once accepted, so a
    // provider retrying after our failure gets through (and intake's idempotency keeps it to one entry).
    // The key is what the signature authenticates, never the signature header itself: a re-sent request with
    // an extra or re-cased signature is still the request that was accepted.
    const replayKey = `${provider}:${authenticatedDigest(receiver.authenticated(request))}`;
    // Replay memory lives in Redis. Without it, the request goes on to intake: the journal's idempotency keys
    // keep a replay to one entry, and the interaction is committed before its job is queued, so the evidence is
    // kept even while Redis is down (the answer is then a 503 below, and the provider's retry, or the re-drive,
    // queues the work).
    const replayed = await options.replays.seen(replayKey).catch((err: unknown) => {
      log.warn(
        { provider, event: outcome.kind === 'accepted' ? outcome.eventId : undefined, err: (err as Error).message.slice(0, 200) },
        "replay memory unavailable; relying on the journal's idempotency",
      );
      return false;
    });
    if (replayed) return reject(reply, provider, { status: 409, reason: 'this signed request was already received (replay)' }, raw);
    if (outcome.kind === 'ignored') return reply.code(200).send({ ignored: outcome.reason });
    const results = [];
    try {
      for (const ix of outcome.interactions) {
        const r = await options.intake(ix);
        results.push(
          r.status === 'accepted'
            ? { status: 'accepted', seq: r.entry.seq, duplicate: r.duplicate }
            : { status: 'excluded', rule: r.ruleId },
        );
      }
    } catch (err) {
      // The journal refused the content itself (not a failure to write): retrying cannot help, so it is a 422.
      const refused = journalRefusal(err);
      if (refused === 'IDEMPOTENCY_CONFLICT')
        return reject(
          reply,
          provider,
          { status: 409, reason: 'an event with this id was already received with different content; the first one stands' },
          raw,
        );
      if (refused === 'ENTRY_TOO_LARGE')
        return reject(
          reply,
          provider,
          { status: 413, reason: 'the event is larger than the journal accepts (JOURNAL_MAX_PAYLOAD_BYTES)' },
          raw,
        );
      if (refused)
        return reject(reply, provider, { status: 422, reason: `the event holds values the journal cannot record (${refused})` }, raw);
      if (err instanceof QueueUnavailableError) {
        // Journaled (if it got that far), not queued: the provider's retry is idempotent and queues it; if the
        // provider gives up, the lost-job re-drive finds the journaled interaction once Redis answers.
        log.warn({ provider, event: outcome.eventId, err: err.message }, "could not queue a webhook's interaction; answered 503");
        return reply
          .code(503)
          .header('retry-after', String(RETRY_AFTER_S))
          .send({ error: 'the work queue is unavailable; the event was recorded, retry later' });
      }
      log.error({ provider, event: outcome.eventId, err: (err as Error).name }, 'could not journal a webhook; the provider will retry');
      return reply.code(503).header('retry-after', String(RETRY_AFTER_S)).send({ error: 'the journal is unavailable; retry later' });
    }
    await options.replays
      .remember(replayKey, 10 * 60_000)
      .catch((err: unknown) =>
        log.warn(
          { provider, event: outcome.eventId, err: (err as Error).message.slice(0, 200) },
          'could not remember an accepted request for replay detection',
        ),
      );
    return reply.code(200).send({ event: outcome.eventId, results });
  });
}

/** SHA-256 over the parts, each prefixed by its length, so that no two part lists share a digest. */
function authenticatedDigest(parts: readonly (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const part of parts) {
    const bytes = typeof part === 'string' ? Buffer.from(part, 'utf8') : part;
    h.update(`${bytes.length}:`).update(bytes);
  }
  return h.digest('hex');
}

function providerOf(req: FastifyRequest): string {
  const p = (req.params as { provider?: unknown } | undefined)?.provider;
  return typeof p === 'string' && /^[a-z0-9-]{1,64}$/.test(p) ? p : 'unknown';
}

/** Replay memory shared by every web process through Redis (keys with an expiry). */
export class RedisReplayGuard implements ReplayGuard {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}
  async seen(key: string): Promise<boolean> {
    return (await this.redis.exists(`${this.prefix}:webhook-seen:${key}`)) === 1;
  }
  async remember(key: string, ttlMs: number): Promise<void> {
    await this.redis.set(`${this.prefix}:webhook-seen:${key}`, '1', 'PX', ttlMs);
  }
}
