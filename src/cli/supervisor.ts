/**
 * `activity-journal start`: the journal service, the pipeline workers and the web server as separate processes
 * under one supervisor (plus a local redis-server when none is available). A child that dies is restarted with
 * backoff. SIGTERM, SIGINT or SIGHUP to the supervisor, a SIGTERM to any child (passed on as a request), or the
 * death of the supervisor's parent (npm exits on SIGTERM without waiting for its child: the supervisor notices it
 * was re-parented) stop the workers and the web server first and the journal service last, so that everything
 * they accepted is journaled and the journal service writes its final checkpoint. Children stop by themselves
 * when the supervisor dies (their IPC channel closes). A second start on the same data directory refuses at once
 * (src/cli/instance.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import type { Config } from '../config/config.ts';
import type { Logger } from '../config/logger.ts';
import { resolveCredentials } from '../journal/service/credentials.ts';
import { HttpJournalClient } from '../journal/service/http-client.ts';
import { ensureRedis, type RedisHandle } from './redis.ts';
import { loadMasterKey } from '../journal/master-key.ts';
import { claimInstance } from './instance.ts';
import { STOP_MESSAGE, isArmed, isReady, isStopRequest } from './stop-signal.ts';
import { chooseLogFormat } from '../config/logger.ts';
import { readUsersFile } from '../audit/users.ts';
import { PROJECT_ROOT } from '../config/project-root.ts';

const BIN = resolve(PROJECT_ROOT, 'bin/activity-journal.mjs');

interface Managed {
  readonly name: string;
  readonly args: readonly string[];
  child: ChildProcess | null;
  /** It listens for our stop message (until then SIGTERM ends it: it has nothing to close yet). */
  armed: boolean;
  restarts: number;
  stopping: boolean;
  exited: Promise<void>;
  /** It said it is up (the worker: an IPC ready message once its workers run). */
  ready: boolean;
  /** What we last heard of it, for the message when it does not come up in time. */
  lastSaid: string;
  /** When its current run started, and how many runs in a row ended within QUICK_EXIT_MS of starting. */
  startedAt: number;
  quickExits: number;
}

/**
 * A child that cannot start is not restarted for ever: exit code 2 (a configuration or usage problem, which a
 * restart cannot fix) stops the product at once; so do MAX_QUICK_EXITS runs in a row that each ended within
 * QUICK_EXIT_MS of starting (a crash loop, e.g. an unreadable key store). The supervisor then stops the others in
 * order and exits non-zero, naming the process; its own error is above in the log.
 */
export const QUICK_EXIT_MS = 10_000;
export const MAX_QUICK_EXITS = 3;

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
  // Before anything else: one start per data directory, refused at once (no child spawned, no back-off loop).
  const claimed = await claimInstance(config);
  try {
    return await supervise(config, logger, env, log);
  } finally {
    claimed.release();
  }
}

/** The parent pid of `pid` (from /proc; null where there is no /proc or the process is gone). */
function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

/** A TCP port free on 127.0.0.1 right now (the kernel's pick; kept for the children's whole life, restarts included). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port was assigned'))));
    });
  });
}

/** How often the supervisor checks that its parent (npm, a shell) is still there. */
const PARENT_CHECK_MS = 500;

async function supervise(config: Config, logger: Logger, env: NodeJS.ProcessEnv, log: Logger): Promise<number> {
  // Stop requests are taken from the very start, so that one arriving during start-up is not lost.
  let shuttingDown = false;
  let resolveStop: () => void = () => {};
  const stopped = new Promise<void>((r) => {
    resolveStop = r;
  });
  const stop = (reason: string): void => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info({ signal: reason }, 'stopping');
    resolveStop();
  };
  const onSignal = (signal: NodeJS.Signals) => () => stop(signal);
  const handlers = (['SIGTERM', 'SIGINT', 'SIGHUP'] as const).map((signal) => [signal, onSignal(signal)] as const);
  for (const [signal, h] of handlers) process.on(signal, h);
  // npm (and other wrappers) may exit on SIGTERM without passing it on: we are then re-parented (to init or a
  // subreaper). A parent that is gone means stop, in order, rather than serve on unsupervised.
  // `npm start` runs us through `sh -c`: npm killed outright (SIGKILL, OOM killer) leaves that shell waiting for us,
  // so our own parent stays. The shell's parent (npm) is watched too.
  const parent = process.ppid;
  const grandparent = parentOf(parent);
  const watchdog = setInterval(() => {
    if (process.ppid !== parent) stop(`parent ${parent} gone`);
    else if (grandparent !== null && grandparent > 1 && parentOf(parent) !== grandparent) stop(`parent's parent ${grandparent} gone`);
  }, PARENT_CHECK_MS);
  watchdog.unref();
  try {
    return await superviseUntilStopped(config, logger, env, log, { stopped, stop, isStopping: () => shuttingDown });
  } finally {
    clearInterval(watchdog);
    for (const [signal, h] of handlers) process.off(signal, h);
  }
}

