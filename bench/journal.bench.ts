/**
 * The journal suite: what the tamper evidence costs, measured against plain SQLite on the same disk.
 *
 * Every figure is for ~1 KB entries (an `interaction.received` e-mail whose canonical payload is 1,024 bytes);
 * the raw baseline stores exactly the same payload bytes as the journal. Everything runs in a fresh temp dir.
 *
 *  1. raw SQLite (WAL, synchronous=FULL, plain better-sqlite3): a "bare" INTEGER PRIMARY KEY + TEXT table, and a
 *     table with the same columns and indexes as the journal's `entries` (no triggers, no hashing), at batch 1
 *     (one transaction per row) and batch 100 (one transaction per 100 rows);
 *  2. ours through JournalWriter: `append` awaited in turn, `appendBatch` of 100 awaited in turn (checkpoints every
 *     1,000 entries included, no timer, no anchors). Steps 1 and 2 run interleaved, round by round, so that a
 *     drifting disk (virtual disks drift a lot) weighs on every contender alike;
 *  3. ours through the journal service (a child process, as in production) with 64 concurrent single-entry
 *     clients over loopback HTTP, bracketed by short raw batch-1 runs (drift check); then raw SQLite at batch 64,
 *     the largest group 64 single-entry clients can form and so the ceiling of any group-committing service;
 *     also the service in this process (sharing the client's event loop);
 *  4. verifyJournal (seals included) against a raw scan of the same rows that SHA-256s each payload, on the
 *     journal built in step 2;
 *  5. the sealing cost (issue 14): the service's CPU per sealed entry against per unsealed entry, two service
 *     processes in alternating rounds (bench/sealing-cost.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type Database from 'better-sqlite3';
import type { AppendInput } from '../src/journal/entry.ts';
import { JournalWriter } from '../src/journal/writer.ts';
import { Privacy } from '../src/journal/privacy.ts';
import { JournalReader } from '../src/journal/reader.ts';
import { verifyJournal } from '../src/journal/verify.ts';
import { readSealKey } from '../src/journal/identity.ts';
import { startJournalService } from '../src/journal/service/run.ts';
import { HttpJournalClient } from '../src/journal/service/http-client.ts';
import { loadConfig } from '../src/config/config.ts';
import { silentLogger } from '../src/config/logger.ts';
import {
  atMost,
  fmtFixed,
  fmtInt,
  median,
  now,
  percentile,
  ratio,
  secondsSince,
  table,
  type Ratio,
  type Suite,
  type SuiteContext,
  type SuiteResult,
} from './suite.ts';
import { SEALING_COST_BAR, SEALING_COST_RUN, describeSealingCost, measureSealingCost, type SealingCost } from './sealing-cost.ts';
import {
  BARE_DDL,
  JOURNAL_EXTRA_PRAGMAS,
  SAME_SHAPE_DDL,
  Workload,
  bareInserter,
  chunk,
  openRaw,
  sameShapeInserter,
  timeRawInserts,
  type RawInserter,
} from './journal-workload.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const CONCURRENCY = 64;

/**
 * Counts, sized for a suite of 1 to 3 minutes on a 2-core VM. Batch-1 counts follow the disk's measured
 * single-row commit rate (see calibrate()): about BATCH1_SECONDS of raw inserts, at most BATCH1_MAX.
 */
const ROUNDS = 5;
const BATCH = 100;
const BATCH100_WARMUP = 5_000;
const BATCH100_COUNT = 200_000;
/**
 * Entries per contender in the sealing pass (unsealed, sealed, a new sender each): smaller, since a new subject's
 * key is two durable key-store writes (backup first, then the store) of a few milliseconds each.
 */
const SEALING_COUNT = 10_000;
const SEALING_WARMUP = 500;
const BATCH1_WARMUP = 300;
const BATCH1_SECONDS = 3;
const BATCH1_MAX = 20_000;
const BRACKET_COUNT = 1_000;
/** The largest group a service with CONCURRENCY single-entry clients can commit at once: raw SQLite at this batch is its ceiling. */
const CEILING_WARMUP = 6_400;
const CEILING_COUNT = 64_000;
const SERVICE_WARMUP = 3_000;
const SERVICE_COUNT = 80_000;
const INPROC_WARMUP = 2_000;
const INPROC_COUNT = 15_000;
const VERIFY_RUNS = 3;

