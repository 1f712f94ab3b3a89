/**
 * What every benchmark suite shares: how it is called, what it hands back, and small timing/format helpers.
 * Suites print progress on stderr only; stdout is for the final table (or the one JSON object with --json).
 */
import { cpus, loadavg, totalmem, release, platform, arch } from 'node:os';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import Database from 'better-sqlite3';

export interface SuiteContext {
  /** A line of progress for the human watching (stderr). */
  progress(message: string): void;
}

export interface SuiteResult {
  /** The human-readable report (table of figures, ratios and bars). */
  readonly text: string;
  /** Every figure, ratio and pass flag, for --json. */
  readonly data: Record<string, unknown>;
}

export interface Suite {
  readonly name: string;
  readonly description: string;
  run(ctx: SuiteContext): Promise<SuiteResult>;
}

export interface MachineContext {
  readonly cpuModel: string;
  readonly cpuCount: number;
  readonly totalMemGiB: number;
  readonly platform: string;
  readonly node: string;
  readonly sqlite: string;
  readonly betterSqlite3: string;
  /** 1, 5 and 15 minute load averages when the run started: other work on the box skews every figure. */
  readonly loadAverage: readonly number[];
}

export function machineContext(): MachineContext {
  const db = new Database(':memory:');
  const sqlite = (db.prepare('select sqlite_version() AS v').get() as { v: string }).v;
  db.close();
  let betterSqlite3 = 'unknown';
  try {
    const require = createRequire(import.meta.url);
    betterSqlite3 = (JSON.parse(readFileSync(require.resolve('better-sqlite3/package.json'), 'utf8')) as { version: string }).version;
  } catch {
    // the version is context, not a figure
  }
  const all = cpus();
  return {
    cpuModel: all[0]?.model.trim() ?? 'unknown',
    cpuCount: all.length,
    totalMemGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    platform: `${platform()} ${release()} ${arch()}`,
    node: process.version,
    sqlite,
    betterSqlite3,
    loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

/** Nanoseconds since an arbitrary origin. */
export function now(): bigint {
  return process.hrtime.bigint();
}

export function secondsSince(start: bigint): number {
  return Number(now() - start) / 1e9;
}

/** 12345.6 -> "12,346" */
export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function fmtFixed(n: number, digits: number): string {
  return n.toFixed(digits);
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] as number;
}

/** A plain-text table with right-aligned numeric columns (every column but the first). */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** A measured ratio against its target: at least `bar`, or at most when `atMost` (a cost). */
export interface Ratio {
  readonly value: number;
  readonly bar: number;
  readonly pass: boolean;
  readonly atMost?: true;
}

export function ratio(value: number, bar: number): Ratio {
  return { value, bar, pass: value >= bar };
}

/** A cost ratio: passes when `value` is at most `bar`. */
export function atMost(value: number, bar: number): Ratio {
  return { value, bar, pass: value <= bar, atMost: true };
}
