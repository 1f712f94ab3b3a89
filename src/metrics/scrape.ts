/**
 * The web server's /metrics: one scrape gives every process. It reads, at scrape time and in parallel, the
 * gauges only an outside view can give (is the journal service up and writable, how deep is each queue and how
 * long has its oldest job waited, how many decisions wait for review), gathers the worker's and the journal
 * service's own metrics, and merges them with its own registry. A target that does not answer is said by
 * `aj_scrape_target_up{target=...} 0`; the scrape itself never fails for it.
 */
import { Gauge, Registry } from 'prom-client';
import type { Queue } from 'bullmq';
import { JournalRequestError } from '../journal/errors/journal-request.error.ts';
import { QUEUE_NAMES, type QueueName } from '../pipeline/job-catalog.ts';
import { mergeExpositions } from './exposition.ts';
import { registry } from './registry.ts';

export interface ScrapeSources {
  /** The journal service: its health (entries, writable) and its own metrics. */
  readonly journal: { health(): Promise<{ size: number }>; metrics(): Promise<string> };
  readonly queues: Readonly<Record<QueueName, Pick<Queue, 'getJobCounts' | 'getJobs'>>>;
  /** The worker's metrics URL (null: not served). */
  readonly workerUrl: string | null;
  /** The review queue (null: the audit UI is off in this process). */
  readonly review: (() => { count: number; oldestRecordedAt: string | null }) | null;
  /** How long each target may take (default 2 s). */
  readonly timeoutMs?: number;
  readonly now?: () => number;
}

const STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'failed', 'completed'] as const;

export function webMetrics(sources: ScrapeSources): () => Promise<string> {
  const own = new Registry();
  own.setDefaultLabels({ process: 'web' });
  const gauge = (name: string, help: string, labelNames: string[] = []): Gauge => new Gauge({ name, help, labelNames, registers: [own] });
  const journalUp = gauge('aj_journal_up', 'Whether the journal service answers its health check (1) or not (0).');
  // Gauges that are left out when their value is not known (a gauge without labels always says a value, and 0
  // would be a false "not writable" or "no backlog"): each in a registry of its own, rendered only when set.
  const optional: { gauge: Gauge; registry: Registry; known: boolean }[] = [];
  const maybe = (name: string, help: string): { set(v: number): void } => {
    const r = new Registry();
    r.setDefaultLabels({ process: 'web' });
    const o = { gauge: new Gauge({ name, help, registers: [r] }), registry: r, known: false };
    optional.push(o);
    return {
      set(v: number) {
        o.gauge.set(v);
        o.known = true;
      },
    };
  };
  const writable = maybe(
    'aj_journal_writable',
    'Whether the journal takes writes (0: its last commit failed, e.g. on a full disk); absent while the journal service does not answer.',
  );
  const entries = maybe('aj_journal_entries', 'Entries in the journal; absent while the journal service does not answer.');
  const queueUp = gauge('aj_queue_up', 'Whether the queue could be read from Redis (1) or not (0).', ['queue']);
  const jobs = gauge('aj_queue_jobs', 'Jobs per queue and state (the queue depth is waiting + prioritized + delayed).', ['queue', 'state']);
  const oldest = gauge('aj_queue_oldest_waiting_seconds', 'Age of the oldest job waiting to start, per queue (0 when none waits).', [
    'queue',
  ]);
  const backlog = maybe(
    'aj_review_backlog',
    "Decisions waiting for review (the audit UI's review queue); absent where the audit UI is off.",
  );
  const backlogOldest = maybe(
    'aj_review_oldest_pending_seconds',
    'Age of the oldest interaction whose decision waits for review (0 when none waits).',
  );
  const targetUp = gauge('aj_scrape_target_up', "Whether a process's own metrics could be gathered into this scrape (1) or not (0).", [
    'target',
  ]);
  const timeoutMs = sources.timeoutMs ?? 2000;
  const now = sources.now ?? Date.now;

  const readJournal = async (): Promise<void> => {
    try {
      const h = await sources.journal.health();
      journalUp.set(1);
      writable.set(1);
      entries.set(h.size);
    } catch (err) {
      // Up but refusing writes answers 503 WRITE_FAILED: up, not writable.
      const writeFailed = err instanceof JournalRequestError && err.code === 'WRITE_FAILED';
      journalUp.set(writeFailed ? 1 : 0);
      if (writeFailed) writable.set(0);
    }
  };
  const readQueue = async (name: QueueName): Promise<void> => {
    const q = sources.queues[name];
    try {
      const [counts, [first]] = await Promise.all([q.getJobCounts(...STATES), q.getJobs(['wait'], 0, 0, true)]);
      for (const state of STATES) jobs.set({ queue: name, state }, counts[state] ?? 0);
      oldest.set({ queue: name }, first ? Math.max(0, (now() - first.timestamp) / 1000) : 0);
      queueUp.set({ queue: name }, 1);
    } catch {
      queueUp.set({ queue: name }, 0);
    }
  };
  const readReview = (): void => {
    if (!sources.review) return;
    let r: { count: number; oldestRecordedAt: string | null };
    try {
      r = sources.review();
    } catch {
      return; // the audit UI says what is wrong with its index; the gauge is absent meanwhile
    }
    backlog.set(r.count);
    backlogOldest.set(r.oldestRecordedAt ? Math.max(0, (now() - Date.parse(r.oldestRecordedAt)) / 1000) : 0);
  };
  const gather = async (target: string, read: () => Promise<string>): Promise<string> => {
    try {
      const text = await withTimeout(read(), timeoutMs);
      targetUp.set({ target }, 1);
      return text;
    } catch {
      targetUp.set({ target }, 0);
      return '';
    }
  };
  const readWorker = async (url: string): Promise<string> => {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) throw new Error(`worker metrics answered ${res.status}`);
    return res.text();
  };

  return async () => {
    for (const o of optional) o.known = false;
    jobs.reset();
    oldest.reset();
    queueUp.reset();
    targetUp.reset();
    readReview();
    const [journalText, workerText] = await Promise.all([
      gather('journal-service', () => sources.journal.metrics()),
      sources.workerUrl ? gather('worker', () => readWorker(sources.workerUrl as string)) : Promise.resolve(''),
      readJournal(),
      ...QUEUE_NAMES.map(readQueue),
    ]);
    const known = await Promise.all(optional.filter((o) => o.known).map((o) => o.registry.metrics()));
    return mergeExpositions([await registry.metrics(), await own.metrics(), ...known, journalText, workerText]);
  };
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
