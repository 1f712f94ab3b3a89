/**
 * The audit surface on the command line: `decisions`, `override`, `export` and `verify-export` (the users of the
 * audit UI are users.ts). They use the same AuditService and read index as the web UI.
 */
import type { Command } from 'commander';
import { createWriteStream, readFileSync } from 'node:fs';
import { once } from 'node:events';
import type { Config } from '../../config/config.ts';
import type { JournalClient } from '../../journal/journal-client.ts';
import type { Category } from '../../pipeline/classification.ts';
import { CATEGORIES } from '../../journal/categories.ts';
import { OverrideError } from '../../pipeline/errors/override.error.ts';
import type { OverrideRequest } from '../../pipeline/override.ts';
import type { Enqueue } from '../../pipeline/ports.ts';
import { AuditService } from '../../audit/audit-service.ts';
import type { IndexedInteraction } from '../../audit/read-index.ts';
import { openConfiguredIndex } from '../../audit/configured-index.ts';
import { checkExport, type ExportScope } from '../../audit/export.ts';
import { NotAnExportError } from '../../audit/errors/not-an-export.error.ts';
import { ExportError } from '../../audit/errors/export.error.ts';
import { allowed, readUsersFile } from '../../audit/users.ts';
import type { CliContext } from '../context.ts';
import { openReader, withJournal } from '../journal-access.ts';
import { collect, dayOrTime, pinnedKey } from '../options.ts';
import { progressBar } from '../progress.ts';
import { terminalSafe } from '../terminal-text.ts';
import { UsageError } from '../usage-error.ts';

interface DecisionsOpts {
  since?: string;
  category?: string;
  maxConfidence?: string;
  needsReview?: boolean;
  limit: string;
}

interface OverrideOpts {
  outcome?: string;
  associate: string[];
  reason?: string;
  as?: string;
}

interface ExportOpts {
  from?: string;
  until?: string;
  correlation?: string;
  out?: string;
}

type Associations = Partial<Record<'contacts' | 'companies' | 'deals', string[]>>;

/** An override as the command line asked for it, checked: what AuditService.override takes. */
type OverrideAsked = Omit<OverrideRequest, 'decisionEntryId' | 'decisionSeq'>;

export function registerAuditCommands(program: Command, ctx: CliContext): void {
  program
    .command('decisions')
    .description('automated decisions, newest first (from the audit read index, caught up first)')
    .option('--since <date>', 'interactions that occurred on or after this day (YYYY-MM-DD) or time')
    .option('--category <category>', `category in force: ${CATEGORIES.join(', ')}`)
    .option('--max-confidence <n>', 'confidence at most n (0..1)')
    .option('--needs-review', 'only decisions waiting in the review queue')
    .option('--limit <n>', 'how many (default 50, at most 500)', '50')
    .action((opts: DecisionsOpts) => decisions(ctx, opts));

  program
    .command('override')
    .description('override (or approve) an automated decision: appends a human.override entry and re-drives the CRM mirror')
    .argument('<entryId>', 'the ai.decision entry id (see `activity-journal decisions`)')
    .option('--outcome <outcome>', `the new category (${CATEGORIES.join(', ')}), or "approve"`)
    .option(
      '--associate <type=ids>',
      'replace the CRM associations of one target type: contacts=ID[,ID...], companies=..., deals=... (empty list: none); repeatable',
      collect,
      [] as string[],
    )
    .option('--reason <text>', 'why (journaled)')
    .option('--as <userId>', 'the configured reviewer or admin making it (users file)')
    .action((entryId: string, opts: OverrideOpts) => override(ctx, entryId, opts));

  program
    .command('export')
    .description('export a date range or a correlation as JSON Lines with inclusion proofs (check with verify-export); journaled')
    .option('--from <date>', 'recorded on or after (YYYY-MM-DD or RFC 3339)')
    .option('--until <date>', 'recorded before')
    .option('--correlation <id>', 'one correlation instead of a range')
    .option('--out <file>', 'write to a file instead of stdout')
    .action((opts: ExportOpts) => exportCommand(ctx, opts));

  program
    .command('verify-export')
    .description('check an export offline: every proof against its signed checkpoint (exit 0 valid, 1 invalid, 2 misuse)')
    .argument('<file>')
    .option('--public-key <vkey>', "the journal's checkpoint key to trust (from `activity-journal public-key`)")
    .action((file: string, opts: { publicKey?: string }) => verifyExport(ctx, file, opts.publicKey));
}

const NO_CONNECTORS = (): { inboxes: []; webhooks: []; gmailConfigured: false } => ({ inboxes: [], webhooks: [], gmailConfigured: false });