const BARS = {
  oursBatch100OverRawBatch100: 0.9,
  serviceOverRawBatch1: 10,
  verifyOverRawScan: 0.5,
  /** At most: the service's CPU per sealed entry over per unsealed entry (issue 14). */
  serviceSealedCpuOverUnsealed: SEALING_COST_BAR,
} as const;

// ---------------------------------------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------------------------------------

interface Figure {
  readonly label: string;
  readonly batch: number | null;
  readonly count: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly extra?: Record<string, unknown>;
}

function figure(label: string, batch: number | null, count: number, seconds: number, extra?: Record<string, unknown>): Figure {
  return { label, batch, count, seconds, perSecond: count / seconds, ...(extra ? { extra } : {}) };
}

// ---------------------------------------------------------------------------------------------------------
// 1 and 2. Raw SQLite and ours through the writer, interleaved
// ---------------------------------------------------------------------------------------------------------

/** Something that appends n fresh entries in transactions of `batch`; resolves to the seconds it took. */
interface Contender {
  readonly key: 'rawBare' | 'raw' | 'rawTuned' | 'ours' | 'oursSealed' | 'oursSealedNewSubjects';
  run(n: number, batch: number): Promise<number>;
}

function rawContender(key: 'rawBare' | 'raw' | 'rawTuned', insert: RawInserter, work: Workload): Contender {
  return { key, run: (n, batch) => Promise.resolve(timeRawInserts(insert, work.rows(n), batch)) };
}

/**
 * The writer; `key` and `shape` name a variant: with per-subject sealing (privacy attached), and with every entry
 * from a sender never seen before (a new subject key each: the first-contact worst case).
 */
function writerContender(
  writer: JournalWriter,
  work: Workload,
  key: 'ours' | 'oursSealed' | 'oursSealedNewSubjects' = 'ours',
  shape: (inputs: AppendInput<'interaction.received'>[]) => AppendInput[] = (x) => x,
): Contender {
  return {
    key,
    async run(n, batch) {
      const inputs = shape(work.inputs(n));
      if (batch === 1) {
        const start = now();
        for (const input of inputs) {
          const r = await writer.append(input);
          if (r.duplicate) throw new Error('unexpected duplicate');
        }
        return secondsSince(start);
      }
      const batches = chunk(inputs, batch);
      const start = now();
      for (const b of batches) {
        const r = await writer.appendBatch(b);
        if (r.length !== b.length || r.some((x) => x.duplicate)) throw new Error('unexpected batch result');
      }
      return secondsSince(start);
    },
  };
}

/**
 * Warms every contender up, then runs them in ROUNDS rounds of count/ROUNDS entries each, rotating who goes
 * first, so that a disk whose speed drifts (virtual disks do) weighs on all of them alike. Seconds per key.
 */
async function interleaved(
  contenders: readonly Contender[],
  batch: number,
  warmup: number,
  count: number,
): Promise<Record<string, number>> {
  for (const c of contenders) await c.run(warmup, batch);
  const seconds: Record<string, number> = {};
  for (const c of contenders) seconds[c.key] = 0;
  const per = count / ROUNDS;
  for (let r = 0; r < ROUNDS; r++) {
    for (let j = 0; j < contenders.length; j++) {
      const c = contenders[(r + j) % contenders.length] as Contender;
      seconds[c.key] = (seconds[c.key] ?? 0) + (await c.run(per, batch));
    }
  }
  return seconds;
}

// ---------------------------------------------------------------------------------------------------------
// 3. Ours through the service
// ---------------------------------------------------------------------------------------------------------

interface LoadResult {
  readonly seconds: number;
  readonly latenciesMs: number[];
  readonly clientCpuSeconds: number;
}

