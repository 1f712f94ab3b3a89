/**
 * The audit UI's users: a JSON file (AUDIT_USERS_PATH) with each user's id, role, scrypt password hash and the
 * SHA-256 hashes of their API tokens. Nothing secret is stored in the clear; the file is re-read when it
 * changes, so removing a user or a token takes effect without a restart.
 */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { UsersFileError } from './errors/users-file.error.ts';

export const ROLES = ['viewer', 'reviewer', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** What each role may do; a role has everything the roles before it have. */
export const CAN = {
  read: ['viewer', 'reviewer', 'admin'],
  override: ['reviewer', 'admin'],
  export: ['reviewer', 'admin'],
  verify: ['reviewer', 'admin'],
} as const satisfies Record<string, readonly Role[]>;
export type Permission = keyof typeof CAN;

export function allowed(role: Role, what: Permission): boolean {
  return (CAN[what] as readonly Role[]).includes(role);
}

const USER_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;

const UserSchema = z.strictObject({
  id: z.string().regex(USER_ID, 'user ids are 1-64 characters [a-z0-9._-] (not an email address)'),
  role: z.enum(ROLES),
  passwordHash: z
    .string()
    .regex(/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/, 'a hash made by `activity-journal users hash-password`')
    .nullable(),
  apiTokens: z
    .array(z.strictObject({ id: z.string().regex(/^[a-z0-9-]{1,64}$/), sha256: z.string().regex(/^[0-9a-f]{64}$/), createdAt: z.string() }))
    .default([]),
});
export const UsersFileSchema = z.strictObject({ users: z.array(UserSchema) });
export type User = z.infer<typeof UserSchema>;
export type UsersFile = z.infer<typeof UsersFileSchema>;

export function isUserId(value: string): boolean {
  return USER_ID.test(value);
}

// N=2^15, r=8, p=1: OWASP's scrypt minimum; ~32 MiB and tens of milliseconds per check.
const SCRYPT = { N: 32768, r: 8, p: 1, keylen: 32 } as const;

function scrypt(password: string, salt: Buffer, N: number, r: number, p: number, keylen: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password.normalize('NFC'), salt, keylen, { N, r, p, maxmem: 128 * N * r * 2 }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

/** `scrypt$N$r$p$salt$hash` (base64). */
export async function hashPassword(password: string): Promise<string> {
  if (password.length < 12) throw new UsersFileError('passwords must be at least 12 characters');
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, SCRYPT.N, SCRYPT.r, SCRYPT.p, SCRYPT.keylen);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const expected = Buffer.from(parts[5] as string, 'base64');
  const key = await scrypt(password, Buffer.from(parts[4] as string, 'base64'), N, r, p, expected.length);
  return timingSafeEqual(key, expected);
}

export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** A new API token: `aj_<user>_<random>`; only its hash is stored. */
export function newApiToken(): { token: string; sha256: string } {
  const token = `ajt_${randomBytes(32).toString('base64url')}`;
  return { token, sha256: tokenHash(token) };
}

export function readUsersFile(path: string): UsersFile {
  if (!existsSync(path)) return { users: [] };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UsersFileError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = UsersFileSchema.safeParse(raw);
  if (!parsed.success)
    throw new UsersFileError(`${path}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const ids = new Set<string>();
  for (const u of parsed.data.users) {
    if (ids.has(u.id)) throw new UsersFileError(`${path}: user ${u.id} appears twice`);
    ids.add(u.id);
  }
  return parsed.data;
}

/** Writes the file atomically with mode 0600 (it holds hashes, which still deserve privacy). */
export function writeUsersFile(path: string, file: UsersFile): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(UsersFileSchema.parse(file), null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, path);
}

/** The users, re-read when the file's modification time changes. */
export class UserDirectory {
  private cached: { mtimeMs: number; file: UsersFile } | null = null;
  constructor(private readonly path: string) {}

  private file(): UsersFile {
    const mtimeMs = existsSync(this.path) ? statSync(this.path).mtimeMs : -1;
    if (this.cached?.mtimeMs !== mtimeMs) this.cached = { mtimeMs, file: readUsersFile(this.path) };
    return this.cached.file;
  }

  get(id: string): User | null {
    return this.file().users.find((u) => u.id === id) ?? null;
  }

  count(): number {
    return this.file().users.length;
  }

  /** The user whose API token this is, or null. */
  byToken(token: string): User | null {
    const h = Buffer.from(tokenHash(token), 'hex');
    for (const u of this.file().users) for (const t of u.apiTokens) if (timingSafeEqual(Buffer.from(t.sha256, 'hex'), h)) return u;
    return null;
  }
}
