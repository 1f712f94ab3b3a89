/**
 * mergeExpositions: several processes' Prometheus texts as one valid text (each family once, HELP and TYPE
 * first, its samples together, every source's series kept).
 */
import { describe, expect, it } from 'vitest';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { mergeExpositions } from '../../src/metrics/exposition.ts';
import { familiesAreWellFormed, sample } from '../helpers/metrics.ts';

function processRegistry(name: string, observations: number): Registry {
  const r = new Registry();
  r.setDefaultLabels({ process: name });
  collectDefaultMetrics({ register: r });
  const h = new Histogram({
    name: 'aj_stage_duration_seconds',
    help: 'Stage time.',
    labelNames: ['stage'],
    buckets: [0.1, 1],
    registers: [r],
  });
  const c = new Counter({ name: 'aj_things_total', help: 'Things.', registers: [r] });
  for (let i = 0; i < observations; i++) {
    h.observe({ stage: 'classify' }, 0.5);
    c.inc();
  }
  return r;
}

describe('mergeExpositions', () => {
  it("gives each family once with every process's series, as valid text", async () => {
    const texts = await Promise.all([
      processRegistry('web', 1).metrics(),
      processRegistry('worker', 2).metrics(),
      processRegistry('journal-service', 3).metrics(),
    ]);
    // Concatenated, the texts are invalid (each family three times): that is what the merge is for.
    expect(familiesAreWellFormed(texts.join('\n')).length).toBeGreaterThan(0);
    const merged = mergeExpositions(texts);
    expect(familiesAreWellFormed(merged)).toEqual([]);
    expect(merged.match(/^# TYPE aj_stage_duration_seconds histogram$/gm)).toHaveLength(1);
    expect(merged.match(/^# TYPE process_cpu_user_seconds_total counter$/gm)).toHaveLength(1);
    for (const [process, n] of [
      ['web', 1],
      ['worker', 2],
      ['journal-service', 3],
    ] as const) {
      expect(sample(merged, 'aj_stage_duration_seconds_count', { process, stage: 'classify' })).toBe(n);
      expect(sample(merged, 'aj_stage_duration_seconds_bucket', { process, stage: 'classify', le: '1' })).toBe(n);
      expect(sample(merged, 'aj_stage_duration_seconds_bucket', { process, stage: 'classify', le: '0.1' })).toBe(0);
      expect(sample(merged, 'aj_things_total', { process })).toBe(n);
      expect(sample(merged, 'process_cpu_user_seconds_total', { process })).not.toBeNull();
    }
    // Every sample line of every source is in the merge, and nothing else.
    const samples = (t: string): string[] =>
      t
        .split('\n')
        .filter((l) => l !== '' && !l.startsWith('#'))
        .sort();
    expect(samples(merged)).toEqual(texts.flatMap(samples).sort());
  });

  it("leaves out a source's samples of a family it declares with another type, and keeps samples without headers", () => {
    const a = '# HELP x_total X.\n# TYPE x_total counter\nx_total{process="web"} 1\n';
    const b =
      '# HELP x_total X as a gauge.\n# TYPE x_total gauge\nx_total{process="worker"} 5\n# TYPE y gauge\ny{process="worker"} 2\nbare 3\n';
    const merged = mergeExpositions([a, b]);
    expect(familiesAreWellFormed(merged)).toEqual([]);
    expect(merged).toContain('# TYPE x_total counter');
    expect(merged).not.toContain('# TYPE x_total gauge');
    expect(sample(merged, 'x_total', { process: 'worker' })).toBeNull();
    expect(sample(merged, 'x_total', { process: 'web' })).toBe(1);
    expect(sample(merged, 'y', { process: 'worker' })).toBe(2);
    expect(sample(merged, 'bare', {})).toBe(3);
    expect(mergeExpositions(['', '\n'])).toBe('');
  });
});
