/**
 * The two kinds of Redis connection the product opens, and how their health is said in words.
 *
 * - A worker's connection waits for Redis without limit (`maxRetriesPerRequest: null`, as BullMQ requires for
 *   workers): a job in hand is finished once Redis is back.
 * - A producer's connection (the web process: webhooks and the audit UI's actions) fails fast, as BullMQ's
 *   "failing fast when Redis is down" pattern says: no offline queue, one retry, a command timeout. BullMQ's
 *   `Queue.add` still waits for a connection that is not ready, so producers also check readiness first and put
 *   a deadline on every add (`producerEnqueue` in queues.ts).
 */
import { Redis } from 'ioredis';
import { QueueUnavailableError } from '../src/pipeline/errors/queue-unavailable.error.ts';

/** How long a producer waits for one Redis command before it gives up (a webhook must be answered in ~5 s). */
export const PRODUCER_COMMAND_TIMEOUT_MS = 1500;

interface Watched {
  lastError: string | null;
}
const watched = new WeakMap<Redis, Watched>();

function watch(redis: Redis): Redis {
  const w: Watched = { lastError: null };
  watched.set(redis, w);
  redis.on('error', (err: Error & { code?: string }) => {
    w.lastError = err.code ?? err.message;
  });
  redis.on('ready', () => {
    w.lastError = null;
  });
  return redis;
}

export function workerRedis(url: string): Redis {
  return watch(new Redis(url, { maxRetriesPerRequest: null, lazyConnect: true }));
}

export function producerRedis(url: string): Redis {
  return watch(
    new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: PRODUCER_COMMAND_TIMEOUT_MS }),
  );
}

/** host:port of a redis:// URL, without credentials (for messages: never the password). */
export function redisAddress(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '6379'}`;
  } catch {
    return 'the configured REDIS_URL';
  }
}

const REASONS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
};

/** "redis unreachable at 127.0.0.1:6379 (connection refused)", or null when the connection is ready. */
export function redisProblem(redis: Redis, url: string): string | null {
  if (redis.status === 'ready') return null;
  const last = watched.get(redis)?.lastError ?? null;
  const why = last
    ? (REASONS[last] ?? last.slice(0, 120))
    : redis.status === 'wait' || redis.status === 'connecting'
      ? 'still connecting'
      : 'not connected';
  return `redis unreachable at ${redisAddress(url)} (${why})`;
}

/** null when Redis answers a PING now; else what is wrong, in words ("redis unreachable at …"). */
export async function redisHealthProblem(redis: Redis, url: string): Promise<string | null> {
  const before = redisProblem(redis, url);
  if (before) return before;
  try {
    await redis.ping();
    return null;
  } catch (err) {
    // The connection dropped between the look and the PING: say what the connection knows by now.
    const msg = (err as Error).message;
    return (
      redisProblem(redis, url) ??
      `redis unreachable at ${redisAddress(url)} (${/timed? ?out/i.test(msg) ? `no answer within ${PRODUCER_COMMAND_TIMEOUT_MS} ms` : /writeable|closed/i.test(msg) ? 'connection closed' : msg.slice(0, 120)})`
    );
  }
}

/** Throws QueueUnavailableError, in words, unless the connection is ready. */
export function assertRedisReady(redis: Redis, url: string): void {
  const problem = redisProblem(redis, url);
  if (problem) throw new QueueUnavailableError(problem);
}

/** `work`, or QueueUnavailableError after `ms` (the work itself goes on: every add is idempotent by job id). */
export async function withinDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new QueueUnavailableError(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } catch (err) {
    if (err instanceof QueueUnavailableError) throw err;
    throw new QueueUnavailableError(`${what} failed: ${(err as Error).message.slice(0, 200)}`, { cause: err });
  } finally {
    clearTimeout(timer);
    // A late failure of the abandoned work must not become an unhandled rejection.
    work.catch(() => undefined);
  }
}
