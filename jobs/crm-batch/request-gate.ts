/**
 * One HubSpot request limit shared by every worker process: the crm-batch queue's own BullMQ limiter key.
 * Fetching a job takes one slot (BullMQ's limiter) and every further HubSpot call of the job takes one more from
 * the same key; a halt is BullMQ's manual rate limit on the queue (Queue.rateLimit), which stops every worker.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { RequestGate } from '../../src/pipeline/ports.ts';

// Takes one request slot from the queue's BullMQ limiter key; returns 0, or how many ms to wait.
const ACQUIRE = `
local max = tonumber(ARGV[1]); local duration = tonumber(ARGV[2])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur >= max then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then return ttl end
  redis.call('DEL', KEYS[1])
end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], duration) end
return 0
`;

/** The HubSpot request limit shared by every worker process, kept in the crm-batch queue's BullMQ limiter key. */
export class QueueRequestGate implements RequestGate {
  private readonly key: string;
  constructor(
    private readonly redis: Redis,
    private readonly queue: Queue,
    prefix: string,
    private readonly max: number,
    private readonly durationMs: number,
  ) {
    this.key = `${prefix}:crm-batch:limiter`;
  }

  async acquire(): Promise<void> {
    for (;;) {
      const wait = Number(await this.redis.eval(ACQUIRE, 1, this.key, this.max, this.durationMs));
      if (wait <= 0) return;
      await new Promise((r) => setTimeout(r, Math.min(wait, 60_000)));
    }
  }

  /** BullMQ's manual rate limit on the queue: no worker fetches a crm-batch job, nor sends a request, until it ends. */
  async halt(ms: number): Promise<void> {
    await this.queue.rateLimit(Math.max(1, Math.round(ms)));
  }

  async pause(ms: number): Promise<void> {
    await this.halt(ms);
    await new Promise((r) => setTimeout(r, Math.min(ms, 60_000)));
  }
}

/** The first acquire of a job is free: fetching the job already took that slot from BullMQ's limiter. */
export function firstFree(gate: RequestGate): RequestGate {
  let free = true;
  return {
    acquire: () => {
      if (free) {
        free = false;
        return Promise.resolve();
      }
      return gate.acquire();
    },
    halt: (ms) => gate.halt(ms),
    pause: (ms) => gate.pause(ms),
  };
}
