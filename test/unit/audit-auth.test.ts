/**
 * The audit UI's credentials: scrypt password hashes, hashed API tokens, signed sessions with expiry and
 * revocation, CSRF tokens bound to the session, the sign-in throttle.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { statSync, utimesSync, writeFileSync } from 'node:fs';
import { tempDir } from '../helpers/tmp.ts';
import { LoginThrottle, SessionSigner } from '../../src/audit/session.ts';
import { UserDirectory, UsersFileError, allowed, hashPassword, newApiToken, readUsersFile, verifyPassword, writeUsersFile } from '../../src/audit/users.ts';

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
      writeUsersFile(path, { users: [{ id: 'ops-bot', role: 'viewer', passwordHash: null, apiTokens: [{ id: 't-1', sha256: t.sha256, createdAt: '2026-11-27T00:00:00Z' }] }] });
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

  it('verifies its own tokens, and refuses forged, expired and revoked ones', () => {
    let now = 1_000_000;
    const s = new SessionSigner(secret, 60_000, () => now);
    const { token, session } = s.issue('alice');
    expect(s.verify(token)).toEqual(session);
    const [v, body, mac] = token.split('.') as [string, string, string];
    const forgedBody = Buffer.from(JSON.stringify({ s: session.sid, u: 'admin', e: session.expiresAt })).toString('base64url');
    expect(s.verify(`${v}.${forgedBody}.${mac}`)).toBeNull();
    expect(s.verify(`${v}.${body}.${mac.slice(0, -2)}AA`)).toBeNull();
    expect(new SessionSigner(Buffer.alloc(32, 8), 60_000, () => now).verify(token)).toBeNull();
    expect(s.verify(undefined)).toBeNull();
    expect(s.verify('garbage')).toBeNull();
    now += 60_001;
    expect(s.verify(token)).toBeNull();
    now -= 60_001;
    s.revoke(session);
    expect(s.verify(token)).toBeNull();
  });

  it('binds CSRF tokens to the session id', () => {
    const s = new SessionSigner(secret, 60_000);
    const a = s.issue('alice').session;
    const b = s.issue('alice').session;
    expect(s.checkCsrf(a.sid, s.csrfFor(a.sid))).toBe(true);
    expect(s.checkCsrf(a.sid, s.csrfFor(b.sid))).toBe(false);
    expect(s.checkCsrf(a.sid, undefined)).toBe(false);
    expect(s.checkCsrf(a.sid, '')).toBe(false);
  });

  it('locks a user out after repeated failures, for the window only', () => {
    let now = 0;
    const t = new LoginThrottle(3, 1000, () => now);
    t.fail('alice');
    t.fail('alice');
    expect(t.locked('alice')).toBe(false);
    t.fail('alice');
    expect(t.locked('alice')).toBe(true);
    expect(t.locked('bob')).toBe(false);
    now = 1500;
    expect(t.locked('alice')).toBe(false);
  });
});
