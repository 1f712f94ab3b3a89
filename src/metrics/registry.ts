/**
 * Metrics (prom-client). Each process has one registry: Node's and the process's default metrics
 * (`process_*`, `nodejs_*`) and the histograms and counters below, every series labelled with the process it
 * comes from (`process="web" | "worker" | "journal-service"`). The worker serves its registry on
 * WORKER_METRICS_LISTEN, the journal service on its own /metrics (read credential), and the web server's /metrics
 * gives all three in one scrape (src/metrics/exposition.ts), together with the gauges it reads at scrape time
 * (queues, review backlog, journal). Labels hold names from fixed sets (stages, providers, HTTP statuses,
 * outcomes), never an id, an address or anything a request can choose.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type ProcessName = 'web' | 'worker' | 'journal-service';

/** This process's registry. */
export const registry = new Registry();

let collecting: ProcessName | null = null;

/** Names this process and starts Node's default metrics (once; later calls are no-ops). */
export function collectProcessMetrics(name: ProcessName): void {
  if (collecting) return;
  collecting = name;
  registry.setDefaultLabels({ process: name });
  collectDefaultMetrics({ register: registry });
}

/** Seconds from a start taken with process.hrtime.bigint(). */
export function secondsSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

const FAST = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const SLOW = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120];

/** Web: time from a webhook's arrival to our answer, by provider (configured receivers; else "unknown") and status. */
export const webhookResponseSeconds = new Histogram({
  name: 'aj_webhook_response_seconds',
  help: 'Time to answer a webhook, by provider and HTTP status.',
  labelNames: ['provider', 'status'] as const,
  buckets: FAST,
  registers: [registry],
});

/** Web: webhooks answered 4xx (each also journaled as webhook.rejected), by provider and status. */
export const webhooksRefused = new Counter({
  name: 'aj_webhooks_refused_total',
  help: 'Webhooks refused with a 4xx (bad signature, replay, malformed, too large, ...), by provider and HTTP status.',
  labelNames: ['provider', 'status'] as const,
  registers: [registry],
});

/** Journal service: one append request (a single entry or a batch), by kind of request and outcome. */
export const journalAppendSeconds = new Histogram({
  name: 'aj_journal_append_seconds',
  help: 'Journal append latency in the journal service (request read to answer), by request (single or batch) and outcome (appended, duplicate, refused, failed).',
  labelNames: ['request', 'outcome'] as const,
  buckets: FAST,
  registers: [registry],
});

/** Worker: one run of one pipeline stage (a job attempt), by stage and outcome. */
export const stageSeconds = new Histogram({
  name: 'aj_stage_duration_seconds',
  help: 'Duration of one job attempt per pipeline stage (queue), by outcome (completed, retry, failed).',
  labelNames: ['stage', 'outcome'] as const,
  buckets: SLOW,
  registers: [registry],
});

/** Worker: one classifier call (the model, or the offline rules), by provider, model and outcome. */
export const modelSeconds = new Histogram({
  name: 'aj_model_latency_seconds',
  help: 'Classifier call latency, by provider, model and outcome (ok, failed).',
  labelNames: ['provider', 'model', 'outcome'] as const,
  buckets: SLOW,
  registers: [registry],
});
