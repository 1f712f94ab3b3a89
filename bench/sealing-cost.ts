/**
 * What per-subject sealing costs the journal service, in the service's own CPU time (issue 14's bar: CPU per
 * sealed entry <= 1.5x per unsealed entry).
 *
 * Two service processes run side by side (bench/journal-service-child.ts: the same HTTP API and writer, one with
 * the privacy layer the journal service always runs, one without), each fed by 64 concurrent single-entry
 * clients with the suite's ~1 KB `interaction.received` entries from 3 known senders (their keys exist after the
 * warm-up: the steady state of a sales mailbox). Their rounds alternate, and each process's CPU (user + system,
 * /proc/<pid>/stat) is read around each of its own rounds, so that both see the same machine. With
 * BENCH_CPU_PROF_DIR set, both run under `node --cpu-prof` and leave their profiles there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AppendInput } from '../src/journal/entry.ts';
import { HttpJournalClient } from '../src/journal/service/http-client.ts';
import { atMost, fmtFixed, fmtInt, type Suite, type SuiteContext, type SuiteResult } from './suite.ts';
import { Workload } from './journal-workload.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const CONCURRENCY = 64;

export interface SealingCostOptions {
  readonly warmup: number;
  /** Entries per variant, split over `rounds` alternating rounds. */
  readonly count: number;
  readonly rounds: number;
  /** Directory for `--cpu-prof` profiles of both processes; none when undefined. */
  readonly cpuProfDir?: string | undefined;
}

export interface SealingCost {
  /** Service CPU microseconds per entry. */
  readonly sealedUsPerEntry: number;
  readonly unsealedUsPerEntry: number;
  /** sealed / unsealed: the bar's metric. */
  readonly ratio: number;
  readonly sealedSeconds: number;
  readonly unsealedSeconds: number;
  readonly count: number;
  readonly roundRatios: readonly number[];
}

/** CPU seconds (user + system) a Linux process has used so far. */
function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15; clock ticks are 100/s on Linux.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface Running {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly client: HttpJournalClient;
  readonly exit: Promise<void>;
  output(): string;
}

