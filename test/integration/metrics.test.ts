/**
 * Metrics (issue 15, finding 9): every process's default metrics and the product's histograms, counters and
 * gauges, in one scrape of the web server's /metrics, each series labelled with its process. Two instances
 * started the README's way on one machine each give their own worker's metrics (the supervisor gives each worker
 * a free port). The scrape-time gauges (queue depth, oldest waiting job, review backlog, targets that do not
 * answer) are checked against a real Redis with jobs of known age.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.ts';
import { freePort } from '../helpers/service.ts';
import { signedRaw } from '../helpers/web.ts';
import { REDIS_URL, obliterate, uniquePrefix } from '../helpers/pipeline.ts';
import { alive, healthy, processTree, startProduct, type Started } from '../helpers/product.ts';
import { waitFor } from '../helpers/wait.ts';
import { webMetrics } from '../../src/metrics/scrape.ts';
import { QUEUE_NAMES, type QueueName } from '../../src/pipeline/job-catalog.ts';
import { JournalRequestError } from '../../src/journal/errors/journal-request.error.ts';
import { familiesAreWellFormed, sample } from '../helpers/metrics.ts';

const SECRET = 'metrics-test-forms-secret-0123456789abcdef';
let tmp: { dir: string; cleanup: () => void };
let started: Started[];
let seen: number[];
let prefixes: string[];
beforeEach(() => {
  tmp = tempDir('aj-metrics-');
  started = [];
  seen = [];
  prefixes = [];
});
afterEach(async () => {
  for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
  await Promise.all(started.map((p) => Promise.race([p.exited, new Promise((r) => setTimeout(r, 15_000))])));
  for (const pid of seen)
    if (alive(pid) && /activity-journal/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))) process.kill(pid, 'SIGKILL');
  for (const prefix of prefixes) await obliterate(prefix);
  tmp.cleanup();
});

interface Instance {
  readonly web: number;
  readonly journalPort: number;
  readonly dataDir: string;
  readonly product: Started;
  stderr(): string;
}

async function instance(name: string): Promise<Instance> {
  const web = await freePort();
  const journalPort = await freePort();
  const dataDir = join(tmp.dir, name);
  const prefix = uniquePrefix();
  prefixes.push(prefix);
  const product = startProduct('node', {
    ...process.env,
    JOURNAL_PATH: join(dataDir, 'journal.sqlite'),
    JOURNAL_SERVICE_LISTEN: `127.0.0.1:${journalPort}`,
    WEB_LISTEN: `127.0.0.1:${web}`,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    FORMS_WEBHOOK_SECRET: SECRET,
    // Not set: the supervisor picks the worker's metrics port (the default 9465 for both would collide).
    WORKER_METRICS_LISTEN: '',
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
    JOURNAL_APPEND_TOKEN: '',
    JOURNAL_READ_TOKEN: '',
  });
  started.push(product);
  let stderr = '';
  product.child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  await healthy(web, product);
  seen.push(...processTree(product.child.pid as number));
  return { web, journalPort, dataDir, product, stderr: () => stderr };
}

const scrape = async (port: number): Promise<string> => {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return r.text();
};

const post = (port: number, body: Record<string, unknown>, secret = SECRET): Promise<Response> => {
  const signed = signedRaw(secret, JSON.stringify(body), Date.now());
  return fetch(`http://127.0.0.1:${port}/webhooks/forms`, { method: 'POST', headers: signed.headers, body: signed.payload });
};
const submission = (id: string, message: string): Record<string, unknown> => ({
  submissionId: id,
  form: 'contact-sales',
  submittedAt: new Date().toISOString(),
  email: `${id}@prospect.example`,
  name: `Pat ${id}`,
  fields: { Message: message },
});

describe('metrics, as `npm start` serves them', () => {
  it('one scrape of the web server gives every process; two instances on one machine each give their own worker', async () => {
    const [a, b] = await Promise.all([instance('a'), instance('b')]);
    // A: one billing message (the rules route billing to review), one forged signature, one unknown provider.
    expect(
      (await post(a.web, submission('a-1', 'Invoice INV-2231 was charged twice on our card, please refund the duplicate payment.'))).status,
    ).toBe(200);
    expect((await post(a.web, submission('a-forged', 'x'), 'not-the-secret-not-the-secret-0123456789')).status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${a.web}/webhooks/made-up`, { method: 'POST', body: '{}' })).status).toBe(404);
    // B: two leads.
    // (Two different messages: a repeated one would reuse the first decision, without a model call.)
    for (const [id, message] of [
      ['b-1', 'We would like a demo and pricing for 25 seats.'],
      ['b-2', 'Could you send a quote for the enterprise plan? We want a trial first.'],
    ])
      expect((await post(b.web, submission(id as string, message as string))).status).toBe(200);

    // The mirror stage runs after decide, in its own job: wait for the last stage, not the one before it.
    const stage = (text: string, name: string): number | null =>
      sample(text, 'aj_stage_duration_seconds_count', { process: 'worker', stage: name, outcome: 'completed' });
    const decided = (text: string): number | null => Math.min(stage(text, 'decide') ?? 0, stage(text, 'mirror') ?? 0);
    const textA = await waitFor(
      async () => {
        const t = await scrape(a.web);
        return decided(t) === 1 && (sample(t, 'aj_review_backlog', { process: 'web' }) ?? 0) >= 1 ? t : null;
      },
      { what: 'A decided its interaction', timeoutMs: 30_000, intervalMs: 250 },
    );
    const textB = await waitFor(
      async () => {
        const t = await scrape(b.web);
        return decided(t) === 2 ? t : null;
      },
      { what: 'B decided both', timeoutMs: 30_000, intervalMs: 250 },
    );

    for (const text of [textA, textB]) {
      expect(familiesAreWellFormed(text)).toEqual([]);
      for (const process of ['web', 'worker', 'journal-service']) {
        expect(sample(text, 'process_cpu_seconds_total', { process }), process).toBeGreaterThan(0);
        expect(sample(text, 'nodejs_heap_size_used_bytes', { process }), process).toBeGreaterThan(0);
      }
      expect(sample(text, 'aj_scrape_target_up', { process: 'web', target: 'worker' })).toBe(1);
      expect(sample(text, 'aj_scrape_target_up', { process: 'web', target: 'journal-service' })).toBe(1);
      expect(sample(text, 'aj_journal_up', { process: 'web' })).toBe(1);
      expect(sample(text, 'aj_journal_writable', { process: 'web' })).toBe(1);
      expect(
        sample(text, 'aj_journal_append_seconds_count', { process: 'journal-service', request: 'single', outcome: 'appended' }),
      ).toBeGreaterThanOrEqual(3);
      for (const q of QUEUE_NAMES) expect(sample(text, 'aj_queue_up', { process: 'web', queue: q }), q).toBe(1);
    }
    // Each instance's own work, not the other's: its worker, its queues, its webhooks.
    for (const [text, n] of [
      [textA, 1],
      [textB, 2],
    ] as const) {
      for (const stage of ['classify', 'decide', 'mirror'])
        expect(sample(text, 'aj_stage_duration_seconds_count', { process: 'worker', stage, outcome: 'completed' }), stage).toBe(n);
      expect(
        sample(text, 'aj_model_latency_seconds_count', {
          process: 'worker',
          provider: 'offline',
          model: 'offline-rules-v1',
          outcome: 'ok',
        }),
      ).toBe(n);
      expect(sample(text, 'aj_queue_jobs', { process: 'web', queue: 'classify', state: 'completed' })).toBe(n);
      expect(sample(text, 'aj_webhook_response_seconds_count', { process: 'web', provider: 'forms', status: '200' })).toBe(n);
      expect(sample(text, 'aj_webhook_response_seconds_bucket', { process: 'web', provider: 'forms', status: '200', le: '+Inf' })).toBe(n);
    }
    expect(sample(textA, 'aj_webhooks_refused_total', { process: 'web', provider: 'forms', status: '401' })).toBe(1);
    expect(sample(textA, 'aj_webhooks_refused_total', { process: 'web', provider: 'unknown', status: '404' })).toBe(1);
    expect(sample(textB, 'aj_webhooks_refused_total', { process: 'web', provider: 'forms', status: '401' })).toBeNull();
    expect(sample(textA, 'aj_review_backlog', { process: 'web' })).toBe(1);
    expect(sample(textA, 'aj_review_oldest_pending_seconds', { process: 'web' })).toBeGreaterThan(0);

    // The other scrape targets, as the README lists them: the worker's own port (from its log line) and the
    // journal service's /metrics, which needs the read credential.
    const workerUrl = /"url":"(http:\/\/127\.0\.0\.1:\d+\/metrics)","msg":"worker metrics served"/.exec(a.stderr())?.[1];
    expect(workerUrl, 'the worker says where its metrics are').toBeDefined();
    expect(workerUrl).not.toBe('http://127.0.0.1:9465/metrics');
    const own = await (await fetch(workerUrl as string)).text();
    expect(sample(own, 'process_cpu_seconds_total', { process: 'worker' })).toBeGreaterThan(0);
    expect(own).not.toContain('process="web"');
    expect((await fetch(`http://127.0.0.1:${a.journalPort}/metrics`)).status).toBe(401);
    const creds = JSON.parse(readFileSync(join(a.dataDir, 'keys', 'service-credentials.json'), 'utf8')) as {
      readToken: string;
      appendToken: string;
    };
    const journalOwn = await fetch(`http://127.0.0.1:${a.journalPort}/metrics`, {
      headers: { authorization: `Bearer ${creds.readToken}` },
    });
    expect(journalOwn.status).toBe(200);
    expect(sample(await journalOwn.text(), 'process_cpu_seconds_total', { process: 'journal-service' })).toBeGreaterThan(0);
    expect(
      (await fetch(`http://127.0.0.1:${a.journalPort}/metrics`, { headers: { authorization: `Bearer ${creds.appendToken}` } })).status,
    ).toBe(403);
  }, 180_000);
});

describe("the web server's scrape-time gauges", () => {
  let redis: Redis;
  let queues: Record<QueueName, Queue>;
  let prefix: string;
  beforeEach(() => {
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    prefix = uniquePrefix();
    prefixes.push(prefix);
    queues = Object.fromEntries(QUEUE_NAMES.map((q) => [q, new Queue(q, { connection: redis, prefix })])) as Record<QueueName, Queue>;
  });
  afterEach(async () => {
    await Promise.all(Object.values(queues).map((q) => q.close()));
    redis.disconnect();
  });

  it("queue depth and the oldest waiting job's age, the review backlog, and targets that do not answer", async () => {
    const now = Date.now();
    await queues.classify.add('classify', { n: 1 }, { timestamp: now - 90_000 });
    await queues.classify.add('classify', { n: 2 }, { timestamp: now - 5_000 });
    await queues.decide.add('decide', { n: 3 }, { delay: 60_000 });
    let health: () => Promise<{ size: number }> = () =>
      Promise.reject(new JournalRequestError(0, 'NETWORK', 'journal service unreachable: connect ECONNREFUSED', true));
    const closed = await freePort();
    // A queue Redis cannot read (e.g. a command timeout): said for that queue alone.
    const unreadable = {
      getJobCounts: () => Promise.reject(new Error('Command timed out')),
      getJobs: () => Promise.reject(new Error('Command timed out')),
    };
    const metrics = webMetrics({
      journal: { health: () => health(), metrics: () => Promise.reject(new Error('connect ECONNREFUSED')) },
      queues: { ...queues, mirror: unreadable },
      workerUrl: `http://127.0.0.1:${closed}/metrics`,
      review: () => ({ count: 3, oldestRecordedAt: new Date(now - 600_000).toISOString() }),
      now: () => now,
    });
    const text = await metrics();
    expect(familiesAreWellFormed(text)).toEqual([]);
    expect(sample(text, 'aj_queue_jobs', { process: 'web', queue: 'classify', state: 'waiting' })).toBe(2);
    expect(sample(text, 'aj_queue_jobs', { process: 'web', queue: 'decide', state: 'delayed' })).toBe(1);
    expect(sample(text, 'aj_queue_oldest_waiting_seconds', { process: 'web', queue: 'classify' })).toBe(90);
    expect(sample(text, 'aj_queue_oldest_waiting_seconds', { process: 'web', queue: 'decide' })).toBe(0);
    expect(sample(text, 'aj_review_backlog', { process: 'web' })).toBe(3);
    expect(sample(text, 'aj_review_oldest_pending_seconds', { process: 'web' })).toBe(600);
    expect(sample(text, 'aj_journal_up', { process: 'web' })).toBe(0);
    expect(sample(text, 'aj_journal_writable', { process: 'web' })).toBeNull();
    expect(sample(text, 'aj_scrape_target_up', { process: 'web', target: 'worker' })).toBe(0);
    expect(sample(text, 'aj_scrape_target_up', { process: 'web', target: 'journal-service' })).toBe(0);
    expect(sample(text, 'aj_queue_up', { process: 'web', queue: 'mirror' })).toBe(0);
    expect(sample(text, 'aj_queue_jobs', { process: 'web', queue: 'mirror', state: 'waiting' })).toBeNull();
    expect(sample(text, 'aj_queue_up', { process: 'web', queue: 'classify' })).toBe(1);

    // Up but refusing writes (a full disk): up, not writable; a job taken out of the queue no longer counts.
    health = () => Promise.reject(new JournalRequestError(503, 'WRITE_FAILED', 'the journal is refusing writes', true));
    const [oldest] = await queues.classify.getJobs(['wait'], 0, 0, true);
    await oldest?.remove();
    const again = await metrics();
    expect(sample(again, 'aj_journal_up', { process: 'web' })).toBe(1);
    expect(sample(again, 'aj_journal_writable', { process: 'web' })).toBe(0);
    expect(sample(again, 'aj_queue_jobs', { process: 'web', queue: 'classify', state: 'waiting' })).toBe(1);
    expect(sample(again, 'aj_queue_oldest_waiting_seconds', { process: 'web', queue: 'classify' })).toBe(5);
  });
});
