/**
 * `npm start` (activity-journal start): journal service, workers and web server as separate processes under one
 * supervisor; a killed child is restarted; SIGTERM stops everything cleanly, whichever process of the tree gets it
 * (npm's own pid included, which exits without passing it on); a killed supervisor leaves no child serving; a
 * second start on the same data refuses at once.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { exitOf, spawnCli } from '../helpers/cli.ts';
import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { tempDir } from '../helpers/tmp.ts';
import { freePort } from '../helpers/service.ts';
import { REDIS_URL, obliterate, uniquePrefix } from '../helpers/pipeline.ts';
import {
  OwnRedis,
  alive,
  exitWithin,
  healthy,
  processTree,
  serving,
  startProduct as start,
  stillAlive,
  type Started,
} from '../helpers/product.ts';
import { waitFor } from '../helpers/wait.ts';

let tmp: { dir: string; cleanup: () => void };
let prefix: string;
let started: ChildProcess[] = [];
let seen: number[] = [];
beforeEach(() => {
  tmp = tempDir('aj-start-');
  prefix = uniquePrefix();
  started = [];
  seen = [];
});
afterEach(async () => {
  // A failed test must not leave a tree serving: kill whatever of ours is still there.
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const pid of seen)
    if (alive(pid) && /activity-journal|esbuild/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))) process.kill(pid, 'SIGKILL');
  await obliterate(prefix);
  tmp.cleanup();
});

/** `pid` and every process below it, now; remembered so that a failed test kills what it left. */
function tree(pid: number): number[] {
  const out = processTree(pid);
  seen.push(...out);
  return out;
}

function startProduct(command: 'npm' | 'node', env: NodeJS.ProcessEnv): Started {
  const p = start(command, env);
  started.push(p.child);
  return p;
}

function productEnv(web: number, journalPort: number): NodeJS.ProcessEnv {
  return {
    ...process.env,
    JOURNAL_PATH: `${tmp.dir}/journal.sqlite`,
    JOURNAL_SERVICE_LISTEN: `127.0.0.1:${journalPort}`,
    WEB_LISTEN: `127.0.0.1:${web}`,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'info',
    JOURNAL_APPEND_TOKEN: '',
    JOURNAL_READ_TOKEN: '',
  };
}

/** The newest checkpoint entry covers every entry before it, and only its own anchoring outcomes follow it. */
function expectSignedToTheEnd(): void {
  const db = new Database(`${tmp.dir}/journal.sqlite`, { readonly: true });
  try {
    const rows = db.prepare('SELECT seq, kind, payload FROM entries ORDER BY seq').all() as {
      seq: number;
      kind: string;
      payload: string;
    }[];
    const cp = rows.filter((r) => r.kind === 'checkpoint').at(-1);
    expect(cp, 'a checkpoint').toBeDefined();
    expect((JSON.parse(cp?.payload ?? '{}') as { treeSize: number }).treeSize).toBe(cp?.seq);
    expect(rows.filter((r) => r.seq > (cp?.seq ?? 0)).every((r) => r.kind === 'checkpoint.anchored')).toBe(true);
  } finally {
    db.close();
  }
}

const allGone = stillAlive;

