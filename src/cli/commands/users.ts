/**
 * `users add|hash-password|token|list`: the users of the audit UI, kept in the file at AUDIT_USERS_PATH.
 * Passwords are read from stdin (never an argument); API tokens are printed once and only their hash is kept.
 */
import type { Command } from 'commander';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { ROLES, hashPassword, isUserId, newApiToken, readUsersFile, writeUsersFile, type Role } from '../../audit/users.ts';
import { UsersFileError } from '../../audit/errors/users-file.error.ts';
import type { CliContext } from '../context.ts';
import { UsageError } from '../usage-error.ts';

interface AddOpts {
  role?: string;
  reset?: boolean;
}

export function registerUserCommands(program: Command, ctx: CliContext): void {
  const users = program.command('users').description('users of the audit UI (the file at AUDIT_USERS_PATH)');
  users
    .command('add')
    .description(
      "add a user; with --reset, set an existing user's password (and --role); the password is read from stdin (never an argument)",
    )
    .argument('<name>', 'user id: 1-64 characters [a-z0-9._-]')
    .option('--role <role>', `${ROLES.join(', ')} (required for a new user; with --reset, changes the role)`)
    .option('--reset', 'the user exists: replace their password (their API tokens stay)')
    .action((name: string, opts: AddOpts) => addUser(ctx, name, opts));
  users
    .command('hash-password')
    .description('print the scrypt hash of a password read from stdin (for editing the users file by hand)')
    .action(async () => {
      ctx.out(await hashOf(await readSecretLine('password (12+ characters): ')));
    });
  users
    .command('token')
    .description('create an API token for a user (printed once; only its hash is stored)')
    .argument('<name>')
    .action((name: string) => createToken(ctx, name));
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

async function addUser(ctx: CliContext, name: string, opts: AddOpts): Promise<void> {
  if (!isUserId(name)) throw new UsageError(`user ids are 1-64 characters [a-z0-9._-], not an email address (got ${JSON.stringify(name)})`);
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
  const hash = await hashOf(await readSecretLine(`${existing ? 'new ' : ''}password for ${name} (12+ characters): `));
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
}

function createToken(ctx: CliContext, name: string): void {
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
}

/** The scrypt hash of a password; one the users file refuses (too short) is a UsageError. */
async function hashOf(password: string): Promise<string> {
  try {
    return await hashPassword(password);
  } catch (err) {
    if (err instanceof UsersFileError) throw new UsageError(err.message);
    throw err;
  }
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
