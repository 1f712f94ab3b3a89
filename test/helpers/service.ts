import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { HttpJournalClient } from '../../src/journal/service/http-client.ts';
import { exitOf, spawnCli } from './cli.ts';
import { waitFor } from './wait.ts';

export interface ServiceProcess {
  readonly url: string;
  readonly env: NodeJS.ProcessEnv;
  readonly child: ChildProcess;
  readonly appendToken: string;
  readonly readToken: string;
  client(options?: { attempts?: number }): HttpJournalClient;
  /** SIGTERM and wait for a clean exit; resolves to the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL: no chance to flush or checkpoint. */
  kill9(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Tokens for a test service: fixed per directory so a restarted service accepts the same clients. */
export function tokensFor(): { appendToken: string; readToken: string } {
  return { appendToken: randomBytes(32).toString('base64url'), readToken: randomBytes(32).toString('base64url') };
}

/** Starts `activity-journal journal-service` as a real child process and waits until /healthz answers. */
export async function startService(
  dir: string,
  opts: { port?: number; tokens?: { appendToken: string; readToken: string }; env?: NodeJS.ProcessEnv } = {},
): Promise<ServiceProcess> {
  const port = opts.port ?? (await freePort());
  const tokens = opts.tokens ?? tokensFor();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    JOURNAL_PATH: join(dir, 'journal.sqlite'),
    JOURNAL_SERVICE_LISTEN: `127.0.0.1:${port}`,
    JOURNAL_APPEND_TOKEN: tokens.appendToken,
    JOURNAL_READ_TOKEN: tokens.readToken,
    LOG_LEVEL: 'warn',
    ...opts.env,
  };
  const child = spawnCli(['journal-service'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const url = `http://127.0.0.1:${port}`;
  const probe = new HttpJournalClient({ url, attempts: 1 });
  await waitFor(() => probe.health().then(() => true), {
    what: 'the journal service to start',
    timeoutMs: 90_000, // generous: a loaded 2-core machine can take long to start a process
    intervalMs: 50,
    giveUp: () => (child.exitCode !== null ? `it exited with ${child.exitCode}` : null),
    detail: () => `its stderr: ${stderr}`,
  });
  await probe.close();
  const exited = exitOf(child);
  return {
    url,
    env,
    child,
    ...tokens,
    client: (o = {}) => new HttpJournalClient({ url, ...tokens, ...o }),
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
