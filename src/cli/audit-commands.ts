/**
 * The audit surface on the command line: `decisions`, `override`, `export`, `verify-export` and `users`.
 * They use the same AuditService and read index as the web UI.
 */
import type { Command } from 'commander';
import { createInterface } from 'node:readline';
import { createWriteStream, readFileSync } from 'node:fs';
import { once } from 'node:events';
import type { Config } from '../config/config.ts';
import { JournalReader } from '../journal/reader.ts';
import { parseVerifierKey, type Verifier } from '../journal/keys.ts';
import type { JournalClient } from '../journal/journal-client.ts';
import { CATEGORIES, type Category } from '../pipeline/classification.ts';
import { OverrideError } from '../pipeline/errors/override.error.ts';
import { AuditService } from '../audit/audit-service.ts';
import type { IndexedInteraction } from '../audit/read-index.ts';
import { openConfiguredIndex } from '../audit/configured-index.ts';
import { checkExport, ExportError, NotAnExportError, type ExportScope } from '../audit/export.ts';
import {
  ROLES,
  allowed,
  hashPassword,
  isUserId,
  newApiToken,
  readUsersFile,
  writeUsersFile,
  UsersFileError,
  type Role,
} from '../audit/users.ts';
import { withJournal } from './journal-access.ts';
import { UsageError } from './usage-error.ts';
import { terminalSafe } from './terminal-text.ts';
import { progressBar } from './progress.ts';
import { attachConfiguredPrivacy } from '../journal/configured-privacy.ts';

export interface AuditCommandContext {
  readonly config: () => Config;
  readonly json: () => boolean;
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  readonly setExit: (code: number) => void;
}

/** A read-only service over the journal file (no appends possible through it). */
function withReadService<T>(config: Config, fn: (service: AuditService) => T): T {
  const reader = attachConfiguredPrivacy(JournalReader.open(config.journal.path), config);
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
      connectors: () => ({ inboxes: [], webhooks: [], gmailConfigured: false }),
    });
    return fn(service);
  } finally {
    index.close();
    reader.close();
  }
}

function parseCategory(value: string | undefined, flag: string): Category | undefined {
  if (value === undefined) return undefined;
  if (!(CATEGORIES as readonly string[]).includes(value))
    throw new UsageError(`${flag} must be one of ${CATEGORIES.join(', ')} (got ${JSON.stringify(value)})`);
  return value as Category;
}

function describeRow(r: IndexedInteraction): string {
  return `${r.decisionId ?? '-'}  seq ${r.decisionSeq ?? '-'}  ${r.occurredAt.slice(0, 16)}  ${r.source}/${r.channel}  ${r.category ?? '-'}${r.category !== r.modelCategory ? ` (model: ${r.modelCategory ?? '-'})` : ''}  confidence ${r.confidence === null ? '-' : r.confidence.toFixed(2)}  review ${r.reviewState}  ${r.correlationId}`;
}

async function readSecretLine(prompt: string): Promise<string> {
  const rl = createInterface({
    input: process.stdin,
    output: process.stdin.isTTY ? process.stderr : undefined,
    terminal: process.stdin.isTTY === true,
  });
  if (process.stdin.isTTY) {
    // Do not echo the password.
    const anyRl = rl as unknown as { _writeToOutput: (s: string) => void; output: NodeJS.WritableStream };
    process.stderr.write(prompt);
    anyRl._writeToOutput = () => {};
  }
  const [line] = (await once(rl, 'line')) as [string];
  rl.close();
  if (process.stdin.isTTY) process.stderr.write('\n');
  return line;
}

