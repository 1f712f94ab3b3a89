/**
 * Runs the re-drive scan (src/pipeline/redrive.ts) when the workers start and then periodically, one worker
 * at a time (a Redis lock), remembering in Redis how far every interaction is known to be finished.
 */
import type { Redis } from 'ioredis';
import type { JournalClient } from '../src/journal/journal-client.ts';
import type { Enqueue } from '../src/pipeline/ports.ts';
import type { Logger } from '../src/config/logger.ts';
import { redrive } from '../src/pipeline/redrive.ts';

export interface RedriveLoop {
  /** One full pass (all pages); resolves to the number of interactions re-driven. */
  runOnce(): Promise<number>;
  stop(): Promise<void>;
}

export function startRedriveLoop(options: {
  redis: Redis;
  prefix: string;
  journal: JournalClient;
  enqueue: Enqueue;
  intervalMs: number;
  graceMs: number;
  logger: Logger;
}): RedriveLoop {
  const log = options.logger.child({ component: 'jobs.redrive' });
  const key = `${options.prefix}:redrive:watermark`;
  const lockKey = `${options.prefix}:redrive:lock`;
  let running: Promise<number> | null = null;
  const pass = async (): Promise<number> => {
    const got = await options.redis.set(lockKey, String(process.pid), 'PX', Math.max(30_000, options.intervalMs), 'NX');
    if (got !== 'OK') return 0;
    try {
      const start = Number((await options.redis.get(key)) ?? 0);
      let cursor = start;
      let watermarkValid = true;
      let total = 0;
      for (;;) {
        const report = await redrive({ journal: options.journal, enqueue: options.enqueue, fromSeq: cursor, graceMs: options.graceMs });
        total += report.redriven;
        // The watermark only moves over a prefix in which every interaction is finished.
        if (watermarkValid && report.watermark > cursor) await options.redis.set(key, String(report.watermark));
        if (report.redriven > 0 || report.watermark < report.nextSeq) watermarkValid = false;
        if (!report.more) break;
        cursor = report.nextSeq;
      }
      if (total > 0) log.warn({ redriven: total }, 're-drove interactions whose jobs had been lost');
      return total;
    } finally {
      await options.redis.del(lockKey);
    }
  };
  const runOnce = (): Promise<number> => {
    running ??= pass().finally(() => {
      running = null;
    });
    return running;
  };
  const timer = setInterval(() => {
    runOnce().catch((err: unknown) => log.error({ err: (err as Error).message }, 're-drive pass failed'));
  }, options.intervalMs);
  timer.unref();
  return {
    runOnce,
    async stop() {
      clearInterval(timer);
      await running?.catch(() => 0);
    },
  };
}
