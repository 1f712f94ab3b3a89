/**
 * The product as a user runs it (`npm start` or `node bin/activity-journal.mjs start`), seen from outside: its
 * process tree (from /proc), its stderr, its health, and a Redis of its own that a test may stop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { exitOf, spawnCli } from './cli.ts';
import { freePort } from './service.ts';
import { pollUntil, waitFor } from './wait.ts';

export interface Started {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  stderr(): string;
}

/** Whether `pid` runs (a zombie does not). */
export const alive = (pid: number): boolean =>
  existsSync(`/proc/${pid}`) && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));

/** `pid` and every process below it, now (from /proc). */
export function processTree(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parentOf.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const [child, parent] of parentOf) if (parent === out[i]) out.push(child);
  return out;
}

/** Starts the product the way the README says (`npm start`) or straight through the bin; stderr is collected. */
export function startProduct(command: 'npm' | 'node', env: NodeJS.ProcessEnv): Started {
  const child =
    command === 'npm'
      ? spawn('npm', ['start'], { cwd: process.cwd(), env, stdio: ['ignore', 'ignore', 'pipe'] })
      : spawnCli(['start'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return { child, exited: exitOf(child), stderr: () => stderr };
}

/** Waits until /healthz says ok and the banner is out; fails at once, with its stderr, if the product exits first. */
export async function healthy(web: number, product: Started, timeoutMs = 90_000): Promise<void> {
  let exited: number | null | undefined;
  void product.exited.then((code) => {
    exited = code;
  });
  await waitFor(
    async () => {
      const r = await fetch(`http://127.0.0.1:${web}/healthz`);
      // The banner (which names the supervisor's pid) follows /healthz: healthy means announced too.
      return r.status === 200 && ((await r.json()) as { ok: boolean }).ok && product.stderr().includes('activity-journal is running');
    },
    {
      what: 'healthy',
      timeoutMs,
      giveUp: () => (exited === undefined ? null : `the product exited (${String(exited)})`),
      detail: () => `its stderr:\n${product.stderr()}`,
    },
  );
}

/** Whether anything answers HTTP on the port. */
export const serving = (port: number): Promise<boolean> =>
  fetch(`http://127.0.0.1:${port}/healthz`).then(
    () => true,
    () => false,
  );

/** Its exit code, or 'still running' after `seconds`. */
export const exitWithin = (p: Started, seconds: number): Promise<number | null | 'still running'> =>
  Promise.race([p.exited, new Promise<'still running'>((r) => setTimeout(() => r('still running'), seconds * 1000))]);

/** The pids still alive after up to `seconds`. */
export async function stillAlive(pids: readonly number[], seconds: number): Promise<number[]> {
  await pollUntil(() => !pids.some(alive), { timeoutMs: seconds * 1000 });
  return pids.filter(alive);
}

/** A redis-server of the test's own (nothing on disk), which it may stop and start again on the same port. */
export class OwnRedis {
  private child: ChildProcess | null = null;
  private constructor(readonly port: number) {}
  static async start(): Promise<OwnRedis> {
    const r = new OwnRedis(await freePort());
    await r.up();
    return r;
  }
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  async up(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'],
      { stdio: 'ignore' },
    );
    this.child = child;
    await waitFor(
      async () => {
        const c = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        c.on('error', () => undefined);
        try {
          await c.connect();
          return (await c.ping()) === 'PONG';
        } finally {
          c.disconnect();
        }
      },
      { what: 'redis-server', timeoutMs: 20_000 },
    );
  }
  /** Stopped outright: what it held is gone (it keeps nothing on disk). */
  async down(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
}
