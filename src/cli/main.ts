/**
 * The `activity-journal` command line. Exit codes: 0 success, 1 the journal (or a proof) is not intact or some
 * input lines were refused, 2 usage errors and unreadable files, and a journal (or, for `start`, a data directory
 * or port) already in use.
 *
 * Each command imports its implementation when it runs (`await import(...)` in its action): `--help` and the
 * light commands do not pay for googleapis, bullmq, fastify, openai..., nor does `start`'s supervisor process.
 */
import { Command, CommanderError, Option } from 'commander';
import { createInterface } from 'node:readline';
import { readFileSync, writeFileSync } from 'node:fs';
import { loadConfig, parseListen, ConfigError, type Config } from '../config/config.ts';
import { RulesetError } from '../pipeline/rules.ts';
import { createLogger } from '../config/logger.ts';
import type { AppendResult } from '../journal/writer.ts';
import { JournalReader } from '../journal/reader.ts';
import { verifyJournal, type AnchoredNote } from '../journal/verify.ts';
import { readAnchoredNotes, readPinnedKey, originSlug } from '../journal/anchors.ts';
import { parseVerifierKey, type Verifier } from '../journal/keys.ts';
import { readSealKey } from '../journal/identity.ts';
import { checkInclusionBundle } from '../journal/proof.ts';
import { JournalFileError } from '../journal/errors/journal-file.error.ts';
import type { JournalEntry } from '../journal/entry.ts';
import { progressBar } from './progress.ts';
import { UsageError } from './usage-error.ts';
import { describeEntry } from './describe.ts';
import { terminalSafe } from './terminal-text.ts';
import { guardOutput, write } from './output.ts';
import { announceReady, armStopSignals, isSupervised, waitForStop } from './stop-signal.ts';
import { DEFAULT_DEMO_PORT, SAMPLE_FORMS, type SampleKind } from './walkthrough.ts';
import { registerAuditCommands } from './audit-commands.ts';
import { serviceClient, withJournal, withWriterOrService } from './journal-access.ts';
import type { ArchiveStore } from '../journal/archive-store.ts';
import type { EffectiveLabels } from '../../connectors/gmail/inbox-labels.ts';
import type { Logger } from '../config/logger.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { attachConfiguredPrivacy } from '../journal/configured-privacy.ts';
import { describeCheck, keyStoreCheck, registerPrivacyCommands } from './privacy-commands.ts';
import { registerPrivacyScanCommands } from './privacy-scan.ts';

interface GlobalOpts {
  journal?: string;
  json?: boolean;
}

interface Io {
  out(line: string): void;
  err(line: string): void;
}

// Every line the CLI prints passes terminalSafe: journal content must not reach the terminal as control characters.
// And output.ts: a reader that goes away (`| head`) ends the output quietly, not with an EPIPE stack trace.
const io: Io = {
  out: (line) => write(process.stdout, terminalSafe(line) + '\n'),
  err: (line) => write(process.stderr, terminalSafe(line) + '\n'),
};

/** HOST:PORT from a command-line option, or a UsageError saying what is expected. */
function tcpListen(value: string, option: string): { host: string; port: number } {
  const l = parseListen(value);
  if (!l || l.kind !== 'tcp')
    throw new UsageError(`${option} takes HOST:PORT (e.g. 127.0.0.1:${DEFAULT_DEMO_PORT}), not ${JSON.stringify(value)}`);
  return { host: l.host, port: l.port };
}

