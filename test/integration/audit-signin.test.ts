/**
 * The audit UI's sign-in and sessions over HTTP, against the real routes, users file, journal and auth state
 * file (no browser): an unknown name and a wrong password get the same answer after the same work (scrypt
 * runs for both) and lock out alike; a client address is capped over every name; sign-outs and lockouts hold
 * in a second web process sharing the file and after a restart; a cookie that is not valid percent-encoding
 * counts as absent on every page; the CSP allows exactly the inline script and stylesheet the pages carry.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { tempDir } from '../helpers/tmp.ts';
import { loadConfig, type Config } from '../../src/config/config.ts';
import { silentLogger } from '../../src/config/logger.ts';
import { JournalWriter } from '../../src/journal/writer.ts';
import { JournalReader } from '../../src/journal/reader.ts';
import { LocalJournalClient } from '../../src/journal/local-client.ts';
import { createWebServer } from '../../src/web/server.ts';
import { createAuditSurface, type AuditSurface } from '../../src/web/audit-surface.ts';
import { hashPassword, verifyPassword, writeUsersFile } from '../../src/audit/users.ts';

const ALICE = { id: 'alice', password: 'correct horse battery staple' };

let tmp: { dir: string; cleanup: () => void };
let journal: LocalJournalClient;
let config: Config;
const running: { app: FastifyInstance; surface: AuditSurface }[] = [];

interface Web {
  readonly app: FastifyInstance;
  /** The stored hashes the password check was given, in call order. */
  readonly checked: string[];
  close(): Promise<void>;
}

async function web(env: Record<string, string> = {}): Promise<Web> {
  const cfg = Object.keys(env).length === 0 ? config : configFor(env);
  const surface = createAuditSurface(cfg, {
    journal,
    enqueue: () => Promise.resolve(),
    connectors: () => ({ inboxes: [], webhooks: [], gmailConfigured: false }),
    logger: silentLogger,
  });
  const checked: string[] = [];
  const checkPassword = (password: string, stored: string): Promise<boolean> => {
    checked.push(stored);
    return verifyPassword(password, stored);
  };
  const app = createWebServer({ checks: [], audit: { ...surface.routes, checkPassword } });
  await app.ready();
  const entry = { app, surface };
  running.push(entry);
  return {
    app,
    checked,
    async close() {
      await app.close();
      surface.close();
      running.splice(running.indexOf(entry), 1);
    },
  };
}

function configFor(env: Record<string, string>): Config {
  return loadConfig({
    JOURNAL_PATH: join(tmp.dir, 'journal.sqlite'),
    KEY_STORE_BACKUP: join(tmp.dir, 'key-backup', 'subject-keys.sqlite'),
    AUDIT_SESSION_SECRET: 's'.repeat(40),
    LOG_LEVEL: 'silent',
    ...env,
  });
}

interface Attempt {
  readonly status: number;
  readonly body: string;
  readonly cookies: string[];
}

/** Fetches the sign-in form (for its nonce cookie and CSRF token) and posts it. */
async function signIn(app: FastifyInstance, username: string, password: string, remoteAddress = '127.0.0.1'): Promise<Attempt> {
  const form = await app.inject({ method: 'GET', url: '/audit/login', remoteAddress });
  const nonce = /aj_login=([^;]+)/.exec(String(form.headers['set-cookie']))?.[1] as string;
  const csrf = /name="_csrf" value="([^"]+)"/.exec(form.body)?.[1] as string;
  const res = await app.inject({
    method: 'POST',
    url: '/audit/login',
    remoteAddress,
    headers: { cookie: `aj_login=${nonce}`, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ _csrf: csrf, username, password, next: '/audit/timeline' }).toString(),
  });
  const setCookie = res.headers['set-cookie'];
  return { status: res.statusCode, body: res.body, cookies: Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [] };
}

function sessionCookie(a: Attempt): string {
  const c = a.cookies.find((x) => x.startsWith('aj_session='));
  expect(c, `a session cookie (status ${a.status})`).toBeDefined();
  return (c as string).split(';')[0] as string;
}