interface StopControl {
  readonly stopped: Promise<void>;
  stop(reason: string): void;
  isStopping(): boolean;
}

/**
 * The supervisor's run, in phases: key and Redis and the children's environment; start the journal service and
 * wait for it; start the worker and the web server (the banner follows when all answer); wait for a stop; stop in
 * order. Restarts happen on the side, in `afterExit`.
 */
async function superviseUntilStopped(
  config: Config,
  logger: Logger,
  env: NodeJS.ProcessEnv,
  log: Logger,
  control: StopControl,
): Promise<number> {
  announceMasterKey(config, log);
  const redis = await ensureRedis(config, logger);
  const children: Children = { env: await childEnvironment(config, env, redis.url), log, control, failure: null };
  const journal = managed('journal-service', ['journal-service']);
  const others = [managed('worker', ['worker']), managed('web', ['web'])];
  const shutdown = (): Promise<number> => stopInOrder(config, children, { journal, others, redis });

  startChild(children, journal);
  const journalUp = await waitForJournalService(config.service.url, control);
  if (journalUp === 'timed out') {
    await shutdown();
    throw new Error(`the journal service did not come up on ${config.service.url} within ${JOURNAL_UP_MS / 1000} s`);
  }
  if (journalUp === 'stopping' || control.isStopping()) return shutdown();

  others.forEach((m) => startChild(children, m));
  const [worker, web] = others as [Managed, Managed];
  void announceWhenReady({ config, log, control, worker, web, banner: () => banner(config, redis) });

  await control.stopped;
  return shutdown();
}

/** The master key first, before any child could race to create it: said out loud when it is new. */
function announceMasterKey(config: Config, log: Logger): void {
  const master = loadMasterKey(config.privacy, { create: true });
  if (master.source === 'created') {
    log.warn(
      { file: master.file, masterKeyId: master.key.id },
      'no master key was configured: generated one (0600). Back it up apart from the data directory, or set JOURNAL_MASTER_KEY / JOURNAL_MASTER_KEY_FILE: without it, OAuth tokens and personal data in the journal cannot be read',
    );
  } else log.info({ source: master.source, masterKeyId: master.key.id }, 'master key loaded');
}

/** What every child runs with: our environment plus the journal, its credentials, Redis, the log format and the worker's metrics port. */
async function childEnvironment(config: Config, env: NodeJS.ProcessEnv, redisUrl: string): Promise<NodeJS.ProcessEnv> {
  const creds = resolveCredentials(config.journal.keysDir, config.service, true);
  if (!creds) throw new Error('no journal service credentials could be resolved');
  return {
    ...env,
    JOURNAL_PATH: config.journal.path,
    JOURNAL_APPEND_TOKEN: creds.appendToken,
    JOURNAL_READ_TOKEN: creds.readToken,
    REDIS_URL: redisUrl,
    // Their stderr is ours: the same format as ours, said explicitly rather than left to each to guess.
    LOG_FORMAT: chooseLogFormat(config.logFormat, process.stderr.isTTY === true),
    // The worker's own /metrics, gathered by the web server's: on a free loopback port unless one is configured,
    // so that two instances on one machine (or anything else on 9465) do not collide.
    WORKER_METRICS_LISTEN: env.WORKER_METRICS_LISTEN ? env.WORKER_METRICS_LISTEN : `127.0.0.1:${await freeLoopbackPort()}`,
  };
}

/** What the supervised children share: their environment, the log, the stop control, and the first that could not start. */
interface Children {
  readonly env: NodeJS.ProcessEnv;
  readonly log: Logger;
  readonly control: StopControl;
  failure: { code: number; process: string } | null;
}

function managed(name: string, args: string[]): Managed {
  return {
    name,
    args,
    child: null,
    armed: false,
    restarts: 0,
    stopping: false,
    exited: Promise.resolve(),
    ready: false,
    lastSaid: 'not started',
    startedAt: 0,
    quickExits: 0,
  };
}