/** Runs the command line; resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  guardOutput();
  let exitCode = 0;
  const program = new Command();
  program
    .name('activity-journal')
    .description('Insert-only, tamper-evident journal of sales interactions and automated decisions.')
    .option('--journal <path>', 'journal file (default: $JOURNAL_PATH, else ./data/journal.sqlite)')
    .option('--json', 'machine-readable output')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => write(process.stderr, terminalSafe(s)), writeOut: (s) => write(process.stdout, terminalSafe(s)) });

  const cfg = (): Config => loadConfig(process.env, { journalPath: program.opts<GlobalOpts>().journal });
  const json = (): boolean => program.opts<GlobalOpts>().json === true;

  const serve = async (): Promise<void> => {
    armStopSignals(); // a stop asked for during start-up is kept, and honoured once started
    const config = cfg();
    const logger = createLogger(config.logLevel, 'activity-journal');
    const [{ startJournalService }, { archiveStagingDir, configuredArchiveStores, startArchiveSchedule }, { collectProcessMetrics }] =
      await Promise.all([import('../journal/service/run.ts'), import('../../jobs/archive.ts'), import('../metrics/registry.ts')]);
    collectProcessMetrics('journal-service');
    const running = await startJournalService(config, logger);
    // The scheduled archive runs here, next to the journal's only writer (see jobs/archive.ts).
    const schedule = config.journal.archiveSchedule
      ? startArchiveSchedule({
          writer: running.writer,
          store: configuredArchiveStores(config)[0] as ArchiveStore,
          everyMs: config.journal.archiveSchedule.everyMs,
          firstAfterMs: config.journal.archiveSchedule.firstAfterMs,
          stagingDir: archiveStagingDir(config),
          logger,
        })
      : null;
    if (!json() && !isSupervised()) io.err(`journal service listening on ${running.url} (journal ${config.journal.path}); Ctrl-C to stop`);
    exitCode = await stopWithin(
      await waitForStop(),
      async () => {
        await schedule?.stop();
        await running.close();
      },
      config.shutdownDeadlineMs,
      logger,
    );
  };

  program
    .command('start')
    .description('run the product: journal service, pipeline workers and web server, under one supervisor')
    .action(async () => {
      const config = cfg();
      const { runSupervisor } = await import('./supervisor.ts');
      exitCode = await runSupervisor(config, createLogger(config.logLevel, 'activity-journal'), process.env);
    });

  program
    .command('worker')
    .description('run the pipeline workers (ingest, classify, decide, mirror); needs Redis and the journal service')
    .action(async () => {
      armStopSignals();
      const config = cfg();
      const logger = createLogger(config.logLevel, 'activity-journal');
      const [{ startPipeline }, { collectProcessMetrics }, { serveMetrics }] = await Promise.all([
        import('../../jobs/main.ts'),
        import('../metrics/registry.ts'),
        import('../metrics/serve.ts'),
      ]);
      collectProcessMetrics('worker');
      const runtime = await startPipeline(config, logger);
      const metrics = await serveMetrics(config.web.workerMetrics, logger);
      announceReady(); // its workers run: the supervisor's banner waits for this
      exitCode = await stopWithin(
        await waitForStop(),
        async () => {
          await metrics.close();
          await runtime.close();
        },
        config.shutdownDeadlineMs + 5_000,
        logger,
      );
    });

  program
    .command('web')
    .description('run the web server (/healthz, /metrics, webhooks, the audit UI at /audit and its API at /api/v1)')
    .action(async () => {
      armStopSignals();
      const config = cfg();
      const logger = createLogger(config.logLevel, 'activity-journal');
      const [{ startWeb }, { collectProcessMetrics }] = await Promise.all([import('./web.ts'), import('../metrics/registry.ts')]);
      collectProcessMetrics('web');
      const web = await startWeb(config, logger);
      exitCode = await stopWithin(await waitForStop(), () => web.close(), config.shutdownDeadlineMs, logger);
    });

  program
    .command('demo')
    .description('feed the bundled sample interactions through the whole pipeline into a separate demo journal')
    .option('--keep', 'keep the demo queues in Redis afterwards')
    .option('--serve [host:port]', `then serve the demo journal's audit UI (default 127.0.0.1:${DEFAULT_DEMO_PORT}) until Ctrl-C`)
    .action(async (opts: { keep?: boolean; serve?: string | boolean }) => {
      const config = cfg();
      const serve =
        opts.serve === undefined || opts.serve === false
          ? undefined
          : tcpListen(opts.serve === true ? `127.0.0.1:${DEFAULT_DEMO_PORT}` : opts.serve, '--serve');
      const { runDemo } = await import('./demo.ts');
      exitCode = await runDemo(config, { json: json(), keep: opts.keep === true, serve });
    });

  program
    .command('send-sample')
    .description('send one signed sample form submission to the running web server, wait for its decision and print where to see it')
    .addOption(new Option('--kind <kind>', 'which sample').choices(Object.keys(SAMPLE_FORMS)).default('contact-sales'))
    .option('--url <url>', 'the web server (default: http://WEB_LISTEN)')
    .option('--wait <seconds>', 'how long to wait for the decision', '30')
    .action(async (opts: { kind: SampleKind; url?: string; wait: string }) => {
      const wait = Number(opts.wait);
      if (!Number.isFinite(wait) || wait < 0) throw new UsageError(`--wait must be a number of seconds, not ${JSON.stringify(opts.wait)}`);
      const config = cfg();
      const { sendSample } = await import('./send-sample.ts');
      const r = await sendSample(config, { kind: opts.kind, url: opts.url, waitMs: wait * 1000 });
      if (json()) {
        io.out(JSON.stringify(r));
      } else {
        io.out(`Sent a signed sample form submission (${opts.kind}): journal entry #${r.seq}, correlation ${r.correlationId}.`);
        io.out(
          r.decision
            ? `Decided by ${r.decision.provider}: ${r.decision.category} (confidence ${r.decision.confidence.toFixed(2)}).`
            : `Not decided within ${wait} s: are the workers running (npm start runs them)?`,
        );
        io.out(`See it, with its decision and proofs: ${r.traceUrl}`);
        if (r.firstUser) io.out(r.firstUser);
      }
      exitCode = r.decision ? 0 : 1;
    });

  program.command('journal-service').description('run the journal service: the only writer of the journal').action(serve);

  program
    .command('append')
    .description('append entries read as JSON lines from stdin; prints one result line per input line')
    .option('--service [url]', 'send through the running journal service (default URL from the configuration)')
    .action(async (opts: { service?: string | boolean }) => {
      exitCode = await appendFromStdin(cfg(), opts.service, json());
    });

  program
    .command('connect')
    .description('connect an inbox: prints the Google consent URL (the answer comes back to the web server)')
    .argument('<connector>', 'gmail or google-forms')
    .argument('[formId]', 'google-forms: the id of the form (from its edit URL: /forms/d/<formId>/edit)')
    .option('--include-labels <ids>', 'comma list of label ids this inbox takes in (default: GMAIL_INCLUDE_LABELS; empty = all)')
    .option('--exclude-labels <ids>', 'comma list of label ids this inbox leaves out (default: GMAIL_EXCLUDE_LABELS)')
    .action(async (connector: string, formId: string | undefined, opts: { includeLabels?: string; excludeLabels?: string }) => {
      if (connector === 'google-forms') {
        const [{ formPollStore }, { formsConsentUrl }] = await Promise.all([
          import('../../jobs/forms.ts'),
          import('../../connectors/forms/google-forms.oauth.ts'),
        ]);
        const config = cfg();
        const g = config.pipeline.forms.google;
        if (!g)
          throw new UsageError(
            'Google Forms is not configured: set GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET (the OAuth client must also allow the redirect URI <WEBHOOK_PUBLIC_URL>/oauth/google-forms/callback)',
          );
        if (!formId || !/^[A-Za-z0-9_-]{1,128}$/.test(formId))
          throw new UsageError(
            "name the form: activity-journal connect google-forms <formId> (the id in the form's edit URL, /forms/d/<formId>/edit)",
          );
        const url = formsConsentUrl(g, await formPollStore(config).newConsentState(formId));
        if (json()) io.out(JSON.stringify({ url, redirectUrl: g.redirectUrl }));
        else
          io.out(
            `Open this URL as an owner or editor of the form and allow read access to its responses (valid 15 minutes):\n\n${url}\n\nGoogle sends you back to ${g.redirectUrl}; \`npm start\` must be running there.`,
          );
        return;
      }
      if (connector !== 'gmail')
        throw new UsageError(
          `can only connect "gmail" or "google-forms" (got ${JSON.stringify(connector)}): activity-journal connect gmail`,
        );
      if (formId !== undefined)
        throw new UsageError('connect gmail takes no further argument (the mailbox is the account that gives consent)');
      const config = cfg();
      const [{ defaultLabels, gmailInboxStore, gmailOAuthConfig }, { parseLabelList }, { consentUrl }] = await Promise.all([
        import('../../jobs/gmail.ts'),
        import('../../connectors/gmail/inbox-labels.ts'),
        import('../../connectors/gmail/gmail.oauth.ts'),
      ]);
      const oauth = gmailOAuthConfig(config);
      if (!oauth)
        throw new UsageError(
          'Gmail is not configured: set GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET (an OAuth client of type "Web application" whose redirect URI is <WEBHOOK_PUBLIC_URL>/oauth/gmail/callback)',
        );
      const defaults = defaultLabels(config);
      const labels =
        opts.includeLabels === undefined && opts.excludeLabels === undefined
          ? undefined
          : {
              include: opts.includeLabels === undefined ? defaults.include : parseLabelList(opts.includeLabels),
              exclude: opts.excludeLabels === undefined ? defaults.exclude : parseLabelList(opts.excludeLabels),
            };
      const url = consentUrl(oauth, await gmailInboxStore(config).newConsentState(labels));
      if (json()) io.out(JSON.stringify({ url, redirectUrl: oauth.redirectUrl }));
      else
        io.out(
          `Open this URL as the mailbox owner and allow read access (valid 15 minutes):\n\n${url}\n\nGoogle sends you back to ${oauth.redirectUrl}; \`npm start\` must be running there.`,
        );
    });

  program
    .command('gmail')
    .description('settings of a connected Gmail inbox')
    .command('labels')
    .description('show or change which labels an inbox takes in (changes are journaled as state.changed)')
    .argument('<mailbox>')
    .option('--include <ids>', 'comma list of label ids to take in ("" = every label)')
    .option('--exclude <ids>', 'comma list of label ids to leave out ("" = none)')
    .option('--defaults', "drop the inbox's own settings: use GMAIL_INCLUDE_LABELS / GMAIL_EXCLUDE_LABELS")
    .action(async (mailbox: string, opts: { include?: string; exclude?: string; defaults?: boolean }) => {
      const config = cfg();
      if (!config.pipeline.gmail) throw new UsageError('Gmail is not configured: set GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET');
      const [{ defaultLabels, gmailInboxStore }, { changeInboxLabels, effectiveLabels, parseLabelList }] = await Promise.all([
        import('../../jobs/gmail.ts'),
        import('../../connectors/gmail/inbox-labels.ts'),
      ]);
      const store = gmailInboxStore(config);
      if (!store.record(mailbox)) throw new UsageError(`${mailbox} is not a connected inbox (activity-journal status lists them)`);
      if (opts.defaults && (opts.include !== undefined || opts.exclude !== undefined))
        throw new UsageError('--defaults cannot be combined with --include or --exclude');
      const show = (l: EffectiveLabels): string =>
        `include ${l.include.length > 0 ? l.include.join(',') : '(every label)'}; exclude ${l.exclude.length > 0 ? l.exclude.join(',') : '(none)'} (${l.source === 'inbox' ? "the inbox's own" : 'the defaults'})`;
      const defaults = defaultLabels(config);
      if (opts.include === undefined && opts.exclude === undefined && !opts.defaults) {
        const current = effectiveLabels(store, mailbox, defaults);
        io.out(json() ? JSON.stringify({ mailbox, ...current }) : `${mailbox}: ${show(current)}`);
        return;
      }
      const change = opts.defaults
        ? { reset: true }
        : {
            ...(opts.include !== undefined ? { include: parseLabelList(opts.include) } : {}),
            ...(opts.exclude !== undefined ? { exclude: parseLabelList(opts.exclude) } : {}),
          };
      const r = await withJournal(config, (journal) =>
        changeInboxLabels({ store, journal, defaults, actor: 'operator:cli' }, mailbox, change),
      );
      if (json()) io.out(JSON.stringify({ mailbox, changed: r.changed, from: r.before, to: r.after }));
      else
        io.out(
          r.changed ? `${mailbox}: was ${show(r.before)}\n${mailbox}: now ${show(r.after)}` : `${mailbox}: unchanged, ${show(r.after)}`,
        );
    });

  program
    .command('sync')
    .description('sync a connected inbox now, in the foreground (a backfill shows a progress bar)')
    .argument('<connector>', 'gmail, hubspot-forms or google-forms')
    .argument('<account>', 'the mailbox, HubSpot form guid or Google form id')
    .action(async (connector: string, mailbox: string) => {
      const [{ startPipeline }, { formPollStore }, { gmailInboxStore }] = await Promise.all([
        import('../../jobs/main.ts'),
        import('../../jobs/forms.ts'),
        import('../../jobs/gmail.ts'),
      ]);
      if (connector === 'hubspot-forms' || connector === 'google-forms') {
        const config = cfg();
        if (connector === 'hubspot-forms' && !config.pipeline.forms.hubspot?.forms.some((f) => f.guid === mailbox))
          throw new UsageError(`${mailbox} is not a polled HubSpot form: add it to HUBSPOT_FORMS_POLL (and set HUBSPOT_ACCESS_TOKEN)`);
        if (connector === 'google-forms' && (!config.pipeline.forms.google || !formPollStore(config).grant(mailbox)))
          throw new UsageError(`${mailbox} is not a connected Google form: activity-journal connect google-forms ${mailbox}`);
        const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, 'activity-journal');
        const report = await withJournal(config, async (journal) => {
          const runtime = await startPipeline(config, logger, { journal, queues: [] });
          try {
            return await runtime.forms.poll(connector, mailbox);
          } finally {
            await runtime.close();
          }
        });
        if (json()) io.out(JSON.stringify(report));
        else
          io.out(
            `${connector} ${mailbox}: ${report.mode}; ${report.seen} submission(s) seen, ${report.accepted} new, ${report.duplicates} already journaled, ${report.excluded} excluded by rule; cursor ${report.cursor ?? '-'}`,
          );
        exitCode = report.mode === 'needs-consent' ? 1 : 0;
        return;
      }
      if (connector !== 'gmail')
        throw new UsageError(`can only sync "gmail", "hubspot-forms" or "google-forms" (got ${JSON.stringify(connector)})`);
      const config = cfg();
      if (!config.pipeline.gmail) throw new UsageError('Gmail is not configured: set GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET');
      if (!gmailInboxStore(config).record(mailbox))
        throw new UsageError(`${mailbox} is not a connected inbox (activity-journal status lists them)`);
      const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, 'activity-journal');
      const report = await withJournal(config, async (journal) => {
        const runtime = await startPipeline(config, logger, { journal, queues: [] });
        try {
          const bar = json() ? { update() {}, done() {} } : progressBar(`syncing ${mailbox}`);
          const r = await (runtime.gmail as NonNullable<typeof runtime.gmail>).sync(mailbox, (d, t) => bar.update(d, t));
          bar.done();
          return r;
        } finally {
          await runtime.close();
        }
      });
      if (json()) io.out(JSON.stringify(report));
      else
        io.out(
          `${mailbox}: ${report.mode}; ${report.seen} message(s) seen, ${report.accepted} new, ${report.duplicates} already journaled, ${report.excluded} excluded by rule, ${report.skippedByLabel} skipped by label; cursor ${report.cursor ?? '-'}`,
        );
      exitCode = report.mode === 'needs-consent' ? 1 : 0;
    });

  program
    .command('reconcile')
    .description('coverage of a connected inbox against the journal (percent, missing ids, gap windows); takes the missing in')
    .argument('<connector>', 'gmail')
    .argument('<mailbox>')
    .option('--since <date>', 'from this day (YYYY-MM-DD; default: GMAIL_BACKFILL_DAYS ago)')
    .option('--report-only', 'report, do not take the missing messages in')
    .action(async (connector: string, mailbox: string, opts: { since?: string; reportOnly?: boolean }) => {
      if (connector !== 'gmail') throw new UsageError(`can only reconcile "gmail" (got ${JSON.stringify(connector)})`);
      const [{ startPipeline }, { gmailInboxStore }] = await Promise.all([import('../../jobs/main.ts'), import('../../jobs/gmail.ts')]);
      const config = cfg();
      if (!config.pipeline.gmail) throw new UsageError('Gmail is not configured: set GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET');
      const since = opts.since
        ? new Date(`${opts.since}T00:00:00Z`)
        : new Date(Date.now() - config.pipeline.gmail.backfillDays * 86_400_000);
      if (Number.isNaN(since.getTime())) throw new UsageError(`--since must be a day like 2026-11-01 (got ${JSON.stringify(opts.since)})`);
      if (!gmailInboxStore(config).record(mailbox))
        throw new UsageError(`${mailbox} is not a connected inbox (activity-journal status lists them)`);
      const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, 'activity-journal');
      const report = await withJournal(config, async (journal) => {
        const runtime = await startPipeline(config, logger, { journal, queues: [] });
        try {
          const bar = json() ? { update() {}, done() {} } : progressBar('reconciling');
          const r = await (runtime.gmail as NonNullable<typeof runtime.gmail>).reconcile(mailbox, since, opts.reportOnly === true, (d, t) =>
            bar.update(d, t),
          );
          bar.done();
          return r;
        } finally {
          await runtime.close();
        }
      });
      if (json()) io.out(JSON.stringify(report));
      else {
        io.out(
          `${mailbox} since ${report.since.slice(0, 10)}: ${report.providerMessages} message(s) at Gmail, ${report.journaled} journaled, ${report.excludedByRule} excluded by rule: coverage ${report.coveragePercent}%`,
        );
        for (const w of report.gapWindows) io.out(`  gap: ${w.messages} message(s) from ${w.from} to ${w.to}`);
        if (report.missing.length > 0)
          io.out(
            opts.reportOnly
              ? `  missing (not taken in: --report-only): ${report.missing.join(', ')}`
              : `  taken in now: ${report.ingested}`,
          );
      }
      exitCode = report.missing.length === 0 || !opts.reportOnly ? 0 : 1;
    });

  program
    .command('crm')
    .description('the HubSpot mirror: `crm drift` compares the journal with HubSpot')
    .argument('<what>', 'drift')
    .option('--since <date>', 'only activities mirrored since this day (YYYY-MM-DD) or time')
    .option('--repair', 'write back what is missing or changed (journaled as crm.write and state.changed)')
    .action(async (what: string, opts: { since?: string; repair?: boolean }) => {
      if (what !== 'drift')
        throw new UsageError(`unknown crm command ${JSON.stringify(what)}: activity-journal crm drift [--since DAY] [--repair]`);
      const config = cfg();
      const { driftLines, parseSince, runCrmDrift } = await import('./crm-drift.ts');
      const since = parseSince(opts.since);
      const report = await runCrmDrift(config, createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, 'activity-journal'), {
        since,
        repair: opts.repair === true,
      });
      if (json()) io.out(JSON.stringify(report));
      else for (const line of driftLines(report, opts.repair === true)) io.out(line);
      exitCode = report.items.every((i) => i.repaired) ? 0 : 1;
    });

  program
    .command('status')
    .description('connected inboxes (health, last sync, cursor) and the journal (size, newest checkpoint)')
    .action(async () => {
      const config = cfg();
      const [{ gmailInboxStore }, { formPollStore }] = await Promise.all([import('../../jobs/gmail.ts'), import('../../jobs/forms.ts')]);
      const inboxes = config.pipeline.gmail
        ? gmailInboxStore(config)
            .list()
            .map((i) => ({
              connector: 'gmail',
              mailbox: i.mailbox,
              status: i.status,
              lastSyncAt: i.lastSyncAt,
              cursor: i.historyId,
              connectedAt: i.connectedAt,
            }))
        : [];
      const forms = (existsSync(join(config.pipeline.stateDir, 'form-polls.enc')) ? formPollStore(config).list() : []).map((f) => ({
        connector: f.key.split('/')[0] ?? '',
        formId: f.key.split('/').slice(1).join('/'),
        status: f.status,
        lastPollAt: f.lastPollAt,
        cursor: f.cursor,
      }));
      // Size and checkpoint need no key store: the journal is read as stored. Not there is "not created yet";
      // there but unreadable is said as such (and exits 1), not mistaken for a journal not created yet.
      let journal: { entries: number; checkpoint: number | null } | null = null;
      let unreadable: string | null = null;
      if (existsSync(config.journal.path)) {
        try {
          const reader = JournalReader.open(config.journal.path, { check: true });
          try {
            journal = { entries: reader.size(), checkpoint: reader.latestCheckpoint()?.checkpoint.treeSize ?? null };
          } finally {
            reader.close();
          }
        } catch (err) {
          unreadable = (err as Error).message;
        }
      }
      // The check reads the journal too: not of one that cannot be read.
      const keyStore = unreadable === null ? keyStoreCheck(config) : null;
      if (json()) {
        io.out(JSON.stringify({ journal, ...(unreadable !== null ? { journalError: unreadable } : {}), inboxes, forms, keyStore }));
      } else {
        if (journal)
          io.out(
            `journal ${config.journal.path}: ${journal.entries} entr${journal.entries === 1 ? 'y' : 'ies'}; newest signed checkpoint: ${journal.checkpoint === null ? 'none yet' : `size ${journal.checkpoint}`}`,
          );
        else
          io.out(
            unreadable !== null
              ? `journal ${config.journal.path}: CANNOT BE READ: ${unreadable}`
              : `journal ${config.journal.path}: not created yet`,
          );
        if (!config.pipeline.gmail) io.out('gmail: not configured (GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET)');
        else if (inboxes.length === 0) io.out('gmail: no inbox connected (activity-journal connect gmail)');
        for (const i of inboxes)
          io.out(
            `gmail ${i.mailbox}: ${i.status === 'ok' ? 'ok' : 'NEEDS CONSENT (run activity-journal connect gmail)'}; last sync ${i.lastSyncAt ?? 'never'}; history id ${i.cursor ?? '-'}`,
          );
        for (const f of forms)
          io.out(
            `${f.connector} ${f.formId}: ${f.status === 'ok' ? 'ok' : f.connector === 'google-forms' ? `NEEDS CONSENT (run activity-journal connect google-forms ${f.formId})` : 'TOKEN REFUSED (set a valid HUBSPOT_ACCESS_TOKEN)'}; last poll ${f.lastPollAt ?? 'never'}; cursor ${f.cursor ?? '-'}`,
          );
        if (keyStore) for (const line of describeCheck(config, keyStore)) io.out(line);
      }
      exitCode =
        unreadable !== null || inboxes.some((i) => i.status !== 'ok') || forms.some((f) => f.status !== 'ok') || keyStore?.ok === false
          ? 1
          : 0;
    });

  program
    .command('import')
    .description('import call records from a CSV file (format: connectors/calls/README.md)')
    .argument('<what>', 'what to import: calls')
    .argument('<file>', 'the CSV file')
    .action(async (what: string, file: string) => {
      if (what !== 'calls')
        throw new UsageError(`can only import "calls" (got ${JSON.stringify(what)}): activity-journal import calls FILE.csv`);
      const config = cfg();
      const { importCalls } = await import('./import-calls.ts');
      const report = await importCalls(
        config,
        file,
        createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, 'activity-journal'),
        json(),
      );
      if (json()) io.out(JSON.stringify(report));
      else {
        for (const e of report.errors) io.out(`line ${e.line}: ${e.message}`);
        io.out(
          `${report.rows} row(s): ${report.accepted} imported, ${report.duplicates} already in the journal, ${report.excluded} excluded by rule, ${report.errors.length} refused`,
        );
      }
      exitCode = report.errors.length === 0 ? 0 : 1;
    });

  registerAuditCommands(program, {
    config: cfg,
    json,
    out: (line) => io.out(line),
    err: (line) => io.err(line),
    setExit: (code) => void (exitCode = code),
  });
  registerPrivacyCommands(program, {
    config: cfg,
    json,
    out: (line) => io.out(line),
    err: (line) => io.err(line),
    setExit: (code) => void (exitCode = code),
  });
  registerPrivacyScanCommands(program, {
    config: cfg,
    json,
    out: (line) => io.out(line),
    err: (line) => io.err(line),
    setExit: (code) => void (exitCode = code),
  });

  program
    .command('verify')
    .description('recompute every hash, the chain and the Merkle root; check every checkpoint and anchor')
    .option('--anchors <dir>', 'a directory anchor whose checkpoints the journal must be consistent with (repeatable)', collect, [])
    .option('--progress-lines', 'report progress as `progress DONE/TOTAL` lines on stderr (for the audit UI)')
    .option('--include-archives', 'also verify the archived segments (fetched from their store), from seq 0 on')
    .action(async (opts: { anchors: string[]; progressLines?: boolean; includeArchives?: boolean }) => {
      exitCode = await verifyCommand(cfg(), opts.anchors, json(), opts.includeArchives === true, opts.progressLines === true);
    });

  program
    .command('archive')
    .description('seal closed months and move them to the archive store (read back and verified before they leave hot storage)')
    .option('--dry-run', 'say what would be sealed and archived; write nothing')
    .action(async (opts: { dryRun?: boolean }) => {
      const { archiveCommand } = await import('./archive.ts');
      exitCode = await archiveCommand(cfg(), { dryRun: opts.dryRun === true, json: json() }, io);
    });

  const retention = program.command('retention').description('retention classes and policy');
  retention
    .command('report')
    .description('per class: hot entries, size, oldest entry and when it expires; archived segments; the next seal')
    .action(async () => {
      const { retentionReportCommand } = await import('./archive.ts');
      exitCode = await retentionReportCommand(cfg(), json(), io);
    });

  program
    .command('trace')
    .description('the entries of one correlation, in order')
    .argument('<correlationId>')
    .action(async (correlationId: string) => {
      const reader = openReader(cfg());
      try {
        const { attachArchives } = await import('./archive.ts');
        await attachArchives(cfg(), reader);
        const entries = reader.byCorrelation(correlationId);
        if (json()) for (const e of entries) io.out(JSON.stringify(e));
        else printTrace(correlationId, entries);
        if (entries.length === 0) exitCode = 1;
      } finally {
        reader.close();
      }
    });

  program
    .command('prove')
    .description('an inclusion proof of one entry against the newest checkpoint (JSON)')
    .argument('<seq>', 'entry seq')
    .option('--out <file>', 'write the proof to a file instead of stdout')
    .option('--include-payload', 'include the payload (it may hold personal data)')
    .action((seqText: string, opts: { out?: string; includePayload?: boolean }) => {
      const seq = wholeNumber(seqText, 'seq');
      const reader = openReader(cfg());
      try {
        // A seq the journal never had is a misuse (exit 2), not a proof that failed.
        const size = reader.size();
        if (seq >= size)
          throw new UsageError(
            `no entry at seq ${seq}: the journal holds seq 0 to ${size - 1} (activity-journal trace <correlationId> shows the seqs of a correlation)`,
          );
        const bundle = reader.proveInclusion(seq, { includePayload: opts.includePayload === true });
        const text = JSON.stringify(bundle, null, 2) + '\n';
        if (opts.out) {
          writeFileSync(opts.out, text);
          io.err(`inclusion proof of seq ${seq} against checkpoint of size ${bundle.treeSize} written to ${opts.out}`);
        } else write(process.stdout, terminalSafe(text));
      } finally {
        reader.close();
      }
    });

  program
    .command('verify-proof')
    .description('check an inclusion proof offline (exit 0 valid, 1 invalid)')
    .argument('<file>')
    .option('--public-key <vkey>', "the journal's checkpoint key to trust (from `activity-journal public-key`)")
    .action((file: string, opts: { publicKey?: string }) => {
      let bundle: unknown;
      try {
        bundle = JSON.parse(readFileSync(file, 'utf8')) as unknown;
      } catch (err) {
        throw new UsageError(`cannot read a proof from ${file}: ${(err as Error).message}`);
      }
      let pinned: Verifier | null = null;
      if (opts.publicKey) {
        try {
          pinned = parseVerifierKey(opts.publicKey);
        } catch (err) {
          throw new UsageError(`--public-key: ${(err as Error).message}`);
        }
      }
      const check = checkInclusionBundle(bundle, pinned);
      if (json()) io.out(JSON.stringify(check));
      else if (check.ok) {
        io.out(`ok: entry seq ${check.seq} is included in the signed checkpoint of ${check.treeSize} entries`);
        if (!check.keyPinned)
          io.err('note: the signature was checked against the key named in the file; pass --public-key to pin the key you trust');
      } else io.out(`invalid proof: ${check.reason}`);
      exitCode = check.ok ? 0 : 1;
    });

  program
    .command('checkpoint')
    .description('write a signed checkpoint now and publish it to the anchors')
    .action(async () => {
      const config = cfg();
      const r = await withWriterOrService(
        config,
        async (writer) => {
          const c = await writer.checkpoint();
          return { seq: c.seq, treeSize: c.checkpoint.treeSize, note: c.note, created: c.created };
        },
        (client) => client.checkpoint(),
      );
      if (json()) io.out(JSON.stringify(r));
      else
        io.out(
          `${r.created ? 'checkpoint written' : 'no new entries; newest checkpoint re-published'}: size ${r.treeSize} (entry seq ${r.seq})\n\n${r.note}`,
        );
    });

  program
    .command('public-key')
    .description("print the journal's checkpoint verifier key (C2SP signed-note format)")
    .action(() => {
      const reader = openReader(cfg());
      try {
        const genesis = reader.bySeq(0);
        if (!genesis || genesis.kind !== 'journal.created')
          throw new JournalFileError('UNREADABLE', 'the journal has no journal.created entry');
        const p = genesis.payload as { verifierKey: string; origin: string };
        io.out(json() ? JSON.stringify({ verifierKey: p.verifierKey, origin: p.origin }) : p.verifierKey);
      } finally {
        reader.close();
      }
    });

  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof UsageError || err instanceof ConfigError || err instanceof RulesetError) {
      io.err(`activity-journal: ${err.message}`);
      return 2;
    }
    if (err instanceof JournalFileError) {
      io.err(`activity-journal: ${err.message}`);
      return 2;
    }
    io.err(`activity-journal: ${(err as Error).name}: ${(err as Error).message}`);
    return 1;
  }
}

/** Runs a shutdown under a deadline; exit code 0 when it finished cleanly. */
async function stopWithin(signal: string, close: () => Promise<void>, deadlineMs: number, logger: Logger): Promise<number> {
  logger.info({ signal }, 'shutting down');
  const deadline = setTimeout(() => {
    logger.error({ deadlineMs }, 'shutdown took longer than its deadline; exiting');
    process.exit(1);
  }, deadlineMs + 5_000);
  deadline.unref();
  let code = 0;
  try {
    await close();
  } catch (err) {
    logger.error({ err: (err as Error).message }, 'shutdown failed');
    code = 1;
  } finally {
    clearTimeout(deadline);
  }
  // bin/activity-journal.mjs ends the process once output has drained, whatever idle handle a library keeps.
  return code;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function wholeNumber(text: string, name: string): number {
  if (!/^\d{1,15}$/.test(text)) throw new UsageError(`${name} must be a whole number >= 0, got ${JSON.stringify(text)}`);
  return Number(text);
}

function openReader(config: Config): JournalReader {
  return attachConfiguredPrivacy(JournalReader.open(config.journal.path), config);
}

const APPEND_GROUP = 1000;

async function appendFromStdin(config: Config, service: string | boolean | undefined, asJson: boolean): Promise<number> {
  if (process.stdin.isTTY) throw new UsageError('append reads JSON lines from stdin, e.g.: activity-journal append < entries.jsonl');
  let refused = 0;
  let appended = 0;
  let duplicates = 0;
  let total = 0;
  let transactions = null as number | null; // set inside a callback: keep TypeScript from narrowing it to null
  const run = async (append: (input: unknown) => Promise<AppendResult>): Promise<void> => {
    const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
    let group: { n: number; text: string }[] = [];
    let n = 0;
    const flush = async (): Promise<void> => {
      // One group's appends are issued together, so the writer commits them in one transaction.
      const settled = await Promise.allSettled(
        group.map(({ text }) => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch (err) {
            return Promise.reject(new Error(`not JSON: ${(err as Error).message}`));
          }
          return append(parsed);
        }),
      );
      settled.forEach((s, i) => {
        const line = (group[i] as { n: number }).n;
        total++;
        if (s.status === 'fulfilled') {
          const { entry, duplicate } = s.value;
          if (duplicate) duplicates++;
          else appended++;
          io.out(
            asJson
              ? JSON.stringify({ line, ok: true, seq: entry.seq, id: entry.id, duplicate })
              : `line ${line}: ${duplicate ? 'duplicate of' : 'appended as'} seq ${entry.seq}`,
          );
        } else {
          refused++;
          const message = (s.reason as Error).message;
          io.out(asJson ? JSON.stringify({ line, ok: false, error: message }) : `line ${line}: refused: ${message}`);
        }
      });
      group = [];
    };
    for await (const text of lines) {
      n++;
      if (text.trim() === '') continue;
      group.push({ n, text });
      if (group.length >= APPEND_GROUP) await flush();
    }
    await flush();
  };
  if (service !== undefined && service !== false) {
    const url = typeof service === 'string' ? service : config.service.url;
    const client = serviceClient({ ...config, service: { ...config.service, url } });
    if (!client)
      throw new UsageError("--service needs credentials: set JOURNAL_APPEND_TOKEN and JOURNAL_READ_TOKEN, or run on the service's machine");
    try {
      await run((input) => client.append(input as never));
    } finally {
      await client.close();
    }
  } else {
    await withWriterOrService(
      config,
      async (writer) => {
        await run((input) => writer.append(input as never));
        transactions = writer.stats.transactions;
      },
      (client) => run((input) => client.append(input as never)),
    );
  }
  const summary = { lines: total, appended, duplicates, refused, ...(transactions !== null ? { transactions } : {}) };
  io.err(
    asJson
      ? JSON.stringify({ summary })
      : `${appended} appended, ${duplicates} duplicate(s), ${refused} refused${transactions !== null ? ` (${transactions} transactions)` : ''}${refused > 0 ? '; a refused line affects no other line' : ''}`,
  );
  return refused === 0 ? 0 : 1;
}

