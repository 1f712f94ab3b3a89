/**
 * Fault injection through the whole product (real processes: journal service, worker, web server, a private
 * Redis; the OpenAI, HubSpot and Gmail fakes): a feed of signed webhooks and of mail arriving in a connected
 * Gmail inbox (taken in by the worker's scheduled sync) while, in each trial, one fault strikes at a random moment —
 * kill -9 of the journal service, of the worker or of the web server, Redis stopped and restarted (its data gone),
 * the HubSpot fake in a storm of 429s (both policies), 503s and slow answers,
 * the model timing out and answering garbage, the journal's disk filling up — with source clocks skewed
 * throughout. After each trial the invariants of test/faults/invariants.ts must hold, and a tamper check
 * (test/faults/tamper.ts) on a copy of the journal must be caught by `verify` at the right seq.
 *
 * `npm test` runs a short version (FAULT_TRIALS, default 7: one of each fault); `npm run test:faults` runs the
 * full one (FAULT_TRIALS=210) and writes its report to FAULT_REPORT.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, openSync, rmSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster } from '../faults/cluster.ts';
import { deliver, deliverMail, type Sent } from '../faults/feed.ts';
import { checkEntries, verifyJournal } from '../faults/invariants.ts';
import { TAMPER_KINDS, tamperCheck, type TamperResult } from '../faults/tamper.ts';
import { startFakeGmail, type FakeGmail } from '../fakes/gmail.fake.ts';
import { startFakeOpenAi, type Behaviour, type FakeOpenAi } from '../fakes/openai.fake.ts';
import { allEntries } from '../helpers/pipeline.ts';
import { pollUntil, sleep } from '../helpers/wait.ts';
import { startHubSpotFake, type HubSpotFake } from '../fakes/hubspot.fake.ts';

const TRIALS = Number(process.env.FAULT_TRIALS ?? 7);
const PER_TRIAL = Number(process.env.FAULT_FEED ?? 16);
/** Gmail messages arriving per trial (new threads from customers, and our reply in the first one). */
const MAIL_PER_TRIAL = Number(process.env.FAULT_MAIL ?? 3);
/** A tamper check on a copy of the journal after every Nth trial (and after the last). */
const TAMPER_EVERY = Math.max(1, Number(process.env.FAULT_TAMPER_EVERY ?? 1));
const MAILBOX = 'sales@northwind-analytics.example';
/**
 * The journal's own file system (a tmpfs, MiB). It must outlast the run: the journal grows with the feed and every
 * disk-full trial leaves the probe entries that got in behind (up to a WAL's worth). RAM is used only as it fills.
 */
const TMPFS_MIB = Number(process.env.FAULT_TMPFS_MIB ?? 512);
/** Less free space than this after a trial: the run has outgrown its tmpfs, and a full disk would be no fault. */
const MIN_FREE_MIB = 48;
const ALL_FAULTS = ['kill-journal', 'kill-worker', 'kill-web', 'redis-restart', 'model-storm', 'hubspot-storm', 'disk-full'] as const;
type Fault = (typeof ALL_FAULTS)[number];
/** FAULT_ONLY=a,b runs only those faults (to chase one). */
const FAULTS: readonly Fault[] = process.env.FAULT_ONLY
  ? ALL_FAULTS.filter((f) => process.env.FAULT_ONLY?.split(',').includes(f))
  : ALL_FAULTS;

// A seeded generator, so that a failing run can be repeated (FAULT_SEED).
const SEED = Number(process.env.FAULT_SEED ?? Date.now() % 1_000_000);
let state = SEED;
const random = (): number => {
  state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
  return state / 2_147_483_648;
};

let fake: FakeOpenAi;
let hubspot: HubSpotFake;
let gmail: FakeGmail;
let cluster: Cluster;
const HUBSPOT_TOKEN = 'pat-faults-0123456789abcdef';

/** Activities in the HubSpot fake per journal entry id (the mirror's unique idProperty). */
function activities(): (entryId: string) => number {
  const counts = new Map<string, number>();
  for (const type of ['emails', 'calls', 'notes'])
    for (const o of hubspot.objects(type))
      counts.set(o.properties.journal_entry_id ?? '', (counts.get(o.properties.journal_entry_id ?? '') ?? 0) + 1);
  return (entryId) => counts.get(entryId) ?? 0;
}