/** Spawns `m` (again, after a restart) and follows what it says and when it exits. */
function startChild(children: Children, m: Managed): void {
  // An IPC channel lets a child notice when the supervisor dies (even by kill -9) and shut down cleanly, the
  // supervisor tell it when to stop, and the child pass on a SIGTERM it was sent.
  const child = spawn(process.execPath, [BIN, ...m.args], { env: children.env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  m.child = child;
  m.armed = false;
  m.startedAt = Date.now();
  m.ready = false;
  m.lastSaid = `started as pid ${child.pid ?? '?'}, not ready yet`;
  child.on('message', (msg: unknown) => {
    if (isArmed(msg)) m.armed = true;
    else if (isReady(msg)) {
      m.ready = true;
      m.lastSaid = 'ready';
    } else if (isStopRequest(msg)) {
      m.armed = true;
      // Already being stopped (a SIGTERM raced our stop): tell it again, now that it surely listens.
      if (m.stopping) stopChild(m);
      else children.control.stop(`${msg.signal} to ${m.name}`);
    }
  });
  m.exited = new Promise((resolveExit) => {
    child.once('exit', (code, signal) => {
      m.child = null;
      m.ready = false;
      m.lastSaid = `exited (code ${String(code)}, signal ${String(signal)})`;
      resolveExit();
      afterExit(children, m, code, signal);
    });
  });
  children.log.info({ process: m.name, pid: child.pid }, 'started');
}

/**
 * The restart policy for a child that exited on its own: restarted with back-off (0.5 s doubling, at most 30 s),
 * unless it cannot start (exit code 2, or MAX_QUICK_EXITS quick exits in a row): then everything stops.
 */
function afterExit(children: Children, m: Managed, code: number | null, signal: NodeJS.Signals | null): void {
  const { control, log } = children;
  if (control.isStopping() || m.stopping) return;
  m.quickExits = Date.now() - m.startedAt < QUICK_EXIT_MS ? m.quickExits + 1 : 0;
  if (code === 2 || m.quickExits >= MAX_QUICK_EXITS) {
    const why =
      code === 2
        ? 'it cannot start: a configuration or usage problem, which a restart cannot fix'
        : `it ended within ${QUICK_EXIT_MS / 1000} s of starting ${m.quickExits} times in a row`;
    children.failure ??= { code: code === 2 ? 2 : 1, process: m.name };
    log.error({ process: m.name, code, signal }, `${m.name} exited and is not restarted: ${why} (its error is above); stopping`);
    control.stop(`${m.name} cannot start`);
    return;
  }
  m.restarts++;
  const delay = Math.min(30_000, 500 * 2 ** Math.min(m.restarts, 6));
  log.error({ process: m.name, code, signal, restartInMs: delay }, 'process exited; restarting');
  setTimeout(() => {
    if (!control.isStopping()) startChild(children, m);
  }, delay).unref();
}

/** Asks `m` to stop: our stop message once it listens for it, else SIGTERM. */
function stopChild(m: Managed): void {
  m.stopping = true;
  const child = m.child;
  if (!child) return;
  if (child.connected && m.armed) child.send({ type: STOP_MESSAGE }, (err) => err && child.kill('SIGTERM'));
  else child.kill('SIGTERM');
}

/**
 * Stops the worker and the web server first, then the journal service (which writes its final checkpoint), then
 * the redis-server we started; anything still running past the shutdown deadline (+15 s) is killed. Returns the
 * exit code: that of a child that could not start, else 0.
 */
async function stopInOrder(
  config: Config,
  children: Children,
  { journal, others, redis }: { journal: Managed; others: readonly Managed[]; redis: RedisHandle },
): Promise<number> {
  const hardStop = setTimeout(() => {
    children.log.error({}, 'children did not stop in time; killing them');
    for (const m of [...others, journal]) m.child?.kill('SIGKILL');
    redis.child?.kill('SIGKILL');
  }, config.shutdownDeadlineMs + 15_000);
  hardStop.unref();
  others.forEach(stopChild);
  await Promise.all(others.map((m) => m.exited));
  stopChild(journal);
  await journal.exited;
  if (redis.child && redis.child.exitCode === null) {
    const exited = new Promise((r) => redis.child?.once('exit', r));
    redis.child.kill('SIGTERM');
    await exited;
  }
  clearTimeout(hardStop);
  const failure = children.failure;
  if (failure) process.stderr.write(`activity-journal stopped: the ${failure.process} process could not start (see its error above).\n`);
  return failure?.code ?? 0;
}

/** How long the journal service has to answer its health check after it is started. */
const JOURNAL_UP_MS = 30_000;

/** Polls the journal service's health every 100 ms until it answers, a stop is requested, or JOURNAL_UP_MS pass. */
async function waitForJournalService(url: string, control: StopControl): Promise<'up' | 'stopping' | 'timed out'> {
  const client = new HttpJournalClient({ url, attempts: 1 });
  const deadline = Date.now() + JOURNAL_UP_MS;
  try {
    for (;;) {
      if (control.isStopping()) return 'stopping';
      try {
        await client.health();
        return 'up';
      } catch {
        if (Date.now() > deadline) return 'timed out';
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    await client.close();
  }
}

interface Readiness {
  readonly config: Config;
  readonly log: Logger;
  readonly control: StopControl;
  readonly worker: Managed;
  readonly web: Managed;
  banner(): string;
}

/**
 * Prints the banner once, when everything answers: the journal service's health, the web server's /healthz (200)
 * and the worker's ready message. Past STARTUP_REPORT_SECONDS, says which does not and what it last said (and keeps
 * waiting: a restarted child or a late Redis may still bring it up).
 */
async function announceWhenReady(r: Readiness): Promise<void> {
  const journal = { lastSaid: 'not asked yet', ok: false };
  const client = new HttpJournalClient({ url: r.config.service.url, attempts: 1, timeoutMs: 2000 });
  const listen = r.config.web.listen;
  const healthz = listen.kind === 'tcp' ? `http://${listen.host}:${listen.port}/healthz` : '';
  const deadline = Date.now() + r.config.startupReportMs;
  let warned = false;
  try {
    while (!r.control.isStopping()) {
      try {
        await client.health();
        journal.ok = true;
        journal.lastSaid = 'healthy';
      } catch (err) {
        journal.ok = false;
        journal.lastSaid = `health check failed: ${(err as Error).message.slice(0, 200)}`;
      }
      let webOk = false;
      if (r.web.child) {
        try {
          const res = await fetch(healthz, { signal: AbortSignal.timeout(2000) });
          const body = (await res.json().catch(() => null)) as { checks?: { name: string; ok: boolean; error?: string }[] } | null;
          webOk = res.status === 200;
          const failing = (body?.checks ?? []).filter((c) => !c.ok).map((c) => `${c.name}: ${c.error ?? 'failed'}`);
          r.web.lastSaid = webOk ? 'ready' : `/healthz answered ${res.status}${failing.length > 0 ? ` (${failing.join('; ')})` : ''}`;
        } catch (err) {
          r.web.lastSaid = `/healthz does not answer (${(err as Error).message.slice(0, 200)})`;
        }
      }
      if (journal.ok && webOk && r.worker.ready) {
        if (!r.control.isStopping()) process.stderr.write(r.banner());
        return;
      }
      if (!warned && Date.now() > deadline) {
        warned = true;
        const waiting: [string, string][] = [];
        if (!journal.ok) waiting.push(['journal-service', journal.lastSaid]);
        if (!r.worker.ready) waiting.push([r.worker.name, r.worker.lastSaid]);
        if (!webOk) waiting.push([r.web.name, r.web.lastSaid]);
        r.log.error(
          { waitingFor: waiting.map(([name]) => name), lastSaid: Object.fromEntries(waiting) },
          `not up after ${r.config.startupReportMs / 1000} s: ${waiting.map(([name, said]) => `${name} (${said})`).join(', ')}`,
        );
      }
      await new Promise((done) => setTimeout(done, 200));
    }
  } finally {
    await client.close();
  }
}

/** The first user's command, when the audit UI has none yet (null when it has, or its users file is unreadable). */
export function firstUserLine(config: Config): string | null {
  let users: number;
  try {
    users = readUsersFile(config.audit.usersPath).users.length;
  } catch {
    return null; // the web process reports an unreadable users file itself
  }
  if (users > 0) return null;
  const defaultPath = resolve(dirname(config.journal.path), 'audit-users.json');
  const env =
    config.audit.usersPath === defaultPath
      ? config.journal.path === resolve('data/journal.sqlite')
        ? ''
        : `JOURNAL_PATH=${config.journal.path} `
      : `AUDIT_USERS_PATH=${config.audit.usersPath} `;
  return `The audit UI has no users yet: create the first with  ${env}npx activity-journal users add admin --role admin  (it asks for a password).`;
}

function banner(config: Config, redis: { url: string; child: ChildProcess | null }): string {
  const web = config.web.listen.kind === 'tcp' ? `http://${config.web.listen.host}:${config.web.listen.port}` : '';
  const first = firstUserLine(config);
  return (
    `activity-journal is running (supervisor pid ${process.pid}; data dir ${dirname(config.journal.path)}): journal service ${config.service.url}, web ${web} (/healthz, /metrics), pipeline workers running, Redis ${redis.url}${redis.child ? ' (started by us)' : ''}.\n` +
    `Audit UI: ${web}/audit${first ? `. ${first}` : ''}\n` +
    `Classifier: ${config.pipeline.openai ? `OpenAI ${config.pipeline.openai.model}` : 'offline rules (set OPENAI_API_KEY for a model)'}; ${crmLine(config)}. ${archiveLine(config)} Ctrl-C to stop.\n`
  );
}

/** The banner's CRM mode: what the workers will do, said plainly (it said "dry-run" with HubSpot configured). */
export function crmLine(config: Config): string {
  const h = config.pipeline.hubspot;
  return h
    ? `CRM: HubSpot (writes for real${h.basePath ? ` to ${h.basePath}` : ''})`
    : 'CRM: dry-run (set HUBSPOT_ACCESS_TOKEN to write to HubSpot)';
}