/** The answer with its random parts (the fresh nonce and the CSRF token bound to it) blanked out. */
function shape(a: Attempt): { status: number; body: string; cookies: string[] } {
  return {
    status: a.status,
    body: a.body.replace(/name="_csrf" value="[^"]+"/g, 'name="_csrf" value="X"'),
    cookies: a.cookies.map((c) => c.replace(/^aj_login=[^;]+/, 'aj_login=X')),
  };
}

async function me(app: FastifyInstance, cookie: string): Promise<{ status: number; csrf: string | null }> {
  const res = await app.inject({ method: 'GET', url: '/api/v1/me', headers: { cookie } });
  return { status: res.statusCode, csrf: res.statusCode === 200 ? res.json<{ csrfToken: string }>().csrfToken : null };
}

beforeEach(async () => {
  tmp = tempDir('aj-signin-');
  config = configFor({});
  const writer = await JournalWriter.open({ path: config.journal.path, keysDir: config.journal.keysDir, checkpointEveryMs: 0 });
  journal = new LocalJournalClient(writer, JournalReader.open(config.journal.path));
  writeUsersFile(config.audit.usersPath, {
    users: [
      { id: ALICE.id, role: 'reviewer', passwordHash: await hashPassword(ALICE.password), apiTokens: [] },
      // A token-only user: no password can sign in as it.
      { id: 'ops-bot', role: 'viewer', passwordHash: null, apiTokens: [] },
      { id: 'bob', role: 'viewer', passwordHash: await hashPassword('bob password 123456'), apiTokens: [] },
    ],
  });
});

afterEach(async () => {
  for (const r of [...running]) {
    await r.app.close();
    r.surface.close();
  }
  running.length = 0;
  await journal.close();
  tmp.cleanup();
});

describe('signing in to the audit UI', () => {
  it('answers an unknown name, a token-only user and a wrong password alike, after running scrypt for each', async () => {
    const w = await web();
    const wrong = await signIn(w.app, 'alice', 'not the password at all');
    const unknown = await signIn(w.app, 'mallory@evil.example', 'not the password at all');
    const tokenOnly = await signIn(w.app, 'ops-bot', 'not the password at all');
    expect(wrong.status).toBe(401);
    expect(shape(unknown)).toEqual(shape(wrong));
    expect(shape(tokenOnly)).toEqual(shape(wrong));
    // The same work on every path: the KDF ran once per attempt, each time on a scrypt hash with the same
    // parameters; for the unknown name and the token-only user, the dummy hash made at start.
    expect(w.checked).toHaveLength(3);
    const params = w.checked.map((h) => h.split('$').slice(0, 4).join('$'));
    expect(new Set(params)).toEqual(new Set(['scrypt$32768$8$1']));
    expect(w.checked[1]).not.toBe(w.checked[0]);
    expect(w.checked[2]).toBe(w.checked[1]);
    // And the right password still signs in.
    const ok = await signIn(w.app, 'alice', ALICE.password);
    expect(ok.status).toBe(303);
    expect((await me(w.app, sessionCookie(ok))).status).toBe(200);
  });

  it('locks out an unknown name exactly as a real one, with the same 429', async () => {
    const w = await web();
    // Each name from its own addresses, so that only the per-name count applies.
    for (let i = 0; i < 5; i++) {
      expect((await signIn(w.app, 'alice', 'wrong password, try again', `198.51.100.${i + 1}`)).status).toBe(401);
      expect((await signIn(w.app, 'nobody', 'wrong password, try again', `203.0.113.${i + 1}`)).status).toBe(401);
    }
    const known = await signIn(w.app, 'alice', ALICE.password, '198.51.100.50');
    const unknown = await signIn(w.app, 'nobody', ALICE.password, '203.0.113.50');
    expect(known.status).toBe(429);
    expect(shape(unknown)).toEqual(shape(known));
    // The name is locked, not everyone: another user signs in from an address that tried before.
    expect((await signIn(w.app, 'bob', 'bob password 123456', '198.51.100.1')).status).toBe(303);
  });

  it('caps failures per client address over every name (AUDIT_LOGIN_MAX_FAILURES_PER_ADDRESS)', async () => {
    const w = await web({ AUDIT_LOGIN_MAX_FAILURES_PER_ADDRESS: '3' });
    for (const name of ['a1', 'a2', 'alice']) expect((await signIn(w.app, name, 'guessing a password', '192.0.2.66')).status).toBe(401);
    // Locked from that address, even with the right password; a different client is not affected.
    expect((await signIn(w.app, 'alice', ALICE.password, '192.0.2.66')).status).toBe(429);
    expect((await signIn(w.app, 'alice', ALICE.password, '192.0.2.67')).status).toBe(303);
  });
});

