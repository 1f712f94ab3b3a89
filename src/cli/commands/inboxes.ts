/**
 * Connected inboxes: `connect` (the Google consent URL of a Gmail inbox or a Google form), `gmail labels` (which
 * labels an inbox takes in), `sync` (one inbox or form now, in the foreground) and `reconcile` (a Gmail inbox's
 * coverage against the journal). Their connectors load when the command runs.
 */
import type { Command } from 'commander';
import type { Config } from '../../config/config.ts';
import type { PipelineRuntime } from '../../../jobs/main.ts';
import type { EffectiveLabels } from '../../../connectors/gmail/inbox-labels.ts';
import type { CliContext } from '../context.ts';
import { withJournal } from '../journal-access.ts';
import { progressBar } from '../progress.ts';
import { UsageError } from '../usage-error.ts';

interface ConnectOpts {
  includeLabels?: string;
  excludeLabels?: string;
}

interface LabelsOpts {
  include?: string;
  exclude?: string;
  defaults?: boolean;
}

interface ReconcileOpts {
  since?: string;
  reportOnly?: boolean;
}

const GMAIL_NOT_CONFIGURED = 'Gmail is not configured: set GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET';

export function registerInboxCommands(program: Command, ctx: CliContext): void {
  program
    .command('connect')
    .description('connect an inbox: prints the Google consent URL (the answer comes back to the web server)')
    .argument('<connector>', 'gmail or google-forms')
    .argument('[formId]', 'google-forms: the id of the form (from its edit URL: /forms/d/<formId>/edit)')
    .option('--include-labels <ids>', 'comma list of label ids this inbox takes in (default: GMAIL_INCLUDE_LABELS; empty = all)')
    .option('--exclude-labels <ids>', 'comma list of label ids this inbox leaves out (default: GMAIL_EXCLUDE_LABELS)')
    .action((connector: string, formId: string | undefined, opts: ConnectOpts) => {
      if (connector === 'google-forms') return connectGoogleForm(ctx, formId);
      if (connector !== 'gmail')
        throw new UsageError(
          `can only connect "gmail" or "google-forms" (got ${JSON.stringify(connector)}): activity-journal connect gmail`,
        );
      if (formId !== undefined)
        throw new UsageError('connect gmail takes no further argument (the mailbox is the account that gives consent)');
      return connectGmail(ctx, opts);
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
    .action((mailbox: string, opts: LabelsOpts) => gmailLabels(ctx, mailbox, opts));

  program
    .command('sync')
    .description('sync a connected inbox now, in the foreground (a backfill shows a progress bar)')
    .argument('<connector>', 'gmail, hubspot-forms or google-forms')
    .argument('<account>', 'the mailbox, HubSpot form guid or Google form id')
    .action((connector: string, account: string) => {
      if (connector === 'hubspot-forms' || connector === 'google-forms') return syncForm(ctx, connector, account);
      if (connector !== 'gmail')
        throw new UsageError(`can only sync "gmail", "hubspot-forms" or "google-forms" (got ${JSON.stringify(connector)})`);
      return syncGmail(ctx, account);
    });

  program
    .command('reconcile')
    .description('coverage of a connected inbox against the journal (percent, missing ids, gap windows); takes the missing in')
    .argument('<connector>', 'gmail')
    .argument('<mailbox>')
    .option('--since <date>', 'from this day (YYYY-MM-DD; default: GMAIL_BACKFILL_DAYS ago)')
    .option('--report-only', 'report, do not take the missing messages in')
    .action((connector: string, mailbox: string, opts: ReconcileOpts) => reconcile(ctx, connector, mailbox, opts));
}

async function connectGoogleForm(ctx: CliContext, formId: string | undefined): Promise<void> {
  const [{ connectorStateSettings }, { openFormPollStore }, { formsConsentUrl }] = await Promise.all([
    import('../../../jobs/settings.ts'),
    import('../../../connectors/forms/forms.connector.ts'),
    import('../../../connectors/forms/google-forms.oauth.ts'),
  ]);
  const config = ctx.config();
  const g = config.pipeline.forms.google;
  if (!g)
    throw new UsageError(
      'Google Forms is not configured: set GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET (the OAuth client must also allow the redirect URI <WEBHOOK_PUBLIC_URL>/oauth/google-forms/callback)',
    );
  if (!formId || !/^[A-Za-z0-9_-]{1,128}$/.test(formId))
    throw new UsageError(
      "name the form: activity-journal connect google-forms <formId> (the id in the form's edit URL, /forms/d/<formId>/edit)",
    );
  const url = formsConsentUrl(g, await openFormPollStore(connectorStateSettings(config)).newConsentState(formId));
  if (ctx.json()) ctx.out(JSON.stringify({ url, redirectUrl: g.redirectUrl }));
  else
    ctx.out(
      `Open this URL as an owner or editor of the form and allow read access to its responses (valid 15 minutes):\n\n${url}\n\nGoogle sends you back to ${g.redirectUrl}; \`npm start\` must be running there.`,
    );
}

async function connectGmail(ctx: CliContext, opts: ConnectOpts): Promise<void> {
  const config = ctx.config();
  const [{ gmailSettings }, { openInboxStore }, { parseLabelList }, { consentUrl }] = await Promise.all([
    import('../../../jobs/settings.ts'),
    import('../../../connectors/gmail/gmail.connector.ts'),
    import('../../../connectors/gmail/inbox-labels.ts'),
    import('../../../connectors/gmail/gmail.oauth.ts'),
  ]);
  const gmail = gmailSettings(config);
  if (!gmail)
    throw new UsageError(
      'Gmail is not configured: set GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET (an OAuth client of type "Web application" whose redirect URI is <WEBHOOK_PUBLIC_URL>/oauth/gmail/callback)',
    );
  const { oauth, defaultLabels: defaults } = gmail;
  const labels =
    opts.includeLabels === undefined && opts.excludeLabels === undefined
      ? undefined
      : {
          include: opts.includeLabels === undefined ? defaults.include : parseLabelList(opts.includeLabels),
          exclude: opts.excludeLabels === undefined ? defaults.exclude : parseLabelList(opts.excludeLabels),
        };
  const url = consentUrl(oauth, await openInboxStore(gmail).newConsentState(labels));
  if (ctx.json()) ctx.out(JSON.stringify({ url, redirectUrl: oauth.redirectUrl }));
  else
    ctx.out(
      `Open this URL as the mailbox owner and allow read access (valid 15 minutes):\n\n${url}\n\nGoogle sends you back to ${oauth.redirectUrl}; \`npm start\` must be running there.`,
    );
}

const showLabels = (l: EffectiveLabels): string =>
  `include ${l.include.length > 0 ? l.include.join(',') : '(every label)'}; exclude ${l.exclude.length > 0 ? l.exclude.join(',') : '(none)'} (${l.source === 'inbox' ? "the inbox's own" : 'the defaults'})`;

async function gmailLabels(ctx: CliContext, mailbox: string, opts: LabelsOpts): Promise<void> {
  const config = ctx.config();
  const [{ gmailSettings }, { openInboxStore }, { changeInboxLabels, effectiveLabels, parseLabelList }] = await Promise.all([
    import('../../../jobs/settings.ts'),
    import('../../../connectors/gmail/gmail.connector.ts'),
    import('../../../connectors/gmail/inbox-labels.ts'),
  ]);
  const gmail = gmailSettings(config);
  if (!gmail) throw new UsageError(GMAIL_NOT_CONFIGURED);
  const store = openInboxStore(gmail);
  if (!store.record(mailbox)) throw new UsageError(`${mailbox} is not a connected inbox (activity-journal status lists them)`);
  if (opts.defaults && (opts.include !== undefined || opts.exclude !== undefined))
    throw new UsageError('--defaults cannot be combined with --include or --exclude');
  const defaults = gmail.defaultLabels;
  if (opts.include === undefined && opts.exclude === undefined && !opts.defaults) {
    const current = effectiveLabels(store, mailbox, defaults);
    ctx.out(ctx.json() ? JSON.stringify({ mailbox, ...current }) : `${mailbox}: ${showLabels(current)}`);
    return;
  }
  const change = opts.defaults
    ? { reset: true }
    : {
        ...(opts.include !== undefined ? { include: parseLabelList(opts.include) } : {}),
        ...(opts.exclude !== undefined ? { exclude: parseLabelList(opts.exclude) } : {}),
      };
  const r = await withJournal(config, (journal) => changeInboxLabels({ store, journal, defaults, actor: 'operator:cli' }, mailbox, change));
  if (ctx.json()) ctx.out(JSON.stringify({ mailbox, changed: r.changed, from: r.before, to: r.after }));
  else
    ctx.out(
      r.changed
        ? `${mailbox}: was ${showLabels(r.before)}\n${mailbox}: now ${showLabels(r.after)}`
        : `${mailbox}: unchanged, ${showLabels(r.after)}`,
    );
}

/** Runs `fn` on a pipeline started in this process without queues (one sync, in the foreground), then closes it. */
async function withForegroundPipeline<T>(ctx: CliContext, config: Config, fn: (runtime: PipelineRuntime) => Promise<T>): Promise<T> {
  const { startPipeline } = await import('../../../jobs/main.ts');
  const logger = ctx.quietLogger(config);
  return withJournal(config, async (journal) => {
    const runtime = await startPipeline(config, logger, { journal, queues: [] });
    try {
      return await fn(runtime);
    } finally {
      await runtime.close();
    }
  });
}

async function syncForm(ctx: CliContext, connector: 'hubspot-forms' | 'google-forms', formId: string): Promise<void> {
  const [{ connectorStateSettings }, { openFormPollStore }] = await Promise.all([
    import('../../../jobs/settings.ts'),
    import('../../../connectors/forms/forms.connector.ts'),
  ]);
  const config = ctx.config();
  if (connector === 'hubspot-forms' && !config.pipeline.forms.hubspot?.forms.some((f) => f.guid === formId))
    throw new UsageError(`${formId} is not a polled HubSpot form: add it to HUBSPOT_FORMS_POLL (and set HUBSPOT_ACCESS_TOKEN)`);
  if (connector === 'google-forms' && (!config.pipeline.forms.google || !openFormPollStore(connectorStateSettings(config)).grant(formId)))
    throw new UsageError(`${formId} is not a connected Google form: activity-journal connect google-forms ${formId}`);
  const report = await withForegroundPipeline(ctx, config, (runtime) => runtime.forms.poll(connector, formId));
  if (ctx.json()) ctx.out(JSON.stringify(report));
  else
    ctx.out(
      `${connector} ${formId}: ${report.mode}; ${report.seen} submission(s) seen, ${report.accepted} new, ${report.duplicates} already journaled, ${report.excluded} excluded by rule; cursor ${report.cursor ?? '-'}`,
    );
  ctx.setExit(report.mode === 'needs-consent' ? 1 : 0);
}

async function syncGmail(ctx: CliContext, mailbox: string): Promise<void> {
  const [{ connectorStateSettings }, { openInboxStore }] = await Promise.all([
    import('../../../jobs/settings.ts'),
    import('../../../connectors/gmail/gmail.connector.ts'),
  ]);
  const config = ctx.config();
  if (!config.pipeline.gmail) throw new UsageError(GMAIL_NOT_CONFIGURED);
  if (!openInboxStore(connectorStateSettings(config)).record(mailbox))
    throw new UsageError(`${mailbox} is not a connected inbox (activity-journal status lists them)`);
  const report = await withForegroundPipeline(ctx, config, async (runtime) => {
    const bar = ctx.json() ? { update() {}, done() {} } : progressBar(`syncing ${mailbox}`);
    const r = await (runtime.gmail as NonNullable<typeof runtime.gmail>).sync(mailbox, (d, t) => bar.update(d, t));
    bar.done();
    return r;
  });
  if (ctx.json()) ctx.out(JSON.stringify(report));
  else
    ctx.out(
      `${mailbox}: ${report.mode}; ${report.seen} message(s) seen, ${report.accepted} new, ${report.duplicates} already journaled, ${report.excluded} excluded by rule, ${report.skippedByLabel} skipped by label; cursor ${report.cursor ?? '-'}`,
    );
  ctx.setExit(report.mode === 'needs-consent' ? 1 : 0);
}

async function reconcile(ctx: CliContext, connector: string, mailbox: string, opts: ReconcileOpts): Promise<void> {
  if (connector !== 'gmail') throw new UsageError(`can only reconcile "gmail" (got ${JSON.stringify(connector)})`);
  const [{ connectorStateSettings }, { openInboxStore }] = await Promise.all([
    import('../../../jobs/settings.ts'),
    import('../../../connectors/gmail/gmail.connector.ts'),
  ]);
  const config = ctx.config();
  if (!config.pipeline.gmail) throw new UsageError(GMAIL_NOT_CONFIGURED);
  const since = opts.since ? new Date(`${opts.since}T00:00:00Z`) : new Date(Date.now() - config.pipeline.gmail.backfillDays * 86_400_000);
  if (Number.isNaN(since.getTime())) throw new UsageError(`--since must be a day like 2026-11-01 (got ${JSON.stringify(opts.since)})`);
  if (!openInboxStore(connectorStateSettings(config)).record(mailbox))
    throw new UsageError(`${mailbox} is not a connected inbox (activity-journal status lists them)`);
  const report = await withForegroundPipeline(ctx, config, async (runtime) => {
    const bar = ctx.json() ? { update() {}, done() {} } : progressBar('reconciling');
    const r = await (runtime.gmail as NonNullable<typeof runtime.gmail>).reconcile(mailbox, since, opts.reportOnly === true, (d, t) =>
      bar.update(d, t),
    );
    bar.done();
    return r;
  });
  if (ctx.json()) ctx.out(JSON.stringify(report));
  else {
    ctx.out(
      `${mailbox} since ${report.since.slice(0, 10)}: ${report.providerMessages} message(s) at Gmail, ${report.journaled} journaled, ${report.excludedByRule} excluded by rule: coverage ${report.coveragePercent}%`,
    );
    for (const w of report.gapWindows) ctx.out(`  gap: ${w.messages} message(s) from ${w.from} to ${w.to}`);
    if (report.missing.length > 0)
      ctx.out(
        opts.reportOnly ? `  missing (not taken in: --report-only): ${report.missing.join(', ')}` : `  taken in now: ${report.ingested}`,
      );
  }
  ctx.setExit(report.missing.length === 0 || !opts.reportOnly ? 0 : 1);
}
