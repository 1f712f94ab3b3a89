/**
 * `activity-journal start`: the journal service, the pipeline workers and the web server as separate processes
 * under one supervisor (plus a local redis-server when none is available). A child that dies is restarted with
 * backoff; SIGTERM stops the workers and the web server first and the journal service last, so that
 * everything they accepted is journaled.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import type { Config } from '../config/config.ts';
import type { Logger } from '../config/logger.ts';
import { resolveCredentials } from '../journal/service/credentials.ts';
import { HttpJournalClient } from '../journal/service/http-client.ts';
import { ensureRedis } from './redis.ts';
import { loadMasterKey } from '../journal/master-key.ts';

const BIN = resolve(import.meta.dirname, '../../bin/activity-journal.mjs');

interface Managed {
  readonly name: string;
  readonly args: readonly string[];
  child: ChildProcess | null;
  restarts: number;
  stopping: boolean;
  exited: Promise<void>;
}

/** What the journal service archives, where, how often (from the configuration; nothing is contacted here). */
function archiveLine(config: Config): string {
  const s = config.journal.archiveStore;
  const where = s.kind === 'gcs' ? `gs://${s.bucket}/${s.prefix}` : s.dir;
  const every = config.journal.archiveSchedule;
  if (!every) return 'Archive: not scheduled (ARCHIVE_SCHEDULE=off).';
  const h = every.everyMs / 3_600_000;
  return `Archive: closed months every ${Number.isInteger(h) ? `${h} h` : `${every.everyMs / 1000} s`} to ${where}.`;
}

export async function runSupervisor(config: Config, logger: Logger, env: NodeJS.ProcessEnv): Promise<number> {
  const log = logger.child({ component: 'supervisor' });
  // The master key first, before any child could race to create it: said out loud when it is new.
  const master = loadMasterKey(config.privacy, { create: true });
  if (master.source === 'created') {
    log.warn({ file: master.file, masterKeyId: master.key.id }, 'no master key was configured: generated one (0600). Back it up apart from the data directory, or set JOURNAL_MASTER_KEY / JOURNAL_MASTER_KEY_FILE: without it, OAuth tokens and personal data in the journal cannot be read');
  } else log.info({ source: master.source, masterKeyId: master.key.id }, 'master key loaded');
  const redis = await ensureRedis(config, logger);
  const creds = resolveCredentials(config.journal.keysDir, config.service, true);
  if (!creds) throw new Error('no journal service credentials could be resolved');
  const childEnv: NodeJS.ProcessEnv = {
    ...env,
    JOURNAL_PATH: config.journal.path,
    JOURNAL_APPEND_TOKEN: creds.appendToken,
    JOURNAL_READ_TOKEN: creds.readToken,
    REDIS_URL: redis.url,
  };
  let shuttingDown = false;

  const start = (m: Managed): void => {
    // An IPC channel lets a child notice when the supervisor dies (even by kill -9) and shut down cleanly.
    const child = spawn(process.execPath, [BIN, ...m.args], { env: childEnv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    m.child = child;
    m.exited = new Promise((resolveExit) => {
      child.once('exit', (code, signal) => {
        m.child = null;
        resolveExit();
        if (shuttingDown || m.stopping) return;
        m.restarts++;
        const delay = Math.min(30_000, 500 * 2 ** Math.min(m.restarts, 6));
        log.error({ process: m.name, code, signal, restartInMs: delay }, 'process exited; restarting');
        setTimeout(() => {
          if (!shuttingDown) start(m);
        }, delay).unref();
      });
    });
    log.info({ process: m.name, pid: child.pid }, 'started');
  };
  const make = (name: string, args: string[]): Managed => ({ name, args, child: null, restarts: 0, stopping: false, exited: Promise.resolve() });

  const journal = make('journal-service', ['journal-service']);
  start(journal);
  const client = new HttpJournalClient({ url: config.service.url, attempts: 1 });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await client.health();
      break;
    } catch {
      if (Date.now() > deadline) {
        await client.close();
        throw new Error(`the journal service did not come up on ${config.service.url} within 30 s`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await client.close();
  const others = [make('worker', ['worker']), make('web', ['web'])];
  others.forEach(start);
  process.stderr.write(
    `activity-journal is running: journal service ${config.service.url}, web http://${config.web.listen.kind === 'tcp' ? `${config.web.listen.host}:${config.web.listen.port}` : ''} (/healthz, /metrics, the audit UI at /audit), Redis ${redis.url}${redis.child ? ' (started by us)' : ''}.\n` +
      `Classifier: ${config.pipeline.openai ? `OpenAI ${config.pipeline.openai.model}` : 'offline rules (set OPENAI_API_KEY for a model)'}; CRM: dry-run. ${archiveLine(config)} Ctrl-C to stop.\n`,
  );

  await new Promise<void>((resolveStop) => {
    const stop = (signal: string): void => {
      if (shuttingDown) return;
      shuttingDown = true;
      log.info({ signal }, 'stopping');
      resolveStop();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  const hardStop = setTimeout(() => {
    log.error({}, 'children did not stop in time; killing them');
    for (const m of [...others, journal]) m.child?.kill('SIGKILL');
    redis.child?.kill('SIGKILL');
  }, config.shutdownDeadlineMs + 15_000);
  hardStop.unref();
  for (const m of others) {
    m.stopping = true;
    m.child?.kill('SIGTERM');
  }
  await Promise.all(others.map((m) => m.exited));
  journal.stopping = true;
  journal.child?.kill('SIGTERM');
  await journal.exited;
  if (redis.child) {
    redis.child.kill('SIGTERM');
    await new Promise((r) => redis.child?.once('exit', r));
  }
  clearTimeout(hardStop);
  return 0;
}
