/**
 * The pipeline suite: what our pipeline (intake → classify → decide → mirror, every step journaled) gets out of
 * BullMQ, measured against BullMQ doing nothing on the same Redis, and how close it comes to the model's
 * throughput bound when the model is slow.
 *
 *  1. BullMQ no-op baseline: one Queue + Worker (shared ioredis connection, as jobs/main.ts wires it;
 *     concurrency = WORKER_CONCURRENCY's default) whose processor does nothing. NOOP_JOBS jobs added with one
 *     addBulk while the worker runs, timed from the addBulk call to the last `completed` event (the bar's
 *     baseline); also the same jobs added first and then drained by a fresh worker (worker-only rate), and a
 *     4-stage no-op chain (each processor adds the next stage's job; interactions/s).
 *  2. The full pipeline with zero-latency fakes: the offline classifier, DryRunCrm without latency, the journal
 *     in this process (LocalJournalClient over a JournalWriter in a temp dir: group commit, synchronous=FULL,
 *     a checkpoint every 1,000 entries, no anchors), default MODEL_CONCURRENCY and WORKER_CONCURRENCY.
 *     PIPELINE_INTERACTIONS distinct interactions go through Pipeline.intake with WORKER_CONCURRENCY intakes in
 *     flight (as the ingest worker would run them), timed from the first intake call to the N-th committed
 *     crm.write: intake is part of the measured time. 1 and 2 run interleaved in ROUNDS rounds (median).
 *  3. Simulated latency: a classifier that waits 800 ms per call, DryRunCrm with latencyMs 150,
 *     MODEL_CONCURRENCY 16, WORKER_CONCURRENCY 32, 160 interactions (ten model waves). The classify queue is
 *     paused while they are taken in; the clock starts when it is resumed and stops at the last committed
 *     crm.write. The bound is MODEL_CONCURRENCY / 0.8 s; the tail after the last model call (decide, 150 ms of
 *     CRM, the crm.write commit) is inside the measured time and reported separately. Every classify, decide and
 *     mirror job's worker events and every model call are time-stamped, so that the report says where a slot's
 *     time went. Also, for context, a run with intake streaming in (clock from the first intake call).
 *
 * Every run uses its own queue prefix, obliterated afterwards; temp dirs are removed.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../src/config/config.ts';
import { silentLogger } from '../src/config/logger.ts';
import { JournalWriter } from '../src/journal/writer.ts';
import { JournalReader } from '../src/journal/reader.ts';
import { LocalJournalClient } from '../src/journal/local-client.ts';
import { OfflineClassifier } from '../src/pipeline/offline-classifier.ts';
import { DryRunCrm } from '../src/pipeline/dry-run-crm.ts';
import { loadRuleset } from '../src/pipeline/rules.ts';
import { jobIdFor } from '../src/pipeline/job-catalog.ts';
import type { Interaction } from '../src/pipeline/interaction.ts';
import type { Classifier } from '../src/pipeline/classification.ts';
import { startPipeline, type PipelineRuntime } from '../jobs/main.ts';
import { removeAllUnder } from '../jobs/queues.ts';
import { REDIS_URL, drained, generatedInteractions, obliterate } from '../test/helpers/pipeline.ts';
import {
  fmtFixed,
  fmtInt,
  median,
  percentile,
  ratio,
  table,
  type Ratio,
  type Suite,
  type SuiteContext,
  type SuiteResult,
} from './suite.ts';
import { DelayedClassifier, RecordingCrm, costMeter, runConcurrently, type CostSample } from './pipeline-workload.ts';

/** Sized for a suite of about 1 to 1.5 minutes on a 2-core VM. */
const ROUNDS = 5;
const NOOP_WARMUP = 1_000;
const NOOP_JOBS = 5_000;
const CHAIN_STAGES = 4;
const CHAIN_WARMUP = 500;
const CHAIN_INTERACTIONS = 2_000;
const PIPELINE_WARMUP = 300;
const PIPELINE_INTERACTIONS = 2_000;
const LATENCY = {
  modelMs: 800,
  crmMs: 150,
  modelConcurrency: 16,
  workerConcurrency: 32,
  interactions: 160,
  runs: 3,
} as const;

const BARS = {
  pipelineOverNoop: 0.3,
  latencyOverBound: 0.9,
} as const;

