/**
 * The crm suite: what the HubSpot mirror costs in API calls and how much of the configured rate limit it uses.
 * Everything runs against the stateful HubSpot fake (test/fakes/hubspot.fake.ts) through the real
 * @hubspot/api-client; calls are counted by the fake, the same way for both flows.
 *
 *  1. Calls per 1,000 activities. ACTIVITIES plans (60% emails, 25% calls, 15% notes; counterparts from a pool
 *     of CONTACTS known contacts at COMPANIES companies, a third of them with one open deal) go through the real
 *     batched path: PendingPlans + the crm-batch queue + a BullMQ Worker with the shared limiter, HubSpotCrm
 *     with its lookup caches. Counted: every request the fake answered (bootstrap included, shown apart).
 *     Baseline, measured the same way: a naive per-item flow as Zapier-like tools do it, with the same SDK:
 *     look the contact up by email, create the activity, associate it with the contact (3 calls per item, plus
 *     a company lookup and association when the contact has one).
 *     Also measured: the same plans arriving as webhooks do (Poisson arrivals over WEBHOOK_SECONDS), and the
 *     recovery after a worker holding a batch is killed (5 s crm-batch lock vs the 30 s lock as baseline).
 *  2. Throughput against the limit: LIMIT_MAX requests per LIMIT_MS shared limit, batches of THROUGHPUT_BATCH so
 *     that the work needs many requests, a backlog of THROUGHPUT_ACTIVITIES plans; requests per second from the
 *     first to the last request, divided by the configured limit.
 */
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { silentLogger } from '../src/config/logger.ts';
import { JournalWriter } from '../src/journal/writer.ts';
import { JournalReader } from '../src/journal/reader.ts';
import { LocalJournalClient } from '../src/journal/local-client.ts';
import type { MirrorPlan } from '../src/pipeline/ports.ts';
import { HubSpotCrm } from '../connectors/hubspot/hubspot.crm.ts';
import { createHubSpotClient } from '../connectors/hubspot/hubspot.http.ts';
import { ASSOCIATION_TYPE_IDS } from '../connectors/hubspot/association-types.ts';
import { BatchingCrm, PendingPlans, QueueRequestGate, processCrmBatch, type CrmBatchSettings } from '../jobs/crm-batch/index.ts';
import { removeAllUnder } from '../jobs/queues.ts';
import { REDIS_URL } from '../test/helpers/pipeline.ts';
import { startHubSpotFake, type HubSpotFake } from '../test/fakes/hubspot.fake.ts';
import { fmtFixed, fmtInt, ratio, table, type Suite, type SuiteContext, type SuiteResult } from './suite.ts';

const ACTIVITIES = 1_000;
const CONTACTS = 200;
const COMPANIES = 40;
const TOKEN = 'pat-na1-bench-token-0000';
const LIMIT_MAX = 40;
const LIMIT_MS = 1_000;
const THROUGHPUT_BATCH = 10;
const THROUGHPUT_ACTIVITIES = 2_000;
/** The webhook-like pattern: ACTIVITIES arrivals over this many seconds (about 33 a second). */
const WEBHOOK_SECONDS = 30;
/** Plans in the batch a killed worker holds (one full batch of emails). */
const RECOVERY_PLANS = 100;

interface World {
  readonly fake: HubSpotFake;
  readonly emails: string[];
}

async function world(): Promise<World> {
  const fake = await startHubSpotFake({ accessToken: TOKEN, tenSecondlyLimit: 1_000_000, dailyLimit: 10_000_000 });
  const emails: string[] = [];
  const companies = Array.from({ length: COMPANIES }, (_, i) =>
    fake.seed('companies', { name: `Company ${i}`, domain: `company${i}.example` }),
  );
  const client = createHubSpotClient({ accessToken: TOKEN, basePath: fake.baseUrl });
  for (let i = 0; i < CONTACTS; i++) {
    const email = `person${i}@company${i % COMPANIES}.example`;
    const id = fake.seed('contacts', { email });
    emails.push(email);
    if (i % 3 === 0) {
      const deal = fake.seed('deals', { dealname: `Deal ${i}`, dealstage: 'appointmentscheduled', pipeline: 'default' });
      await client.crm.associations.v4.basicApi.createDefault('contacts', id, 'deals', deal);
    }
  }
  void companies;
  fake.requests.length = 0;
  return { fake, emails };
}

