/**
 * The whole product as separate real processes, for fault injection: a private Redis (so that it can be
 * stopped and restarted without touching anybody else's), the journal service, a worker and the web server,
 * each of which can be killed with SIGKILL and started again on the same port and data. The journal's data
 * directory can live on a small tmpfs of its own, so that its disk can be filled.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { exitOf, spawnCli } from '../helpers/cli.ts';
import { freePort, startService, tokensFor, type ServiceProcess } from '../helpers/service.ts';
import { waitFor } from '../helpers/wait.ts';
import { createQueues, closeQueues, waitUntilDrained } from '../../jobs/queues.ts';
import { GmailInboxStore } from '../../connectors/gmail/inbox-store.ts';
import { loadMasterKey } from '../../src/journal/master-key.ts';

export const SECRETS = {
  CALLS_WEBHOOK_SECRET: 'calls-secret-0123456789abcdef',
  FORMS_WEBHOOK_SECRET: 'forms-secret-0123456789abcdef',
};
export const PUBLIC_URL = 'https://hooks.example.test';

interface Proc {
  child: ChildProcess;
  exited: Promise<number | null>;
}

function startCli(command: string, env: NodeJS.ProcessEnv, logs: string[]): Proc {
  const child = spawnCli([command], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.on('data', (d: Buffer) => {
    logs.push(d.toString());
    if (logs.length > 400) logs.splice(0, logs.length - 400);
  });
  return { child, exited: exitOf(child) };
}

export interface ClusterOptions {
  /** Extra environment for every process (model fake URL, timeouts...). */
  readonly env: NodeJS.ProcessEnv;
  /** Put the journal on a tmpfs of this many MiB (needs root); null: an ordinary temp dir. */
  readonly tmpfsMiB: number | null;
  /**
   * An inbox connected before the worker starts, as the OAuth callback would have left it (grant stored in the
   * encrypted state store next to the journal); the worker then schedules its sync (GMAIL_SYNC_EVERY_SECONDS).
   */
  readonly gmailInbox?: { readonly mailbox: string; readonly refreshToken: string };
}

export class Cluster {
  readonly root: string;
  /** The journal's data directory (the tmpfs mount point when there is one). */
  readonly dataDir: string;
  readonly tmpfs: boolean;
  readonly prefix = `faults-${process.pid}-${Date.now().toString(36)}`;
  readonly logs: string[] = [];
  redisPort = 0;
  webPort = 0;
  journalPort = 0;
  readonly tokens = tokensFor();
  svc: ServiceProcess | null = null;
  worker: Proc | null = null;
  web: Proc | null = null;
  redis: Proc | null = null;

  private constructor(private readonly options: ClusterOptions) {
    this.root = mkdtempSync(join(tmpdir(), 'aj-faults-'));
    this.dataDir = join(this.root, 'data');
    mkdirSync(this.dataDir);
    this.tmpfs =
      options.tmpfsMiB !== null &&
      spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${options.tmpfsMiB}m`, 'tmpfs', this.dataDir]).status === 0;
  }

  static async start(options: ClusterOptions): Promise<Cluster> {
    const c = new Cluster(options);
    c.redisPort = await freePort();
    c.webPort = await freePort();
    c.journalPort = await freePort();
    await c.startRedis();
    await c.startJournal();
    if (options.gmailInbox) {
      const state = join(c.dataDir, 'state');
      // The state store is sealed under the master key the worker will load: the default file in the data dir.
      const { key } = loadMasterKey({ masterKeyFile: join(c.dataDir, 'secrets', 'master.key') }, { create: true });
      await new GmailInboxStore(join(state, 'gmail-inboxes.enc'), key, state).connect(
        options.gmailInbox.mailbox,
        options.gmailInbox.refreshToken,
        ['https://www.googleapis.com/auth/gmail.readonly'],
      );
    }
    await c.startWorker();
    await c.startWeb();
    return c;
  }

  get redisUrl(): string {
    return `redis://127.0.0.1:${this.redisPort}`;
  }
  get webUrl(): string {
    return `http://127.0.0.1:${this.webPort}`;
  }
  get journalPath(): string {
    return join(this.dataDir, 'journal.sqlite');
  }
  /** Where the journal service keeps its keys and publishes its checkpoints (the configuration's defaults). */
  get keysDir(): string {
    return join(this.dataDir, 'keys');
  }
  get anchorsDir(): string {
    return join(this.dataDir, 'anchors');
  }

