/**
 * The audit UI's credentials: scrypt password hashes, hashed API tokens, signed sessions with expiry and
 * revocation, CSRF tokens bound to the session, the sign-in throttle, and the auth state file that keeps
 * sign-outs and lockouts across restarts and between web processes.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { existsSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { tempDir } from '../helpers/tmp.ts';
import { LoginThrottle, SessionSigner } from '../../src/audit/session.ts';
import { AuthStateStore } from '../../src/audit/auth-state.ts';
import { UserDirectory, allowed, hashPassword, newApiToken, readUsersFile, verifyPassword, writeUsersFile } from '../../src/audit/users.ts';
import { UsersFileError } from '../../src/audit/errors/users-file.error.ts';

describe('passwords and tokens', () => {
  it('hashes with scrypt and a random salt; verifies the right password only', async () => {
    const a = await hashPassword('correct horse battery staple');
    const b = await hashPassword('correct horse battery staple');
    expect(a).toMatch(/^scrypt\$32768\$8\$1\$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain('horse');
    expect(await verifyPassword('correct horse battery staple', a)).toBe(true);
    expect(await verifyPassword('correct horse battery stapl', a)).toBe(false);
    expect(await verifyPassword('anything', 'plain-text-password')).toBe(false);
    await expect(hashPassword('short')).rejects.toThrow(UsersFileError);
  });

  it('stores only token hashes, finds the user by token, and re-reads the file when it changes', () => {
    const tmp = tempDir();
    try {
      const path = join(tmp.dir, 'users.json');
      const t = newApiToken();
      writeUsersFile(path, {
        users: [
          {
            id: 'ops-bot',
            role: 'viewer',
            passwordHash: null,
            apiTokens: [{ id: 't-1', sha256: t.sha256, createdAt: '2026-11-27T00:00:00Z' }],
          },
        ],
      });
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(JSON.stringify(readUsersFile(path))).not.toContain(t.token);
      const dir = new UserDirectory(path);
      expect(dir.byToken(t.token)?.id).toBe('ops-bot');
      expect(dir.byToken(t.token + 'x')).toBeNull();
      writeUsersFile(path, { users: [] });
      // A later mtime: the directory notices the token is gone.
      const later = new Date(Date.now() + 5000);
      utimesSync(path, later, later);
      expect(dir.byToken(t.token)).toBeNull();
      writeFileSync(path, '{"users":[{"id":"Not An Id","role":"root"}]}');
      utimesSync(path, new Date(Date.now() + 10_000), new Date(Date.now() + 10_000));
      expect(() => dir.get('x')).toThrow(/users\.0\.id|users\.0\.role/);
    } finally {
      tmp.cleanup();
    }
  });

  it('gives each role what it may do', () => {
    expect(allowed('viewer', 'read')).toBe(true);
    expect(allowed('viewer', 'override')).toBe(false);
    expect(allowed('viewer', 'export')).toBe(false);
    expect(allowed('reviewer', 'override')).toBe(true);
    expect(allowed('admin', 'verify')).toBe(true);
  });
});

describe('sessions', () => {
  const secret = Buffer.alloc(32, 7);
  const hashKey = Buffer.alloc(32, 9);
  let tmp: { dir: string; cleanup: () => void };
  let stores: AuthStateStore[] = [];
  const open = (now: () => number = Date.now, name = 'auth-state.sqlite'): AuthStateStore => {
    const s = AuthStateStore.open(join(tmp.dir, 'data', name), hashKey, now);
    stores.push(s);
    return s;
  };
  beforeEach(() => {
    tmp = tempDir('aj-auth-');
    stores = [];
  });
  afterEach(() => {
    for (const s of stores) s.close();
    tmp.cleanup();
  });

  it('verifies its own tokens, and refuses forged, expired and revoked ones', () => {
    let now = 1_000_000;
    const s = new SessionSigner(
      secret,
      60_000,
      open(() => now),
      () => now,
    );
    const { token, session } = s.issue('alice');
    expect(s.verify(token)).toEqual(session);
    const [v, body, mac] = token.split('.') as [string, string, string];
    const forgedBody = Buffer.from(JSON.stringify({ s: session.sid, u: 'admin', e: session.expiresAt })).toString('base64url');
    expect(s.verify(`${v}.${forgedBody}.${mac}`)).toBeNull();
    expect(s.verify(`${v}.${body}.${mac.slice(0, -2)}AA`)).toBeNull();
    expect(
      new SessionSigner(
        Buffer.alloc(32, 8),
        60_000,
        open(() => now, 'other.sqlite'),
        () => now,
      ).verify(token),
    ).toBeNull();
    expect(s.verify(undefined)).toBeNull();
    expect(s.verify('garbage')).toBeNull();
    now += 60_001;
    expect(s.verify(token)).toBeNull();
    now -= 60_001;
    s.revoke(session);
    expect(s.verify(token)).toBeNull();
  });

  it('binds CSRF tokens to the session id', () => {
    const s = new SessionSigner(secret, 60_000, open());
    const a = s.issue('alice').session;
    const b = s.issue('alice').session;
    expect(s.checkCsrf(a.sid, s.csrfFor(a.sid))).toBe(true);
    expect(s.checkCsrf(a.sid, s.csrfFor(b.sid))).toBe(false);
    expect(s.checkCsrf(a.sid, undefined)).toBe(false);
    expect(s.checkCsrf(a.sid, '')).toBe(false);
  });

  it('locks a name out after repeated failures, for the window only, whether or not the name is a user', () => {
    let now = 0;
    const t = new LoginThrottle(
      open(() => now),
      { maxPerName: 3, maxPerAddress: 100, windowMs: 1000 },
    );
    t.fail('alice', '10.0.0.1');
    t.fail('alice', '10.0.0.2');
    expect(t.locked('alice', '10.0.0.3')).toBe(false);
    t.fail('alice', '10.0.0.3');
    // Locked by name, from any address; another name from the same address is not.
    expect(t.locked('alice', '10.0.0.9')).toBe(true);
    expect(t.locked('bob', '10.0.0.1')).toBe(false);
    now = 1500;
    expect(t.locked('alice', '10.0.0.1')).toBe(false);
    t.fail('alice', '10.0.0.1');
    t.succeed('alice');
    t.fail('alice', '10.0.0.1');
    t.fail('alice', '10.0.0.1');
    expect(t.locked('alice', '10.0.0.1')).toBe(false);
  });

  it('locks a client address out after failures over many names; a success does not reset the address', () => {
    let now = 0;
    const t = new LoginThrottle(
      open(() => now),
      { maxPerName: 100, maxPerAddress: 4, windowMs: 1000 },
    );
    for (const name of ['a', 'b', 'c']) t.fail(name, '10.0.0.1');
    t.succeed('mallory');
    expect(t.locked('zed', '10.0.0.1')).toBe(false);
    t.fail('d', '10.0.0.1');
    expect(t.locked('zed', '10.0.0.1')).toBe(true);
    expect(t.locked('zed', '10.0.0.2')).toBe(false);
    now = 1001;
    expect(t.locked('zed', '10.0.0.1')).toBe(false);
  });

  it('keeps sign-outs and lockouts in a 0600 WAL file, shared by two processes and kept across a reopen, with hashed ids only', () => {
    let now = 1_000_000;
    const path = join(tmp.dir, 'data', 'auth-state.sqlite');
    const a = open(() => now);
    const b = open(() => now);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const signerA = new SessionSigner(secret, 60_000, a, () => now);
    const signerB = new SessionSigner(secret, 60_000, b, () => now);
    const { token, session } = signerA.issue('alice');
    expect(signerB.verify(token)).toEqual(session);
    signerA.revoke(session);
    // The other process sees the sign-out at once.
    expect(signerB.verify(token)).toBeNull();
    const limits = { maxPerName: 2, maxPerAddress: 100, windowMs: 60_000 };
    new LoginThrottle(a, limits).fail('mallory@evil.example', '192.0.2.7');
    new LoginThrottle(b, limits).fail('mallory@evil.example', '192.0.2.7');
    expect(new LoginThrottle(a, limits).locked('mallory@evil.example', '192.0.2.8')).toBe(true);
    expect(existsSync(`${path}-wal`)).toBe(true);
    expect(statSync(`${path}-wal`).mode & 0o777).toBe(0o600);
    a.close();
    b.close();
    // A restart: the revocation and the lockout are still there.
    const c = open(() => now);
    expect(new SessionSigner(secret, 60_000, c, () => now).verify(token)).toBeNull();
    expect(new LoginThrottle(c, limits).locked('mallory@evil.example', '192.0.2.9')).toBe(true);
    c.close();
    const raw = readFileSync(path).toString('latin1');
    for (const clear of [session.sid, 'mallory', '192.0.2.7', token]) expect(raw).not.toContain(clear);
    // Expired rows are pruned when new ones are written.
    now += 10 * 60_000;
    const d = open(() => now);
    const later = new SessionSigner(secret, 60_000, d, () => now);
    later.revoke(later.issue('bob').session);
    new LoginThrottle(d, limits).fail('someone', '192.0.2.1');
    d.close();
    const db = new Database(path, { readonly: true });
    try {
      expect(db.prepare('SELECT count(*) AS n FROM revoked_sessions').get()).toEqual({ n: 1 });
      expect(db.prepare('SELECT count(*) AS n FROM login_failures').get()).toEqual({ n: 2 });
    } finally {
      db.close();
    }
  });
});
