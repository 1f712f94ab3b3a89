import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { formatDuration, formatRate, progressBar, RateEstimator } from '../../src/cli/progress.ts';

/** A stream that records what is written to it, a terminal or not. */
class Capture extends Writable {
  readonly chunks: string[] = [];
  constructor(readonly isTTY: boolean) {
    super();
  }
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: () => void): void {
    this.chunks.push(chunk.toString());
    callback();
  }
  /** Each redraw as the terminal would show it (without the carriage return and the padding). */
  frames(): string[] {
    return this.chunks.filter((c) => c.startsWith('\r')).map((c) => c.slice(1).trimEnd());
  }
}

function setup(isTTY = true): { out: Capture; clock: { t: number }; bar: ReturnType<typeof progressBar> } {
  const out = new Capture(isTTY);
  const clock = { t: 10_000 };
  const bar = progressBar('importing', out as unknown as NodeJS.WriteStream, () => clock.t);
  return { out, clock, bar };
}

describe('progressBar', () => {
  it('writes nothing at all when the stream is not a terminal (CI logs, pipes)', () => {
    const { out, clock, bar } = setup(false);
    for (let i = 1; i <= 50; i++) {
      clock.t += 200;
      bar.update(i, 50);
    }
    bar.done();
    expect(out.chunks).toEqual([]);
  });

  it('shows "—" for the rate and the time left until it has watched long enough, then steady figures', () => {
    const { out, clock, bar } = setup();
    // 10 items per second, one update every 200 ms.
    for (let i = 2; i <= 100; i += 2) {
      clock.t += 200;
      bar.update(i, 100);
    }
    bar.done();
    const frames = out.frames();
    expect(frames).toHaveLength(50);
    expect(frames[0]).toBe('importing [#-----------------------------] 2/100 (2%) —/s ETA —');
    // Before 1 s and 3 samples: unknown.
    expect(frames.slice(0, 4).every((f) => f.endsWith('—/s ETA —'))).toBe(true);
    // Then: 10/s, and the time left is the items left at that rate.
    expect(frames[4]).toBe('importing [###---------------------------] 10/100 (10%) 10/s ETA 9s');
    expect(frames[24]).toBe('importing [###############---------------] 50/100 (50%) 10/s ETA 5s');
    expect(frames[49]).toBe('importing [##############################] 100/100 (100%) 10/s ETA 0s');
    expect(out.chunks.at(-1)).toBe('\n');
  });

  it('redraws at most every 100 ms, always draws the end, and draws a throttled last state on done()', () => {
    const { out, clock, bar } = setup();
    for (let i = 1; i <= 1000; i++) {
      clock.t += 1; // 1000 items per second
      bar.update(i, 1000);
    }
    const frames = out.frames();
    expect(frames.length).toBeLessThanOrEqual(11);
    expect(frames.at(-1)).toMatch(/ 1000\/1000 \(100%\) 1,000\/s ETA 0s$/);

    const second = setup();
    for (let i = 1; i <= 250; i++) {
      second.clock.t += 1;
      second.bar.update(i, 1000);
    }
    expect(second.out.frames().at(-1)).not.toMatch(/ 250\/1000 /);
    second.bar.done();
    expect(second.out.frames().at(-1)).toMatch(/ 250\/1000 \(25%\)/);
    expect(second.out.chunks.at(-1)).toBe('\n');
  });

  it('pads over the remains of a longer previous line', () => {
    const { out, clock, bar } = setup();
    clock.t += 200;
    bar.update(5, 100_000);
    clock.t += 200;
    bar.update(6, 10);
    const [first, second] = out.chunks;
    expect(second?.length).toBeGreaterThanOrEqual(first?.length ?? 0);
    expect(second?.trimEnd()).toBe('\rimporting [##################------------] 6/10 (60%) —/s ETA —');
  });

  it('never shows a negative or bogus time left: done beyond total, no progress, a count that goes back', () => {
    const { out, clock, bar } = setup();
    for (let i = 1; i <= 10; i++) {
      clock.t += 500;
      bar.update(0, 10); // nothing done yet: rate 0, time left unknown
    }
    expect(out.frames().at(-1)).toBe('importing [------------------------------] 0/10 (0%) 0.0/s ETA —');
    clock.t += 500;
    bar.update(12, 10);
    expect(out.frames().at(-1)).toMatch(/ 12\/10 \(100%\) .*ETA 0s$/);
    // A new phase counts from zero again: the estimate starts over rather than mixing the two.
    clock.t += 500;
    bar.update(1, 10);
    expect(out.frames().at(-1)).toMatch(/ 1\/10 \(10%\) —\/s ETA —$/);
    for (const f of out.frames()) expect(f).not.toMatch(/-\d|NaN|Infinity/);
  });
});

describe('RateEstimator', () => {
  it('follows a change of pace gradually (time constant 5 s) instead of jumping', () => {
    const est = new RateEstimator();
    let t = 0;
    let done = 0;
    est.sample(t, done);
    for (let i = 0; i < 100; i++) est.sample((t += 100), (done += 10)); // 100/s for 10 s
    expect(est.itemsPerSecond()).toBeCloseTo(100, 6);
    for (let i = 0; i < 10; i++) est.sample((t += 100), (done += 1)); // then 10/s for 1 s
    const after1s = est.itemsPerSecond() ?? NaN;
    // 1 - e^(-1/5) of the way from 100 to 10 after one second.
    expect(after1s).toBeCloseTo(10 + 90 * Math.exp(-1 / 5), 6);
    for (let i = 0; i < 600; i++) est.sample((t += 100), (done += 1));
    expect(est.itemsPerSecond()).toBeCloseTo(10, 1);
    expect(est.secondsLeft(100)).toBeCloseTo(10, 0);
  });

  it('weights samples by the time they cover: a steady pace reads the same however irregular the samples', () => {
    const est = new RateEstimator();
    for (const t of [0, 50, 300, 310, 1000, 1500, 1500, 2600, 2601, 4000]) est.sample(t, t * 0.05); // 50/s; 1500 twice
    expect(est.itemsPerSecond()).toBeCloseTo(50, 9);
    expect(est.secondsLeft(25)).toBeCloseTo(0.5, 9);
  });

  it('knows nothing before 1 s and 3 samples, and says 0 s left when nothing remains', () => {
    const est = new RateEstimator();
    est.sample(0, 0);
    est.sample(400, 4);
    est.sample(800, 8);
    est.sample(999, 10);
    expect(est.itemsPerSecond()).toBeUndefined();
    expect(est.secondsLeft(5)).toBeUndefined();
    expect(est.secondsLeft(0)).toBe(0);
    expect(est.secondsLeft(-3)).toBe(0);
    est.sample(1000, 10);
    expect(est.itemsPerSecond()).toBeGreaterThan(0);
  });
});

describe('formatDuration and formatRate', () => {
  it('formats', () => {
    expect([undefined, -1, Number.NaN, Infinity].map(formatDuration)).toEqual(['—', '—', '—', '—']);
    expect([0, 0.2, 7, 59.4, 60, 185, 3599, 3600, 7380, 360_000].map(formatDuration)).toEqual([
      '0s',
      '1s',
      '7s',
      '1m00s',
      '1m00s',
      '3m05s',
      '59m59s',
      '1h00m',
      '2h03m',
      '>99h',
    ]);
    expect([undefined, 0, 3.456, 9.96, 12.4, 1234.5].map(formatRate)).toEqual(['—/s', '0.0/s', '3.5/s', '10.0/s', '12/s', '1,235/s']);
  });
});