const BULLMQ_VERSION = ((): string => {
  try {
    return (JSON.parse(readFileSync(createRequire(import.meta.url).resolve('bullmq/package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
})();

/** The product's defaults (MODEL_CONCURRENCY 4, WORKER_CONCURRENCY 8). */
const DEFAULTS = loadConfig({ LOG_LEVEL: 'silent' }).pipeline;

// ---------------------------------------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------------------------------------

interface Figure {
  readonly label: string;
  readonly unit: 'jobs' | 'interactions';
  readonly count: number;
  readonly seconds: number;
  readonly perSecond: number;
  /** Per round, when the figure is a median of rounds. */
  readonly rounds?: readonly { seconds: number; perSecond: number; otherCores?: number | null }[];
  readonly cost?: CostPerItem;
  readonly extra?: Record<string, unknown>;
}

interface CostPerItem {
  readonly nodeCpuMs: number;
  readonly redisCpuMs: number;
  readonly redisCommands: number;
  readonly eventLoopUtilisation: number;
  /** The most CPU cores anything else on the box kept busy during one of the rounds (null: unknown). */
  readonly otherCoresMax: number | null;
}

function perItem(costs: readonly CostSample[], items: number): CostPerItem {
  const sum = (f: (c: CostSample) => number): number => costs.reduce((a, c) => a + f(c), 0);
  return {
    nodeCpuMs: (sum((c) => c.nodeCpuSeconds) * 1000) / items,
    redisCpuMs: (sum((c) => c.redisCpuSeconds) * 1000) / items,
    redisCommands: sum((c) => c.redisCommands) / items,
    eventLoopUtilisation: median(costs.map((c) => c.eventLoopUtilisation)),
    otherCoresMax: costs.some((c) => c.otherCores === null) ? null : Math.max(...costs.map((c) => c.otherCores as number)),
  };
}

interface Run {
  readonly count: number;
  readonly seconds: number;
  readonly cost: CostSample;
  readonly extra?: Record<string, unknown>;
}

/** The median round (by rate) as the figure, every round kept. */
function medianFigure(label: string, unit: Figure['unit'], runs: readonly Run[]): Figure {
  const rates = runs.map((r) => r.count / r.seconds);
  const mid = median(rates);
  const closest = runs.reduce((best, r) => (Math.abs(r.count / r.seconds - mid) < Math.abs(best.count / best.seconds - mid) ? r : best));
  return {
    label,
    unit,
    count: closest.count,
    seconds: closest.count / mid,
    perSecond: mid,
    rounds: runs.map((r) => ({ seconds: r.seconds, perSecond: r.count / r.seconds, otherCores: r.cost.otherCores })),
    cost: perItem(
      runs.map((r) => r.cost),
      runs.reduce((a, r) => a + r.count, 0),
    ),
  };
}

function benchPrefix(): string {
  return `aj-bench-${randomBytes(5).toString('hex')}`;
}

/** Resolves when `worker` has completed `n` more jobs; rejects on the first failure. */
function completions(worker: Worker, n: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = 0;
    const onCompleted = (): void => {
      if (++done === n) {
        cleanup();
        resolve();
      }
    };
    const onFailed = (job: Job | undefined, err: Error): void => {
      cleanup();
      reject(new Error(`no-op job ${job?.id ?? '?'} failed: ${err.message}`));
    };
    const cleanup = (): void => {
      worker.off('completed', onCompleted);
      worker.off('failed', onFailed);
    };
    worker.on('completed', onCompleted);
    worker.on('failed', onFailed);
  });
}

// ---------------------------------------------------------------------------------------------------------
// 1. BullMQ no-op: one stage, and a 4-stage chain
// ---------------------------------------------------------------------------------------------------------

interface NoopRound {
  /** addBulk while the worker runs: from the addBulk call to the last completion. */
  readonly streaming: Run;
  /** addBulk into an idle queue (no worker). */
  readonly add: Run;
  /** A fresh worker draining the jobs added above. */
  readonly drain: Run;
}

async function noopRound(redis: Redis, ctl: Redis, n: number): Promise<NoopRound> {
  const prefix = benchPrefix();
  const concurrency = DEFAULTS.workerConcurrency;
  const streamQ = new Queue('noop', { connection: redis, prefix });
  const drainQ = new Queue('noop-drain', { connection: redis, prefix });
  const workers: Worker[] = [];
  try {
    const jobs = Array.from({ length: n }, (_, i) => ({ name: 'noop', data: { i } }));

    const streamer = new Worker('noop', () => Promise.resolve(), { connection: redis, prefix, concurrency });
    workers.push(streamer);
    await streamer.waitUntilReady();
    await streamQ.waitUntilReady();
    const allDone = completions(streamer, n);
    let end = await costMeter(ctl);
    let t0 = performance.now();
    await streamQ.addBulk(jobs);
    await allDone;
    const streaming: Run = { count: n, seconds: (performance.now() - t0) / 1000, cost: await end() };

    await drainQ.waitUntilReady();
    end = await costMeter(ctl);
    t0 = performance.now();
    await drainQ.addBulk(jobs);
    const add: Run = { count: n, seconds: (performance.now() - t0) / 1000, cost: await end() };

    const drainer = new Worker('noop-drain', () => Promise.resolve(), { connection: redis, prefix, concurrency, autorun: false });
    workers.push(drainer);
    await drainer.waitUntilReady();
    const drainedAll = completions(drainer, n);
    end = await costMeter(ctl);
    t0 = performance.now();
    const running = drainer.run();
    await drainedAll;
    const drain: Run = { count: n, seconds: (performance.now() - t0) / 1000, cost: await end() };
    await drainer.close();
    await running;
    return { streaming, add, drain };
  } finally {
    await Promise.all(workers.map((w) => w.close()));
    for (const q of [streamQ, drainQ]) {
      await q.obliterate({ force: true });
      await q.close();
    }
    await removeAllUnder(ctl, prefix);
  }
}

/** CHAIN_STAGES queues; each stage's processor adds the next stage's job (the last does nothing). */
async function chainRound(redis: Redis, ctl: Redis, n: number): Promise<Run> {
  const prefix = benchPrefix();
  const concurrency = DEFAULTS.workerConcurrency;
  const queues = Array.from({ length: CHAIN_STAGES }, (_, s) => new Queue(`stage${s + 1}`, { connection: redis, prefix }));
  const workers = queues.map(
    (_, s) =>
      new Worker(
        `stage${s + 1}`,
        async (job: Job<{ i: number }>) => {
          const next = queues[s + 1];
          if (next) await next.add('s', job.data);
        },
        { connection: redis, prefix, concurrency },
      ),
  );
  try {
    await Promise.all([...queues.map((q) => q.waitUntilReady()), ...workers.map((w) => w.waitUntilReady())]);
    const allDone = completions(workers[CHAIN_STAGES - 1] as Worker, n);
    const end = await costMeter(ctl);
    const t0 = performance.now();
    await (queues[0] as Queue).addBulk(Array.from({ length: n }, (_, i) => ({ name: 's', data: { i } })));
    await allDone;
    return { count: n, seconds: (performance.now() - t0) / 1000, cost: await end() };
  } finally {
    await Promise.all(workers.map((w) => w.close()));
    for (const q of queues) {
      await q.obliterate({ force: true });
      await q.close();
    }
    await removeAllUnder(ctl, prefix);
  }
}

// ---------------------------------------------------------------------------------------------------------
// The pipeline in this process
// ---------------------------------------------------------------------------------------------------------

interface BenchPipeline {
  readonly runtime: PipelineRuntime;
  readonly writer: JournalWriter;
  readonly reader: JournalReader;
  readonly crm: RecordingCrm;
  readonly prefix: string;
  stop(): Promise<void>;
}

function benchConfig(dir: string, env: Record<string, string>): Config {
  return loadConfig({ JOURNAL_PATH: join(dir, 'journal.sqlite'), REDIS_URL, LOG_LEVEL: 'silent', ...env });
}

/** The offline classifier as jobs/main.ts configures it (the rules' own domains). */
function offlineClassifier(config: Config): OfflineClassifier {
  return new OfflineClassifier({ ownDomains: loadRuleset(config.pipeline.rulesPath).ownDomains });
}

async function benchPipeline(config: Config, options: { classifier: Classifier; crmLatencyMs: number }): Promise<BenchPipeline> {
  const writer = await JournalWriter.open({ path: config.journal.path, keysDir: config.journal.keysDir, checkpointEveryMs: 0 });
  const reader = JournalReader.open(config.journal.path);
  const journal = new LocalJournalClient(writer, JournalReader.open(config.journal.path));
  const classifier = options.classifier;
  const crm = new RecordingCrm(new DryRunCrm(journal, options.crmLatencyMs > 0 ? { latencyMs: options.crmLatencyMs } : {}));
  const prefix = benchPrefix();
  const runtime = await startPipeline(config, silentLogger, { journal, classifier, crm, prefix });
  return {
    runtime,
    writer,
    reader,
    crm,
    prefix,
    async stop() {
      await runtime.close();
      await obliterate(prefix);
      reader.close();
      await journal.close();
    },
  };
}

/** What the journal holds so far: crm.write entries, failed jobs, and decisions other than 'ok'. */
function journalCounts(reader: JournalReader): { crmWrites: number; jobFailed: number; notOkDecisions: number } {
  const db = reader.connection;
  const count = (sql: string): number => (db.prepare(sql).get() as { n: number }).n;
  return {
    crmWrites: count(`SELECT count(*) AS n FROM entries WHERE kind = 'crm.write'`),
    jobFailed: count(`SELECT count(*) AS n FROM entries WHERE kind = 'job.failed'`),
    notOkDecisions: count(`SELECT count(*) AS n FROM entries WHERE kind = 'ai.decision' AND json_extract(payload, '$.outcome') <> 'ok'`),
  };
}

/** After a run: the queues drained, and exactly `expectedWrites` crm.write entries in all, none failed. */
async function checkRun(p: BenchPipeline, expectedWrites: number): Promise<void> {
  await drained(p.prefix, 120_000);
  const c = journalCounts(p.reader);
  if (c.crmWrites !== expectedWrites || c.jobFailed !== 0 || c.notOkDecisions !== 0) {
    throw new Error(
      `the pipeline run is not clean: ${c.crmWrites} crm.write (expected ${expectedWrites}), ${c.jobFailed} job.failed, ${c.notOkDecisions} decisions not 'ok'`,
    );
  }
}

/** Intake of `items` (WORKER_CONCURRENCY at a time) to the last committed crm.write. */
async function pipelineRun(p: BenchPipeline, ctl: Redis, items: readonly Interaction[]): Promise<Run> {
  const lastWrite = p.crm.expect(items.length);
  const w0 = { ...p.writer.stats };
  const end = await costMeter(ctl);
  const t0 = performance.now();
  let intakeEnd = 0;
  await runConcurrently(items.length, DEFAULTS.workerConcurrency, async (i) => {
    const out = await p.runtime.pipeline.intake(items[i] as Interaction);
    if (out.status !== 'accepted' || out.duplicate) throw new Error(`interaction ${i} was not taken in as new (${out.status})`);
  });
  intakeEnd = performance.now();
  const t1 = await lastWrite;
  const cost = await end();
  const w = p.writer.stats;
  return {
    count: items.length,
    seconds: (t1 - t0) / 1000,
    cost,
    extra: {
      intakeSeconds: (intakeEnd - t0) / 1000,
      journalEntries: w.entries - w0.entries,
      journalTransactions: w.transactions - w0.transactions,
      journalRequests: w.requests - w0.requests,
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// 3. Simulated latency
// ---------------------------------------------------------------------------------------------------------

interface StageTimes {
  active: Map<string, number>;
  completed: Map<string, number>;
}

/** Time-stamps every job's `active` and `completed` events on the classify, decide and mirror workers. */
function stageProbe(runtime: PipelineRuntime): Record<'classify' | 'decide' | 'mirror', StageTimes> {
  const probe = {
    classify: { active: new Map<string, number>(), completed: new Map<string, number>() },
    decide: { active: new Map<string, number>(), completed: new Map<string, number>() },
    mirror: { active: new Map<string, number>(), completed: new Map<string, number>() },
  };
  for (const w of runtime.workers?.workers ?? []) {
    const times = probe[w.name as keyof typeof probe] as StageTimes | undefined;
    if (!times) continue;
    w.on('active', (job: Job) => times.active.set(String(job.id), performance.now()));
    w.on('completed', (job: Job) => times.completed.set(String(job.id), performance.now()));
  }
  return probe;
}

interface Dist {
  readonly mean: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

function dist(values: readonly number[]): Dist {
  const s = [...values].sort((a, b) => a - b);
  return {
    mean: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length),
    p50: percentile(s, 50),
    p99: percentile(s, 99),
    max: percentile(s, 100),
  };
}

interface LatencyRun {
  readonly mode: 'paused-intake' | 'streaming-intake';
  readonly count: number;
  /** From the resume of the classify queue (or the first intake call) to the last committed crm.write. */
  readonly seconds: number;
  readonly perSecond: number;
  readonly ratioToBound: number;
  /** Interactions over the model phase only (clock start to the end of the last model call), over the bound: the tail left out. */
  readonly modelPhaseRatioToBound: number;
  readonly intakeSeconds: number;
  /** Clock start to the first model call. */
  readonly startupMs: number;
  /** Clock start to the end of the last model call. */
  readonly modelPhaseMs: number;
  /** End of the last model call to the last crm.write. */
  readonly tailMs: number;
  /** Model-busy time over (MODEL_CONCURRENCY × modelPhase). */
  readonly modelSlotUtilisation: number;
  /** Per classify job: active event → model call start; the model call; model end → completed event; active → completed. */
  readonly classify: {
    readonly preModelMs: Dist;
    readonly modelMs: Dist;
    readonly postModelMs: Dist;
    readonly slotHoldMs: Dist;
    readonly matched: number;
  };
  /** Per interaction: classify completed → decide active; decide active → completed; decide completed → mirror active; mirror active → completed. */
  readonly downstream: { readonly decideWaitMs: Dist; readonly decideMs: Dist; readonly mirrorWaitMs: Dist; readonly mirrorMs: Dist };
  readonly cost: CostSample;
}

async function latencyRun(
  p: BenchPipeline,
  model: DelayedClassifier,
  probe: ReturnType<typeof stageProbe>,
  ctl: Redis,
  seed: string,
  mode: LatencyRun['mode'],
): Promise<LatencyRun> {
  const m = LATENCY.interactions;
  const items = generatedInteractions(m, seed);
  const entryIdOf = new Map<string, string>(); // `${seed}-${i}` → interaction entry id
  for (const s of Object.values(probe)) {
    s.active.clear();
    s.completed.clear();
  }
  model.calls.length = 0;
  const intake = async (i: number): Promise<void> => {
    const out = await p.runtime.pipeline.intake(items[i] as Interaction);
    if (out.status !== 'accepted' || out.duplicate) throw new Error(`interaction ${i} was not taken in as new`);
    entryIdOf.set(`${seed}-${i}`, out.entry.id);
  };
  const classifyQueue = p.runtime.queues.classify;
  let t0: number;
  let intakeSeconds: number;
  let lastWrite: Promise<number>;
  let end: () => Promise<CostSample>;
  if (mode === 'paused-intake') {
    await classifyQueue.pause();
    const i0 = performance.now();
    await runConcurrently(m, DEFAULTS.workerConcurrency, intake);
    intakeSeconds = (performance.now() - i0) / 1000;
    lastWrite = p.crm.expect(m);
    end = await costMeter(ctl);
    t0 = performance.now();
    await classifyQueue.resume();
  } else {
    lastWrite = p.crm.expect(m);
    end = await costMeter(ctl);
    t0 = performance.now();
    await runConcurrently(m, DEFAULTS.workerConcurrency, intake);
    intakeSeconds = (performance.now() - t0) / 1000;
  }
  const t1 = await lastWrite;
  const cost = await end();

  const calls = model.calls;
  const firstStart = Math.min(...calls.map((c) => c.startMs));
  const lastEnd = Math.max(...calls.map((c) => c.endMs));
  const busy = calls.reduce((a, c) => a + (c.endMs - c.startMs), 0);
  const pre: number[] = [];
  const post: number[] = [];
  const hold: number[] = [];
  for (const c of calls) {
    const ref = /Reference (\S+?)\.?$/m.exec(c.input.text)?.[1];
    const entryId = ref ? entryIdOf.get(ref) : undefined;
    if (!entryId) continue;
    const jobId = jobIdFor('classify', entryId);
    const a = probe.classify.active.get(jobId);
    const done = probe.classify.completed.get(jobId);
    if (a === undefined || done === undefined) continue;
    pre.push(c.startMs - a);
    post.push(done - c.endMs);
    hold.push(done - a);
  }
  const decideWait: number[] = [];
  const decideMs: number[] = [];
  const mirrorWait: number[] = [];
  const mirrorMs: number[] = [];
  for (const entryId of entryIdOf.values()) {
    const cDone = probe.classify.completed.get(jobIdFor('classify', entryId));
    const dA = probe.decide.active.get(jobIdFor('decide', entryId));
    const dDone = probe.decide.completed.get(jobIdFor('decide', entryId));
    const mA = probe.mirror.active.get(jobIdFor('mirror', entryId));
    const mDone = probe.mirror.completed.get(jobIdFor('mirror', entryId));
    if (cDone === undefined || dA === undefined || dDone === undefined || mA === undefined || mDone === undefined) continue;
    decideWait.push(dA - cDone);
    decideMs.push(dDone - dA);
    mirrorWait.push(mA - dDone);
    mirrorMs.push(mDone - mA);
  }
  const seconds = (t1 - t0) / 1000;
  const perSecond = m / seconds;
  return {
    mode,
    count: m,
    seconds,
    perSecond,
    ratioToBound: perSecond / latencyBound(),
    modelPhaseRatioToBound: m / ((lastEnd - t0) / 1000) / latencyBound(),
    intakeSeconds,
    startupMs: firstStart - t0,
    modelPhaseMs: lastEnd - t0,
    tailMs: t1 - lastEnd,
    modelSlotUtilisation: busy / (LATENCY.modelConcurrency * (lastEnd - t0)),
    classify: {
      preModelMs: dist(pre),
      modelMs: dist(calls.map((c) => c.endMs - c.startMs)),
      postModelMs: dist(post),
      slotHoldMs: dist(hold),
      matched: hold.length,
    },
    downstream: { decideWaitMs: dist(decideWait), decideMs: dist(decideMs), mirrorWaitMs: dist(mirrorWait), mirrorMs: dist(mirrorMs) },
    cost,
  };
}

function latencyBound(): number {
  return LATENCY.modelConcurrency / (LATENCY.modelMs / 1000);
}

/** The best a finite run can do: whole model waves back to back, then one CRM call for the last wave. */
function finiteRunIdeal(): { seconds: number; perSecond: number } {
  const waves = Math.ceil(LATENCY.interactions / LATENCY.modelConcurrency);
  const seconds = (waves * LATENCY.modelMs + LATENCY.crmMs) / 1000;
  return { seconds, perSecond: LATENCY.interactions / seconds };
}

// ---------------------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------------------

async function runPipelineSuite(ctx: SuiteContext): Promise<SuiteResult> {
  const suiteStart = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'activity-journal-bench-pipeline-'));
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const ctl = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const pipelines: BenchPipeline[] = [];
  try {
    // 1 and 2, interleaved round by round.
    ctx.progress(
      `temp dir ${dir}; zero-latency pipeline (MODEL_CONCURRENCY ${DEFAULTS.modelConcurrency}, WORKER_CONCURRENCY ${DEFAULTS.workerConcurrency})`,
    );
    const zeroConfig = benchConfig(join(dir, 'zero'), {});
    const zero = await benchPipeline(zeroConfig, { classifier: offlineClassifier(zeroConfig), crmLatencyMs: 0 });
    pipelines.push(zero);
    let writesSoFar = 0;

    ctx.progress(`warm-up: no-op ${NOOP_WARMUP}, chain ${CHAIN_WARMUP}, pipeline ${PIPELINE_WARMUP}`);
    await noopRound(redis, ctl, NOOP_WARMUP);
    await chainRound(redis, ctl, CHAIN_WARMUP);
    await pipelineRun(zero, ctl, generatedInteractions(PIPELINE_WARMUP, 'warmup'));
    writesSoFar += PIPELINE_WARMUP;
    await checkRun(zero, writesSoFar);

    const noopStreaming: Run[] = [];
    const noopAdd: Run[] = [];
    const noopDrain: Run[] = [];
    const chain: Run[] = [];
    const pipe: Run[] = [];
    const contenders: { name: string; run: (round: number) => Promise<void> }[] = [
      {
        name: `no-op ${NOOP_JOBS}`,
        run: async () => {
          const r = await noopRound(redis, ctl, NOOP_JOBS);
          noopStreaming.push(r.streaming);
          noopAdd.push(r.add);
          noopDrain.push(r.drain);
        },
      },
      {
        name: `${CHAIN_STAGES}-stage chain ${CHAIN_INTERACTIONS}`,
        run: async () => void chain.push(await chainRound(redis, ctl, CHAIN_INTERACTIONS)),
      },
      {
        name: `pipeline ${PIPELINE_INTERACTIONS}`,
        run: async (round) => {
          pipe.push(await pipelineRun(zero, ctl, generatedInteractions(PIPELINE_INTERACTIONS, `round${round}`)));
          writesSoFar += PIPELINE_INTERACTIONS;
          await checkRun(zero, writesSoFar);
        },
      },
    ];
    for (let round = 0; round < ROUNDS; round++) {
      for (let j = 0; j < contenders.length; j++) {
        const c = contenders[(round + j) % contenders.length] as (typeof contenders)[number];
        ctx.progress(`round ${round + 1}/${ROUNDS}: ${c.name}`);
        await c.run(round);
      }
    }
    const zeroWriter = { ...zero.writer.stats };
    await zero.stop();
    pipelines.length = 0;

    const figures: Record<string, Figure> = {
      noop: medianFigure(`BullMQ no-op, addBulk + 1 worker (concurrency ${DEFAULTS.workerConcurrency}) at once`, 'jobs', noopStreaming),
      noopAdd: medianFigure('BullMQ no-op, addBulk alone (no worker)', 'jobs', noopAdd),
      noopDrain: medianFigure(`BullMQ no-op, worker draining a full queue (concurrency ${DEFAULTS.workerConcurrency})`, 'jobs', noopDrain),
      chain: medianFigure(
        `BullMQ no-op ${CHAIN_STAGES}-stage chain (each stage adds the next, concurrency ${DEFAULTS.workerConcurrency} each)`,
        'interactions',
        chain,
      ),
      pipeline: {
        ...medianFigure(
          `pipeline, zero-latency fakes, intake included (${DEFAULTS.workerConcurrency} intakes in flight)`,
          'interactions',
          pipe,
        ),
        extra: pipelineExtra(pipe),
      },
    };

    // 3. Simulated latency.
    ctx.progress(
      `simulated latency: model ${LATENCY.modelMs} ms, CRM ${LATENCY.crmMs} ms, MODEL_CONCURRENCY ${LATENCY.modelConcurrency}, WORKER_CONCURRENCY ${LATENCY.workerConcurrency}, ${LATENCY.interactions} interactions`,
    );
    const slowConfig = benchConfig(join(dir, 'latency'), {
      MODEL_CONCURRENCY: String(LATENCY.modelConcurrency),
      WORKER_CONCURRENCY: String(LATENCY.workerConcurrency),
    });
    const delayed = new DelayedClassifier(offlineClassifier(slowConfig), LATENCY.modelMs);
    const slow = await benchPipeline(slowConfig, { classifier: delayed, crmLatencyMs: LATENCY.crmMs });
    pipelines.push(slow);
    const probe = stageProbe(slow.runtime);
    // A short warm-up so that the first measured wave does not pay for compiling anything.
    ctx.progress('simulated latency: warm-up (one wave)');
    const warm = slow.crm.expect(LATENCY.modelConcurrency);
    const warmItems = generatedInteractions(LATENCY.modelConcurrency, 'lat-warmup');
    await runConcurrently(LATENCY.modelConcurrency, DEFAULTS.workerConcurrency, (i) =>
      slow.runtime.pipeline.intake(warmItems[i] as Interaction),
    );
    await warm;
    let slowWrites = LATENCY.modelConcurrency;
    await checkRun(slow, slowWrites);
    const latencyRuns: LatencyRun[] = [];
    for (let r = 0; r < LATENCY.runs; r++) {
      ctx.progress(`simulated latency: run ${r + 1}/${LATENCY.runs} (intake first, clock from the classify queue's resume)`);
      latencyRuns.push(await latencyRun(slow, delayed, probe, ctl, `lat${r}`, 'paused-intake'));
      slowWrites += LATENCY.interactions;
      await checkRun(slow, slowWrites);
    }
    ctx.progress('simulated latency: streaming intake (clock from the first intake call)');
    const streamingRun = await latencyRun(slow, delayed, probe, ctl, 'lat-stream', 'streaming-intake');
    slowWrites += LATENCY.interactions;
    await checkRun(slow, slowWrites);
    await slow.stop();
    pipelines.length = 0;

    const latencyMedian = median(latencyRuns.map((r) => r.perSecond));
    const bound = latencyBound();
    const ideal = finiteRunIdeal();
    figures.latency = {
      label: `pipeline, model ${LATENCY.modelMs} ms x ${LATENCY.modelConcurrency}, CRM ${LATENCY.crmMs} ms (median of ${LATENCY.runs})`,
      unit: 'interactions',
      count: LATENCY.interactions,
      seconds: LATENCY.interactions / latencyMedian,
      perSecond: latencyMedian,
      rounds: latencyRuns.map((r) => ({ seconds: r.seconds, perSecond: r.perSecond })),
    };
    figures.latencyStreaming = {
      label: 'same, intake streaming in (clock from the first intake call)',
      unit: 'interactions',
      count: streamingRun.count,
      seconds: streamingRun.seconds,
      perSecond: streamingRun.perSecond,
    };

    const f = (k: string): Figure => figures[k] as Figure;
    const ratios = {
      pipelineOverNoop: ratio(f('pipeline').perSecond / f('noop').perSecond, BARS.pipelineOverNoop),
      latencyOverBound: ratio(latencyMedian / bound, BARS.latencyOverBound),
    };
    const informational = {
      pipelineOverNoopDrain: f('pipeline').perSecond / f('noopDrain').perSecond,
      pipelineOverChain: f('pipeline').perSecond / f('chain').perSecond,
      chainOverNoop: f('chain').perSecond / f('noop').perSecond,
      latencyBound: bound,
      latencyFiniteRunIdeal: ideal.perSecond,
      latencyOverFiniteRunIdeal: latencyMedian / ideal.perSecond,
      latencyStreamingOverBound: streamingRun.perSecond / bound,
    };
    const totalSeconds = (performance.now() - suiteStart) / 1000;
    const text = render(figures, ratios, informational, latencyRuns, streamingRun, totalSeconds);
    const data = {
      settings: {
        rounds: ROUNDS,
        noopJobs: NOOP_JOBS,
        chainStages: CHAIN_STAGES,
        chainInteractions: CHAIN_INTERACTIONS,
        pipelineInteractions: PIPELINE_INTERACTIONS,
        workerConcurrency: DEFAULTS.workerConcurrency,
        modelConcurrency: DEFAULTS.modelConcurrency,
        intakeConcurrency: DEFAULTS.workerConcurrency,
        journal:
          'LocalJournalClient over JournalWriter (WAL, synchronous=FULL, group commit; checkpoint every 1,000 entries, no timer, no anchors)',
        redis: REDIS_URL,
        bullmq: BULLMQ_VERSION,
        latency: LATENCY,
      },
      figures,
      ratios,
      informational,
      latencyRuns,
      latencyStreamingRun: streamingRun,
      zeroLatencyJournalTotals: zeroWriter,
      allPass: Object.values(ratios).every((r) => r.pass),
      totalSeconds,
    };
    return { text, data };
  } finally {
    for (const p of pipelines) {
      try {
        await p.stop();
      } catch (err) {
        ctx.progress(`cleanup of ${p.prefix} failed: ${(err as Error).message}`);
      }
    }
    redis.disconnect();
    ctl.disconnect();
    rmSync(dir, { recursive: true, force: true });
  }
}

function pipelineExtra(runs: readonly Run[]): Record<string, unknown> {
  const sum = (k: string): number => runs.reduce((a, r) => a + ((r.extra?.[k] as number | undefined) ?? 0), 0);
  const interactions = runs.reduce((a, r) => a + r.count, 0);
  return {
    intakeSeconds: runs.map((r) => r.extra?.intakeSeconds),
    journalEntriesPerInteraction: sum('journalEntries') / interactions,
    journalTransactionsPerInteraction: sum('journalTransactions') / interactions,
    journalEntriesPerTransaction: sum('journalEntries') / sum('journalTransactions'),
  };
}

/** Where the zero-latency pipeline's time goes, from the cost columns: which process is saturated, and what the bar would need. */
function diagnosis(figures: Record<string, Figure>): string {
  const p = figures.pipeline as Figure;
  const noop = figures.noop as Figure;
  const chain = figures.chain as Figure;
  const pc = p.cost as CostPerItem;
  const needed = BARS.pipelineOverNoop * noop.perSecond;
  return (
    `pipeline cost: this process's event loop busy ${fmtFixed(pc.eventLoopUtilisation * 100, 0)}% of the time, ${fmtFixed(pc.nodeCpuMs, 2)} ms of its CPU per interaction ` +
    `(one core: at most ${fmtInt(1000 / pc.nodeCpuMs)} ix/s); Redis ${fmtFixed(pc.redisCpuMs, 2)} ms per interaction (${fmtFixed((pc.redisCpuMs * p.perSecond) / 10, 0)}% of its core at the measured rate).\n` +
    `               the bar (${BARS.pipelineOverNoop} x ${fmtInt(noop.perSecond)} = ${fmtInt(needed)} ix/s) leaves ${fmtFixed(1000 / needed, 3)} ms of one core per interaction; ` +
    `BullMQ's client alone spends ${fmtFixed((chain.cost as CostPerItem).nodeCpuMs, 3)} ms per interaction in the ${CHAIN_STAGES}-stage no-op chain`
  );
}

/** Whole numbers for big rates, two decimals for small ones (the latency runs). */
function rate(n: number): string {
  return n >= 100 ? fmtInt(n) : fmtFixed(n, 2);
}

function render(
  figures: Record<string, Figure>,
  ratios: Record<string, Ratio>,
  info: Record<string, number>,
  latencyRuns: readonly LatencyRun[],
  streaming: LatencyRun,
  totalSeconds: number,
): string {
  const order = ['noop', 'noopAdd', 'noopDrain', 'chain', 'pipeline', 'latency', 'latencyStreaming'];
  const rows = order.map((k) => {
    const fig = figures[k] as Figure;
    const c = fig.cost;
    return [
      fig.label,
      fmtInt(fig.count),
      fmtFixed(fig.seconds, 3),
      `${rate(fig.perSecond)} ${fig.unit === 'jobs' ? 'jobs/s' : 'ix/s'}`,
      fig.rounds && fig.rounds.length > 1 ? fig.rounds.map((r) => rate(r.perSecond)).join(' / ') : '',
      c ? fmtFixed(c.nodeCpuMs, 3) : '',
      c ? fmtFixed(c.redisCpuMs, 3) : '',
      c ? fmtFixed(c.redisCommands, 1) : '',
      c ? fmtFixed(c.eventLoopUtilisation, 2) : '',
      c && c.otherCoresMax !== null ? fmtFixed(c.otherCoresMax, 2) : '',
    ];
  });
  const pe = (figures.pipeline as Figure).extra as {
    journalEntriesPerInteraction: number;
    journalTransactionsPerInteraction: number;
    journalEntriesPerTransaction: number;
    intakeSeconds: number[];
  };
  const ms = (d: Dist): string =>
    `${fmtFixed(d.mean, 1)} (p50 ${fmtFixed(d.p50, 1)}, p99 ${fmtFixed(d.p99, 1)}, max ${fmtFixed(d.max, 1)})`;
  const latRows = [...latencyRuns, streaming].map((r, i) => [
    i < latencyRuns.length ? `run ${i + 1}, intake first` : 'streaming intake',
    fmtFixed(r.seconds, 3),
    fmtFixed(r.perSecond, 2),
    fmtFixed(r.ratioToBound, 3),
    fmtFixed(r.modelPhaseRatioToBound, 3),
    fmtFixed(r.intakeSeconds, 3),
    fmtFixed(r.startupMs, 1),
    fmtFixed(r.modelPhaseMs, 0),
    fmtFixed(r.tailMs, 1),
    fmtFixed(r.modelSlotUtilisation, 3),
    fmtFixed(r.classify.slotHoldMs.mean - LATENCY.modelMs, 1),
    r.cost.otherCores === null ? '' : fmtFixed(r.cost.otherCores, 2),
  ]);
  const last = latencyRuns[Math.floor(latencyRuns.length / 2)] as LatencyRun;
  const ratioRows = [
    [`pipeline (zero latency) / BullMQ no-op (addBulk + worker)`, ratios.pipelineOverNoop as Ratio],
    [
      `latency run / bound (${LATENCY.modelConcurrency} / ${LATENCY.modelMs / 1000} s = ${fmtFixed(info.latencyBound as number, 1)} ix/s)`,
      ratios.latencyOverBound as Ratio,
    ],
  ] as const;
  return [
    `pipeline suite: BullMQ ${BULLMQ_VERSION} on ${REDIS_URL}, all stages in this process; journal in-process (WAL, synchronous=FULL, group commit)`,
    `zero-latency figures: median of ${ROUNDS} interleaved rounds; cost columns are per job (no-op rows) or per interaction over all rounds: CPU of this process and of Redis,`,
    `Redis commands (Lua scripts' inner calls included), this event loop's utilisation (median round), and the most CPU cores other processes kept busy in a round (> 0.2: disturbed)`,
    '',
    table(['measurement', 'count', 'seconds', 'rate', 'rounds', 'node CPU ms', 'redis CPU ms', 'redis cmds', 'ELU', 'others'], rows),
    '',
    diagnosis(figures),
    `pipeline journal: ${fmtFixed(pe.journalEntriesPerInteraction, 2)} entries and ${fmtFixed(pe.journalTransactionsPerInteraction, 2)} commits per interaction ` +
      `(${fmtFixed(pe.journalEntriesPerTransaction, 1)} entries per group commit); intake itself took ${pe.intakeSeconds.map((s) => fmtFixed(s, 2)).join(' / ')} s of the rounds`,
    '',
    `simulated latency: model ${LATENCY.modelMs} ms, CRM ${LATENCY.crmMs} ms, MODEL_CONCURRENCY ${LATENCY.modelConcurrency}, WORKER_CONCURRENCY ${LATENCY.workerConcurrency}, ${LATENCY.interactions} interactions`,
    table(
      [
        'run',
        'seconds',
        'ix/s',
        '/ bound',
        'excl. tail',
        'intake s',
        'to 1st model ms',
        'model phase ms',
        'tail ms',
        'model slot use',
        `slot hold - ${LATENCY.modelMs} ms`,
        'others',
      ],
      latRows,
    ),
    `  finite-run ideal (${Math.ceil(LATENCY.interactions / LATENCY.modelConcurrency)} back-to-back waves + one ${LATENCY.crmMs} ms CRM call): ` +
      `${fmtFixed(info.latencyFiniteRunIdeal as number, 2)} ix/s = ${fmtFixed((info.latencyFiniteRunIdeal as number) / (info.latencyBound as number), 3)} of the bound; measured / that = ${fmtFixed(info.latencyOverFiniteRunIdeal as number, 3)}`,
    `  classify job (median run), ms: before the model ${ms(last.classify.preModelMs)}; model ${ms(last.classify.modelMs)}; after the model ${ms(last.classify.postModelMs)}`,
    `  downstream (median run), ms: classify done -> decide active ${ms(last.downstream.decideWaitMs)}; decide ${ms(last.downstream.decideMs)}; ` +
      `decide done -> mirror active ${ms(last.downstream.mirrorWaitMs)}; mirror ${ms(last.downstream.mirrorMs)}`,
    '',
    table(
      ['ratio', 'value', 'bar', 'result'],
      ratioRows.map(([name, r]) => [name, fmtFixed(r.value, 3), `>= ${r.bar}`, r.pass ? 'PASS' : 'FAIL']),
    ),
    '',
    `for context: pipeline / no-op worker draining a full queue = ${fmtFixed(info.pipelineOverNoopDrain as number, 3)}; ` +
      `pipeline / ${CHAIN_STAGES}-stage no-op chain = ${fmtFixed(info.pipelineOverChain as number, 3)}; ` +
      `chain / no-op = ${fmtFixed(info.chainOverNoop as number, 3)}; streaming-intake latency run / bound = ${fmtFixed(info.latencyStreamingOverBound as number, 3)}`,
    `suite time: ${fmtFixed(totalSeconds, 1)} s`,
  ].join('\n');
}

export const pipelineSuite: Suite = {
  name: 'pipeline',
  description: 'BullMQ no-op baseline vs the pipeline with zero-latency fakes; throughput vs the model bound at 800 ms/call',
  run: runPipelineSuite,
};