/** `concurrency` loops, each appending one entry at a time until `inputs` are all sent. */
async function driveClients(client: HttpJournalClient, inputs: readonly AppendInput[], concurrency: number): Promise<LoadResult> {
  let next = 0;
  const latenciesMs: number[] = [];
  const cpu0 = process.cpuUsage();
  const start = now();
  const loop = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= inputs.length) return;
      const t0 = now();
      const r = await client.append(inputs[i] as AppendInput);
      latenciesMs.push(Number(now() - t0) / 1e6);
      if (r.duplicate) throw new Error('unexpected duplicate');
    }
  };
  await Promise.all(Array.from({ length: concurrency }, () => loop()));
  const seconds = secondsSince(start);
  const cpu = process.cpuUsage(cpu0);
  latenciesMs.sort((a, b) => a - b);
  return { seconds, latenciesMs, clientCpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

function token(): string {
  return randomBytes(32).toString('base64url'); // 43 characters
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

function healthy(url: string): Promise<boolean> {
  return new Promise((res) => {
    const req = httpGet(`${url}/healthz`, { timeout: 1000 }, (r) => {
      r.resume();
      r.on('end', () => res(r.statusCode === 200));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => res(false));
  });
}

/** CPU seconds (user + system) a Linux process has used so far; null where /proc is missing. */
function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15; clock ticks are 100/s on Linux.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

interface ServiceFigure {
  readonly figure: Figure;
  readonly serverCpuSeconds: number | null;
}

async function measureChildService(dir: string, work: Workload, ctx: SuiteContext): Promise<ServiceFigure> {
  const journal = join(dir, 'journal.sqlite');
  const anchors = join(dir, 'anchors');
  mkdirSync(anchors, { recursive: true, mode: 0o700 });
  const port = await freePort();
  const appendToken = token();
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('JOURNAL_') && k !== 'LOG_LEVEL') env[k] = v;
  Object.assign(env, {
    JOURNAL_SERVICE_LISTEN: `127.0.0.1:${port}`,
    JOURNAL_APPEND_TOKEN: appendToken,
    JOURNAL_READ_TOKEN: token(),
    JOURNAL_ANCHOR_DIRS: anchors,
    LOG_LEVEL: 'warn',
  });
  const child = spawn(process.execPath, [join(ROOT, 'bin/activity-journal.mjs'), '--journal', journal, 'journal-service'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
  let exited: number | null | undefined;
  const exit = new Promise<void>((res) =>
    child.once('exit', (code, signal) => {
      exited = code ?? (signal ? -1 : null);
      res();
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const client = new HttpJournalClient({ url, appendToken, maxSockets: CONCURRENCY });
  try {
    const deadline = Date.now() + 30_000;
    while (!(await healthy(url))) {
      if (exited !== undefined) throw new Error(`the journal service exited (${String(exited)}) before it was healthy:\n${output}`);
      if (Date.now() > deadline) throw new Error(`the journal service was not healthy within 30 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    ctx.progress(`service (child pid ${child.pid ?? '?'}) healthy at ${url}; warm-up ${SERVICE_WARMUP}`);
    await driveClients(client, work.inputs(SERVICE_WARMUP), CONCURRENCY);
    const inputs = work.inputs(SERVICE_COUNT);
    ctx.progress(`service: ${SERVICE_COUNT} appends from ${CONCURRENCY} concurrent clients`);
    const cpu0 = child.pid ? processCpuSeconds(child.pid) : null;
    const load = await driveClients(client, inputs, CONCURRENCY);
    const cpu1 = child.pid ? processCpuSeconds(child.pid) : null;
    const serverCpuSeconds = cpu0 !== null && cpu1 !== null ? cpu1 - cpu0 : null;
    return {
      figure: figure(
        `service, child process, ${CONCURRENCY} concurrent single appends`,
        1,
        SERVICE_COUNT,
        load.seconds,
        loadExtra(load, serverCpuSeconds),
      ),
      serverCpuSeconds,
    };
  } finally {
    await client.close();
    if (exited === undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exit;
      clearTimeout(timer);
      if (exited !== 0) ctx.progress(`the journal service exited with ${String(exited)} after SIGTERM:\n${output}`);
    }
    ensureStopped(child);
  }
}

function ensureStopped(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

function loadExtra(load: LoadResult, serverCpuSeconds: number | null): Record<string, unknown> {
  return {
    concurrency: CONCURRENCY,
    latencyMs: { p50: percentile(load.latenciesMs, 50), p99: percentile(load.latenciesMs, 99), max: percentile(load.latenciesMs, 100) },
    clientCpuSeconds: load.clientCpuSeconds,
    serverCpuSeconds,
  };
}

async function measureInProcessService(dir: string, work: Workload, ctx: SuiteContext): Promise<Figure> {
  const anchors = join(dir, 'anchors');
  mkdirSync(anchors, { recursive: true, mode: 0o700 });
  const appendToken = token();
  const config = loadConfig(
    {
      JOURNAL_SERVICE_LISTEN: '127.0.0.1:0',
      JOURNAL_APPEND_TOKEN: appendToken,
      JOURNAL_READ_TOKEN: token(),
      JOURNAL_ANCHOR_DIRS: anchors,
      LOG_LEVEL: 'warn',
    },
    { journalPath: join(dir, 'journal.sqlite') },
  );
  const service = await startJournalService(config, silentLogger);
  const client = new HttpJournalClient({ url: service.url, appendToken, maxSockets: CONCURRENCY });
  try {
    ctx.progress(`in-process service at ${service.url}; warm-up ${INPROC_WARMUP}, then ${INPROC_COUNT}`);
    await driveClients(client, work.inputs(INPROC_WARMUP), CONCURRENCY);
    const load = await driveClients(client, work.inputs(INPROC_COUNT), CONCURRENCY);
    return figure(
      `service, in-process (shares the client's event loop), ${CONCURRENCY} concurrent`,
      1,
      INPROC_COUNT,
      load.seconds,
      loadExtra(load, null),
    );
  } finally {
    await client.close();
    await service.close();
  }
}

// ---------------------------------------------------------------------------------------------------------
// 4. Verify vs raw scan
// ---------------------------------------------------------------------------------------------------------

function rawScan(db: Database.Database): number {
  let rows = 0;
  const acc = Buffer.alloc(32);
  for (const row of db.prepare('SELECT * FROM entries ORDER BY seq').iterate() as IterableIterator<{ payload: string }>) {
    const d = createHash('sha256').update(row.payload, 'utf8').digest();
    acc[0] = (acc[0] as number) ^ (d[0] as number); // keep the digest live
    rows++;
  }
  return rows;
}

interface VerifyFigures {
  readonly verify: Figure;
  readonly scan: Figure;
}

function measureVerify(journalPath: string, keysDir: string, ctx: SuiteContext): VerifyFigures {
  const sealKey = readSealKey(keysDir);
  if (sealKey === null) throw new Error(`no seal key in ${keysDir}`);
  const reader = JournalReader.open(journalPath);
  try {
    const db = reader.connection;
    const runVerify = (): { rows: number; seconds: number } => {
      const start = now();
      const report = verifyJournal(db, { sealKey });
      const seconds = secondsSince(start);
      if (!report.ok || !report.sealsChecked)
        throw new Error(`the benchmark journal does not verify: ${report.reason ?? '?'} at ${String(report.firstBadSeq)}`);
      return { rows: report.entries, seconds };
    };
    const runScan = (): { rows: number; seconds: number } => {
      const start = now();
      const rows = rawScan(db);
      return { rows, seconds: secondsSince(start) };
    };
    ctx.progress('verify vs raw scan: warm-up');
    runVerify();
    runScan();
    const verifies: { rows: number; seconds: number }[] = [];
    const scans: { rows: number; seconds: number }[] = [];
    for (let i = 0; i < VERIFY_RUNS; i++) {
      verifies.push(runVerify());
      scans.push(runScan());
    }
    const rows = (verifies[0] as { rows: number }).rows;
    const vSec = median(verifies.map((v) => v.seconds));
    const sSec = median(scans.map((s) => s.seconds));
    ctx.progress(`verify: ${rows} rows in ${fmtFixed(vSec, 3)} s (median of ${VERIFY_RUNS}); raw scan ${fmtFixed(sSec, 3)} s`);
    return {
      verify: figure('verifyJournal (hashes, chain, seals, tree nodes, checkpoints)', null, rows, vSec, {
        runs: verifies.map((v) => v.seconds),
      }),
      scan: figure('raw scan: SELECT * ORDER BY seq .iterate() + SHA-256(payload)', null, (scans[0] as { rows: number }).rows, sSec, {
        runs: scans.map((s) => s.seconds),
      }),
    };
  } finally {
    reader.close();
  }
}

// ---------------------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------------------

/** The disk's single-row FULL commit rate, from a short bare batch-1 probe; sizes the batch-1 counts. */
function calibrate(dir: string, work: Workload): number {
  const db = openRaw(join(dir, 'probe.sqlite'), BARE_DDL);
  try {
    const insert = bareInserter(db);
    timeRawInserts(insert, work.rows(200), 1);
    return 1000 / timeRawInserts(insert, work.rows(1000), 1);
  } finally {
    db.close();
  }
}

async function runJournalSuite(ctx: SuiteContext): Promise<SuiteResult> {
  const suiteStart = now();
  const dir = mkdtempSync(join(tmpdir(), 'activity-journal-bench-'));
  const open: { close(): unknown }[] = [];
  try {
    ctx.progress(`temp dir ${dir}; building the payload pool`);
    const work = new Workload();
    const bytes = work.payloadBytes;

    const fsyncRate = calibrate(dir, work);
    const step = ROUNDS * BATCH;
    const batch1Count = Math.min(BATCH1_MAX, Math.max(step * 2, Math.round((fsyncRate * BATCH1_SECONDS) / step) * step));
    ctx.progress(
      `disk: ~${fmtInt(fsyncRate)} single-row FULL commits/s; batch-1 count ${batch1Count}, batch-${BATCH} count ${BATCH100_COUNT}, ${ROUNDS} interleaved rounds`,
    );

    // 1 and 2: raw (bare and same shape) and ours through the writer, interleaved round by round.
    const bareDb = openRaw(join(dir, 'raw-bare.sqlite'), BARE_DDL);
    open.push(bareDb);
    const rawDb = openRaw(join(dir, 'raw-shape.sqlite'), SAME_SHAPE_DDL);
    open.push(rawDb);
    const rawInsert = sameShapeInserter(rawDb);
    const tunedDb = openRaw(join(dir, 'raw-shape-tuned.sqlite'), SAME_SHAPE_DDL, JOURNAL_EXTRA_PRAGMAS);
    open.push(tunedDb);
    const journalPath = join(dir, 'writer', 'journal.sqlite');
    const keysDir = join(dir, 'writer', 'keys');
    const writer = await JournalWriter.open({ path: journalPath, keysDir, checkpointEveryMs: 0 });
    // The same writer with per-subject sealing, as the journal service runs it (master key, key store and backup).
    const privacyFor = (name: string): Privacy =>
      Privacy.open(
        {
          masterKey: randomBytes(32).toString('base64'),
          masterKeyFile: join(dir, name, 'master.key'),
          keyStorePath: join(dir, name, 'subject-keys.sqlite'),
          keyStoreBackupPath: join(dir, `${name}-backup`, 'subject-keys.sqlite'),
        },
        { create: true },
      );
    const sealedWriter = await JournalWriter.open({
      path: join(dir, 'sealed', 'journal.sqlite'),
      keysDir: join(dir, 'sealed', 'keys'),
      checkpointEveryMs: 0,
      privacy: privacyFor('sealed-privacy'),
    });
    const newSubjectsWriter = await JournalWriter.open({
      path: join(dir, 'new-subjects', 'journal.sqlite'),
      keysDir: join(dir, 'new-subjects', 'keys'),
      checkpointEveryMs: 0,
      privacy: privacyFor('new-subjects-privacy'),
    });
    let sender = 0;
    const newSender = (inputs: AppendInput<'interaction.received'>[]): AppendInput[] =>
      inputs.map((input) => {
        const p = input.payload;
        const n = sender++;
        return {
          ...input,
          payload: {
            ...p,
            participants: p.participants.map((x, i) => (i === 0 ? { ...x, address: `buyer-${n}@customer-${n % 997}.example` } : x)),
          },
        };
      });
    const sealedContenders = [
      writerContender(sealedWriter, work, 'oursSealed'),
      writerContender(newSubjectsWriter, work, 'oursSealedNewSubjects', newSender),
    ];
    const ours = writerContender(writer, work);
    const contenders = [
      rawContender('rawBare', bareInserter(bareDb), work),
      rawContender('raw', rawInsert, work),
      rawContender('rawTuned', sameShapeInserter(tunedDb), work),
      ours,
    ];
    const figures: Record<string, Figure> = {};
    let batch1: Record<string, number>;
    let batchN: Record<string, number>;
    let sealing: Record<string, number>;
    try {
      ctx.progress(`batch 1: raw bare, raw same shape, JournalWriter.append (${batch1Count} each)`);
      batch1 = await interleaved(contenders, 1, BATCH1_WARMUP, batch1Count);
      ctx.progress(`batch ${BATCH}: raw bare, raw same shape, JournalWriter.appendBatch (${BATCH100_COUNT} each)`);
      batchN = await interleaved(contenders, BATCH, BATCH100_WARMUP, BATCH100_COUNT);
      ctx.progress(`sealing, batch ${BATCH}: unsealed, sealed (known senders), sealed (a new sender every entry), ${SEALING_COUNT} each`);
      sealing = await interleaved([ours, ...sealedContenders], BATCH, SEALING_WARMUP, SEALING_COUNT);
    } finally {
      await writer.close();
      await sealedWriter.close();
      await newSubjectsWriter.close();
    }
    bareDb.close();
    tunedDb.close();
    const seconds = (m: Record<string, number>, k: string): number => m[k] as number;
    figures.rawBareBatch1 = figure('raw SQLite, bare (INTEGER PK + TEXT)', 1, batch1Count, seconds(batch1, 'rawBare'));
    figures.rawBatch1 = figure('raw SQLite, same shape as entries', 1, batch1Count, seconds(batch1, 'raw'));
    figures.rawTunedBatch1 = figure(
      'raw SQLite, same shape, our pragmas (wal_autocheckpoint=4000)',
      1,
      batch1Count,
      seconds(batch1, 'rawTuned'),
    );
    figures.oursBatch1 = figure('ours, JournalWriter.append awaited in turn', 1, batch1Count, seconds(batch1, 'ours'));
    figures.rawBareBatch100 = figure('raw SQLite, bare (INTEGER PK + TEXT)', BATCH, BATCH100_COUNT, seconds(batchN, 'rawBare'));
    figures.rawBatch100 = figure('raw SQLite, same shape as entries', BATCH, BATCH100_COUNT, seconds(batchN, 'raw'));
    figures.rawTunedBatch100 = figure(
      'raw SQLite, same shape, our pragmas (wal_autocheckpoint=4000)',
      BATCH,
      BATCH100_COUNT,
      seconds(batchN, 'rawTuned'),
    );
    figures.oursBatch100 = figure(
      `ours, JournalWriter.appendBatch(${BATCH}) awaited in turn`,
      BATCH,
      BATCH100_COUNT,
      seconds(batchN, 'ours'),
    );
    figures.oursUnsealedSealingPass = figure(
      `ours unsealed, appendBatch(${BATCH}) (the sealing pass's baseline)`,
      BATCH,
      SEALING_COUNT,
      seconds(sealing, 'ours'),
    );
    figures.oursSealedBatch100 = figure(
      `ours sealed per subject (3 known senders), appendBatch(${BATCH})`,
      BATCH,
      SEALING_COUNT,
      seconds(sealing, 'oursSealed'),
    );
    figures.oursSealedNewSubjectsBatch100 = figure(
      `ours sealed, a new sender every entry (new subject key each), appendBatch(${BATCH})`,
      BATCH,
      SEALING_COUNT,
      seconds(sealing, 'oursSealedNewSubjects'),
    );

    // 3. ours through the service, bracketed by short raw batch-1 runs that show how far the disk drifted meanwhile.
    const bracket = (): number => BRACKET_COUNT / timeRawInserts(rawInsert, work.rows(BRACKET_COUNT), 1);
    const rawBefore = bracket();
    ctx.progress('service in a child process');
    const child = await measureChildService(join(dir, 'service-child'), work, ctx);
    const rawAfter = bracket();
    ctx.progress(`raw same shape at batch ${CONCURRENCY}: the ceiling for ${CONCURRENCY} single-entry clients`);
    timeRawInserts(rawInsert, work.rows(CEILING_WARMUP), CONCURRENCY);
    figures.rawBatch64 = figure(
      `raw SQLite, same shape, batch ${CONCURRENCY} (service ceiling)`,
      CONCURRENCY,
      CEILING_COUNT,
      timeRawInserts(rawInsert, work.rows(CEILING_COUNT), CONCURRENCY),
    );
    rawDb.close();
    figures.serviceChild = child.figure;
    ctx.progress('service in this process');
    figures.serviceInProcess = await measureInProcessService(join(dir, 'service-inproc'), work, ctx);

    // 4. verify vs raw scan, on the journal built in steps 1 and 2
    const v = measureVerify(journalPath, keysDir, ctx);
    figures.verify = v.verify;
    figures.rawScan = v.scan;

    // 5. what sealing costs the service, in its own CPU time
    const sealingCost = await measureSealingCost(join(dir, 'sealing-cost'), work, ctx, {
      ...SEALING_COST_RUN,
      cpuProfDir: process.env.BENCH_CPU_PROF_DIR,
    });

    const f = (k: string): Figure => figures[k] as Figure;
    const ratios = {
      oursBatch100OverRawBatch100: ratio(f('oursBatch100').perSecond / f('rawBatch100').perSecond, BARS.oursBatch100OverRawBatch100),
      serviceOverRawBatch1: ratio(f('serviceChild').perSecond / f('rawBatch1').perSecond, BARS.serviceOverRawBatch1),
      verifyOverRawScan: ratio(f('verify').perSecond / f('rawScan').perSecond, BARS.verifyOverRawScan),
      serviceSealedCpuOverUnsealed: atMost(sealingCost.ratio, BARS.serviceSealedCpuOverUnsealed),
    };
    const rawBracket = (rawBefore + rawAfter) / 2;
    const informational = {
      oursBatch1OverRawBatch1: f('oursBatch1').perSecond / f('rawBatch1').perSecond,
      /** What per-subject sealing costs at batch 100: with known senders, and when every sender is new. */
      oursSealedOverOursBatch100: f('oursSealedBatch100').perSecond / f('oursUnsealedSealingPass').perSecond,
      oursSealedNewSubjectsOverOursBatch100: f('oursSealedNewSubjectsBatch100').perSecond / f('oursUnsealedSealingPass').perSecond,
      rawBatch100OverBareBatch100: f('rawBatch100').perSecond / f('rawBareBatch100').perSecond,
      /** The bar-1 ratio against a baseline given the journal's own pragmas (the bar itself uses plain SQLite). */
      oursBatch100OverRawTunedBatch100: f('oursBatch100').perSecond / f('rawTunedBatch100').perSecond,
      rawBatch1BeforeService: rawBefore,
      rawBatch1AfterService: rawAfter,
      serviceOverRawBatch1Bracketing: f('serviceChild').perSecond / rawBracket,
      serviceInProcessOverRawBatch1: f('serviceInProcess').perSecond / f('rawBatch1').perSecond,
      /** What the service bar would be for raw SQLite itself committing CONCURRENCY rows per transaction. */
      rawBatch64OverRawBatch1: f('rawBatch64').perSecond / f('rawBatch1').perSecond,
      serviceOverRawBatch64: f('serviceChild').perSecond / f('rawBatch64').perSecond,
    };
    const totalSeconds = secondsSince(suiteStart);

    const text = render(figures, ratios, informational, { bytes, fsyncRate, dir, totalSeconds, batch1Count, sealingCost });
    const data = {
      entryPayloadBytes: bytes,
      tempDir: dir,
      diskSingleRowCommitsPerSecond: fsyncRate,
      settings: {
        interleavedRounds: ROUNDS,
        rawPragmas: 'journal_mode=WAL, synchronous=FULL, otherwise better-sqlite3 defaults (wal_autocheckpoint=1000)',
        oursPragmas: 'journal_mode=WAL, synchronous=FULL, trusted_schema=OFF, wal_autocheckpoint=4000 (src/journal/sqlite.ts)',
        writer: { checkpointEveryEntries: 1000, checkpointEveryMs: 0, anchors: 0 },
        service: {
          concurrency: CONCURRENCY,
          process: 'child: node bin/activity-journal.mjs journal-service',
          anchors: 'one directory anchor',
          checkpointEverySeconds: 10,
          checkpointEveryEntries: 1000,
        },
      },
      figures,
      sealingCost,
      ratios,
      informational,
      allPass: Object.values(ratios).every((r) => r.pass),
      totalSeconds,
    };
    return { text, data };
  } finally {
    for (const db of open) {
      try {
        db.close();
      } catch {
        // already closed
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function render(
  figures: Record<string, Figure>,
  ratios: Record<string, Ratio>,
  informational: Record<string, number>,
  info: {
    bytes: { min: number; max: number; mean: number };
    fsyncRate: number;
    dir: string;
    totalSeconds: number;
    batch1Count: number;
    sealingCost: SealingCost;
  },
): string {
  const order = [
    'rawBareBatch1',
    'rawBatch1',
    'rawTunedBatch1',
    'oursBatch1',
    'rawBareBatch100',
    'rawBatch100',
    'rawTunedBatch100',
    'oursBatch100',
    'oursUnsealedSealingPass',
    'oursSealedBatch100',
    'oursSealedNewSubjectsBatch100',
    'rawBatch64',
    'serviceChild',
    'serviceInProcess',
    'verify',
    'rawScan',
  ];
  const rows = order.map((k) => {
    const fig = figures[k] as Figure;
    return [fig.label, fig.batch === null ? 'scan' : String(fig.batch), fmtInt(fig.count), fmtFixed(fig.seconds, 3), fmtInt(fig.perSecond)];
  });
  const svc = (k: string): string => {
    const fig = figures[k] as Figure;
    const e = fig.extra as {
      latencyMs: { p50: number; p99: number; max: number };
      clientCpuSeconds: number;
      serverCpuSeconds: number | null;
    };
    const server =
      e.serverCpuSeconds === null
        ? ''
        : `, server CPU ${fmtFixed(e.serverCpuSeconds, 1)} s (${fmtFixed((e.serverCpuSeconds / fig.count) * 1e6, 0)} us/entry)`;
    return `latency p50 ${fmtFixed(e.latencyMs.p50, 2)} ms, p99 ${fmtFixed(e.latencyMs.p99, 2)} ms, max ${fmtFixed(e.latencyMs.max, 1)} ms; client CPU ${fmtFixed(e.clientCpuSeconds, 1)} s${server}`;
  };
  const n = (k: string): number => informational[k] as number;
  const ratioRows = [
    ['ours batch 100 / raw batch 100 (same shape)', ratios.oursBatch100OverRawBatch100 as Ratio],
    [`service ${CONCURRENCY}-concurrent single appends / raw batch-1 FULL inserts`, ratios.serviceOverRawBatch1 as Ratio],
    ['verify / raw scan + SHA-256', ratios.verifyOverRawScan as Ratio],
    ['service CPU per sealed entry / per unsealed entry (known senders)', ratios.serviceSealedCpuOverUnsealed as Ratio],
  ] as const;
  return [
    `journal suite: ~1 KB entries (interaction.received, canonical payload ${info.bytes.min}-${info.bytes.max} B)`,
    `disk probe: ~${fmtInt(info.fsyncRate)} single-row WAL+FULL commits/s; batch-1 rows ${fmtInt(info.batch1Count)}; raw and writer runs interleaved in ${ROUNDS} rounds`,
    '',
    table(['measurement', 'batch', 'entries', 'seconds', 'entries/s'], rows),
    '',
    `service, child:      ${svc('serviceChild')}`,
    `service, in-process: ${svc('serviceInProcess')}`,
    `disk drift check:    raw same-shape batch 1 just before the service ${fmtInt(n('rawBatch1BeforeService'))}/s, just after ${fmtInt(n('rawBatch1AfterService'))}/s` +
      ` (service / their mean = ${fmtFixed(n('serviceOverRawBatch1Bracketing'), 2)})`,
    `service ceiling:     raw same shape at batch ${CONCURRENCY} / raw batch 1 = ${fmtFixed(n('rawBatch64OverRawBatch1'), 2)}` +
      ` (plain SQLite committing the largest group ${CONCURRENCY} clients can form); service / that = ${fmtFixed(n('serviceOverRawBatch64'), 3)}`,
    describeSealingCost(info.sealingCost),
    '',
    table(
      ['ratio', 'value', 'bar', 'result'],
      ratioRows.map(([name, r]) => [name, fmtFixed(r.value, 3), `${r.atMost === true ? '<=' : '>='} ${r.bar}`, r.pass ? 'PASS' : 'FAIL']),
    ),
    '',
    `for context: ours batch 1 / raw batch 1 = ${fmtFixed(n('oursBatch1OverRawBatch1'), 3)}; ` +
      `raw same shape / bare at batch ${BATCH} = ${fmtFixed(n('rawBatch100OverBareBatch100'), 3)}; ` +
      `ours batch ${BATCH} / raw same shape with our pragmas = ${fmtFixed(n('oursBatch100OverRawTunedBatch100'), 3)};\n             ` +
      `in-process service / raw batch 1 = ${fmtFixed(n('serviceInProcessOverRawBatch1'), 2)};\n             ` +
      `sealing at batch ${BATCH}: sealed / unsealed = ${fmtFixed(n('oursSealedOverOursBatch100'), 3)}, a new sender every entry / unsealed = ${fmtFixed(n('oursSealedNewSubjectsOverOursBatch100'), 3)}`,
    `suite time: ${fmtFixed(info.totalSeconds, 1)} s`,
  ].join('\n');
}

export const journalSuite: Suite = {
  name: 'journal',
  description: 'raw SQLite vs JournalWriter vs the journal service (64 clients); verify vs raw scan',
  run: runJournalSuite,
};