beforeAll(async () => {
  fake = await startFakeOpenAi({ validate: false });
  fake.setDefault({ kind: 'ok', latencyMs: 5 });
  hubspot = await startHubSpotFake({ accessToken: HUBSPOT_TOKEN });
  // The form senders' company: their contacts are created (inbound rule), then associated with it and it.
  hubspot.seed('companies', { name: 'Acme Corp', domain: 'acme-corp.example' });
  gmail = await startFakeGmail({ mailbox: MAILBOX });
  cluster = await Cluster.start({
    tmpfsMiB: TMPFS_MIB,
    gmailInbox: { mailbox: MAILBOX, refreshToken: gmail.refreshToken },
    env: {
      // The inbox's scheduled history sync, as often as the configuration allows (5 s), so trials stay short.
      GOOGLE_CLIENT_ID: gmail.clientId,
      GOOGLE_CLIENT_SECRET: gmail.clientSecret,
      GOOGLE_TOKEN_URL: gmail.tokenUrl,
      GMAIL_API_ROOT: gmail.rootUrl,
      GMAIL_SYNC_EVERY_SECONDS: '5',
      OPENAI_API_KEY: 'sk-test-0123456789abcdef',
      OPENAI_BASE_URL: fake.baseURL,
      OPENAI_MAX_RETRIES: '0',
      OPENAI_TIMEOUT_SECONDS: '1',
      MODEL_CONCURRENCY: '8',
      HUBSPOT_ACCESS_TOKEN: HUBSPOT_TOKEN,
      HUBSPOT_BASE_PATH: hubspot.baseUrl,
      HUBSPOT_BATCH_WINDOW_MS: '200',
      HUBSPOT_RATE_LIMIT_MAX: '20',
      HUBSPOT_CREATE_CONTACTS: 'inbound',
    },
  });
}, 120_000);
afterAll(async () => {
  await cluster?.stop();
  await fake?.close();
  await hubspot?.close();
  await gmail?.close();
});

/** Free MiB on the journal's file system. */
function freeMiB(): number {
  const st = statfsSync(cluster.dataDir);
  return Math.floor((st.bavail * st.bsize) / 1_048_576);
}