/** A read-only service over the journal file (no appends possible through it), its index caught up first. */
function withReadService<T>(config: Config, fn: (service: AuditService) => T): T {
  const reader = openReader(config);
  const index = openConfiguredIndex(config, reader.attachedPrivacy);
  try {
    const bar = progressBar('indexing');
    index.catchUp(reader, { onProgress: (d, t) => bar.update(d, t) });
    const refusing = (): Promise<never> => Promise.reject(new Error('read-only'));
    const service = new AuditService({
      reader,
      index,
      journal: { append: refusing } as unknown as JournalClient,
      enqueue: refusing,
      connectors: NO_CONNECTORS,
    });
    return fn(service);
  } finally {
    index.close();
    reader.close();
  }
}

/** Runs `fn` on a service over the journal file and its index that appends through `journal`. */
async function withAuditService<T>(
  config: Config,
  journal: JournalClient,
  enqueue: Enqueue,
  fn: (service: AuditService) => Promise<T>,
): Promise<T> {
  const reader = openReader(config);
  const index = openConfiguredIndex(config, reader.attachedPrivacy);
  try {
    return await fn(new AuditService({ reader, index, journal, enqueue, connectors: NO_CONNECTORS }));
  } finally {
    index.close();
    reader.close();
  }
}

function decisions(ctx: CliContext, opts: DecisionsOpts): void {
  const category = parseCategory(opts.category, '--category');
  const max = opts.maxConfidence === undefined ? undefined : Number(opts.maxConfidence);
  if (max !== undefined && !(max >= 0 && max <= 1))
    throw new UsageError(`--max-confidence must be a number from 0 to 1 (got ${JSON.stringify(opts.maxConfidence)})`);
  const limit = Number(opts.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new UsageError('--limit must be a whole number from 1 to 500');
  if (opts.since !== undefined && Number.isNaN(Date.parse(dayOrTime(opts.since))))
    throw new UsageError(`--since must be a day like 2026-11-01 (got ${JSON.stringify(opts.since)})`);
  const rows = withReadService(ctx.config(), (service) => {
    const q = { from: opts.since, category, maxConfidence: max, decided: true, limit };
    return (opts.needsReview ? service.reviewQueue(q) : service.timeline(q)).rows;
  });
  if (ctx.json()) for (const r of rows) ctx.out(JSON.stringify(r));
  else if (rows.length === 0) ctx.out('no decisions match');
  else for (const r of rows) ctx.out(terminalSafe(describeRow(r), { singleLine: true }));
}

function describeRow(r: IndexedInteraction): string {
  return `${r.decisionId ?? '-'}  seq ${r.decisionSeq ?? '-'}  ${r.occurredAt.slice(0, 16)}  ${r.source}/${r.channel}  ${r.category ?? '-'}${r.category !== r.modelCategory ? ` (model: ${r.modelCategory ?? '-'})` : ''}  confidence ${r.confidence === null ? '-' : r.confidence.toFixed(2)}  review ${r.reviewState}  ${r.correlationId}`;
}

function parseCategory(value: string | undefined, flag: string): Category | undefined {
  if (value === undefined) return undefined;
  if (!(CATEGORIES as readonly string[]).includes(value))
    throw new UsageError(`${flag} must be one of ${CATEGORIES.join(', ')} (got ${JSON.stringify(value)})`);
  return value as Category;
}

async function override(ctx: CliContext, entryId: string, opts: OverrideOpts): Promise<void> {
  const { config, asked } = overrideAsked(ctx, opts);
  // Loaded here, not at the top: every other command (and --help) would pay for ioredis, bullmq and the pipeline.
  const [{ Redis }, { DEFAULT_REDIS_URL }, { closeQueues, createQueues, enqueueVia }] = await Promise.all([
    import('ioredis'),
    import('../../../jobs/main.ts'),
    import('../../../jobs/queues.ts'),
  ]);
  const redis = new Redis(config.pipeline.redisUrl ?? DEFAULT_REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true });
  await redis.connect().catch((err: unknown) => {
    throw new UsageError(`cannot reach Redis to re-drive the mirror: ${(err as Error).message}`);
  });
  const queues = createQueues(redis, config.pipeline.queuePrefix);
  try {
    const result = await withJournal(config, (journal) =>
      withAuditService(config, journal, enqueueVia(queues), (service) => {
        service.refresh(true);
        return service.override(entryId, asked);
      }),
    );
    if (ctx.json())
      ctx.out(JSON.stringify({ seq: result.entry.seq, id: result.entry.id, payload: result.entry.payload, redriven: result.redriven }));
    else
      ctx.out(
        `${asked.action === 'approve' ? 'approved' : asked.action === 'associate' ? 'associations overridden' : 'overridden'}: human.override seq ${result.entry.seq} (${result.entry.id})${result.redriven ? '; mirror re-driven' : ''}`,
      );
  } catch (err) {
    if (err instanceof OverrideError) {
      ctx.err(`refused: ${err.message}`);
      ctx.setExit(err.code === 'NOT_FOUND' || err.code === 'INVALID' ? 2 : 1);
      return;
    }
    throw err;
  } finally {
    await closeQueues(queues);
    redis.disconnect();
  }
}

/**
 * The override the options ask for, made by a configured reviewer or admin (and the configuration, loaded once
 * the options are known to be complete); else a UsageError saying what is missing.
 */