describe('activity-journal start', () => {
  it('supervises the journal service, the workers and the web server, and stops cleanly', async () => {
    const web = await freePort();
    const journalPort = await freePort();
    const child = spawnCli(['start'], {
      env: {
        ...process.env,
        JOURNAL_PATH: `${tmp.dir}/journal.sqlite`,
        JOURNAL_SERVICE_LISTEN: `127.0.0.1:${journalPort}`,
        WEB_LISTEN: `127.0.0.1:${web}`,
        REDIS_URL,
        QUEUE_PREFIX: prefix,
        LOG_LEVEL: 'info',
        JOURNAL_APPEND_TOKEN: '',
        JOURNAL_READ_TOKEN: '',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = exitOf(child);

    const health = await waitFor(
      async () => {
        const r = await fetch(`http://127.0.0.1:${web}/healthz`);
        const body = (await r.json()) as { ok: boolean; checks: { name: string; ok: boolean }[] };
        return r.status === 200 && body.ok ? body : null;
      },
      { what: 'healthy' },
    );
    expect(health.checks.map((c) => c.name).sort()).toEqual(['journal', 'redis']);
    const metrics = await (await fetch(`http://127.0.0.1:${web}/metrics`)).text();
    expect(metrics).toMatch(/^aj_journal_entries\{process="web"\} \d+$/m);
    expect(metrics).toMatch(/^aj_journal_writable\{process="web"\} 1$/m);
    expect(metrics).toMatch(/^aj_queue_jobs\{queue="classify",state="waiting",process="web"\} 0$/m);
    await waitFor(() => /activity-journal is running/.test(stderr), { what: 'the banner' }); // it follows /healthz

    // A worker that dies is restarted by the supervisor.
    const pidOf = (name: string): number | null => {
      const matches = [...stderr.matchAll(new RegExp(`"process":"${name}","pid":(\\d+)`, 'g'))];
      const last = matches[matches.length - 1];
      return last ? Number(last[1]) : null;
    };
    const firstWorker = await waitFor(() => pidOf('worker'), { what: 'worker pid' });
    process.kill(firstWorker, 'SIGKILL');
    const secondWorker = await waitFor(() => (pidOf('worker') !== firstWorker ? pidOf('worker') : null), { what: 'worker restart' });
    expect(secondWorker).not.toBe(firstWorker);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/journal service stopped/);
    const probe = await fetch(`http://127.0.0.1:${web}/healthz`).then(
      () => 'up',
      () => 'down',
    );
    expect(probe).toBe('down');
    expectSignedToTheEnd();
  });

  it("prints the banner once, only after the web server's /healthz answers and the worker is ready, naming the audit URL and the first user's command", async () => {
    const web = await freePort();
    const journalPort = await freePort();
    const product = startProduct('node', productEnv(web, journalPort));
    await waitFor(() => product.stderr().includes('activity-journal is running'), { what: 'banner' });
    // When the banner is out, /healthz answers 200 (the supervisor waited for it), and the banner comes after
    // every process said it was ready (before, it came right after the children were spawned).
    expect((await fetch(`http://127.0.0.1:${web}/healthz`)).status).toBe(200);
    const stderr = product.stderr();
    const banner = stderr.indexOf('activity-journal is running');
    for (const ready of ['"msg":"journal service ready"', '"msg":"web server ready"', '"msg":"pipeline ready"']) {
      expect(stderr.indexOf(ready), ready).toBeGreaterThanOrEqual(0);
      expect(stderr.indexOf(ready), ready).toBeLessThan(banner);
    }
    // After the worker said "pipeline ready", once, and the web's producer pipeline did not claim it.
    expect(stderr.match(/"msg":"pipeline ready"/g)?.length).toBe(1);
    expect(stderr.indexOf('"msg":"pipeline ready"')).toBeLessThan(stderr.indexOf('activity-journal is running'));
    expect(stderr).toContain(`Audit UI: http://127.0.0.1:${web}/audit`);
    expect(stderr).toContain(`JOURNAL_PATH=${tmp.dir}/journal.sqlite npx activity-journal users add admin --role admin`);
    // JSON logs into a pipe, with ISO times, in every process.
    expect(stderr).toMatch(/^\{"level":30,"time":"\d{4}-\d\d-\d\dT[\d:.]+Z","component":"activity-journal"/m);
    product.child.kill('SIGTERM');
    expect(await product.exited).toBe(0);
    expect(product.stderr().match(/activity-journal is running/g)?.length).toBe(1);
  });

  it('says which process is not up, and what it last said, after STARTUP_REPORT_SECONDS; keeps waiting, and the banner follows when Redis comes', async () => {
    const redis = await OwnRedis.start();
    await redis.down();
    try {
      const web = await freePort();
      const journalPort = await freePort();
      const product = startProduct('node', { ...productEnv(web, journalPort), REDIS_URL: redis.url, STARTUP_REPORT_SECONDS: '3' });
      const report = await waitFor(() => /"msg":"not up after 3 s: [^"]*"/.exec(product.stderr())?.[0] ?? null, {
        what: 'the not-up report',
        timeoutMs: 60_000,
      });
      expect(report).toContain('worker (');
      expect(report).toContain(`web (/healthz answered 503 (redis: redis unreachable at 127.0.0.1:${redis.port}`);
      expect(report).not.toContain('journal-service');
      expect(product.stderr()).not.toContain('activity-journal is running');
      await redis.up();
      await waitFor(() => product.stderr().includes('activity-journal is running'), {
        what: 'the banner once Redis answers',
        timeoutMs: 60_000,
      });
      expect(product.stderr().match(/not up after/g)?.length).toBe(1);
      product.child.kill('SIGTERM');
      expect(await product.exited).toBe(0);
    } finally {
      await redis.down();
    }
  });

  it("refuses a second start on the same data at once, and SIGTERM to npm's own pid stops the whole tree in order", async () => {
    const web = await freePort();
    const journalPort = await freePort();
    const env = productEnv(web, journalPort);
    const npm = startProduct('npm', env);
    await healthy(web, npm);
    const supervisorPid = Number(/supervisor pid (\d+)/.exec(npm.stderr())?.[1]);
    expect(supervisorPid).toBeGreaterThan(0);
    const pids = tree(npm.child.pid as number);
    expect(pids).toContain(supervisorPid);
    expect(pids.length).toBeGreaterThanOrEqual(5); // npm, (sh,) the supervisor, journal service, worker, web

    // A second start on the same data directory: refused before it spawns anything, naming what runs.
    const second = startProduct('node', productEnv(await freePort(), await freePort()));
    expect(await exitWithin(second, 20)).toBe(2);
    expect(second.stderr()).toContain(`already running on the data directory ${tmp.dir}`);
    expect(second.stderr()).toContain(`pid ${supervisorPid}`);
    expect(second.stderr()).toContain(`127.0.0.1:${web}`);
    expect(second.stderr()).toContain(`127.0.0.1:${journalPort}`);
    // The same ports with another data directory: refused too, naming the port.
    const otherData = startProduct('node', { ...env, JOURNAL_PATH: `${tmp.dir}/other/journal.sqlite` });
    expect(await exitWithin(otherData, 20)).toBe(2);
    expect(otherData.stderr()).toMatch(new RegExp(`127\\.0\\.0\\.1:${journalPort} \\(JOURNAL_SERVICE_LISTEN\\) is already in use`));
    expect(await serving(web)).toBe(true);

    process.kill(npm.child.pid as number, 'SIGTERM');
    expect(await allGone(pids, 15)).toEqual([]);
    expect(npm.stderr()).toMatch(/"signal":"parent \d+ gone","msg":"stopping"/);
    expect(npm.stderr()).toMatch(/journal service stopped/);
    expect(await serving(web)).toBe(false);
    expectSignedToTheEnd();
  });

  it("stops the whole tree when npm itself is killed outright (SIGKILL leaves npm's `sh -c` waiting: its parent is watched too)", async () => {
    const web = await freePort();
    const npm = startProduct('npm', productEnv(web, await freePort()));
    await healthy(web, npm);
    const pids = tree(npm.child.pid as number);
    expect(pids.length).toBeGreaterThanOrEqual(5); // npm, sh, the supervisor, journal service, worker, web
    process.kill(npm.child.pid as number, 'SIGKILL');
    expect(await allGone(pids, 15)).toEqual([]);
    expect(await serving(web)).toBe(false);
    expectSignedToTheEnd();
  });

  it('leaves no child serving when the supervisor is killed; a start after that is not blocked; SIGTERM to a child stops all in order', async () => {
    const web = await freePort();
    const journalPort = await freePort();
    const env = productEnv(web, journalPort);
    const first = startProduct('node', env);
    await healthy(web, first);
    const pids = tree(first.child.pid as number);
    expect(pids.length).toBeGreaterThanOrEqual(4); // the supervisor, journal service, worker, web (and tsx's esbuild)
    process.kill(first.child.pid as number, 'SIGKILL');
    expect(await allGone(pids, 15)).toEqual([]);
    expect(await serving(web)).toBe(false);

    // The killed supervisor's note is still on disk; it does not block the next start.
    const again = startProduct('node', env);
    await healthy(web, again);
    const workerPid = await waitFor(() => Number(/"process":"worker","pid":(\d+)/.exec(again.stderr())?.[1]) || null, {
      what: 'worker pid',
    });
    const running = tree(again.child.pid as number);
    process.kill(workerPid, 'SIGTERM');
    expect(await exitWithin(again, 30)).toBe(0);
    expect(await allGone(running, 15)).toEqual([]);
    expect(again.stderr()).toMatch(/"signal":"SIGTERM to worker","msg":"stopping"/);
    expect(again.stderr()).not.toMatch(/process exited; restarting/);
    expectSignedToTheEnd();
  });
});