describe('sessions shared by web processes and kept across restarts', () => {
  it('a sign-out in one web process holds in another on the same auth state file, and after a restart', async () => {
    const a = await web();
    const b = await web();
    const cookie = sessionCookie(await signIn(a.app, 'alice', ALICE.password));
    expect((await me(b.app, cookie)).status).toBe(200);
    const { csrf } = await me(a.app, cookie);
    const out = await a.app.inject({
      method: 'POST',
      url: '/audit/logout',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: `_csrf=${encodeURIComponent(csrf as string)}`,
    });
    expect(out.statusCode).toBe(303);
    expect((await me(a.app, cookie)).status).toBe(401);
    expect((await me(b.app, cookie)).status).toBe(401);
    // Restart both: the sign-out is not forgotten.
    await a.close();
    await b.close();
    const c = await web();
    expect((await me(c.app, cookie)).status).toBe(401);
    // While a session that was not signed out still works after the restart.
    const other = sessionCookie(await signIn(c.app, 'alice', ALICE.password));
    await c.close();
    const d = await web();
    expect((await me(d.app, other)).status).toBe(200);
  });

  it('a lockout reached through one web process holds in another, and after a restart', async () => {
    const a = await web();
    const b = await web();
    for (let i = 0; i < 3; i++) expect((await signIn(a.app, 'alice', 'wrong password, try again', `198.51.100.${i + 1}`)).status).toBe(401);
    for (let i = 3; i < 5; i++) expect((await signIn(b.app, 'alice', 'wrong password, try again', `198.51.100.${i + 1}`)).status).toBe(401);
    expect((await signIn(a.app, 'alice', ALICE.password, '198.51.100.9')).status).toBe(429);
    expect((await signIn(b.app, 'alice', ALICE.password, '198.51.100.9')).status).toBe(429);
    await a.close();
    await b.close();
    const c = await web();
    expect((await signIn(c.app, 'alice', ALICE.password, '198.51.100.9')).status).toBe(429);
  });
});

