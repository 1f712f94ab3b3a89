/**
 * Sustained load (`npm run load`): the whole product as real processes (journal service, worker, web server,
 * a private Redis; offline classifier, CRM dry-run) fed signed webhooks at LOAD_RATE per second for
 * LOAD_MINUTES. Reports the latency from webhook to committed interaction.received (the 200 is sent only
 * after the commit) as p50/p99, the backlog and its drain time, and every process's RSS over time, then checks
 * that nothing was lost or duplicated and that the journal verifies. Writes LOAD_REPORT (JSON) if set.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Cluster } from './cluster.ts';
import { deliver, type Sent } from './feed.ts';
import { checkEntries, verifyJournal } from './invariants.ts';
import { allEntries } from '../helpers/pipeline.ts';
import { pollUntil } from '../helpers/wait.ts';

const RATE = Number(process.env.LOAD_RATE ?? 20);
const MINUTES = Number(process.env.LOAD_MINUTES ?? 10);
const SAMPLE_MS = 10_000;

function rssMiB(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : null;
  } catch {
    return null;
  }
}

const percentile = (sorted: readonly number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

async function main(): Promise<void> {
  const cluster = await Cluster.start({ tmpfsMiB: null, env: {} });
  const sent: Sent[] = [];
  const latencies: number[] = [];
  const samples: { atS: number; journalMiB: number | null; workerMiB: number | null; webMiB: number | null; backlog: number }[] = [];
  const started = Date.now();
  const endAt = started + MINUTES * 60_000;
  const inflight = new Set<Promise<void>>();
  let n = 0;
  let nextSample = started;
  const options = { webUrl: () => cluster.webUrl, skewMs: 0, signatureSkewSeconds: 0, retryForMs: 60_000, random: Math.random };
  try {
    while (Date.now() < endAt) {
      const due = started + (n * 1000) / RATE;
      if (Date.now() < due) await new Promise((r) => setTimeout(r, due - Date.now()));
      const t0 = Date.now();
      const p = deliver(n % 2 === 0 ? 'calls' : 'forms', `load-${started}-${n}`, options).then((s) => {
        sent.push(s);
        if (s.attempts === 1 && s.outcome === 'accepted') latencies.push(Date.now() - t0);
        inflight.delete(p);
      });
      inflight.add(p);
      n++;
      if (Date.now() >= nextSample) {
        nextSample += SAMPLE_MS;
        const entries = allEntries(cluster.journalPath);
        const received = entries.filter((e) => e.kind === 'interaction.received').length;
        const decided = entries.filter(
          (e) => e.kind === 'rule.decision' && (e.payload as { evaluated?: { section?: string } }).evaluated?.section === 'mirror',
        ).length;
        samples.push({
          atS: Math.round((Date.now() - started) / 1000),
          journalMiB: rssMiB(cluster.svc?.child.pid),
          workerMiB: rssMiB(cluster.worker?.child.pid),
          webMiB: rssMiB(cluster.web?.child.pid),
          backlog: received - decided,
        });
        console.info(JSON.stringify(samples[samples.length - 1]));
      }
    }
    await Promise.all(inflight);
    const fedFor = Date.now() - started;
    const drainStart = Date.now();
    let check = checkEntries(allEntries(cluster.journalPath), sent);
    await pollUntil(
      () => {
        check = checkEntries(allEntries(cluster.journalPath), sent);
        return check.problems.length === 0;
      },
      { timeoutMs: 300_000, intervalMs: 1000 },
    );
    const drainMs = Date.now() - drainStart;
    const verified = verifyJournal(cluster.svc?.env ?? {});
    const sorted = [...latencies].sort((a, b) => a - b);
    const report = {
      rate: RATE,
      minutes: MINUTES,
      sent: sent.length,
      achievedRate: Math.round((sent.length / (fedFor / 1000)) * 10) / 10,
      latencyMs: { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] },
      drainAfterFeedMs: drainMs,
      lost: check.lost,
      duplicated: check.duplicated,
      problems: check.problems.length,
      verify: verified.ok ? `ok (${verified.entries} entries)` : 'FAILED',
      rss: samples,
    };
    console.info(`load report: ${JSON.stringify({ ...report, rss: `${samples.length} samples` })}`);
    if (process.env.LOAD_REPORT) writeFileSync(process.env.LOAD_REPORT, JSON.stringify(report, null, 2));
    if (check.problems.length > 0 || !verified.ok) process.exitCode = 1;
  } finally {
    await cluster.stop();
  }
}

await main();