export function registerAuditCommands(program: Command, ctx: AuditCommandContext): void {
  program
    .command('decisions')
    .description('automated decisions, newest first (from the audit read index, caught up first)')
    .option('--since <date>', 'interactions that occurred on or after this day (YYYY-MM-DD) or time')
    .option('--category <category>', `category in force: ${CATEGORIES.join(', ')}`)
    .option('--max-confidence <n>', 'confidence at most n (0..1)')
    .option('--needs-review', 'only decisions waiting in the review queue')
    .option('--limit <n>', 'how many (default 50, at most 500)', '50')
    .action((opts: { since?: string; category?: string; maxConfidence?: string; needsReview?: boolean; limit: string }) => {
      const category = parseCategory(opts.category, '--category');
      const max = opts.maxConfidence === undefined ? undefined : Number(opts.maxConfidence);
      if (max !== undefined && !(max >= 0 && max <= 1))
        throw new UsageError(`--max-confidence must be a number from 0 to 1 (got ${JSON.stringify(opts.maxConfidence)})`);
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new UsageError('--limit must be a whole number from 1 to 500');
      if (
        opts.since !== undefined &&
        Number.isNaN(Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(opts.since) ? `${opts.since}T00:00:00Z` : opts.since))
      )
        throw new UsageError(`--since must be a day like 2026-11-01 (got ${JSON.stringify(opts.since)})`);
      const rows = withReadService(ctx.config(), (service) => {
        const q = { from: opts.since, category, maxConfidence: max, decided: true, limit };
        return (opts.needsReview ? service.reviewQueue(q) : service.timeline(q)).rows;
      });
      if (ctx.json()) for (const r of rows) ctx.out(JSON.stringify(r));
      else if (rows.length === 0) ctx.out('no decisions match');
      else for (const r of rows) ctx.out(terminalSafe(describeRow(r), { singleLine: true }));
    });

  program
    .command('override')
    .description('override (or approve) an automated decision: appends a human.override entry and re-drives the CRM mirror')
    .argument('<entryId>', 'the ai.decision entry id (see `activity-journal decisions`)')
    .option('--outcome <outcome>', `the new category (${CATEGORIES.join(', ')}), or "approve"`)
    .option(
      '--associate <type=ids>',
      'replace the CRM associations of one target type: contacts=ID[,ID...], companies=..., deals=... (empty list: none); repeatable',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--reason <text>', 'why (journaled)')
    .option('--as <userId>', 'the configured reviewer or admin making it (users file)')
    .action(async (entryId: string, opts: { outcome?: string; associate: string[]; reason?: string; as?: string }) => {
      if (!opts.outcome && opts.associate.length === 0)
        throw new UsageError('--outcome (a category or "approve") or --associate <type=ids> is required');
      if (opts.outcome && opts.associate.length > 0)
        throw new UsageError('--outcome and --associate are separate overrides: give one of them');
      const associations = parseAssociations(opts.associate);
      if (!opts.reason || opts.reason.trim() === '') throw new UsageError('--reason is required');
      if (!opts.as) throw new UsageError('--as <userId> is required: overrides name the person who made them');
      const config = ctx.config();
      const user = readUsersFile(config.audit.usersPath).users.find((u) => u.id === opts.as);
      if (!user) throw new UsageError(`no user ${JSON.stringify(opts.as)} in ${config.audit.usersPath} (activity-journal users add ...)`);
      if (!allowed(user.role, 'override')) throw new UsageError(`${user.id} is a ${user.role}; overrides need the reviewer or admin role`);
      const action = associations ? 'associate' : opts.outcome === 'approve' ? 'approve' : 'override';
      const category = action === 'override' ? parseCategory(opts.outcome, '--outcome') : undefined;
      // Loaded here, not at the top: every other command (and --help) would pay for ioredis, bullmq and the pipeline.
      const [{ Redis }, { DEFAULT_REDIS_URL }, { closeQueues, createQueues, enqueueVia }] = await Promise.all([
        import('ioredis'),
        import('../../jobs/main.ts'),
        import('../../jobs/queues.ts'),
      ]);
      const redis = new Redis(config.pipeline.redisUrl ?? DEFAULT_REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true });
      await redis.connect().catch((err: unknown) => {
        throw new UsageError(`cannot reach Redis to re-drive the mirror: ${(err as Error).message}`);
      });
      const queues = createQueues(redis, config.pipeline.queuePrefix);
      try {
        const result = await withJournal(config, async (journal) => {
          const reader = attachConfiguredPrivacy(JournalReader.open(config.journal.path), config);
          const index = openConfiguredIndex(config, reader.attachedPrivacy);
          try {
            const service = new AuditService({
              reader,
              index,
              journal,
              enqueue: enqueueVia(queues),
              connectors: () => ({ inboxes: [], webhooks: [], gmailConfigured: false }),
            });
            service.refresh(true);
            return await service.override(entryId, {
              action,
              category,
              associations,
              reason: opts.reason as string,
              userId: user.id,
              via: 'cli',
            });
          } finally {
            index.close();
            reader.close();
          }
        });
        if (ctx.json())
          ctx.out(JSON.stringify({ seq: result.entry.seq, id: result.entry.id, payload: result.entry.payload, redriven: result.redriven }));
        else
          ctx.out(
            `${action === 'approve' ? 'approved' : action === 'associate' ? 'associations overridden' : 'overridden'}: human.override seq ${result.entry.seq} (${result.entry.id})${result.redriven ? '; mirror re-driven' : ''}`,
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
    });

  program
    .command('export')
    .description('export a date range or a correlation as JSON Lines with inclusion proofs (check with verify-export); journaled')
    .option('--from <date>', 'recorded on or after (YYYY-MM-DD or RFC 3339)')
    .option('--until <date>', 'recorded before')
    .option('--correlation <id>', 'one correlation instead of a range')
    .option('--out <file>', 'write to a file instead of stdout')
    .action(async (opts: { from?: string; until?: string; correlation?: string; out?: string }) => {
      const day = (s: string): string => (/^\d{4}-\d{2}-\d{2}$/.test(s) ? `${s}T00:00:00Z` : s);
      let scope: ExportScope;
      if (opts.correlation) {
        if (opts.from || opts.until) throw new UsageError('give --correlation or --from/--until, not both');
        scope = { kind: 'correlation', correlationId: opts.correlation };
      } else {
        if (!opts.from || !opts.until) throw new UsageError('give --from and --until (days like 2026-11-01), or --correlation ID');
        scope = { kind: 'range', from: day(opts.from), until: day(opts.until) };
        if (Number.isNaN(Date.parse(scope.from)) || Number.isNaN(Date.parse(scope.until)))
          throw new UsageError('--from and --until must be days (YYYY-MM-DD) or RFC 3339 times');
      }
      const config = ctx.config();
      const stream = opts.out ? createWriteStream(opts.out) : null;
      const write = async (line: string): Promise<void> => {
        if (!stream) return ctx.out(line);
        if (!stream.write(line + '\n')) await once(stream, 'drain');
      };
      try {
        const summary = await withJournal(config, async (journal) => {
          const reader = attachConfiguredPrivacy(JournalReader.open(config.journal.path), config);
          const index = openConfiguredIndex(config, reader.attachedPrivacy);
          try {
            const service = new AuditService({
              reader,
              index,
              journal,
              enqueue: () => Promise.resolve(),
              connectors: () => ({ inboxes: [], webhooks: [], gmailConfigured: false }),
            });
            return await service.export(scope, 'cli', write);
          } finally {
            index.close();
            reader.close();
          }
        });
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
    });

  program
    .command('verify-export')
    .description('check an export offline: every proof against its signed checkpoint (exit 0 valid, 1 invalid, 2 misuse)')
    .argument('<file>')
    .option('--public-key <vkey>', "the journal's checkpoint key to trust (from `activity-journal public-key`)")
    .action((file: string, opts: { publicKey?: string }) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
      }
      let pinned: Verifier | null = null;
      if (opts.publicKey) {
        try {
          pinned = parseVerifierKey(opts.publicKey);
        } catch (err) {
          throw new UsageError(`--public-key: ${(err as Error).message}`);
        }
      }
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
    });

  const users = program.command('users').description('users of the audit UI (the file at AUDIT_USERS_PATH)');
  users
    .command('add')
    .description(
      "add a user; with --reset, set an existing user's password (and --role); the password is read from stdin (never an argument)",
    )
    .argument('<name>', 'user id: 1-64 characters [a-z0-9._-]')
    .option('--role <role>', `${ROLES.join(', ')} (required for a new user; with --reset, changes the role)`)
    .option('--reset', 'the user exists: replace their password (their API tokens stay)')
    .action(async (name: string, opts: { role?: string; reset?: boolean }) => {
      if (!isUserId(name))
        throw new UsageError(`user ids are 1-64 characters [a-z0-9._-], not an email address (got ${JSON.stringify(name)})`);
      if (opts.role !== undefined && !(ROLES as readonly string[]).includes(opts.role))
        throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
      const config = ctx.config();
      // Decided before the password is asked for: adding a user must never silently replace someone's password.
      const existing = readUsersFile(config.audit.usersPath).users.find((u) => u.id === name);
      if (existing && opts.reset !== true)
        throw new UsageError(
          `${name} already exists (${existing.role}) in ${config.audit.usersPath}; to replace their password, run: activity-journal users add ${name} --reset`,
        );
      if (!existing && opts.reset === true)
        throw new UsageError(
          `there is no user ${JSON.stringify(name)} in ${config.audit.usersPath} to reset; add them without --reset (and with --role)`,
        );
      if (!existing && opts.role === undefined) throw new UsageError(`--role is required for a new user: ${ROLES.join(', ')}`);
      const password = await readSecretLine(`${existing ? 'new ' : ''}password for ${name} (12+ characters): `);
      let hash: string;
      try {
        hash = await hashPassword(password);
      } catch (err) {
        if (err instanceof UsersFileError) throw new UsageError(err.message);
        throw err;
      }
      // Read again: the file may have changed while the password was typed.
      const file = readUsersFile(config.audit.usersPath);
      const now = file.users.find((u) => u.id === name);
      if (Boolean(now) !== Boolean(existing))
        throw new UsageError(
          `${config.audit.usersPath} changed while the password was typed (${name} was ${now ? 'added' : 'removed'}); run the command again`,
        );
      const role = (opts.role ?? now?.role) as Role;
      const next = now
        ? file.users.map((u) => (u.id === name ? { ...u, role, passwordHash: hash } : u))
        : [...file.users, { id: name, role, passwordHash: hash, apiTokens: [] }];
      writeUsersFile(config.audit.usersPath, { users: next });
      ctx.out(`${now ? `password reset for ${name}` : `added ${name}`} (${role}) in ${config.audit.usersPath}`);
    });
  users
    .command('hash-password')
    .description('print the scrypt hash of a password read from stdin (for editing the users file by hand)')
    .action(async () => {
      try {
        ctx.out(await hashPassword(await readSecretLine('password (12+ characters): ')));
      } catch (err) {
        if (err instanceof UsersFileError) throw new UsageError(err.message);
        throw err;
      }
    });
  users
    .command('token')
    .description('create an API token for a user (printed once; only its hash is stored)')
    .argument('<name>')
    .action((name: string) => {
      const config = ctx.config();
      const file = readUsersFile(config.audit.usersPath);
      if (!file.users.some((u) => u.id === name)) throw new UsageError(`no user ${JSON.stringify(name)} in ${config.audit.usersPath}`);
      const { token, sha256 } = newApiToken();
      const id = `t-${Date.now().toString(36)}`;
      writeUsersFile(config.audit.usersPath, {
        users: file.users.map((u) =>
          u.id === name ? { ...u, apiTokens: [...u.apiTokens, { id, sha256, createdAt: new Date().toISOString() }] } : u,
        ),
      });
      if (ctx.json()) ctx.out(JSON.stringify({ user: name, tokenId: id, token }));
      else ctx.out(`${token}\n(token ${id} for ${name}; shown once, store it now: Authorization: Bearer <token>)`);
    });
  users
    .command('list')
    .description('users and their roles')
    .action(() => {
      const file = readUsersFile(ctx.config().audit.usersPath);
      for (const u of file.users)
        ctx.out(
          ctx.json()
            ? JSON.stringify({ id: u.id, role: u.role, password: u.passwordHash !== null, apiTokens: u.apiTokens.map((t) => t.id) })
            : `${u.id}  ${u.role}  ${u.apiTokens.length} API token(s)`,
        );
    });
}

/** `--associate contacts=1,2 --associate deals=` → { contacts: ['1', '2'], deals: [] }; undefined when none given. */
function parseAssociations(values: readonly string[]): Partial<Record<'contacts' | 'companies' | 'deals', string[]>> | undefined {
  if (values.length === 0) return undefined;
  const out: Partial<Record<'contacts' | 'companies' | 'deals', string[]>> = {};
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
