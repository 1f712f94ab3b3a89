/**
 * Webhook intake: POST /webhooks/<provider>. The raw body is kept for signature checks; each rejection (unknown
 * provider, wrong content type, body over the limit, bad or missing signature, stale timestamp, replay,
 * malformed body) gets a 4xx with a clear message and a webhook.rejected entry (reason, size, SHA-256 of the
 * body, never the body; see webhook-rejections.ts), capped per configured provider, and for all unknown names
 * together, so that a flood cannot flood the journal. Accepted interactions are answered 2xx only after
 * interaction.received is committed.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { JournalClient } from '../journal/journal-client.ts';
import { journalRefusal } from '../journal/errors/refusal.ts';
import type { Logger } from '../config/logger.ts';
import type { IntakeOutcome } from '../pipeline/pipeline.ts';
import type { Interaction } from '../pipeline/interaction.ts';
import type { WebhookOutcome, WebhookReceiver, WebhookRequest } from '../pipeline/webhook.ts';
import { QueueUnavailableError } from '../pipeline/errors/queue-unavailable.error.ts';
import { webhookResponseSeconds, webhooksRefused } from '../metrics/registry.ts';
import { BodyTooLargeError } from './errors/body-too-large.error.ts';
import { readBounded, type RejectedBody } from './webhook-body.ts';
import { RejectionJournal, type Rejection } from './webhook-rejections.ts';

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

/** What the webhook routes share: the options, the logger, the clock, and the one way to refuse a request. */
interface Intake {
  readonly options: WebhookOptions;
  readonly log: Logger;
  readonly now: () => number;
  /** Journals the rejection (within the cap; a journal failure is logged, not answered) and answers it. */
  reject(reply: FastifyReply, provider: string, r: Rejection, body: RejectedBody): Promise<FastifyReply>;
}

type Accepted = Extract<WebhookOutcome, { kind: 'accepted' }>;

export function registerWebhooks(app: FastifyInstance, options: WebhookOptions): void {
  const log = options.logger.child({ component: 'web.webhooks' });
  const now = options.now ?? Date.now;
  const rejections = new RejectionJournal({
    journal: options.journal,
    configured: (provider) => options.receivers.has(provider),
    perMinute: options.rejectionsPerMinute ?? 60,
    now,
  });
  const intake: Intake = {
    options,
    log,
    now,
    async reject(reply, provider, r, body) {
      try {
        await rejections.record(provider, r, body);
      } catch (err) {
        log.error({ provider, status: r.status, err: (err as Error).message }, 'could not journal a webhook rejection');
      }
      return reply.code(r.status).send({ error: r.reason });
    },
  };

  countAnswers(app, options.receivers);
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
  app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, req, reply) => refuseUnread(intake, err, req, reply));
  app.post('/webhooks/:provider', (req, reply) => receive(intake, req, reply));
}

/**
 * Answer time and refusals per provider: a name nobody configured is counted as "unknown" (the path segment is
 * the caller's to choose; a label per made-up name would grow without end).
 */
function countAnswers(app: FastifyInstance, receivers: ReadonlyMap<string, WebhookReceiver>): void {
  app.addHook('onResponse', async (req, reply) => {
    if (req.routeOptions.url !== '/webhooks/:provider') return;
    const named = providerOf(req);
    const labels = { provider: receivers.has(named) ? named : 'unknown', status: String(reply.statusCode) };
    webhookResponseSeconds.observe(labels, reply.elapsedTime / 1000);
    if (reply.statusCode >= 400 && reply.statusCode < 500) webhooksRefused.inc(labels);
  });
}

/** A request that failed before its handler ran (body over the limit, unparsable): refused and journaled. */
async function refuseUnread(
  intake: Intake,
  err: { statusCode?: number; code?: string; message: string },
  req: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const provider = providerOf(req);
  const limit = intake.options.maxBodyBytes;
  if (err instanceof BodyTooLargeError) {
    const overCap = err.truncated ? ` (stopped reading after ${err.sizeBytes} bytes)` : '';
    if (err.truncated) reply.header('connection', 'close');
    return intake.reject(
      reply,
      provider,
      { status: 413, reason: `the body is larger than ${limit} bytes${overCap}` },
      { hash: err.sha256, sizeBytes: err.sizeBytes, truncated: err.truncated },
    );
  }
  if (err.statusCode === 413 || err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return intake.reject(reply, provider, { status: 413, reason: `the body is larger than ${limit} bytes` }, null);
  }
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
    return intake.reject(reply, provider, { status: err.statusCode, reason: `malformed request (${err.code ?? 'bad request'})` }, null);
  }
  intake.log.error({ provider, err: err.message }, 'webhook failed');
  return reply.code(500).send({ error: 'internal error; see the server log' });
}

