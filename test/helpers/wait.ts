/**
 * Waiting on a condition, the one way the tests do it: poll a check until it holds or the time is up, and when
 * it is up, say what was awaited and what the check last saw (its value, or the error it threw).
 */
import { inspect } from 'node:util';

export interface PollOptions {
  /** How long to keep trying (default 90 s: generous, a loaded 2-core machine starts processes slowly). */
  readonly timeoutMs?: number;
  /** The pause between two tries (default 100 ms). */
  readonly intervalMs?: number;
}

export interface WaitOptions<T> extends PollOptions {
  /** What is awaited, as the timeout error names it ("the worker's pid", "5 activities in HubSpot"). */
  readonly what: string;
  /** When the check's value counts as ready; by default any value but `null`, `undefined` and `false`. */
  readonly until?: (value: T) => boolean;
  /** Asked before every try: a reason to stop waiting at once (say, the process being waited on exited), or null. */
  readonly giveUp?: () => string | null;
  /** More for the error (what a fake holds, a process's stderr), computed only when it is thrown. */
  readonly detail?: () => string;
}

/** The values the default readiness accepts. */
export type Ready<T> = Exclude<T, null | undefined | false>;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const isReady = (value: unknown): boolean => value !== null && value !== undefined && value !== false;

type Seen<T> = { readonly threw: false; readonly value: T } | { readonly threw: true; readonly error: unknown } | null;

function describeSeen(seen: Seen<unknown>): string {
  if (seen === null) return 'nothing (never tried)';
  if (seen.threw) return `error: ${seen.error instanceof Error ? seen.error.message : inspect(seen.error)}`;
  const shown = inspect(seen.value, { depth: 3, breakLength: Infinity });
  return `value: ${shown.length > 500 ? `${shown.slice(0, 500)}…` : shown}`;
}

/**
 * Polls `check` (sync or async) until its value is ready, and resolves to that value. A check that throws counts as
 * "not yet" (a server still starting refuses connections). On timeout, or when `giveUp` gives a reason, it rejects
 * with an Error naming `what` and the last value or error the check gave.
 */
export function waitFor<T>(check: () => T | Promise<T>, options: WaitOptions<T> & { until: (value: T) => boolean }): Promise<T>;
export function waitFor<T>(check: () => T | Promise<T>, options: WaitOptions<T>): Promise<Ready<T>>;
export async function waitFor<T>(check: () => T | Promise<T>, options: WaitOptions<T>): Promise<T> {
  const { what, timeoutMs = 90_000, intervalMs = 100, until = isReady, giveUp, detail } = options;
  const started = Date.now();
  let seen: Seen<T> = null;
  const fail = (message: string): Error => new Error(`${message}; last seen ${describeSeen(seen)}${detail ? `\n${detail()}` : ''}`);
  for (;;) {
    const reason = giveUp?.() ?? null;
    if (reason !== null) throw fail(`gave up waiting for ${what}: ${reason}`);
    try {
      const value = await check();
      seen = { threw: false, value };
      if (until(value)) return value;
    } catch (error) {
      seen = { threw: true, error };
    }
    if (Date.now() - started > timeoutMs) throw fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/**
 * Polls `check` until it holds or the time is up, and resolves to whether it held: for a wait whose outcome the
 * test asserts itself afterwards (its `expect` then says what is wrong better than a timeout would), or a wait
 * that is only a best effort. If the last try threw, it rejects with that error rather than hide it.
 */
export async function pollUntil(check: () => boolean | Promise<boolean>, options: PollOptions = {}): Promise<boolean> {
  const { timeoutMs = 90_000, intervalMs = 100 } = options;
  const started = Date.now();
  for (;;) {
    let held = false;
    let failure: { error: unknown } | null = null;
    try {
      held = await check();
    } catch (error) {
      failure = { error };
    }
    if (held) return true;
    if (Date.now() - started > timeoutMs) {
      if (failure) throw failure.error;
      return false;
    }
    await sleep(intervalMs);
  }
}
