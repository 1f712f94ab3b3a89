/**
 * `activity-journal demo`: the bundled samples through the whole pipeline (real Redis queues, the configured
 * offline classifier, the rules, the dry-run CRM) into a separate demo journal, then a summary and one trace.
 * It never calls a real system: configured HubSpot, OpenAI, Gmail and forms credentials are ignored.
 * Demo data never enters the real journal: it gets its own journal file, keys and anchors.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadConfig, type Config } from '../config/config.ts';
import { createLogger } from '../config/logger.ts';
import { JournalWriter } from '../journal/writer.ts';
import { JournalReader } from '../journal/reader.ts';
import { LocalJournalClient } from '../journal/local-client.ts';
import { DirectoryAnchor } from '../journal/anchors.ts';
import type { JournalEntry } from '../journal/entry.ts';
import { filterKind } from '../journal/entry-payload.ts';
import { SampleSource } from '../pipeline/sample-source.ts';
import { Redis } from 'ioredis';
import { enqueueVia, removeAllUnder, waitUntilDrained } from '../../jobs/queues.ts';
import { startPipeline } from '../../jobs/main.ts';
import { ensureRedis } from './redis.ts';
import { describeEntry } from './describe.ts';
import { terminalSafe } from './terminal-text.ts';
import { write } from './output.ts';
import { Privacy } from '../journal/privacy.ts';
import type { Logger } from '../config/logger.ts';
import type { Enqueue } from '../pipeline/ports.ts';
import { hashPassword, writeUsersFile } from '../audit/users.ts';
import { createAuditSurface } from '../web/audit-surface.ts';
import { createWebServer } from '../web/server.ts';
import { armStopSignals, waitForStop } from './stop-signal.ts';
import { UsageError } from './usage-error.ts';
import { DEFAULT_DEMO_PORT } from './walkthrough.ts';

export interface DemoOptions {
  readonly json: boolean;
  readonly keep: boolean;
  /** After the run, serve the demo journal's audit UI here (HOST:PORT) until Ctrl-C or SIGTERM. */
  readonly serve?: { readonly host: string; readonly port: number } | undefined;
}

export async function runDemo(config: Config, options: DemoOptions): Promise<number> {
  const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, 'activity-journal-demo');
  const out = (s: string): void => write(process.stdout, terminalSafe(s) + '\n');
  const redis = await ensureRedis(config, logger);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dir = join(dirname(config.journal.path), 'demo', `run-${stamp}`);
  mkdirSync(join(dir, 'anchors'), { recursive: true, mode: 0o700 });
  const path = join(dir, 'journal.sqlite');
  // The demo journal seals personal fields like the real one, under its own master key and key store.
  // Its paths are the defaults for its journal file, so `activity-journal --journal <demo journal> verify` finds them.
  const privacy = Privacy.open(
    loadConfig({ JOURNAL_PATH: path, ...(config.privacy.masterKey ? { JOURNAL_MASTER_KEY: config.privacy.masterKey } : {}) }).privacy,
    { create: true },
  );
  const writer = await JournalWriter.open({
    path,
    keysDir: join(dir, 'keys'),
    anchors: [new DirectoryAnchor(join(dir, 'anchors'))],
    checkpointEveryMs: 0,
    privacy,
  });
  const liveReader = JournalReader.open(path);
  liveReader.attachPrivacy(privacy);
  const journal = new LocalJournalClient(writer, liveReader);
  const source = SampleSource.fromFile();
  const prefix = `aj-demo-${randomBytes(4).toString('hex')}`;
  // The demo never touches a real system, whatever the environment configures: the offline classifier, the
  // dry-run CRM, no inbox or form is read (HUBSPOT_ACCESS_TOKEN, OPENAI_API_KEY and OAuth clients are ignored).
  const demoConfig: Config = {
    ...config,
    pipeline: {
      ...config.pipeline,
      redisUrl: redis.url,
      stateDir: join(dir, 'state'),
      openai: null,
      hubspot: null,
      gmail: null,
      forms: { ...config.pipeline.forms, hubspot: null, google: null },
    },
  };
  const runtime = await startPipeline(demoConfig, logger, { journal, prefix, sources: new Map([[source.name, source]]) });
  const started = Date.now();
  try {
    if (!options.json)
      out(
        `Feeding ${source.interactions.length} sample interactions through ingest → classify (${runtime.classifier.provider}/${runtime.classifier.model}) → decide → mirror (dry-run)...`,
      );
    const enqueue = enqueueVia(runtime.queues);
    for (const ix of source.interactions) await enqueue('ingest', { source: source.name, sourceId: ix.sourceId }, `samples/${ix.sourceId}`);
    await waitUntilDrained(runtime.queues, 120_000);
    if (options.serve) {
      // The pipeline stays up while the UI is served: an override made in the demo UI re-drives its (dry-run)
      // mirror into the demo journal, as in the product.
      const code = report(path, privacy, false, options, started, out);
      await serveDemoUi({
        dir,
        path,
        masterKey: config.privacy.masterKey,
        journal,
        enqueue: enqueueVia(runtime.queues),
        listen: options.serve,
        logger,
        json: options.json,
        out,
      });
      return code;
    }
  } finally {
    await runtime.close();
    if (!options.keep) {
      const r = new Redis(redis.url, { maxRetriesPerRequest: null });
      await removeAllUnder(r, prefix);
      r.disconnect();
    }
    await writer.close();
    redis.child?.kill('SIGTERM');
  }
  return report(path, privacy, true, options, started, out);
}

