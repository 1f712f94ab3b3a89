import { createHmac } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { REDIS_URL, testConfig, type InProcessPipeline } from './pipeline.ts';
import { createWebServer } from '../../src/web/server.ts';
import { RedisReplayGuard } from '../../src/web/webhooks.ts';
import { configuredReceivers } from '../../jobs/main.ts';
import { silentLogger, type Logger } from '../../src/config/logger.ts';

/** The web server with the receivers `env` configures, taking webhooks into the pipeline `p`; close() also drops its Redis. */
export async function webhookServer(
  p: Pick<InProcessPipeline, 'runtime' | 'journal' | 'prefix'>,
  dir: string,
  env: NodeJS.ProcessEnv,
  options: { rejectionsPerMinute: number; now?: () => number; drainBytes?: number; logger?: Logger },
): Promise<{ app: FastifyInstance; close(): Promise<void> }> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const config = testConfig(dir, env);
  const app = createWebServer({
    checks: [],

    webhooks: {
      receivers: configuredReceivers(config),
      intake: (ix) => p.runtime.pipeline.intake(ix),
      journal: p.journal,
      replays: new RedisReplayGuard(redis, p.prefix),
      publicUrl: config.web.webhooks.publicUrl,
      maxBodyBytes: config.web.webhooks.maxBodyBytes,
      rejectionsPerMinute: options.rejectionsPerMinute,
      logger: options.logger ?? silentLogger,
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

/** A request body signed for the x-aj receivers (generic calls and forms): HMAC-SHA256 of `<ts>.<body>`. */
export function signedRaw(
  secret: string,
  payload: string,
  atMs: number,
  type = 'application/json',
): { headers: Record<string, string>; payload: string } {
  const ts = Math.floor(atMs / 1000);
  return {
    headers: {
      'content-type': type,
      'x-aj-timestamp': String(ts),
      'x-aj-signature': `v1=${createHmac('sha256', secret).update(`${ts}.${payload}`).digest('hex')}`,
    },
    payload,
  };
}

/** A generic call webhook event (POST /webhooks/calls) of a call that started ten minutes before `atMs`. */
export function genericCall(id: string, atMs: number, extra: object = {}): Record<string, unknown> {
  return {
    id: `evt-${id}`,
    event: 'call.completed',
    callId: id,
    direction: 'inbound',
    from: '+15555550123',
    to: '+15555550188',
    startedAt: new Date(atMs - 600_000).toISOString(),
    durationSeconds: 320,
    ...extra,
  };
}
