import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { REDIS_URL, testConfig, type InProcessPipeline } from './pipeline.ts';
import { createWebServer } from '../../src/web/server.ts';
import { RedisReplayGuard } from '../../src/web/webhooks.ts';
import { configuredReceivers } from '../../jobs/main.ts';
import { silentLogger } from '../../src/config/logger.ts';

/** The web server with the receivers `env` configures, taking webhooks into the pipeline `p`; close() also drops its Redis. */
export async function webhookServer(p: InProcessPipeline, dir: string, env: NodeJS.ProcessEnv, options: { rejectionsPerMinute: number; now?: () => number; drainBytes?: number }): Promise<{ app: FastifyInstance; close(): Promise<void> }> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const config = testConfig(dir, env);
  const app = createWebServer({
    checks: [],
    gauges: () => Promise.resolve([]),
    webhooks: {
      receivers: configuredReceivers(config),
      intake: (ix) => p.runtime.pipeline.intake(ix),
      journal: p.journal,
      replays: new RedisReplayGuard(redis, p.prefix),
      publicUrl: config.web.webhooks.publicUrl,
      maxBodyBytes: config.web.webhooks.maxBodyBytes,
      rejectionsPerMinute: options.rejectionsPerMinute,
      logger: silentLogger,
      ...(options.now ? { now: options.now } : {}),
      ...(options.drainBytes !== undefined ? { drainBytes: options.drainBytes } : {}),
    },
  });
  await app.ready();
  return {
    app,
    async close() {
      await app.close();
      redis.disconnect();
    },
  };
}