/** Fills the journal's file system, then frees it: appends must be refused cleanly meanwhile. */
async function diskFull(holdMs: number): Promise<{ refusedWith: string }> {
  const filler = join(cluster.dataDir, 'filler.bin');
  const fd = openSync(filler, 'w');
  const chunk = Buffer.alloc(1024 * 1024);
  try {
    for (let size = chunk.length; size >= 512;) {
      try {
        writeSync(fd, chunk, 0, size);
      } catch {
        size = Math.floor(size / 2);
      }
    }
  } finally {
    closeSync(fd);
  }
  // Direct appends while the disk is full: SQLite may still have room in its WAL, so append until one is refused
  // (at most ~12 MB); the refusal must be a clear 503, not a crash or a corrupt file.
  let refusedWith: string | null = null;
  let accepted = 0;
  for (let i = 0; i < 1_500 && refusedWith === null; i++) {
    const res = await fetch(`${cluster.svc?.url}/v1/entries`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${cluster.tokens.appendToken}` },
      body: JSON.stringify({
        kind: 'state.changed',
        source: 'faults',
        actor: 'harness',
        correlationId: 'faults/disk',
        idempotencyKey: `faults/disk/${Date.now()}/${i}`,
        payload: { entity: 'disk', field: 'free', from: 'some', to: 'none'.repeat(2000) },
      }),
    }).catch(() => null);
    if (res && res.ok) {
      await res.text();
      accepted++;
    } else refusedWith = res ? `${res.status} ${(await res.text()).slice(0, 160)}` : 'no answer';
  }
  await new Promise((r) => setTimeout(r, holdMs));
  rmSync(filler, { force: true });
  diskRefusal = { refusedWith, accepted };
  return { refusedWith: refusedWith ?? `nothing: ${accepted} appends accepted on a full disk` };
}
/** What the last disk-full fault saw: the refusal (null: none) and how many appends went in before it. */
let diskRefusal: { refusedWith: string | null; accepted: number } | null = null;

async function inject(fault: Fault): Promise<string> {
  const down = 200 + Math.floor(random() * 800);
  switch (fault) {
    case 'kill-journal':
      await cluster.killJournal(down);
      return `journal service killed, down ${down} ms`;
    case 'kill-worker':
      await cluster.killWorker(down);
      return `worker killed, down ${down} ms`;
    case 'kill-web':
      await cluster.killWeb(down);
      return `web server killed, down ${down} ms`;
    case 'redis-restart':
      await cluster.restartRedis(down);
      // The inbox's repeating sync (a BullMQ job scheduler) lived only in Redis: the worker must put it back by
      // itself (it once needed a restart). FAULT_GMAIL_RESTART_WORKER=1 restarts the worker as an operator would.
      if (!process.env.FAULT_GMAIL_RESTART_WORKER) return `Redis stopped (data lost), down ${down} ms`;
      await cluster.restartWorker();
      return `Redis stopped (data lost), down ${down} ms; worker restarted`;
    case 'model-storm': {
      const storm: Behaviour[] = [];
      for (let i = 0; i < PER_TRIAL; i++)
        storm.push(
          (
            [
              { kind: 'slow', latencyMs: 1_500 },
              { kind: 'invalid-json' },
              { kind: 'schema-violation' },
              { kind: 'server-error' },
              { kind: 'rate-limit', retryAfterSeconds: 1 },
              { kind: 'ok' },
            ] as const
          )[Math.floor(random() * 6)] as Behaviour,
        );
      fake.script(...storm);
      return `model storm of ${storm.length} answers (timeouts, invalid JSON, schema violations, 5xx, 429)`;
    }
    case 'hubspot-storm': {
      const storm = [
        { kind: '429', policy: 'TEN_SECONDLY_ROLLING', count: 3, retryAfterSeconds: 1 },
        { kind: '429', policy: 'DAILY', count: 1, retryAfterSeconds: 2 },
        { kind: '5xx', status: 503, count: 3 },
        { kind: 'slow', ms: 3_000, count: 2 },
      ] as const;
      for (const f of storm) hubspot.inject(f, { pathPrefix: '/crm/v3/objects' });
      // The associations, gathered across batches, meet a daily limit and a 503 of their own.
      hubspot.inject({ kind: '429', policy: 'DAILY', count: 1, retryAfterSeconds: 2 }, { pathPrefix: '/crm/v4/associations' });
      hubspot.inject({ kind: '5xx', status: 503, count: 1 }, { pathPrefix: '/crm/v4/associations' });
      return 'HubSpot storm: 429 ten-secondly ×3, 429 daily ×2 (writes, associations), 503 ×4, 3 s answers ×2';
    }
    case 'disk-full': {
      if (!cluster.tmpfs) return 'skipped: no tmpfs (needs root)';
      const r = await diskFull(down);
      return `disk full for ${down} ms; direct appends refused with ${r.refusedWith}`;
    }
  }
}

interface Row {
  trial: number;
  fault: Fault;
  what: string;
  sent: number;
  mail: number;
  tamper: TamperResult | null;
  problems: string[];
  /** MiB free on the journal's tmpfs after the trial (null: no tmpfs). */
  freeMiB: number | null;
  ms: number;
  settledMs: number;
}
const rows: Row[] = [];

/** Tamper checks so far: passed of total, and per kind. */
function tamperSummary(): { passed: number; total: number; byKind: Record<string, { passed: number; total: number }> } {
  const done = rows.flatMap((r) => (r.tamper ? [r.tamper] : []));
  const byKind = Object.fromEntries(
    TAMPER_KINDS.map((k) => [
      k,
      { passed: done.filter((t) => t.kind === k && t.passed).length, total: done.filter((t) => t.kind === k).length },
    ]),
  );
  return { passed: done.filter((t) => t.passed).length, total: done.length, byKind };
}

function reportRow(r: Row): Record<string, unknown> {
  return {
    trial: r.trial,
    fault: r.fault,
    what: r.what,
    ms: r.ms,
    sent: r.sent,
    mail: r.mail,
    problems: r.problems.length,
    freeMiB: r.freeMiB,
    ...(r.tamper
      ? { tamper: { kind: r.tamper.kind, seq: r.tamper.expectedSeq, passed: r.tamper.passed, named: r.tamper.tampered.firstBadSeq } }
      : {}),
  };
}

describe(`fault injection (${TRIALS} trials, seed ${SEED})`, () => {
  it(
    'loses nothing, duplicates nothing, decides everything once, and verifies after every fault',
    async () => {
      const all: Sent[] = [];
      const tamperOffset = Math.floor(random() * TAMPER_KINDS.length);
      for (let trial = 0; trial < TRIALS; trial++) {
        const fault = FAULTS[trial % FAULTS.length] as Fault;
        const started = Date.now();
        const options = { webUrl: () => cluster.webUrl, skewMs: 3 * 86_400_000, signatureSkewSeconds: 120, retryForMs: 90_000, random };
        const deliveries: Promise<Sent>[] = [];
        const struck = (async () => {
          await new Promise((r) => setTimeout(r, Math.floor(random() * 600)));
          return inject(fault);
        })();
        // Mail arrives at random moments of the feed: new threads, and our reply in the trial's first thread.
        const mailOptions = { gmail, mailbox: MAILBOX, skewMs: options.skewMs, random };
        const mailAt = Array.from({ length: MAIL_PER_TRIAL }, () => Math.floor(random() * PER_TRIAL));
        const mail: ReturnType<typeof deliverMail>[] = [];
        for (let i = 0; i < PER_TRIAL; i++) {
          deliveries.push(deliver(i % 2 === 0 ? 'calls' : 'forms', `ft${SEED}-${trial}-${i}`, options));
          for (const at of mailAt) {
            if (at !== i) continue;
            const tag = `ft${SEED}-${trial}-m${mail.length}`;
            const thread = mail.find((m) => m.from !== MAILBOX);
            mail.push(
              mail.length % 3 === 2 && thread
                ? deliverMail(tag, mailOptions, {
                    id: thread.sourceId,
                    messageIdHeader: thread.messageIdHeader,
                    subject: thread.subject,
                    from: thread.from,
                  })
                : deliverMail(tag, mailOptions),
            );
          }
          await new Promise((r) => setTimeout(r, Math.floor(random() * 60)));
        }
        const what = await struck;
        const sent = [...(await Promise.all(deliveries)), ...mail];
        const settled = Date.now();
        all.push(...sent);

        // Wait for the pipeline to finish (the re-drive loop brings back jobs that a Redis restart lost).
        let check = checkEntries(allEntries(cluster.journalPath), all, activities());
        await pollUntil(
          async () => {
            if (check.problems.length === 0) return true;
            await cluster.drained(60_000).catch(() => undefined);
            await sleep(500);
            check = checkEntries(allEntries(cluster.journalPath), all, activities());
            if (process.env.FAULT_DEBUG)
              console.info(`${Date.now() - started} ms: ${check.problems.length} open: ${check.problems.slice(0, 3).join('; ')}`);
            return check.problems.length === 0;
          },
          { timeoutMs: 120_000, intervalMs: 0 },
        );
        const verified = verifyJournal(cluster.svc?.env ?? {});
        const free = cluster.tmpfs ? freeMiB() : null;
        const problems = [...check.problems, ...(verified.ok ? [] : [`verify failed: ${verified.output}`])];
        // A full disk must show: appends refused with a clear 503 (then resumed: the checks above passed after it).
        if (fault === 'disk-full' && cluster.tmpfs && !/^503 .*(disk|full|WRITE_FAILED)/i.test(diskRefusal?.refusedWith ?? ''))
          problems.push(
            `disk full, but appends were not refused with a clear 503: ${diskRefusal?.refusedWith ?? 'none'} after ${diskRefusal?.accepted ?? 0} accepted`,
          );
        diskRefusal = null;
        // The harness's own limit, said as such: a journal that filled its tmpfs for good is no fault being injected.
        if (free !== null && free < MIN_FREE_MIB)
          problems.push(
            `harness: the journal's tmpfs has ${free} MiB free after the trial; the run outgrew it (FAULT_TMPFS_MIB=${TMPFS_MIB})`,
          );
        // A copy of the journal as it is now, changed in one place: verify must catch it, at the right seq.
        let tamper: TamperResult | null = null;
        if ((trial + 1) % TAMPER_EVERY === 0 || trial === TRIALS - 1) {
          const kind = TAMPER_KINDS[(trial + tamperOffset) % TAMPER_KINDS.length] ?? 'payload-byte';
          tamper = await tamperCheck(
            { journalPath: cluster.journalPath, keysDir: cluster.keysDir, anchorsDir: cluster.anchorsDir, workDir: cluster.root },
            kind,
            random,
          );
          if (!tamper.passed) problems.push(`tamper check (${kind} at seq ${tamper.expectedSeq}) failed: ${tamper.problem}`);
        }
        rows.push({
          trial,
          fault,
          what,
          sent: sent.length,
          mail: mail.length,
          tamper,
          problems,
          freeMiB: free,
          ms: Date.now() - started,
          settledMs: settled - started,
        });
        // The report so far, after every trial, so that an interrupted long run still says what it did.
        if (process.env.FAULT_REPORT)
          writeFileSync(
            process.env.FAULT_REPORT,
            JSON.stringify(
              { seed: SEED, trialsSoFar: rows.length, interactions: all.length, tamperChecks: tamperSummary(), rows: rows.map(reportRow) },
              null,
              2,
            ),
          );
        if (problems.length > 0)
          console.error(
            `trial ${trial} (${fault}: ${what}):\n  ${problems.slice(0, 20).join('\n  ')}\n${cluster.logs.slice(-10).join('')}`,
          );
        if (problems.length > 0 && process.env.FAULT_DEBUG) console.error(cluster.logs.join(''));
        expect(problems, `trial ${trial}: ${fault}`).toEqual([]);
      }

      const final = checkEntries(allEntries(cluster.journalPath), all, activities());
      const verified = verifyJournal(cluster.svc?.env ?? {});
      const byFault = Object.fromEntries(FAULTS.map((f) => [f, rows.filter((r) => r.fault === f && !r.what.startsWith('skipped')).length]));
      const report = {
        seed: SEED,
        trials: rows.length,
        faults: byFault,
        clockSkew: 'every delivery: occurredAt ±3 days, signature time ±120 s',
        interactions: all.length,
        gmailMessages: all.filter((s) => s.provider === 'gmail').length,
        accepted: all.filter((s) => s.outcome === 'accepted').length,
        deliveriesRetried: all.filter((s) => s.attempts > 1).length,
        lost: final.lost,
        duplicated: final.duplicated,
        verify: verified.ok ? `ok (${verified.entries} entries, ${verified.anchorsChecked} anchored checkpoints)` : 'FAILED',
        tamperChecks: tamperSummary(),
        journalTmpfs: cluster.tmpfs ? { mib: TMPFS_MIB, leastFreeMiB: Math.min(...rows.map((r) => r.freeMiB ?? TMPFS_MIB)) } : null,
        trialsFailed: rows.filter((r) => r.problems.length > 0).length,
      };
      console.info(`fault report: ${JSON.stringify(report)}`);
      console.info(
        rows
          .map(
            (r) =>
              `${r.trial} ${r.fault}: ${r.ms} ms (deliveries settled after ${r.settledMs} ms) ${r.what}${r.tamper ? `; tamper ${r.tamper.kind} at seq ${r.tamper.expectedSeq}: ${r.tamper.passed ? 'caught' : r.tamper.problem}` : ''}`,
          )
          .join('\n'),
      );
      if (process.env.FAULT_REPORT)
        writeFileSync(process.env.FAULT_REPORT, JSON.stringify({ ...report, rows: rows.map(reportRow) }, null, 2));
      expect(final.lost).toBe(0);
      expect(final.duplicated).toBe(0);
      expect(verified.ok).toBe(true);
      expect(report.tamperChecks.passed).toBe(report.tamperChecks.total);
      expect(report.tamperChecks.total).toBeGreaterThan(0);
      // 90 s a trial, plus room for one trial's full wait (120 s) so that a failing trial reports its problems.
    },
    TRIALS * 90_000 + 150_000,
  );
});
