/**
 * `npm start` (activity-journal start): journal service, workers and web server as separate processes under one
 * supervisor; a killed child is restarted; SIGTERM stops everything cleanly.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { tempDir } from '../helpers/tmp.ts';
import { freePort } from '../helpers/service.ts';
import { REDIS_URL, obliterate, uniquePrefix } from '../helpers/pipeline.ts';

let tmp: { dir: string; cleanup: () => void };
let prefix: string;
beforeEach(() => {
  tmp = tempDir('aj-start-');
  prefix = uniquePrefix();
});
afterEach(async () => {
  await obliterate(prefix);
  tmp.cleanup();
});

async function waitFor<T>(what: string, f: () => Promise<T | null>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await f();
      if (v !== null) return v;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('activity-journal start', () => {
  it('supervises the journal service, the workers and the web server, and stops cleanly', async () => {
    const web = await freePort();
    const journalPort = await freePort();
    const child = spawn(process.execPath, ['bin/activity-journal.mjs', 'start'], {
      env: { ...process.env, JOURNAL_PATH: `${tmp.dir}/journal.sqlite`, JOURNAL_SERVICE_LISTEN: `127.0.0.1:${journalPort}`, WEB_LISTEN: `127.0.0.1:${web}`, REDIS_URL, QUEUE_PREFIX: prefix, LOG_LEVEL: 'info', JOURNAL_APPEND_TOKEN: '', JOURNAL_READ_TOKEN: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));

    const health = await waitFor('healthy', async () => {
      const r = await fetch(`http://127.0.0.1:${web}/healthz`);
      const body = (await r.json()) as { ok: boolean; checks: { name: string; ok: boolean }[] };
      return r.status === 200 && body.ok ? body : null;
    });
    expect(health.checks.map((c) => c.name).sort()).toEqual(['journal', 'redis']);
    const metrics = await (await fetch(`http://127.0.0.1:${web}/metrics`)).text();
    expect(metrics).toMatch(/^aj_journal_entries \d+$/m);
    expect(metrics).toMatch(/^aj_journal_writable 1$/m);
    expect(metrics).toMatch(/^aj_queue_jobs\{queue="classify",state="waiting"\} 0$/m);
    expect(stderr).toMatch(/activity-journal is running/);

    // A worker that dies is restarted by the supervisor.
    const pidOf = (name: string): number | null => {
      const matches = [...stderr.matchAll(new RegExp(`"process":"${name}","pid":(\\d+)`, 'g'))];
      const last = matches[matches.length - 1];
      return last ? Number(last[1]) : null;
    };
    const firstWorker = await waitFor('worker pid', () => Promise.resolve(pidOf('worker')));
    process.kill(firstWorker, 'SIGKILL');
    const secondWorker = await waitFor('worker restart', () => Promise.resolve(pidOf('worker') !== firstWorker ? pidOf('worker') : null));
    expect(secondWorker).not.toBe(firstWorker);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/journal service stopped/);
    const probe = await fetch(`http://127.0.0.1:${web}/healthz`).then(() => 'up', () => 'down');
    expect(probe).toBe('down');
  });
});