/** Prints the run's summary and one trace (or its JSON); the exit code says whether any job failed. */
function report(
  path: string,
  privacy: Privacy,
  ownPrivacy: boolean,
  options: DemoOptions,
  started: number,
  out: (s: string) => void,
): number {
  const reader = JournalReader.open(path);
  reader.attachPrivacy(privacy, { owned: ownPrivacy });
  try {
    const entries: JournalEntry[] = [...reader.iterate()];
    const summary = summarise(entries);
    const traceId = pickTrace(entries);
    if (options.json) {
      out(JSON.stringify({ journal: path, seconds: (Date.now() - started) / 1000, ...summary, traceCorrelationId: traceId }));
      return summary.jobFailures === 0 ? 0 : 1;
    }
    out(`\nDone in ${((Date.now() - started) / 1000).toFixed(1)} s. Demo journal: ${path}`);
    out(`  interactions journaled: ${summary.interactions} (excluded by rule, with hashed identifiers only: ${summary.excluded})`);
    out(
      `  AI decisions: ${summary.decisions} (${Object.entries(summary.decisionOutcomes)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')})`,
    );
    out(
      `  categories: ${Object.entries(summary.categories)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
    out(
      `  mirrored to the CRM (dry-run): ${summary.mirrored}; kept out of the CRM: ${summary.skipped}; sent to review: ${summary.review}; notifications: ${summary.notifications}`,
    );
    out(`  journal entries in all: ${entries.length}; failed jobs: ${summary.jobFailures}`);
    if (traceId) {
      out(`\nTrace of ${traceId}:`);
      for (const e of entries.filter((x) => x.correlationId === traceId))
        out(`  #${e.seq} ${e.kind.padEnd(20)} ${terminalSafe(describeEntry(e), { singleLine: true })}`);
    }
    out(`\nCheck it: npx activity-journal --journal ${path} verify`);
    if (!options.serve)
      out(`See it in the audit UI: npx activity-journal demo --serve (a new run, served at http://127.0.0.1:${DEFAULT_DEMO_PORT}/audit)`);
    return summary.jobFailures === 0 ? 0 : 1;
  } finally {
    reader.close();
  }
}

/**
 * The demo journal's audit UI: its own users file (one `demo` reviewer with a password made for this run,
 * printed once), its own read index and auth state, all inside the demo run's directory. The real journal,
 * users and keys are not touched.
 */
