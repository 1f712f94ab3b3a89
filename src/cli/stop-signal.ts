/**
 * When a long-running process stops.
 *
 * On its own: SIGTERM, SIGINT or SIGHUP.
 *
 * Under our supervisor (which gives each child an IPC channel), the supervisor decides the order in which
 * processes stop (web and workers first, the journal service last), so a child stops when the supervisor tells
 * it to (an IPC message), or when the channel closes because the supervisor died (even by kill -9). SIGINT and
 * SIGHUP reach the whole process group (Ctrl-C, a closed terminal) and thus the supervisor too: a child ignores
 * them. A SIGTERM sent to a child (alone, or to every process at once as systemd does) is passed to the
 * supervisor as a request to stop everything in order; a second SIGTERM stops the child at once.
 *
 * A long-running command arms this first (armStopSignals), so that nothing said during its start-up is lost.
 */
import type { Logger } from '../config/logger.ts';

export const STOP_MESSAGE = 'activity-journal/stop';
export const STOP_REQUEST = 'activity-journal/stop-request';
/** Sent by a child once it listens: before that the supervisor stops it with SIGTERM (nothing to close yet). */
export const ARMED = 'activity-journal/armed';

/** Sent by a child once it does its work (the worker: its workers run); the supervisor's banner waits for it. */
export const READY = 'activity-journal/ready';

export interface StopRequest {
  readonly type: typeof STOP_REQUEST;
  readonly signal: string;
}

export function isStopRequest(m: unknown): m is StopRequest {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === STOP_REQUEST;
}

export function isArmed(m: unknown): boolean {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === ARMED;
}

export function isReady(m: unknown): boolean {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === READY;
}

const supervised = process.channel !== undefined;

/** Tells the supervisor (if any) that this process is up; nothing when run on its own. */
export function announceReady(): void {
  if (!supervised || !process.connected) return;
  try {
    process.send?.({ type: READY });
  } catch {
    // the supervisor is gone: the disconnect handler stops us
  }
}

let stopReason: string | null = null;
const waiters = new Set<(reason: string) => void>();

function stopNow(reason: string): void {
  stopReason ??= reason;
  for (const w of waiters) w(stopReason);
  waiters.clear();
}

let armed = false;

/** Starts listening for the stop signals above (idempotent); other commands keep Node's default handling. */
export function armStopSignals(): void {
  if (armed) return;
  armed = true;
  if (!supervised) {
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(signal, () => stopNow(signal));
    return;
  }
  // The channel must not keep the process alive by itself once the work is done.
  process.channel?.unref();
  process.once('disconnect', () => stopNow('supervisor gone'));
  process.on('message', (m: unknown) => {
    if (typeof m === 'object' && m !== null && (m as { type?: unknown }).type === STOP_MESSAGE) stopNow('stopped by the supervisor');
  });
  process.on('SIGINT', () => {});
  process.on('SIGHUP', () => {});
  let forwarded = false;
  process.on('SIGTERM', () => {
    if (forwarded || !process.connected) {
      // Still starting up (nobody waits yet): nothing to close in order, so end now.
      if (waiters.size === 0 && stopReason === null) process.exit(143);
      stopNow('SIGTERM');
      return;
    }
    forwarded = true;
    try {
      process.send?.({ type: STOP_REQUEST, signal: 'SIGTERM' } satisfies StopRequest);
    } catch {
      stopNow('SIGTERM');
    }
  });
  try {
    process.send?.({ type: ARMED });
  } catch {
    stopNow('supervisor gone');
  }
}

/** Resolves when the process is asked to stop (see above); at once when it already was. */
export function waitForStop(): Promise<string> {
  return new Promise((resolve) => {
    armStopSignals();
    if (stopReason !== null) return resolve(stopReason);
    waiters.add(resolve);
  });
}

/** Started by our supervisor: it gives each child an IPC channel. */
export function isSupervised(): boolean {
  return supervised;
}

/**
 * Runs a long-running command's shutdown (after `signal`) under a deadline; exit code 0 when it finished
 * cleanly, 1 when it failed. Past the deadline (plus 5 s) the process exits 1.
 */
export async function stopWithin(signal: string, close: () => Promise<void>, deadlineMs: number, logger: Logger): Promise<number> {
  logger.info({ signal }, 'shutting down');
  const deadline = setTimeout(() => {
    logger.error({ deadlineMs }, 'shutdown took longer than its deadline; exiting');
    process.exit(1);
  }, deadlineMs + 5_000);
  deadline.unref();
  let code = 0;
  try {
    await close();
  } catch (err) {
    logger.error({ err: (err as Error).message }, 'shutdown failed');
    code = 1;
  } finally {
    clearTimeout(deadline);
  }
  // bin/activity-journal.mjs ends the process once output has drained, whatever idle handle a library keeps.
  return code;
}