function plans(n: number, emails: readonly string[]): MirrorPlan[] {
  return Array.from({ length: n }, (_, i) => {
    const entryId = randomUUID();
    const objectType: MirrorPlan['objectType'] = i % 20 < 12 ? 'emails' : i % 20 < 17 ? 'calls' : 'notes';
    const base = { journal_entry_id: entryId, hs_timestamp: new Date(Date.UTC(2026, 10, 1) + i * 60_000).toISOString() };
    const properties =
      objectType === 'emails'
        ? { ...base, hs_email_direction: 'INCOMING_EMAIL', hs_email_subject: `Question #${i}`, hs_email_text: `Summary: question ${i}` }
        : objectType === 'calls'
          ? {
              ...base,
              hs_call_direction: 'INBOUND',
              hs_call_title: `Call ${i}`,
              hs_call_body: `Summary: call ${i}`,
              hs_call_duration: '120000',
            }
          : { ...base, hs_note_body: `Form submission ${i}` };
    return {
      entryId,
      entrySeq: i,
      correlationId: `bench/${entryId}`,
      decisionEntryId: randomUUID(),
      decisionSeq: i,
      direction: 'inbound',
      objectType,
      properties,
      counterparts: [emails[(i * 7) % emails.length] as string],
      category: 'new_lead',
    };
  });
}

interface BatchedRun {
  readonly requests: number;
  readonly bootstrap: number;
  readonly seconds: number;
  readonly firstToLastSeconds: number;
  readonly activities: number;
}

/** How plans reach the mirror: one after another as fast as they come, all pending before a worker runs, or over `seconds` with random (exponential) gaps, as webhooks arrive. */
type Arrival = 'burst' | 'backlog' | { readonly seconds: number };

/** Gaps of a Poisson process with `n` arrivals in about `seconds` (seeded, so every run sees the same pattern). */
function webhookGaps(n: number, seconds: number): number[] {
  let x = 0x9e3779b9;
  const next = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return ((x >>> 0) + 1) / 4294967297;
  };
  const mean = (seconds * 1000) / n;
  return Array.from({ length: n }, () => -Math.log(next()) * mean);
}