async function verifyCommand(
  config: Config,
  anchorDirs: string[],
  asJson: boolean,
  includeArchives: boolean,
  progressLines = false,
): Promise<number> {
  // Verification needs the journal alone (no master key): hashes commit to sealed payloads as stored. It
  // writes nothing, not even SQLite's side files (`check`).
  const reader = JournalReader.open(config.journal.path, { check: true });
  try {
    const archives = includeArchives ? await (await import('./archive.ts')).attachArchives(config, reader) : undefined;
    const genesis = reader.bySeq(0);
    const origin = genesis && genesis.kind === 'journal.created' ? (genesis.payload as { origin: string }).origin : null;
    // Explicit --anchors, else the configured directory anchors that exist.
    const dirs =
      anchorDirs.length > 0
        ? anchorDirs
        : config.journal.anchorDirs.filter((d) => origin !== null && existsSync(join(d, originSlug(origin))));
    const notes: AnchoredNote[] = [];
    let pinned: Verifier | null = null;
    for (const dir of anchorDirs) if (!existsSync(dir)) throw new UsageError(`--anchors ${dir}: no such directory`);
    for (const dir of dirs) {
      const found = origin === null ? [] : readAnchoredNotes(dir, origin);
      const key = origin === null ? null : readPinnedKey(dir, origin);
      // The writer pins its key in every directory anchor when it opens, so an explicit anchor that knows
      // nothing of this journal's origin means the file was replaced (its origin is the forger's) or the
      // directory is the wrong one. Either way the journal is not shown consistent with it.
      if (found.length === 0 && key === null && anchorDirs.includes(dir)) {
        return fail(
          asJson,
          0,
          `anchor mismatch: ${dir} holds no checkpoint and no pinned key for this journal's origin ${origin ?? '(none: no journal.created entry)'}; the journal file was replaced, or this is not its anchor directory`,
        );
      }
      for (const note of found) notes.push({ source: `${dir} (size ${note.split('\n')[1] ?? '?'})`, note });
      if (key !== null) pinned = parseVerifierKey(key);
    }
    const bar = progressLines ? progressLinesTo(process.stderr) : asJson ? { update() {}, done() {} } : progressBar('verifying');
    const report = verifyJournal(reader.connection, {
      sealKey: existsSync(config.journal.keysDir) ? readSealKey(config.journal.keysDir) : null,
      verifier: pinned,
      anchoredNotes: notes,
      onProgress: (d, t) => bar.update(d, t),
      ...(archives ? { archives } : {}),
    });
    bar.done();
    // A journal that verifies but whose key store lost keys it needs (or was rolled back over an erasure) is reported, loudly.
    const keys = keyStoreCheck(config);
    if (asJson) io.out(JSON.stringify({ ...report, keyStore: keys }));
    else if (report.ok) {
      io.out(
        `ok: ${report.entries} entries intact (payload hashes, leaves, chain, Merkle tree${report.sealsChecked ? ', seals' : ''}); ${report.checkpointsChecked} signed checkpoint(s) match; ${report.anchorsChecked} anchored checkpoint(s) consistent`,
      );
      io.out(`root ${report.rootHash}\nchain head ${report.chainHead}`);
      if (!report.sealsChecked) io.err('note: seals not checked (no seal key in the keys directory)');
      if (dirs.length === 0) io.err('note: no anchors checked; pass --anchors DIR to catch truncation and file replacement');
      if (report.verifiedFrom > 0)
        io.err(
          `note: seq 1..${report.verifiedFrom - 1} are in archived segments, not checked now; pass --include-archives to verify them too`,
        );
      for (const line of describeCheck(config, keys)) io.out(line);
    } else {
      if (report.firstBadSeq !== null) io.out(`first bad entry: seq ${report.firstBadSeq}`);
      io.out(`reason: ${report.reason}`);
      for (const line of describeCheck(config, keys)) io.out(line);
    }
    return report.ok && keys.ok ? 0 : 1;
  } finally {
    reader.close();
  }
}