/** POST /webhooks/:provider: checks the request (receiver, content type, signature, replay), then takes it in. */
async function receive(intake: Intake, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { options, log } = intake;
  const provider = providerOf(req);
  const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  const receiver = options.receivers.get(provider);
  if (!receiver)
    return intake.reject(
      reply,
      provider,
      { status: 404, reason: `no webhook receiver named ${JSON.stringify(provider.slice(0, 64))} is configured` },
      raw,
    );
  const contentType = mediaTypeOf(req);
  if (!receiver.contentTypes.includes(contentType)) {
    return intake.reject(
      reply,
      provider,
      {
        status: 415,
        reason: `content type ${JSON.stringify(contentType.slice(0, 100))} is not accepted here (expected ${receiver.contentTypes.join(' or ')})`,
      },
      raw,
    );
  }
  const request = webhookRequest(req, options.publicUrl, raw, contentType, intake.now());
  const outcome = receiver.handle(request);
  if (outcome.kind === 'rejected') return intake.reject(reply, provider, outcome, raw);
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
  if (replayed) return intake.reject(reply, provider, { status: 409, reason: 'this signed request was already received (replay)' }, raw);
  if (outcome.kind === 'ignored') return reply.code(200).send({ ignored: outcome.reason });
  return takeIn(intake, reply, provider, outcome, raw, replayKey);
}

/** The request as a receiver sees it: the public URL it was sent to, lower-cased headers, the raw body. */
function webhookRequest(req: FastifyRequest, publicUrl: string, raw: Buffer, contentType: string, receivedAt: number): WebhookRequest {
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
  return {
    url: publicUrl.replace(/\/$/, '') + req.url,
    method: req.method,
    headers,
    rawBody: raw,
    contentType,
    receivedAt: new Date(receivedAt),
  };
}

/** The content type without its parameters, lower-cased ('' when there is none). */
function mediaTypeOf(req: FastifyRequest): string {
  return (
    String(req.headers['content-type'] ?? '')
      .split(';')[0]
      ?.trim()
      .toLowerCase() ?? ''
  );
}

/**
 * Hands each interaction of an accepted event to intake, answers 2xx only once all are committed, and then
 * remembers the request for replay detection.
 */
async function takeIn(
  intake: Intake,
  reply: FastifyReply,
  provider: string,
  outcome: Accepted,
  raw: Buffer,
  replayKey: string,
): Promise<FastifyReply> {
  const { options, log } = intake;
  const results = [];
  try {
    for (const ix of outcome.interactions) {
      const r = await options.intake(ix);
      results.push(
        r.status === 'accepted' ? { status: 'accepted', seq: r.entry.seq, duplicate: r.duplicate } : { status: 'excluded', rule: r.ruleId },
      );
    }
  } catch (err) {
    return answerIntakeFailure(intake, reply, provider, outcome.eventId, err, raw);
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
}

/** Intake failed: a refusal of the content itself (4xx, journaled), or the queue or journal being down (503). */
function answerIntakeFailure(
  intake: Intake,
  reply: FastifyReply,
  provider: string,
  eventId: string,
  err: unknown,
  raw: Buffer,
): Promise<FastifyReply> | FastifyReply {
  const { log } = intake;
  // The journal refused the content itself (not a failure to write): retrying cannot help, so it is a 422.
  const refused = journalRefusal(err);
  if (refused === 'IDEMPOTENCY_CONFLICT')
    return intake.reject(
      reply,
      provider,
      { status: 409, reason: 'an event with this id was already received with different content; the first one stands' },
      raw,
    );
  if (refused === 'ENTRY_TOO_LARGE')
    return intake.reject(
      reply,
      provider,
      { status: 413, reason: 'the event is larger than the journal accepts (JOURNAL_MAX_PAYLOAD_BYTES)' },
      raw,
    );
  if (refused)
    return intake.reject(reply, provider, { status: 422, reason: `the event holds values the journal cannot record (${refused})` }, raw);
  if (err instanceof QueueUnavailableError) {
    // Journaled (if it got that far), not queued: the provider's retry is idempotent and queues it; if the
    // provider gives up, the lost-job re-drive finds the journaled interaction once Redis answers.
    log.warn({ provider, event: eventId, err: err.message }, "could not queue a webhook's interaction; answered 503");
    return reply
      .code(503)
      .header('retry-after', String(RETRY_AFTER_S))
      .send({ error: 'the work queue is unavailable; the event was recorded, retry later' });
  }
  log.error({ provider, event: eventId, err: (err as Error).name }, 'could not journal a webhook; the provider will retry');
  return reply.code(503).header('retry-after', String(RETRY_AFTER_S)).send({ error: 'the journal is unavailable; retry later' });
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