async function serveDemoUi(o: {
  dir: string;
  path: string;
  masterKey: string | undefined;
  journal: LocalJournalClient;
  enqueue: Enqueue;
  listen: { host: string; port: number };
  logger: Logger;
  json: boolean;
  out: (s: string) => void;
}): Promise<void> {
  const usersPath = join(o.dir, 'audit-users.json');
  const password = randomBytes(12).toString('base64url');
  writeUsersFile(usersPath, { users: [{ id: 'demo', role: 'reviewer', passwordHash: await hashPassword(password), apiTokens: [] }] });
  const demoConfig = loadConfig({
    JOURNAL_PATH: o.path,
    AUDIT_USERS_PATH: usersPath,
    WEB_LISTEN: `${o.listen.host}:${o.listen.port}`,
    LOG_LEVEL: 'warn',
    ...(o.masterKey ? { JOURNAL_MASTER_KEY: o.masterKey } : {}),
  });
  const surface = createAuditSurface(demoConfig, {
    journal: o.journal,
    enqueue: o.enqueue,
    connectors: () => ({ inboxes: [], webhooks: [], gmailConfigured: false }),
    logger: o.logger,
  });
  const app = createWebServer({ checks: [], audit: surface.routes });
  try {
    await app.listen({ host: o.listen.host, port: o.listen.port });
  } catch (err) {
    surface.close();
    const code = (err as { code?: string }).code;
    throw new UsageError(
      code === 'EADDRINUSE'
        ? `${o.listen.host}:${o.listen.port} is already in use: choose another with --serve HOST:PORT`
        : `cannot listen on ${o.listen.host}:${o.listen.port}: ${(err as Error).message}`,
    );
  }
  const host = o.listen.host.includes(':') ? `[${o.listen.host}]` : o.listen.host;
  const auditUrl = `http://${host}:${o.listen.port}/audit`;
  if (o.json) o.out(JSON.stringify({ auditUrl, user: 'demo', password }));
  else
    o.out(`\nThe demo journal's audit UI: ${auditUrl}  (sign in as demo, password ${password}; made for this run only). Ctrl-C to stop.`);
  armStopSignals();
  await waitForStop();
  await app.close();
  surface.close();
}

function summarise(entries: readonly JournalEntry[]) {
  const count = (f: (e: JournalEntry) => boolean): number => entries.filter(f).length;
  const allDecisions = filterKind(entries, 'ai.decision');
  const decisions = allDecisions.filter((d) => d.payload.outcome !== 'failed');
  const categories: Record<string, number> = {};
  const decisionOutcomes: Record<string, number> = {};
  for (const d of decisions) {
    const category = d.payload.output?.category;
    const c = typeof category === 'string' ? category : '?';
    categories[c] = (categories[c] ?? 0) + 1;
  }
  for (const d of allDecisions) {
    const o = String(d.payload.outcome);
    decisionOutcomes[o] = (decisionOutcomes[o] ?? 0) + 1;
  }
  const rule = (section: string, outcome: string): number =>
    filterKind(entries, 'rule.decision', (e) => e.payload.evaluated?.section === section && e.payload.outcome === outcome).length;
  return {
    interactions: count((e) => e.kind === 'interaction.received'),
    excluded: rule('exclusions', 'excluded'),
    decisions: decisions.length,
    decisionOutcomes,
    categories,
    // Interactions mirrored: a call's transcripts are on their call's activity (its writes name them as members).
    mirrored: new Set(
      filterKind(entries, 'crm.write')
        .flatMap((e) => [e.payload.entryId, ...(e.payload.members ?? []).map((m) => m.entryId)])
        .filter((id) => typeof id === 'string'),
    ).size,
    skipped: rule('mirror', 'skip'),
    review: rule('review', 'review'),
    notifications: count((e) => e.kind === 'notification.sent'),
    jobFailures: count((e) => e.kind === 'job.failed'),
  };
}

/** The correlation with the most interactions (a thread), else the first with a notification. */
function pickTrace(entries: readonly JournalEntry[]): string | null {
  const perCorrelation = new Map<string, number>();
  for (const e of entries)
    if (e.kind === 'interaction.received') perCorrelation.set(e.correlationId, (perCorrelation.get(e.correlationId) ?? 0) + 1);
  const best = [...perCorrelation.entries()].sort((a, b) => b[1] - a[1])[0];
  if (best && best[1] > 1) return best[0];
  return entries.find((e) => e.kind === 'notification.sent')?.correlationId ?? best?.[0] ?? null;
}