async function batched(
  ctx: SuiteContext,
  w: World,
  list: readonly MirrorPlan[],
  settings: CrmBatchSettings,
  concurrency: number,
  arrival: Arrival = 'burst',
): Promise<BatchedRun> {
  const preload = arrival === 'backlog';
  const dir = mkdtempSync(join(tmpdir(), 'aj-bench-crm-'));
  const path = join(dir, 'journal.sqlite');
  const writer = await JournalWriter.open({ path, keysDir: join(dir, 'keys'), checkpointEveryMs: 0 });
  const journal = new LocalJournalClient(writer, JournalReader.open(path));
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const prefix = `aj-bench-crm-${randomUUID().slice(0, 8)}`;
  const queue = new Queue('crm-batch', { connection: redis, prefix });
  const pending = new PendingPlans(redis, prefix);
  const links = PendingPlans.links(redis, prefix);
  const gate = new QueueRequestGate(redis, queue, prefix, settings.limitMax, settings.limitDurationMs);
  const crm = new HubSpotCrm({
    accessToken: TOKEN,
    basePath: w.fake.baseUrl,
    journal,
    dealRule: 'single-open-deal',
    createContacts: 'never',
  });
  const byId = new Map(list.map((p) => [p.entryId, p]));
  const before = w.fake.requests.length;
  await crm.bootstrap();
  const bootstrap = w.fake.requests.length - before;
  const stage = new BatchingCrm(pending, queue, settings.windowMs);
  // preload: the plans are all pending before a worker runs (a backlog); else they arrive while it runs.
  if (preload) for (const p of list) await stage.mirror(p);
  const start = performance.now();
  const worker = new Worker(
    'crm-batch',
    (job) =>
      processCrmBatch(job, {
        crm,
        pending,
        links,
        queue,
        gate,
        journal,
        planFor: (ref) => Promise.resolve(byId.get(ref.entryId) as MirrorPlan),
        settings,
        logger: silentLogger,
      }),
    {
      connection: redis,
      prefix,
      concurrency,
      limiter: { max: settings.limitMax, duration: settings.limitDurationMs },
    },
  );
  if (arrival === 'burst') for (const p of list) await stage.mirror(p);
  if (typeof arrival === 'object') {
    const gaps = webhookGaps(list.length, arrival.seconds);
    let due = performance.now();
    for (const [i, p] of list.entries()) {
      due += gaps[i] as number;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      await stage.mirror(p);
    }
  }
  for (;;) {
    if ((await pending.outstanding()) === 0 && (await links.outstanding()) === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const seconds = (performance.now() - start) / 1000;
  await worker.close();
  await queue.close();
  const requests = w.fake.requests.length - before - bootstrap;
  const calls = crm.calls.slice(bootstrap);
  const firstToLastSeconds =
    calls.length > 1
      ? (Math.max(...calls.map((c) => c.startedAt + c.durationMs)) - Math.min(...calls.map((c) => c.startedAt))) / 1000
      : seconds;
  await removeAllUnder(redis, prefix);
  redis.disconnect();
  await journal.close();
  rmSync(dir, { recursive: true, force: true });
  const activities = ['emails', 'calls', 'notes'].reduce(
    (n, t) => n + w.fake.objects(t).filter((o) => byId.has(o.properties['journal_entry_id'] ?? '')).length,
    0,
  );
  ctx.progress(`batched: ${activities} activities, ${requests} requests in ${fmtFixed(seconds, 1)} s`);
  return { requests, bootstrap, seconds, firstToLastSeconds, activities };
}

/**
 * Seconds from a SIGKILL of the worker holding a batch (its upsert slow at HubSpot, so it is in flight) until a
 * standby worker has written and associated every plan of it. Both workers are processes of their own
 * (bench/crm-worker-child.ts) with `lockMs` as their crm-batch lock and 3x it as the claims' lease.
 */
async function recovery(ctx: SuiteContext, w: World, lockMs: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'aj-bench-crm-kill-'));
  const prefix = `aj-bench-crm-${randomUUID().slice(0, 8)}`;
  const list = plans(RECOVERY_PLANS, w.emails).map((p) => ({
    ...p,
    objectType: 'emails' as const,
    properties: {
      journal_entry_id: p.entryId,
      hs_timestamp: p.properties['hs_timestamp'] as string,
      hs_email_direction: 'INCOMING_EMAIL',
      hs_email_subject: 'Recovery',
      hs_email_text: 'Summary: recovery',
    },
  }));
  const plansPath = join(dir, 'plans.json');
  writeFileSync(plansPath, JSON.stringify(list));
  const env = { ...process.env, AJ_BENCH_FAKE_URL: w.fake.baseUrl, AJ_BENCH_PREFIX: prefix, REDIS_URL };
  const child = async (): Promise<ReturnType<typeof spawn>> => {
    const c = spawn(process.execPath, ['bin/run-ts.mjs', 'bench/crm-worker-child.ts', String(lockMs), plansPath], {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    c.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    while (!out.includes('ready')) {
      if (c.exitCode !== null) throw new Error(`the bench worker exited (${c.exitCode})`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return c;
  };
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue('crm-batch', { connection: redis, prefix });
  const pending = new PendingPlans(redis, prefix);
  const links = PendingPlans.links(redis, prefix);
  const leases = `${prefix}:crm:leases`;
  // The first upsert is slow at HubSpot: the kill lands while it is in flight.
  w.fake.inject({ kind: 'slow', ms: 20_000, count: 1 }, { method: 'POST', pathPrefix: '/crm/v3/objects/emails/batch/upsert' });
  const first = await child();
  const stage = new BatchingCrm(pending, queue, 1000);
  for (const p of list) await stage.mirror(p);
  while ((await redis.zcard(leases)) < list.length) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 300));
  const standby = await child();
  first.kill('SIGKILL');
  await once(first, 'exit');
  const killedAt = performance.now();
  while ((await pending.outstanding()) > 0 || (await links.outstanding()) > 0) await new Promise((r) => setTimeout(r, 50));
  const seconds = (performance.now() - killedAt) / 1000;
  standby.kill('SIGTERM');
  await once(standby, 'exit');
  await queue.close();
  await removeAllUnder(redis, prefix);
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
  ctx.progress(`recovery with a ${lockMs / 1000} s lock: ${fmtFixed(seconds, 1)} s`);
  return seconds;
}

/** The per-item flow of a Zapier-like integration, with the same SDK against the same fake. */
async function naive(ctx: SuiteContext, w: World, list: readonly MirrorPlan[]): Promise<{ requests: number; activities: number }> {
  const client = createHubSpotClient({ accessToken: TOKEN, basePath: w.fake.baseUrl });
  const before = w.fake.requests.length;
  let created = 0;
  for (const p of list) {
    const email = p.counterparts[0] as string;
    let contactId: string | null = null;
    let companyId: string | null = null;
    try {
      const c = await client.crm.contacts.basicApi.getById(email, ['email'], undefined, ['companies'], false, 'email');
      contactId = c.id;
      const companies = (c.associations as Record<string, { results?: { id: string }[] }> | undefined)?.['companies']?.results ?? [];
      companyId = companies[0]?.id ?? null;
    } catch {
      contactId = null;
    }
    const { journal_entry_id: _ignored, ...props } = p.properties;
    void _ignored;
    const api =
      p.objectType === 'emails'
        ? client.crm.objects.emails.basicApi
        : p.objectType === 'calls'
          ? client.crm.objects.calls.basicApi
          : client.crm.objects.notes.basicApi;
    const activity = await api.create({ properties: props, associations: [] });
    created++;
    if (contactId)
      await client.crm.associations.v4.basicApi.create(p.objectType, activity.id, 'contacts', contactId, [
        { associationCategory: 'HUBSPOT_DEFINED' as never, associationTypeId: ASSOCIATION_TYPE_IDS[p.objectType].contacts },
      ]);
    if (companyId)
      await client.crm.associations.v4.basicApi.create(p.objectType, activity.id, 'companies', companyId, [
        { associationCategory: 'HUBSPOT_DEFINED' as never, associationTypeId: ASSOCIATION_TYPE_IDS[p.objectType].companies },
      ]);
  }
  const requests = w.fake.requests.length - before;
  ctx.progress(`naive: ${created} activities, ${requests} requests`);
  return { requests, activities: created };
}

export const crmSuite: Suite = {
  name: 'crm',
  description: 'HubSpot mirror: API calls per 1,000 activities (batched vs naive per-item) and throughput vs the rate limit',
  async run(ctx: SuiteContext): Promise<SuiteResult> {
    const w = await world();
    try {
      const list = plans(ACTIVITIES, w.emails);
      const ours = await batched(ctx, w, list, { limitMax: 9, limitDurationMs: 1000, windowMs: 1000, batchSize: 100, leaseMs: 60_000 }, 2);
      const backlog = await batched(
        ctx,
        w,
        plans(ACTIVITIES, w.emails),
        { limitMax: 9, limitDurationMs: 1000, windowMs: 1000, batchSize: 100, leaseMs: 60_000 },
        2,
        'backlog',
      );
      const hooks = await batched(
        ctx,
        w,
        plans(ACTIVITIES, w.emails),
        { limitMax: 9, limitDurationMs: 1000, windowMs: 1000, batchSize: 100, leaseMs: 60_000, linkWindowMs: 30_000, linkBatchSize: 1000 },
        2,
        { seconds: WEBHOOK_SECONDS },
      );
      const hooksPerK = (hooks.requests / hooks.activities) * 1000;
      const fast = await recovery(ctx, w, 5_000);
      const slow = await recovery(ctx, w, 30_000);
      const backlogPerK = (backlog.requests / backlog.activities) * 1000;
      const baseline = await naive(ctx, w, plans(ACTIVITIES, w.emails));
      const perK = (ours.requests / ours.activities) * 1000;
      const naivePerK = (baseline.requests / baseline.activities) * 1000;

      const heavy = plans(THROUGHPUT_ACTIVITIES, w.emails);
      const tp = await batched(
        ctx,
        w,
        heavy,
        { limitMax: LIMIT_MAX, limitDurationMs: LIMIT_MS, windowMs: 200, batchSize: THROUGHPUT_BATCH, leaseMs: 60_000 },
        4,
      );
      const rps = tp.requests / tp.firstToLastSeconds;
      const limitRps = (LIMIT_MAX * 1000) / LIMIT_MS;
      const callsBar = { value: perK, bar: 30, pass: perK <= 30 };
      const throughput = ratio(rps / limitRps, 0.9);
      const text = [
        'crm: HubSpot calls per mirrored activity (counted by the fake) and throughput against the shared limit',
        '',
        table(
          ['flow', 'activities', 'calls', 'calls per 1,000', 'bar'],
          [
            [
              'batched, arriving one by one (ours, 9 req/s, 1 s window)',
              fmtInt(ours.activities),
              fmtInt(ours.requests),
              fmtFixed(perK, 1),
              `<= 30 ${callsBar.pass ? 'PASS' : 'FAIL'}`,
            ],
            [
              'batched, all pending at once (full batches of 100)',
              fmtInt(backlog.activities),
              fmtInt(backlog.requests),
              fmtFixed(backlogPerK, 1),
              `<= 30 ${backlogPerK <= 30 ? 'PASS' : 'FAIL'}`,
            ],
            [
              `batched, webhook-like arrivals (Poisson, ${WEBHOOK_SECONDS} s)`,
              fmtInt(hooks.activities),
              fmtInt(hooks.requests),
              fmtFixed(hooksPerK, 1),
              `<= 30 ${hooksPerK <= 30 ? 'PASS' : 'FAIL'}`,
            ],
            [
              'naive per item (lookup, create, associate)',
              fmtInt(baseline.activities),
              fmtInt(baseline.requests),
              fmtFixed(naivePerK, 1),
              '',
            ],
          ],
        ),
        `bootstrap (once per process, not counted above): ${ours.bootstrap} calls; the naive flow makes ${fmtFixed(naivePerK / perK, 1)}x as many calls`,
        '',
        table(
          ['throughput run', 'activities', 'requests', 'seconds (first→last request)', 'requests/s', 'limit/s', 'ratio', 'bar'],
          [
            [
              `batches of ${THROUGHPUT_BATCH}, limit ${LIMIT_MAX}/${LIMIT_MS} ms`,
              fmtInt(tp.activities),
              fmtInt(tp.requests),
              fmtFixed(tp.firstToLastSeconds, 1),
              fmtFixed(rps, 1),
              fmtFixed(limitRps, 0),
              fmtFixed(throughput.value, 2),
              `>= 0.9 ${throughput.pass ? 'PASS' : 'FAIL'}`,
            ],
          ],
        ),
        '',
        'recovery after a worker is killed (SIGKILL) mid-batch, a standby worker running: seconds from the kill until every plan of the dead batch is written and associated',
        table(
          ['crm-batch lock (lease 3x, renewed)', 'seconds to recover', 'ratio to the 30 s lock'],
          [
            ['5 s (CRM_BATCH_LOCK_SECONDS default)', fmtFixed(fast, 1), fmtFixed(fast / slow, 2)],
            ['30 s (the lock every queue had before, the baseline)', fmtFixed(slow, 1), '1.00'],
          ],
        ),
      ].join('\n');
      return {
        text,
        data: {
          batched: { ...ours, callsPer1000: perK },
          batchedBacklog: { ...backlog, callsPer1000: backlogPerK },
          batchedWebhooks: { ...hooks, callsPer1000: hooksPerK },
          recovery: { lock5sSeconds: fast, lock30sSeconds: slow, ratio: fast / slow },
          naive: { ...baseline, callsPer1000: naivePerK },
          callsBar,
          throughput: { ...tp, requestsPerSecond: rps, limitPerSecond: limitRps, ratio: throughput },
        },
      };
    } finally {
      await w.fake.close();
    }
  },
};