async function start(variant: 'sealed' | 'unsealed', dir: string, cpuProfDir: string | undefined): Promise<Running> {
  const anchors = join(dir, 'anchors');
  mkdirSync(anchors, { recursive: true, mode: 0o700 });
  const appendToken = randomBytes(32).toString('base64url');
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('JOURNAL_') && !k.startsWith('KEY_STORE') && k !== 'LOG_LEVEL') env[k] = v;
  Object.assign(env, {
    JOURNAL_SERVICE_LISTEN: '127.0.0.1:0',
    JOURNAL_APPEND_TOKEN: appendToken,
    JOURNAL_READ_TOKEN: randomBytes(32).toString('base64url'),
    JOURNAL_ANCHOR_DIRS: anchors,
    LOG_LEVEL: 'warn',
  });
  // One directory per variant: node names the profiles of a process's threads itself.
  const prof = cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${join(cpuProfDir, variant)}`] : [];
  const child = spawn(
    process.execPath,
    [...prof, join(ROOT, 'bin/run-ts.mjs'), join(ROOT, 'bench/journal-service-child.ts'), variant, join(dir, 'journal.sqlite')],
    {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  const exit = new Promise<void>((res) => child.once('exit', () => res()));
  const url = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`the ${variant} service did not start within 60 s:\n${output}`)), 60_000);
    child.stdout.on('data', (c: Buffer) => {
      output += c.toString('utf8');
      const m = /listening (\S+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        res(m[1] as string);
      }
    });
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    void exit.then(() => {
      clearTimeout(timer);
      rej(new Error(`the ${variant} service exited before it listened:\n${output}`));
    });
  });
  if (child.pid === undefined) throw new Error('no pid');
  return {
    child,
    pid: child.pid,
    client: new HttpJournalClient({ url, appendToken, maxSockets: CONCURRENCY }),
    exit,
    output: () => output,
  };
}

async function stop(r: Running): Promise<void> {
  await r.client.close();
  if (r.child.exitCode !== null || r.child.signalCode !== null) return;
  r.child.kill('SIGTERM');
  const timer = setTimeout(() => r.child.kill('SIGKILL'), 30_000);
  await r.exit;
  clearTimeout(timer);
}

/** `CONCURRENCY` loops, each appending one entry at a time until `inputs` are all sent. */
async function drive(client: HttpJournalClient, inputs: readonly AppendInput[]): Promise<void> {
  let next = 0;
  const loop = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= inputs.length) return;
      const r = await client.append(inputs[i] as AppendInput);
      if (r.duplicate) throw new Error('unexpected duplicate');
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, () => loop()));
}

export async function measureSealingCost(dir: string, work: Workload, ctx: SuiteContext, o: SealingCostOptions): Promise<SealingCost> {
  const running: Running[] = [];
  try {
    const sealed = await start('sealed', join(dir, 'sealed'), o.cpuProfDir);
    running.push(sealed);
    const unsealed = await start('unsealed', join(dir, 'unsealed'), o.cpuProfDir);
    running.push(unsealed);
    ctx.progress(`sealing cost: services up (sealed pid ${sealed.pid}, unsealed pid ${unsealed.pid}); warm-up ${o.warmup} each`);
    await drive(sealed.client, work.inputs(o.warmup));
    await drive(unsealed.client, work.inputs(o.warmup));
    const per = Math.round(o.count / o.rounds);
    let sealedSeconds = 0;
    let unsealedSeconds = 0;
    const roundRatios: number[] = [];
    ctx.progress(`sealing cost: ${o.rounds} alternating rounds of ${per} entries per service, ${CONCURRENCY} concurrent clients`);
    for (let r = 0; r < o.rounds; r++) {
      const order = r % 2 === 0 ? [sealed, unsealed] : [unsealed, sealed];
      const cpu = new Map<Running, number>();
      for (const s of order) {
        const inputs = work.inputs(per);
        const c0 = processCpuSeconds(s.pid);
        await drive(s.client, inputs);
        cpu.set(s, processCpuSeconds(s.pid) - c0);
      }
      sealedSeconds += cpu.get(sealed) as number;
      unsealedSeconds += cpu.get(unsealed) as number;
      roundRatios.push((cpu.get(sealed) as number) / (cpu.get(unsealed) as number));
    }
    const count = per * o.rounds;
    return {
      sealedUsPerEntry: (sealedSeconds / count) * 1e6,
      unsealedUsPerEntry: (unsealedSeconds / count) * 1e6,
      ratio: sealedSeconds / unsealedSeconds,
      sealedSeconds,
      unsealedSeconds,
      count,
      roundRatios,
    };
  } finally {
    for (const r of running) await stop(r);
  }
}

/** The sealing-cost measurement alone (`npm run bench -- sealing`, ~1 minute); the journal suite runs it too. */
export const sealingSuite: Suite = {
  name: 'sealing',
  description: "the journal service's CPU per sealed entry vs per unsealed entry (also part of journal)",
  async run(ctx: SuiteContext): Promise<SuiteResult> {
    const dir = mkdtempSync(join(tmpdir(), 'activity-journal-bench-sealing-'));
    try {
      const c = await measureSealingCost(dir, new Workload(), ctx, { ...SEALING_COST_RUN, cpuProfDir: process.env.BENCH_CPU_PROF_DIR });
      const r = atMost(c.ratio, SEALING_COST_BAR);
      return { text: describeSealingCost(c), data: { sealingCost: c, ratios: { serviceSealedCpuOverUnsealed: r }, allPass: r.pass } };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

/** Counts used by both suites: about 10 s of service CPU for the sealed side on a 2-core VM. */
export const SEALING_COST_RUN = { warmup: 3_000, count: 30_000, rounds: 6 } as const;
/** Issue 14: CPU per sealed entry at most 1.5x per unsealed entry. */
export const SEALING_COST_BAR = 1.5;

export function describeSealingCost(c: SealingCost): string {
  const verdict = c.ratio <= SEALING_COST_BAR ? 'PASS' : 'FAIL';
  return (
    `sealing cost: service CPU per entry, ${fmtInt(c.count)} single appends from ${CONCURRENCY} concurrent clients to each of two service processes\n` +
    `              (sealed, unsealed; same code otherwise) in ${c.roundRatios.length} alternating rounds, 3 known senders per entry:\n` +
    `              sealed ${fmtFixed(c.sealedUsPerEntry, 0)} us, unsealed ${fmtFixed(c.unsealedUsPerEntry, 0)} us; sealed / unsealed = ${fmtFixed(c.ratio, 2)}` +
    ` (bar <= ${SEALING_COST_BAR}: ${verdict}; per round ${c.roundRatios.map((r) => fmtFixed(r, 2)).join(', ')})`
  );
}
