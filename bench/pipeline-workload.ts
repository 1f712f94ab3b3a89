/**
 * The pipeline suite's fakes and probes, apart from the suite so that profiling scripts can drive the same ones:
 * a classifier with a fixed model latency, a CRM wrapper that time-stamps every committed crm.write, and the
 * CPU and command counters (this process, Redis) that say where the time went.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import type { Classifier, ClassifierInput, ClassifierResult, Prompt } from '../src/pipeline/classification.ts';
import { ClassifierError } from '../src/pipeline/errors/classifier.error.ts';
import type { CrmClient, MirrorPlan, MirrorResult } from '../src/pipeline/ports.ts';

/** One classifier call: when it started and ended (performance.now() ms) and what it was asked. */
export interface ModelCall {
  readonly startMs: number;
  readonly endMs: number;
  readonly input: ClassifierInput;
}

/**
 * A model that takes `delayMs` per call: waits (abort-aware, like an HTTP call), then answers with the inner
 * classifier's output and reports the whole wait as its latency. Records every call.
 */
export class DelayedClassifier implements Classifier {
  readonly provider: string;
  readonly model: string;
  readonly calls: ModelCall[] = [];

  constructor(
    private readonly inner: Classifier,
    private readonly delayMs: number,
  ) {
    this.provider = `${inner.provider}+delay`;
    this.model = `${inner.model}+${delayMs}ms`;
  }

  async classify(input: ClassifierInput, prompt: Prompt, options: { signal?: AbortSignal } = {}): Promise<ClassifierResult> {
    const startMs = performance.now();
    await abortableSleep(this.delayMs, options.signal);
    const result = await this.inner.classify(input, prompt, options);
    const endMs = performance.now();
    this.calls.push({ startMs, endMs, input });
    return { ...result, provider: this.provider, model: this.model, latencyMs: endMs - startMs };
  }
}

function abortableSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new ClassifierError('TIMEOUT', 'classification was aborted before it started', { attempts: 0, requestId: null }));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new ClassifierError('TIMEOUT', 'classification was aborted', { attempts: 1, requestId: null }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Wraps the CRM and time-stamps every mirror() that resolved, i.e. every crm.write committed to the journal.
 * `expect(n)` starts a new count: its promise resolves at the n-th write from then on (its time in ms).
 */
export class RecordingCrm implements CrmClient {
  readonly dryRun: boolean;
  /** performance.now() of every committed write since the last expect(). */
  writes: number[] = [];
  private target = Infinity;
  private done: ((atMs: number) => void) | null = null;

  constructor(private readonly inner: CrmClient) {
    this.dryRun = inner.dryRun;
  }

  expect(n: number): Promise<number> {
    this.writes = [];
    this.target = n;
    return new Promise((resolve) => {
      this.done = resolve;
    });
  }

  async mirror(plan: MirrorPlan): Promise<MirrorResult> {
    const result = await this.inner.mirror(plan);
    const at = performance.now();
    this.writes.push(at);
    if (this.writes.length === this.target && this.done) {
      const done = this.done;
      this.done = null;
      done(at);
    }
    return result;
  }
}

/** Redis's own CPU seconds (user + sys, all threads) and commands processed so far, from INFO. */
export interface RedisCounters {
  readonly cpuSeconds: number;
  readonly commands: number;
}

export async function redisCounters(redis: Redis): Promise<RedisCounters> {
  const text = `${await redis.info('cpu')}\n${await redis.info('stats')}`;
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:([0-9.]+)`, 'm').exec(text);
    return m ? Number(m[1]) : NaN;
  };
  return { cpuSeconds: field('used_cpu_user') + field('used_cpu_sys'), commands: field('total_commands_processed') };
}

/** Where a measured stretch spent its CPU: this process (user+sys), Redis, Redis commands, this event loop's utilisation. */
export interface CostSample {
  readonly nodeCpuSeconds: number;
  readonly redisCpuSeconds: number;
  readonly redisCommands: number;
  /** Fraction of wall time this process's event loop was busy (1 = saturated). */
  readonly eventLoopUtilisation: number;
  /**
   * CPU cores kept busy by everything else on the box (all CPU time in /proc/stat less this process's and
   * Redis's), averaged over the stretch: above ~0.2 the figure was disturbed. Null where /proc/stat is missing.
   */
  readonly otherCores: number | null;
}

/** Busy CPU seconds of the whole box so far (Linux, USER_HZ 100), or null. */
function boxBusySeconds(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
    return Number.isFinite(busy) && f.length >= 8 ? busy / 100 : null;
  } catch {
    return null;
  }
}

/** Starts measuring; the returned function ends the stretch and gives its costs. */
export async function costMeter(redis: Redis): Promise<() => Promise<CostSample>> {
  const r0 = await redisCounters(redis);
  const box0 = boxBusySeconds();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  return async () => {
    const cpu = process.cpuUsage(cpu0);
    const elu = performance.eventLoopUtilization(elu0);
    const box1 = boxBusySeconds();
    const wall = (performance.now() - t0) / 1000;
    const r1 = await redisCounters(redis);
    const nodeCpuSeconds = (cpu.user + cpu.system) / 1e6;
    const redisCpuSeconds = r1.cpuSeconds - r0.cpuSeconds;
    return {
      nodeCpuSeconds,
      redisCpuSeconds,
      // the two INFO calls themselves count as commands; leave them out
      redisCommands: r1.commands - r0.commands - 2,
      eventLoopUtilisation: elu.utilization,
      otherCores: box0 === null || box1 === null || wall <= 0 ? null : Math.max(0, box1 - box0 - nodeCpuSeconds - redisCpuSeconds) / wall,
    };
  };
}

/** Runs `work(i)` for i in [0, n) with at most `concurrency` in flight, in order of i. */
export async function runConcurrently(n: number, concurrency: number, work: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const loop = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      await work(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, () => loop()));
}
