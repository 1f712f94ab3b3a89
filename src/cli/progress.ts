/**
 * The command line's progress bar: count, percentage, rate (items/s) and time left, on one line of stderr that
 * is redrawn in place. It is drawn only when the stream is a terminal: in a log or a pipe (CI, `2>file`) it
 * writes nothing at all, so there is no carriage-return spam to read back.
 *
 * The rate and the time left are estimates, and say so by their absence: both show "—" until the bar has
 * watched the work for at least MIN_ESTIMATE_MS over MIN_ESTIMATE_SAMPLES redraws. The rate is a moving average
 * weighted by time (time constant RATE_TIME_CONSTANT_MS), so one burst or one slow item moves it gradually and a
 * long stall pulls it down once the work resumes; the time left is the items left at that rate, never negative.
 * Written here rather than taken from `cli-progress`: the whole bar is this file, it needs no other package,
 * and its clock is injected, so its tests drive time instead of sleeping.
 */
import { write } from './output.ts';

export interface ProgressBar {
  /** `done` of `total` items are complete (either may change between calls: a listing can grow). */
  update(done: number, total: number): void;
  /** The work is over: draws the last state if a redraw was pending, and ends the line. */
  done(): void;
}

/** Milliseconds from an arbitrary origin; only differences are used. Monotonic by default. */
export type MonotonicClock = () => number;

/** Redraw at most this often (the last update, done = total, is always drawn). */
const REDRAW_INTERVAL_MS = 100;
/** No rate and no time left before the bar has watched the work this long... */
const MIN_ESTIMATE_MS = 1_000;
/** ...over at least this many redraws. */
const MIN_ESTIMATE_SAMPLES = 3;
/** How fast the average rate forgets: a sample's weight halves every ~3.5 s. */
const RATE_TIME_CONSTANT_MS = 5_000;
const BAR_WIDTH = 30;
const UNKNOWN = '—';

/**
 * Items per second, averaged with exponential weights over time: each sample (t, done) moves the average
 * towards the rate since the previous sample by 1 - e^(-dt/τ), so irregular sampling is weighted by the time
 * it covers. A count that goes back (a new phase of the work) starts the estimate over.
 */
export class RateEstimator {
  private origin: { readonly t: number; readonly done: number } | undefined;
  private last: { readonly t: number; readonly done: number } | undefined;
  private rate: number | undefined;
  private samples = 0;

  constructor(private readonly timeConstantMs: number = RATE_TIME_CONSTANT_MS) {}

  /** Records that `done` items were complete at time `t` (ms). */
  sample(t: number, done: number): void {
    const last = this.last;
    if (last === undefined || done < last.done || t < last.t) {
      this.origin = { t, done };
      this.last = { t, done };
      this.rate = undefined;
      this.samples = 0;
      return;
    }
    const dt = t - last.t;
    // Items reported at the same instant count towards the next sample's interval.
    if (dt === 0) return;
    const instant = ((done - last.done) * 1000) / dt;
    this.rate = this.rate === undefined ? instant : this.rate + (1 - Math.exp(-dt / this.timeConstantMs)) * (instant - this.rate);
    this.samples++;
    this.last = { t, done };
  }

  /** The average rate, or undefined while there is too little to go on. */
  itemsPerSecond(): number | undefined {
    if (this.rate === undefined || this.origin === undefined || this.last === undefined) return undefined;
    if (this.samples < MIN_ESTIMATE_SAMPLES || this.last.t - this.origin.t < MIN_ESTIMATE_MS) return undefined;
    return this.rate;
  }

  /** Seconds until `remaining` more items are done at the average rate: 0 when none remain, undefined when unknown. */
  secondsLeft(remaining: number): number | undefined {
    if (remaining <= 0) return 0;
    const rate = this.itemsPerSecond();
    return rate === undefined || rate <= 0 ? undefined : remaining / rate;
  }
}

/** 7 -> "7s", 185 -> "3m05s", 7380 -> "2h03m"; rounded up (work left never shows as 0s); "—" when unknown. */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return UNKNOWN;
  const s = Math.ceil(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 100 * 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return '>99h';
}

/** 3.456 -> "3.5/s", 1234.5 -> "1,235/s"; "—/s" when unknown. */
export function formatRate(itemsPerSecond: number | undefined): string {
  if (itemsPerSecond === undefined || !Number.isFinite(itemsPerSecond)) return `${UNKNOWN}/s`;
  const shown = itemsPerSecond < 10 ? itemsPerSecond.toFixed(1) : Math.round(itemsPerSecond).toLocaleString('en-US');
  return `${shown}/s`;
}

/**
 * A progress bar on `stream` (stderr by default), drawn only when it is a terminal, e.g.
 * `importing calls [#########---------------------] 312/1000 (31%) 48/s ETA 15s`.
 */
export function progressBar(
  label: string,
  stream: NodeJS.WriteStream = process.stderr,
  now: MonotonicClock = () => performance.now(),
): ProgressBar {
  if (!stream.isTTY) return { update() {}, done() {} };
  const estimator = new RateEstimator();
  estimator.sample(now(), 0);
  let lastDraw: number | undefined;
  let drawnLength = 0;
  let pending: { done: number; total: number } | undefined;

  const draw = (t: number, done: number, total: number): void => {
    lastDraw = t;
    pending = undefined;
    estimator.sample(t, done);
    const frac = total > 0 ? Math.min(1, Math.max(0, done / total)) : 1;
    const filled = Math.round(frac * BAR_WIDTH);
    const eta = formatDuration(estimator.secondsLeft(total - done));
    const line = `${label} [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${done}/${total} (${Math.round(frac * 100)}%) ${formatRate(estimator.itemsPerSecond())} ETA ${eta}`;
    // Pad over what a longer previous line left on the terminal.
    write(stream, `\r${line.padEnd(drawnLength)}`);
    drawnLength = line.length;
  };

  return {
    update(done: number, total: number): void {
      const t = now();
      if (lastDraw !== undefined && t - lastDraw < REDRAW_INTERVAL_MS && done < total) {
        pending = { done, total };
        return;
      }
      draw(t, done, total);
    },
    done(): void {
      if (pending !== undefined) draw(now(), pending.done, pending.total);
      write(stream, '\n');
    },
  };
}