describe('cookies and the content security policy', () => {
  const BAD = '%E0%A4%A';
  const pages = [
    '/audit/timeline',
    '/audit/review',
    '/audit/trace?correlationId=x',
    '/audit/integrity',
    '/audit/connectors',
    '/audit/export',
  ];
  const api = [
    '/api/v1/me',
    '/api/v1/interactions',
    '/api/v1/decisions',
    '/api/v1/trace?correlationId=x',
    '/api/v1/integrity',
    '/api/v1/connectors',
  ];

  it('treats a cookie that is not valid percent-encoding as absent, on every page', async () => {
    const w = await web();
    for (const cookie of [`aj_session=${BAD}`, `aj_session=${BAD}; aj_login=${BAD}`, `other=${BAD}`]) {
      for (const url of pages) {
        const res = await w.app.inject({ method: 'GET', url, headers: { cookie } });
        expect(res.statusCode, `${url} with ${cookie}`).toBe(303);
        expect(res.headers.location).toMatch(/^\/audit\/login\?next=/);
      }
      for (const url of api)
        expect((await w.app.inject({ method: 'GET', url, headers: { cookie } })).statusCode, `${url} with ${cookie}`).toBe(401);
      expect((await w.app.inject({ method: 'GET', url: '/audit/login', headers: { cookie } })).statusCode).toBe(200);
      const post = await w.app.inject({
        method: 'POST',
        url: '/audit/login',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'username=alice&password=x',
      });
      expect(post.statusCode).toBe(403);
      const logout = await w.app.inject({
        method: 'POST',
        url: '/audit/logout',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        payload: '_csrf=x',
      });
      expect(logout.statusCode).toBe(401);
    }
    // A bad cookie beside a good session leaves the session working.
    const session = sessionCookie(await signIn(w.app, 'alice', ALICE.password));
    expect((await me(w.app, `other=${BAD}; ${session}`)).status).toBe(200);
    expect(
      (await w.app.inject({ method: 'GET', url: '/audit/timeline', headers: { cookie: `${session}; other=${BAD}` } })).statusCode,
    ).toBe(200);
  });

  it('sends a CSP without unsafe-inline that allows exactly the inline script and stylesheet the pages carry', async () => {
    const w = await web();
    const session = sessionCookie(await signIn(w.app, 'alice', ALICE.password));
    const res = await w.app.inject({ method: 'GET', url: '/audit/integrity', headers: { cookie: session } });
    expect(res.statusCode).toBe(200);
    const csp = String(res.headers['content-security-policy']);
    expect(csp).not.toContain('unsafe');
    const directive = (name: string): string[] =>
      (
        csp
          .split(';')
          .map((d) => d.trim().split(/\s+/))
          .find((d) => d[0] === name) ?? []
      ).slice(1);
    const hash = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
    const scripts = [...res.body.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1] as string);
    const styles = [...res.body.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1] as string);
    expect(scripts).toHaveLength(1);
    expect(styles).toHaveLength(1);
    expect(directive('script-src')).toEqual(scripts.map(hash));
    expect(directive('style-src')).toEqual(styles.map(hash));
    expect(res.body).not.toMatch(/\sstyle="/);
    expect(res.body).not.toMatch(/\son[a-z]+="/);
    // The sign-in page: no inline style attribute (it would need 'unsafe-inline' or 'unsafe-hashes').
    const login = await w.app.inject({ method: 'GET', url: '/audit/login' });
    expect(login.body).not.toMatch(/\sstyle="/);
    expect(login.headers['content-security-policy']).toBe(csp);
  });

  it('answers an address that does not exist in words for its reader, and /audit/trace without a correlation asks for one', async () => {
    const w = await web();
    const page = await w.app.inject({ method: 'GET', url: '/audit/no-such-page?x=1' });
    expect(page.statusCode).toBe(404);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toBeDefined();
    expect(page.body).toContain('There is no page at <code>/audit/no-such-page</code>');
    expect(page.body).toContain('href="/audit/timeline"');
    const escaped = await w.app.inject({ method: 'GET', url: '/audit/%3Cscript%3E' });
    expect(escaped.body).not.toContain('<script>');
    const api = await w.app.inject({ method: 'GET', url: '/api/v1/nothing' });
    expect(api.statusCode).toBe(404);
    expect(api.json()).toEqual({ error: 'no such endpoint: GET /api/v1/nothing (the API is described at /api/v1/openapi.json)' });
    const other = await w.app.inject({ method: 'GET', url: '/favicon.ico' });
    expect(other.statusCode).toBe(404);
    expect(other.json<{ error: string }>().error).toMatch(/^no such endpoint: GET \/favicon\.ico \(this server has \/healthz/);

    const cookie = sessionCookie(await signIn(w.app, ALICE.id, ALICE.password));
    const finder = await w.app.inject({ method: 'GET', url: '/audit/trace', headers: { cookie } });
    expect(finder.statusCode).toBe(200);
    expect(finder.body).toContain('<form method="get" action="/audit/trace"><label>Correlation id <input name="correlationId" required');
  });
});
