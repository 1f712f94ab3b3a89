/**
 * Issue 15's bar, as a new user meets the product: `npm start` on a fresh data directory, the first user made
 * with the CLI, signed form webhooks, and the audit API showing each interaction with its subject, summary and
 * category (and the category filter finding it); a second start refused; Redis stopped: a webhook is answered
 * 503 with Retry-After within 5 s, /healthz says so in words, and nothing is lost when Redis returns (empty: it
 * keeps nothing on disk); SIGTERM to npm's own pid stops every process within 15 s.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCliSync, type CliResult } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { freePort } from '../helpers/service.ts';
import { signedRaw } from '../helpers/web.ts';
import { OwnRedis, alive, exitWithin, healthy, processTree, startProduct, stillAlive, type Started } from '../helpers/product.ts';
import { waitFor } from '../helpers/wait.ts';

let tmp: { dir: string; cleanup: () => void };
let redis: OwnRedis | null;
let started: Started[];
let seen: number[];
beforeEach(() => {
  tmp = tempDir('aj-first-run-');
  redis = null;
  started = [];
  seen = [];
});
afterEach(async () => {
  for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  for (const pid of seen)
    if (alive(pid) && /activity-journal|esbuild/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))) process.kill(pid, 'SIGKILL');
  await redis?.down();
  tmp.cleanup();
});

interface Row {
  readonly subject: string | null;
  readonly summary: string | null;
  readonly category: string | null;
  readonly correlationId: string;
}

describe('the first run, as the README tells it', () => {
  it('npm start, a user, signed webhooks seen in the audit API; a second start refused; a Redis outage answered 503 and lost nothing; SIGTERM stops it all', async () => {
    const ownRedis = await OwnRedis.start();
    redis = ownRedis;
    const web = await freePort();
    const journalPort = await freePort();
    const dataDir = join(tmp.dir, 'data');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      JOURNAL_PATH: join(dataDir, 'journal.sqlite'),
      JOURNAL_SERVICE_LISTEN: `127.0.0.1:${journalPort}`,
      WEB_LISTEN: `127.0.0.1:${web}`,
      REDIS_URL: ownRedis.url,
      // Nothing configured for forms: the web process generates the form-webhook secret on its first start.
      FORMS_WEBHOOK_SECRET: '',
      // The re-drive looks for journaled interactions whose jobs were lost every second, after a second.
      REDRIVE_INTERVAL_SECONDS: '1',
      REDRIVE_GRACE_SECONDS: '1',
      LOG_LEVEL: 'info',
      JOURNAL_APPEND_TOKEN: '',
      JOURNAL_READ_TOKEN: '',
      AUDIT_USERS_PATH: '',
    };
    const npm = startProduct('npm', env);
    started.push(npm);
    await healthy(web, npm);
    seen.push(...processTree(npm.child.pid as number)); // so that a failed test leaves nothing serving

    const cli = (args: string[], input?: string): CliResult => runCliSync(args, { env, input });
    // The walkthrough's one command: a signed sample, its decision, and where to see it.
    const sample = cli(['send-sample']);
    expect(sample.status, sample.stderr).toBe(0);
    expect(sample.stdout).toMatch(/^Sent a signed sample form submission \(contact-sales\): journal entry #\d+/m);
    expect(sample.stdout).toMatch(/^Decided by offline: new_lead \(confidence 0\.\d\d\)\.$/m);
    expect(sample.stdout).toContain(
      `See it, with its decision and proofs: http://127.0.0.1:${web}/audit/trace?correlationId=form%2Fwebform%2Fsample-`,
    );
    expect(sample.stdout).toContain(
      `The audit UI has no users yet: create the first with  JOURNAL_PATH=${join(dataDir, 'journal.sqlite')} npx activity-journal users add admin --role admin`,
    );
    // Then the first user, as the README says (password on stdin), and an API token for this test.
    const added = cli(['users', 'add', 'maria', '--role', 'reviewer'], 'a first password 123\n');
    expect(added.status, added.stderr).toBe(0);
    const tokenOut = cli(['--json', 'users', 'token', 'maria']);
    expect(tokenOut.status, tokenOut.stderr).toBe(0);
    const token = (JSON.parse(tokenOut.stdout.trim()) as { token: string }).token;
    const api = async (path: string): Promise<{ rows: Row[] }> => {
      const r = await fetch(`http://127.0.0.1:${web}/api/v1${path}`, { headers: { authorization: `Bearer ${token}` } });
      if (r.status !== 200) throw new Error(`${path}: ${r.status} ${await r.text()}`);
      return (await r.json()) as { rows: Row[] };
    };

    const sampleRow = await waitFor(async () => (await api('/interactions')).rows.find((r) => r.summary) ?? null, {
      what: 'the sample in the audit API',
      timeoutMs: 30_000,
      intervalMs: 250,
    });
    expect(sampleRow).toMatchObject({ category: 'new_lead' });
    expect(sampleRow?.summary).toBeTruthy();

    // A form provider signs with the secret the web process generated (hex, in the state directory).
    const FORMS_SECRET = readFileSync(join(dataDir, 'state', 'forms-webhook.key')).toString('hex');
    const at = Date.now();
    const submission = (id: string, form: string, message: string): Record<string, unknown> => ({
      submissionId: id,
      form,
      submittedAt: new Date(at).toISOString(),
      email: `${id}@prospect.example`,
      name: `Pat ${id}`,
      fields: { Message: message },
    });
    const post = (body: Record<string, unknown>): Promise<Response> => {
      const signed = signedRaw(FORMS_SECRET, JSON.stringify(body), Date.now());
      // A provider waits a few seconds at most: an answer must come within 5 s (never a hang).
      return fetch(`http://127.0.0.1:${web}/webhooks/forms`, {
        method: 'POST',
        headers: signed.headers,
        body: signed.payload,
        signal: AbortSignal.timeout(5000),
      });
    };
    const billing = submission(
      'sub-billing',
      'support',
      'Invoice INV-2231 was charged twice on our card, please refund the duplicate payment.',
    );
    const lead = submission('sub-lead', 'contact-sales', 'We would like a demo and pricing for 25 seats.');
    for (const body of [billing, lead]) expect((await post(body)).status).toBe(200);

    // Each interaction shows its subject, summary and category, and the category filter finds it.
    const billed = await waitFor(async () => (await api('/interactions?category=billing')).rows.find((r) => r.summary) ?? null, {
      what: 'the billing form, decided, in the audit API',
      timeoutMs: 60_000,
      intervalMs: 250,
    });
    expect(billed.subject).toMatch(/support/);
    expect(billed.summary).toBeTruthy();
    expect(billed.category).toBe('billing');
    const all = await waitFor(
      async () => {
        const rows = (await api('/interactions')).rows;
        return rows.length === 3 && rows.every((r) => r.summary && r.category && r.subject) ? rows : null;
      },
      { what: 'both forms decided', timeoutMs: 60_000, intervalMs: 250 },
    );
    const leadRow = all.find((r) => r.correlationId !== billed.correlationId && r.correlationId !== sampleRow?.correlationId);
    expect(leadRow?.subject).toMatch(/contact-sales/);
    expect((await api(`/interactions?category=${leadRow?.category ?? ''}`)).rows.map((r) => r.correlationId)).toContain(
      leadRow?.correlationId,
    );

    // A second start on the same data: refused at once.
    const second = startProduct('node', {
      ...env,
      WEB_LISTEN: `127.0.0.1:${await freePort()}`,
      JOURNAL_SERVICE_LISTEN: `127.0.0.1:${await freePort()}`,
    });
    started.push(second);
    expect(await exitWithin(second, 20)).toBe(2);
    expect(second.stderr()).toContain('already running');

    // Redis stops. /healthz says so in words; a webhook is answered 503 with Retry-After, within 5 s.
    await ownRedis.down();
    const health = await waitFor(
      async () => {
        const r = await fetch(`http://127.0.0.1:${web}/healthz`);
        const body = (await r.json()) as { checks: { name: string; ok: boolean; error?: string }[] };
        const check = body.checks.find((c) => c.name === 'redis');
        return r.status === 503 && check && !check.ok ? check : null;
      },
      { what: '/healthz to see Redis gone', timeoutMs: 20_000 },
    );
    expect(health.error).toMatch(new RegExp(`^redis unreachable at 127\\.0\\.0\\.1:${ownRedis.port} \\(`));
    expect(health.error).not.toMatch(/enableOfflineQueue|Stream isn't writeable/);
    const during = submission('sub-outage', 'contact-sales', 'Please call me back about an order of 40 licences.');
    const refused = await post(during);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    // The provider retries while Redis is still down: the same answer, and still one interaction on the record.
    expect((await post(during)).status).toBe(503);

    // Redis comes back empty. The interaction taken during the outage is decided without the provider's help
    // (the re-drive finds it in the journal), and the provider's later retry is a duplicate, not a second one.
    await ownRedis.up();
    await waitFor(async () => (await fetch(`http://127.0.0.1:${web}/healthz`)).status === 200, {
      what: '/healthz ok again',
      timeoutMs: 30_000,
    });
    const rows = await waitFor(
      async () => {
        const r = (await api('/interactions')).rows;
        return r.length === 4 && r.every((x) => x.summary && x.category) ? r : null;
      },
      { what: 'the outage interaction decided', timeoutMs: 90_000, intervalMs: 500 },
    );
    expect(rows).toHaveLength(4);
    const retried = await post(during);
    expect(retried.status).toBe(200);
    expect(((await retried.json()) as { results: { duplicate: boolean }[] }).results[0]?.duplicate).toBe(true);
    expect((await api('/interactions')).rows).toHaveLength(4);

    // SIGTERM to npm's own pid, as Docker and systemd send it: every process gone within 15 s.
    const pids = processTree(npm.child.pid as number);
    seen.push(...pids);
    expect(pids.length).toBeGreaterThanOrEqual(4);
    process.kill(npm.child.pid as number, 'SIGTERM');
    expect(await stillAlive(pids, 15)).toEqual([]);
  });

  it('a process that cannot start stops the product with its reason, instead of being restarted for ever', async () => {
    const rules = join(tmp.dir, 'rules.json');
    writeFileSync(rules, '{ "version": "broken", ');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      JOURNAL_PATH: join(tmp.dir, 'data', 'journal.sqlite'),
      JOURNAL_SERVICE_LISTEN: `127.0.0.1:${await freePort()}`,
      WEB_LISTEN: `127.0.0.1:${await freePort()}`,
      RULES_PATH: rules,
      LOG_LEVEL: 'info',
      JOURNAL_APPEND_TOKEN: '',
      JOURNAL_READ_TOKEN: '',
    };
    const product = startProduct('node', env);
    started.push(product);
    // The worker and the web process read the rules at start and exit 2: not restarted, the product stops.
    expect(await exitWithin(product, 60)).toBe(2);
    expect(product.stderr()).toContain(`cannot read rules from ${rules}`);
    expect(product.stderr()).toMatch(/activity-journal stopped: the (worker|web) process could not start/);
    expect(product.stderr()).not.toMatch(/process exited; restarting/);
  });
});
