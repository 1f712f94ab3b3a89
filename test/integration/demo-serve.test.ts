/**
 * `activity-journal demo --serve`: the demo's journal opened in the audit UI, signed in with the demo user made
 * for the run, without touching the real journal; Ctrl-C (SIGINT) ends it cleanly.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.ts';
import { freePort } from '../helpers/service.ts';
import { REDIS_URL } from '../helpers/pipeline.ts';
import type { Started } from '../helpers/product.ts';
import { exitOf, spawnCli } from '../helpers/cli.ts';
import { waitFor } from '../helpers/wait.ts';

let tmp: { dir: string; cleanup: () => void };
let child: Started['child'] | null = null;
beforeEach(() => {
  tmp = tempDir('aj-demo-serve-');
});
afterEach(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  tmp.cleanup();
});

/** Signs in through the login form (CSRF token and login cookie first), returning the session cookie. */
async function signIn(base: string, username: string, password: string): Promise<string> {
  const form = await fetch(`${base}/audit/login`);
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await form.text())?.[1] ?? '';
  const loginCookie = (form.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  const r = await fetch(`${base}/audit/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: loginCookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: csrf, username, password, next: '/audit/timeline' }).toString(),
  });
  expect(r.status).toBe(303);
  const session = r.headers.getSetCookie().find((c) => c.startsWith('aj_session='));
  expect(session).toBeDefined();
  return (session as string).split(';')[0] as string;
}

describe('activity-journal demo --serve', () => {
  it('serves the demo journal in the audit UI for a user made for the run, and stops on Ctrl-C', async () => {
    const port = await freePort();
    const realJournal = join(tmp.dir, 'journal.sqlite');
    const proc = spawnCli(['--json', 'demo', '--serve', `127.0.0.1:${port}`], {
      env: { ...process.env, JOURNAL_PATH: realJournal, REDIS_URL, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    let stdout = '';
    let stderr = '';
    proc.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = exitOf(proc);
    const served = await waitFor(
      () => {
        const line = stdout.split('\n').find((l) => l.includes('"auditUrl"'));
        return line ? (JSON.parse(line) as { auditUrl: string; user: string; password: string }) : null;
      },
      { what: 'the audit UI line', timeoutMs: 180_000, intervalMs: 200, detail: () => `stdout:\n${stdout}\nstderr:\n${stderr}` },
    );
    const summary = JSON.parse(stdout.split('\n')[0] as string) as { journal: string; interactions: number };
    expect(served.auditUrl).toBe(`http://127.0.0.1:${port}/audit`);
    expect(served.user).toBe('demo');
    expect(served.password.length).toBeGreaterThanOrEqual(16);

    const base = `http://127.0.0.1:${port}`;
    const cookie = await signIn(base, served.user, served.password);
    const page = (await (await fetch(`${base}/api/v1/interactions?limit=500`, { headers: { cookie } })).json()) as {
      rows: { category: string | null; summary: string | null }[];
    };
    expect(page.rows).toHaveLength(summary.interactions); // every journaled sample is on the timeline
    expect(page.rows.every((r) => r.summary && r.category)).toBe(true);
    expect(
      ((await fetch(`${base}/api/v1/interactions?category=billing`, { headers: { cookie } }).then((r) => r.json())) as { rows: unknown[] })
        .rows.length,
    ).toBeGreaterThan(0);
    // A wrong password is refused: the UI is not open to anyone.
    const wrong = await fetch(`${base}/api/v1/interactions`, { headers: { cookie: 'aj_session=forged' } });
    expect(wrong.status).toBe(401);

    proc.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(existsSync(realJournal)).toBe(false); // the real journal was never created
    expect(summary.journal).toContain(join(tmp.dir, 'demo'));
  });
});
