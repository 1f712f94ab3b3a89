/**
 * The startup suite: what a command and `npm start` cost before they do anything.
 *
 *  1. `activity-journal --help`: wall time of the whole process (spawn to exit), median of HELP_RUNS runs.
 *     Baseline, measured the same way in the same run: `node -e 0` (the floor any Node command pays).
 *  2. `activity-journal start` (what `npm start` runs, without npm's own ~0.3 s) on a fresh temp data dir, with
 *     this run's own Redis key prefix and free ports: time from spawn until it is ready, i.e. the "is running"
 *     banner is out, the worker logged "pipeline ready" and the web server's /healthz answers 200 ok (which
 *     asks the journal service). Then, after IDLE_MS at rest, the sum of RSS (VmRSS from /proc) of the
 *     supervisor and all its descendants. Then SIGTERM to the supervisor and wait for it to exit. START_RUNS
 *     times; medians reported.
 * Targets: --help <= 0.5 s, ready <= 5 s, RSS at rest <= 500 MB.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { removeAllUnder } from '../jobs/queues.ts';
import { REDIS_URL } from '../test/helpers/pipeline.ts';
import { freePort } from '../test/helpers/service.ts';
import { processTree } from '../test/helpers/product.ts';
import { atMost, fmtFixed, median, now, secondsSince, table, type Suite, type SuiteContext, type SuiteResult } from './suite.ts';

const BIN = resolve(import.meta.dirname, '../bin/activity-journal.mjs');
const HELP_RUNS = 7;
const START_RUNS = 3;
const IDLE_MS = 3_000;
const TARGET_HELP_S = 0.5;
const TARGET_READY_S = 5;
const TARGET_RSS_MB = 500;

/** Wall time of one process run to its exit, in seconds. */
function timeRun(args: readonly string[]): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const t = now();
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolvePromise(secondsSince(t)) : reject(new Error(`${args.join(' ')} exited ${code}: ${stderr}`)),
    );
  });
}

function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

interface StartFigures {
  readonly readyS: number;
  readonly rssMB: number;
  readonly processes: { readonly name: string; readonly rssMB: number }[];
}

function processName(pid: number): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const role = argv.at(-1) ?? '?';
    return role === 'start' ? 'supervisor' : role;
  } catch {
    return '?';
  }
}

async function startOnce(ctx: SuiteContext, run: number): Promise<StartFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'aj-bench-startup-'));
  const [web, journal] = [await freePort(), await freePort()];
  const prefix = `aj-bench-startup-${randomBytes(6).toString('hex')}`;
  const env = {
    ...process.env,
    JOURNAL_PATH: join(dir, 'data', 'journal.sqlite'),
    JOURNAL_SERVICE_LISTEN: `127.0.0.1:${journal}`,
    WEB_LISTEN: `127.0.0.1:${web}`,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'info',
    JOURNAL_APPEND_TOKEN: '',
    JOURNAL_READ_TOKEN: '',
    KEY_STORE_BACKUP: join(dir, 'key-backup', 'subject-keys.sqlite'),
  };
  const t = now();
  const child = spawn(process.execPath, [BIN, 'start'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let gone: number | null | undefined;
  void exited.then((code) => (gone = code));
  try {
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (gone !== undefined) throw new Error(`start exited (${String(gone)}) before it was ready: ${stderr.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`start was not ready within 120 s: ${stderr.slice(-2000)}`);
      if (stderr.includes('activity-journal is running') && stderr.includes('pipeline ready')) {
        const ok = await fetch(`http://127.0.0.1:${web}/healthz`).then(
          async (r) => r.status === 200 && ((await r.json()) as { ok: boolean }).ok,
          () => false,
        );
        if (ok) break;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    const readyS = secondsSince(t);
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const pids = processTree(child.pid as number);
    const processes = pids.map((pid) => ({ name: processName(pid), rssMB: rssKiB(pid) / 1024 }));
    const rssMB = processes.reduce((s, p) => s + p.rssMB, 0);
    ctx.progress(
      `startup: start run ${run + 1}: ready in ${fmtFixed(readyS, 2)} s, ${processes.length} processes, ${fmtFixed(rssMB, 0)} MB RSS at rest`,
    );
    return { readyS, rssMB, processes };
  } finally {
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    await removeAllUnder(redis, prefix).finally(() => redis.disconnect());
  }
}

export const startupSuite: Suite = {
  name: 'startup',
  description: 'CLI start (--help) and `npm start` (time to ready, RSS at rest) against `node -e 0`',
  async run(ctx: SuiteContext): Promise<SuiteResult> {
    const baseline: number[] = [];
    const help: number[] = [];
    for (let i = 0; i < HELP_RUNS; i++) {
      baseline.push(await timeRun(['-e', '0']));
      help.push(await timeRun([BIN, '--help']));
    }
    const nodeS = median(baseline);
    const helpS = median(help);
    ctx.progress(`startup: node -e 0 ${fmtFixed(nodeS, 3)} s, --help ${fmtFixed(helpS, 3)} s (medians of ${HELP_RUNS})`);
    const starts: StartFigures[] = [];
    for (let i = 0; i < START_RUNS; i++) starts.push(await startOnce(ctx, i));
    const readyS = median(starts.map((s) => s.readyS));
    const rssMB = median(starts.map((s) => s.rssMB));
    const last = starts.at(-1) as StartFigures;
    const figures = {
      nodeBaselineS: nodeS,
      helpS,
      helpOverBaseline: helpS / nodeS,
      startReadyS: readyS,
      startReadyOverBaseline: readyS / nodeS,
      startRssMB: rssMB,
      processes: last.processes,
      ratios: { help: atMost(helpS / TARGET_HELP_S, 1), ready: atMost(readyS / TARGET_READY_S, 1), rss: atMost(rssMB / TARGET_RSS_MB, 1) },
    };
    const pass = (p: boolean): string => (p ? 'met' : 'NOT MET');
    const text =
      `startup: the CLI's start and \`activity-journal start\` (= npm start without npm) on a fresh data dir\n` +
      table(
        ['figure', 'measured', 'x node -e 0', 'target', ''],
        [
          ['node -e 0 (baseline)', `${fmtFixed(nodeS, 3)} s`, '1.0', '', ''],
          [
            `--help (median of ${HELP_RUNS})`,
            `${fmtFixed(helpS, 3)} s`,
            fmtFixed(helpS / nodeS, 1),
            `<= ${TARGET_HELP_S} s`,
            pass(figures.ratios.help.pass),
          ],
          [
            `start: ready (median of ${START_RUNS})`,
            `${fmtFixed(readyS, 2)} s`,
            fmtFixed(readyS / nodeS, 1),
            `<= ${TARGET_READY_S} s`,
            pass(figures.ratios.ready.pass),
          ],
          [`start: RSS at rest, all processes`, `${fmtFixed(rssMB, 0)} MB`, '', `<= ${TARGET_RSS_MB} MB`, pass(figures.ratios.rss.pass)],
        ],
      ) +
      `\nRSS per process (last run, after ${IDLE_MS / 1000} s idle): ${last.processes.map((p) => `${p.name} ${fmtFixed(p.rssMB, 0)} MB`).join(', ')}`;
    return { text, data: figures };
  },
};
