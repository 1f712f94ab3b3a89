/**
 * /healthz says what is wrong in words a person can act on ("redis unreachable at host:port (connection
 * refused)"), never a client library's internals ("Stream isn't writeable and enableOfflineQueue options is
 * false"), and never a credential from the URL.
 */
import { describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { producerRedis, redisAddress, redisHealthProblem } from '../../jobs/redis-connection.ts';
import { HttpJournalClient } from '../../src/journal/service/http-client.ts';
import { journalProblem } from '../../src/cli/web.ts';

/** A port nothing listens on (taken, then released). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('dependency problems in words', () => {
  it('redis: unreachable at host:port, why, and no password', async () => {
    const port = await closedPort();
    const url = `redis://:hunter2-secret@127.0.0.1:${port}`;
    const redis = producerRedis(url);
    await redis.connect().catch(() => undefined);
    try {
      const problem = await redisHealthProblem(redis, url);
      expect(problem).toBe(`redis unreachable at 127.0.0.1:${port} (connection refused)`);
      expect(redisAddress(url)).toBe(`127.0.0.1:${port}`);
    } finally {
      redis.disconnect();
    }
  });

  it('the journal service: unreachable at its URL, and why', async () => {
    const port = await closedPort();
    const url = `http://127.0.0.1:${port}`;
    const client = new HttpJournalClient({ url, attempts: 1, timeoutMs: 2000 });
    try {
      const err = await client.health().then(
        () => null,
        (e: unknown) => e,
      );
      expect(journalProblem(url, err)).toBe(`journal service unreachable at ${url} (connection refused)`);
    } finally {
      await client.close();
    }
  });
});