function overrideAsked(ctx: CliContext, opts: OverrideOpts): { config: Config; asked: OverrideAsked } {
  if (!opts.outcome && opts.associate.length === 0)
    throw new UsageError('--outcome (a category or "approve") or --associate <type=ids> is required');
  if (opts.outcome && opts.associate.length > 0) throw new UsageError('--outcome and --associate are separate overrides: give one of them');
  const associations = parseAssociations(opts.associate);
  if (!opts.reason || opts.reason.trim() === '') throw new UsageError('--reason is required');
  if (!opts.as) throw new UsageError('--as <userId> is required: overrides name the person who made them');
  const config = ctx.config();
  const user = readUsersFile(config.audit.usersPath).users.find((u) => u.id === opts.as);
  if (!user) throw new UsageError(`no user ${JSON.stringify(opts.as)} in ${config.audit.usersPath} (activity-journal users add ...)`);
  if (!allowed(user.role, 'override')) throw new UsageError(`${user.id} is a ${user.role}; overrides need the reviewer or admin role`);
  const action = associations ? 'associate' : opts.outcome === 'approve' ? 'approve' : 'override';
  const category = action === 'override' ? parseCategory(opts.outcome, '--outcome') : undefined;
  return { config, asked: { action, category, associations, reason: opts.reason, userId: user.id, via: 'cli' } };
}

/** `--associate contacts=1,2 --associate deals=` → { contacts: ['1', '2'], deals: [] }; undefined when none given. */
function parseAssociations(values: readonly string[]): Associations | undefined {
  if (values.length === 0) return undefined;
  const out: Associations = {};
  for (const v of values) {
    const m = /^(contacts|companies|deals)=([0-9,]*)$/.exec(v.trim());
    if (!m)
      throw new UsageError(
        `--associate ${JSON.stringify(v)}: write contacts=ID[,ID...], companies=... or deals=... with numeric HubSpot record ids (an empty list removes them all)`,
      );
    const type = m[1] as 'contacts' | 'companies' | 'deals';
    if (out[type]) throw new UsageError(`--associate ${type} is given twice`);
    out[type] = (m[2] ?? '').split(',').filter((id) => id !== '');
  }
  return out;
}

/** A correlation, or a range of days (or RFC 3339 times); else a UsageError. */
function exportScope(opts: ExportOpts): ExportScope {
  if (opts.correlation) {
    if (opts.from || opts.until) throw new UsageError('give --correlation or --from/--until, not both');
    return { kind: 'correlation', correlationId: opts.correlation };
  }
  if (!opts.from || !opts.until) throw new UsageError('give --from and --until (days like 2026-11-01), or --correlation ID');
  const scope = { kind: 'range' as const, from: dayOrTime(opts.from), until: dayOrTime(opts.until) };
  if (Number.isNaN(Date.parse(scope.from)) || Number.isNaN(Date.parse(scope.until)))
    throw new UsageError('--from and --until must be days (YYYY-MM-DD) or RFC 3339 times');
  return scope;
}

async function exportCommand(ctx: CliContext, opts: ExportOpts): Promise<void> {
  const scope = exportScope(opts);
  const config = ctx.config();
  const stream = opts.out ? createWriteStream(opts.out) : null;
  const write = async (line: string): Promise<void> => {
    if (!stream) return ctx.out(line);
    if (!stream.write(line + '\n')) await once(stream, 'drain');
  };
  try {
    const summary = await withJournal(config, (journal) =>
      withAuditService(
        config,
        journal,
        () => Promise.resolve(),
        (service) => service.export(scope, 'cli', write),
      ),
    );
    if (stream) {
      stream.end();
      await once(stream, 'finish');
    }
    ctx.err(
      `${summary.header.entries} entr(ies) exported with proofs against the checkpoint of ${summary.header.treeSize}${summary.header.notYetCovered > 0 ? `; ${summary.header.notYetCovered} newer entr(ies) left out until the next checkpoint` : ''}`,
    );
  } catch (err) {
    stream?.destroy();
    if (err instanceof ExportError) throw new UsageError(err.message);
    throw err;
  }
}

function verifyExport(ctx: CliContext, file: string, publicKey: string | undefined): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const pinned = pinnedKey(publicKey);
  let check;
  try {
    check = checkExport(text, pinned);
  } catch (err) {
    if (err instanceof NotAnExportError) throw new UsageError(`${file}: ${err.message}`);
    throw err;
  }
  if (ctx.json()) ctx.out(JSON.stringify(check));
  else if (check.ok) {
    ctx.out(`ok: ${check.entries} entr(ies), each included in the signed checkpoint of ${check.treeSize} entries`);
    if (!check.keyPinned)
      ctx.err('note: the signature was checked against the key named in the file; pass --public-key to pin the key you trust');
  } else for (const f of check.failures) ctx.out(`line ${f.line}${f.seq !== null ? ` (seq ${f.seq})` : ''}: ${f.reason}`);
  ctx.setExit(check.ok ? 0 : 1);
}