function progressLinesTo(stream: NodeJS.WriteStream): { update(done: number, total: number): void; done(): void } {
  let last = 0;
  return {
    update(done, total) {
      const now = Date.now();
      if (now - last < 200 && done < total) return;
      last = now;
      write(stream, `progress ${done}/${total}\n`);
    },
    done() {},
  };
}

function fail(asJson: boolean, firstBadSeq: number, reason: string): number {
  if (asJson) io.out(JSON.stringify({ ok: false, firstBadSeq, reason }));
  else io.out(`first bad entry: seq ${firstBadSeq}\nreason: ${reason}`);
  return 1;
}

function printTrace(correlationId: string, entries: readonly JournalEntry[]): void {
  if (entries.length === 0) {
    io.out(`no entries for correlation ${correlationId}`);
    return;
  }
  io.out(`correlation ${correlationId}: ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}`);
  for (const e of entries) {
    // One line each: a newline inside a value (a subject, an actor) must not forge a line of its own.
    io.out(
      terminalSafe(
        `#${e.seq}  ${e.recordedAt}  ${e.kind}  (source ${e.source}, actor ${e.actor}${e.causationId ? `, caused by ${e.causationId}` : ''})`,
        { singleLine: true },
      ),
    );
    io.out(`      ${terminalSafe(describeEntry(e), { singleLine: true })}`);
  }
}