  /** The environment of the pipeline processes (worker, web). */
  env(): NodeJS.ProcessEnv {
    if (!this.svc) throw new Error('the journal service is not running');
    return {
      ...this.svc.env,
      ...SECRETS,
      ...this.options.env,
      REDIS_URL: this.redisUrl,
      QUEUE_PREFIX: this.prefix,
      WEB_LISTEN: `127.0.0.1:${this.webPort}`,
      WEBHOOK_PUBLIC_URL: PUBLIC_URL,
      REDRIVE_INTERVAL_SECONDS: '1',
      REDRIVE_GRACE_SECONDS: '3',
      JOB_LOCK_SECONDS: '2',
      CRM_BATCH_LOCK_SECONDS: '2',
      SHUTDOWN_DEADLINE_SECONDS: '5',
      LOG_LEVEL: 'warn',
    };
  }

  async startRedis(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'],
      { stdio: 'ignore' },
    );
    this.redis = { child, exited: exitOf(child) };
    await waitFor(
      async () => {
        const r = new Redis(this.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        r.on('error', () => undefined); // not up yet: the next probe tries again
        try {
          await r.connect();
          return (await r.ping()) === 'PONG';
        } finally {
          r.disconnect();
        }
      },
      { what: 'redis', intervalMs: 50 },
    );
  }

  /** Redis stopped outright (its data is gone: it keeps nothing on disk), then started again. */
  async restartRedis(downMs: number): Promise<void> {
    this.redis?.child.kill('SIGKILL');
    await this.redis?.exited;
    await new Promise((r) => setTimeout(r, downMs));
    await this.startRedis();
  }

  async startJournal(): Promise<void> {
    this.svc = await startService(this.dataDir, {
      port: this.journalPort,
      tokens: this.tokens,
      env: { JOURNAL_CHECKPOINT_EVERY_SECONDS: '2', LOG_LEVEL: 'error' },
    });
  }

  async killJournal(downMs: number): Promise<void> {
    await this.svc?.kill9();
    await new Promise((r) => setTimeout(r, downMs));
    await this.startJournal();
  }

  async startWorker(): Promise<void> {
    this.worker = startCli('worker', this.env(), this.logs);
    await new Promise((r) => setTimeout(r, 300));
    if (this.worker.child.exitCode !== null) throw new Error(`the worker exited: ${this.logs.slice(-5).join('')}`);
  }

  async killWorker(downMs: number): Promise<void> {
    this.worker?.child.kill('SIGKILL');
    await this.worker?.exited;
    await new Promise((r) => setTimeout(r, downMs));
    await this.startWorker();
  }

  /** The worker stopped the way an operator restarts it (SIGTERM, its shutdown deadline), then started again. */
  async restartWorker(): Promise<void> {
    this.worker?.child.kill('SIGTERM');
    await this.worker?.exited;
    await this.startWorker();
  }

  async startWeb(): Promise<void> {
    this.web = startCli('web', this.env(), this.logs);
    const web = this.web;
    await waitFor(async () => (await fetch(`${this.webUrl}/healthz`)).status < 500, {
      what: 'the web server',
      intervalMs: 50,
      giveUp: () => (web.child.exitCode !== null ? `it exited: ${this.logs.slice(-5).join('')}` : null),
    });
  }

  async killWeb(downMs: number): Promise<void> {
    this.web?.child.kill('SIGKILL');
    await this.web?.exited;
    await new Promise((r) => setTimeout(r, downMs));
    await this.startWeb();
  }

  /** Waits until no job is due or running (the re-drive loop may still add work for lost jobs afterwards). */
  async drained(timeoutMs: number): Promise<void> {
    const redis = new Redis(this.redisUrl, { maxRetriesPerRequest: null });
    redis.on('error', () => undefined); // Redis may be down on purpose; waitUntilDrained times out instead
    const queues = createQueues(redis, this.prefix);
    try {
      await waitUntilDrained(queues, timeoutMs);
    } finally {
      await closeQueues(queues);
      redis.disconnect();
    }
  }

  async stop(): Promise<void> {
    for (const p of [this.web, this.worker]) {
      p?.child.kill('SIGTERM');
      await p?.exited;
    }
    await this.svc?.stop();
    this.redis?.child.kill('SIGKILL');
    await this.redis?.exited;
    if (this.tmpfs) spawnSync('umount', [this.dataDir]);
    rmSync(this.root, { recursive: true, force: true });
  }
}
