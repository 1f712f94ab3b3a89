/**
 * Finding Redis for `npm start` and the demo: REDIS_URL when set; else whatever answers on 127.0.0.1:6379;
 * else a redis-server we start ourselves (data in <data dir>/redis), when one is installed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { Socket } from 'node:net';
import { join, dirname } from 'node:path';
import type { Config } from '../config/config.ts';
import type { Logger } from '../config/logger.ts';
import { UsageError } from './usage-error.ts';

export interface RedisHandle {
  readonly url: string;
  /** The redis-server we started, if we did. */
  readonly child: ChildProcess | null;
}

export const HOW_TO_GET_REDIS =
  'No Redis answers on 127.0.0.1:6379 and redis-server is not installed. Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) or point REDIS_URL at one, e.g. REDIS_URL=redis://127.0.0.1:6379';

/** Sends PING and waits for +PONG (or an auth error, which still means a Redis is there). */
export function pingRedis(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let answered = false;
    const done = (ok: boolean): void => {
      if (answered) return;
      answered = true;
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, host, () => socket.write('PING\r\n'));
    socket.once('data', (d: Buffer) => done(/^(\+PONG|-NOAUTH)/.test(d.toString())));
  });
}

export async function ensureRedis(config: Config, logger: Logger): Promise<RedisHandle> {
  if (config.pipeline.redisUrl) return { url: config.pipeline.redisUrl, child: null };
  const url = 'redis://127.0.0.1:6379';
  if (await pingRedis('127.0.0.1', 6379)) return { url, child: null };
  const which = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  if (which.status !== 0) throw new UsageError(HOW_TO_GET_REDIS);
  const dir = join(dirname(config.journal.path), 'redis');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // AOF with fsync every second and noeviction: queued jobs survive a restart and are never evicted.
  const child = spawn(
    'redis-server',
    [
      '--bind',
      '127.0.0.1',
      '--port',
      '6379',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--save',
      '',
      '--maxmemory-policy',
      'noeviction',
    ],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 100; i++) {
    if (await pingRedis('127.0.0.1', 6379)) {
      logger.info({ dir, pid: child.pid }, 'started a local redis-server');
      return { url, child };
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGTERM');
  throw new UsageError(`redis-server did not start (data dir ${dir}); start one yourself or set REDIS_URL`);
}
