/**
 * The command line as a user runs it: real processes, real files, exit codes.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cpSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tempDir } from '../helpers/tmp.ts';
import { runCli, runCliSync, spawnCli, type CliResult } from '../helpers/cli.ts';
import { REDIS_URL, obliterate, uniquePrefix } from '../helpers/pipeline.ts';
import { readUsersFile, verifyPassword } from '../../src/audit/users.ts';

let tmp: { dir: string; cleanup: () => void };
let env: NodeJS.ProcessEnv;
beforeEach(() => {
  tmp = tempDir('aj-cli-');
  // The key store backup defaults to beside the data directory, which is tmp.dir itself here: kept inside it.
  env = {
    ...process.env,
    JOURNAL_PATH: join(tmp.dir, 'journal.sqlite'),
    LOG_LEVEL: 'warn',
    JOURNAL_APPEND_TOKEN: '',
    JOURNAL_READ_TOKEN: '',
    KEY_STORE_BACKUP: join(tmp.dir, 'key-backup', 'subject-keys.sqlite'),
  };
});
afterEach(() => tmp.cleanup());

const cli = (args: string[], input?: string): CliResult => runCliSync(args, { env, input });

/** Streams `lines` into `append` without building one huge string first. */
function appendLines(lines: Iterable<string>, args: string[] = []): Promise<CliResult> {
  function* withNewlines(): Generator<string> {
    for (const line of lines) yield line + '\n';
  }
  return runCli(['append', ...args], { env, input: withNewlines() });
}

const line = (i: number): string =>
  JSON.stringify({
    kind: 'state.changed',
    source: 'crm',
    actor: 'import',
    correlationId: `contact/${i % 500}`,
    payload: { entity: `contact/${i}`, field: 'lifecyclestage', from: 'lead', to: 'customer' },
  });

describe('activity-journal append', () => {
  it('streams 100,000 lines in about a hundred transactions, and a re-run adds nothing', async () => {
    function* lines(): Generator<string> {
      for (let i = 0; i < 100_000; i++) yield line(i);
    }
    const first = await appendLines(lines(), ['--json']);
    expect(first.status).toBe(0);
    const summary = (JSON.parse(first.stderr.trim().split('\n').pop() as string) as { summary: { appended: number; transactions: number } })
      .summary;
    expect(summary.appended).toBe(100_000);
    expect(summary.transactions).toBeLessThanOrEqual(250); // groups of 1,000, plus checkpoints and anchoring
    expect(first.stdout.trim().split('\n')).toHaveLength(100_000);
    const again = await appendLines(lines(), ['--json']);
    expect(
      (JSON.parse(again.stderr.trim().split('\n').pop() as string) as { summary: { appended: number; duplicates: number } }).summary,
    ).toMatchObject({ appended: 0, duplicates: 100_000 });
    expect(cli(['verify']).status).toBe(0);
  });

  it('answers each line, refusing bad ones with the reason, and exits 1 when any was refused', async () => {
    const r = await appendLines([line(1), '{"kind":"nope"}', 'not json', line(2), '', line(1)], ['--json']);
    expect(r.status).toBe(1);
    const results = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { line: number; ok: boolean; error?: string; duplicate?: boolean });
    expect(results.map((x) => [x.line, x.ok])).toEqual([
      [1, true],
      [2, false],
      [3, false],
      [4, true],
      [6, true],
    ]);
    expect(results[1]?.error).toMatch(/unknown kind/);
    expect(results[2]?.error).toMatch(/not JSON/);
    expect(results[4]?.duplicate).toBe(true);
  });
});

describe('activity-journal prove / verify-proof / trace / public-key', () => {
  it('proves an entry, and the proof checks offline, pinned to the journal key; a tampered proof does not', async () => {
    expect((await appendLines([line(1), line(2), line(3)])).status).toBe(0);
    const key = cli(['public-key']).stdout.trim();
    expect(key).toMatch(/^activity-journal\/[0-9a-f-]+\+[0-9a-f]{8}\+/);
    const file = join(tmp.dir, 'proof.json');
    expect(cli(['prove', '2', '--out', file]).status).toBe(0);
    const ok = cli(['verify-proof', file, '--public-key', key, '--json']);
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, seq: 2, keyPinned: true });

    const bundle = JSON.parse(readFileSync(file, 'utf8')) as { header: { actor: string }; proof: string[] };
    bundle.header.actor = 'mallory';
    writeFileSync(join(tmp.dir, 'forged.json'), JSON.stringify(bundle));
    const forged = cli(['verify-proof', join(tmp.dir, 'forged.json'), '--public-key', key]);
    expect(forged.status).toBe(1);
    expect(forged.stdout).toMatch(/does not hash to the leaf/);

    const other = 'activity-journal/other+00000000+ASszuKS73+V+aMIC1smfXqIYanNUgY4Op7NR+Zhnw9o1';
    expect(cli(['verify-proof', file, '--public-key', other]).status).toBe(2); // a malformed key is a usage error

    const trace = cli(['trace', 'contact/2']);
    expect(trace.status).toBe(0);
    expect(trace.stdout).toMatch(/state\.changed/);
    expect(trace.stdout).toMatch(/contact\/2 lifecyclestage: "lead" → "customer"/);
  });

  it('exits 2 with what to do on misuse and unreadable files', () => {
    expect(cli(['prove', 'abc']).status).toBe(2);
    expect(cli(['prove', 'abc']).stderr).toMatch(/seq must be a whole number/);
    expect(cli(['no-such-command']).status).toBe(2);
    expect(cli(['verify-proof', join(tmp.dir, 'missing.json')]).status).toBe(2);
    const noJournal = cli(['verify']);
    expect(noJournal.status).toBe(2);
    expect(noJournal.stderr).toMatch(/no journal at/);
    expect(cli(['verify', '--anchors', join(tmp.dir, 'nowhere')]).status).toBe(2);
    // A seq the journal never had is a misuse, and the message says which seqs there are.
    expect(cli(['checkpoint']).status).toBe(0);
    const beyond = cli(['prove', '99999']);
    expect(beyond.status).toBe(2);
    expect(beyond.stderr).toMatch(/no entry at seq 99999: the journal holds seq 0 to \d+/);
  });
});

/**
 * Runs the CLI with its stdout read by a reader that goes away: at once (`start`), or after the first chunk of
 * output (`first-data`, like `| head -1`). The CLI's later writes then fail with EPIPE.
 */
function intoClosedPipe(
  args: string[],
  closeAt: 'start' | 'first-data',
): Promise<{ status: number | null; stderr: string; received: string }> {
  return new Promise((resolve) => {
    const child = spawnCli(args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    if (!child.stdout || !child.stderr) throw new Error('no pipes');
    const stdout = child.stdout;
    let stderr = '';
    let received = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    if (closeAt === 'start') stdout.destroy();
    else
      stdout.once('data', (d: Buffer) => {
        received = d.toString();
        stdout.destroy();
      });
    child.on('exit', (status) => resolve({ status, stderr, received }));
  });
}

describe('activity-journal output into a pipe whose reader goes away (| head)', () => {
  it('trace, status and export end quietly with their own exit code: no EPIPE stack trace', async () => {
    // Far more output than a pipe buffers (64 KiB), so writes are still due when the reader has gone.
    const many = Array.from({ length: 3000 }, (_, i) =>
      JSON.stringify({
        kind: 'state.changed',
        source: 'crm',
        actor: 'import',
        correlationId: 'contact/many',
        payload: { entity: `contact/${i}`, field: 'lifecyclestage', from: 'lead', to: 'customer' },
      }),
    );
    expect((await appendLines(many)).status).toBe(0);
    expect(cli(['checkpoint']).status).toBe(0);
    const noStackTrace = (r: { stderr: string }): void => {
      expect(r.stderr).not.toMatch(/EPIPE|Unhandled|\n\s+at /);
    };
    const trace = await intoClosedPipe(['trace', 'contact/many'], 'first-data');
    expect(trace.received).toMatch(/^correlation contact\/many: 3000 entries/);
    noStackTrace(trace);
    expect(trace.status).toBe(0);
    const status = await intoClosedPipe(['status'], 'start');
    noStackTrace(status);
    expect(status.status).toBe(0);
    const exported = await intoClosedPipe(['export', '--correlation', 'contact/many'], 'first-data');
    noStackTrace(exported);
    expect(exported.status).toBe(0);
    // The export ran to its end although nobody read it all: it is journaled.
    expect(cli(['trace', 'audit/exports']).stdout).toMatch(/audit\.exported/);
  }, 120_000);
});

/** Every file under `dir`: path, size, mode and SHA-256; what a command that writes nothing leaves as it was. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const f = join(d, name);
      const st = statSync(f);
      if (st.isDirectory()) {
        out.push(`${f.slice(dir.length)}/ ${(st.mode & 0o777).toString(8)}`);
        walk(f);
      } else
        out.push(
          `${f.slice(dir.length)} ${st.size} ${(st.mode & 0o777).toString(8)} ${createHash('sha256').update(readFileSync(f)).digest('hex')}`,
        );
    }
  };
  walk(dir);
  return out.sort();
}

describe('activity-journal verify, status and keys status write nothing', () => {
  it('on a copy of the data directory, with or without the key store backup, every file stays byte-identical and nothing is added', async () => {
    // A journal with sealed entries (so a key store and its backup), in a data directory of its own.
    env = { ...env, JOURNAL_PATH: join(tmp.dir, 'live', 'data', 'journal.sqlite'), KEY_STORE_BACKUP: '' };
    expect((await appendLines([line(1), line(2), line(3)])).status).toBe(0);
    expect(cli(['checkpoint']).status).toBe(0);
    expect(existsSync(join(tmp.dir, 'live', 'data-key-backup', 'subject-keys.sqlite'))).toBe(true);

    const checks = (where: string): { verify: ReturnType<typeof cli>; status: ReturnType<typeof cli>; keys: ReturnType<typeof cli> } => {
      env = { ...env, JOURNAL_PATH: join(where, 'data', 'journal.sqlite') };
      return { verify: cli(['verify']), status: cli(['status']), keys: cli(['keys', 'status']) };
    };

    // 1. The data directory alone, as one copies it to check it elsewhere: the backup lives beside it, not in it.
    const alone = join(tmp.dir, 'copy-alone');
    cpSync(join(tmp.dir, 'live', 'data'), join(alone, 'data'), { recursive: true });
    const before = listing(alone);
    const r = checks(alone);
    expect(r.verify.status, r.verify.stdout + r.verify.stderr).toBe(0);
    expect(r.status.status, r.status.stdout + r.status.stderr).toBe(0);
    expect(r.keys.status, r.keys.stdout + r.keys.stderr).toBe(0);
    expect(r.keys.stdout).toMatch(/backup MISSING/);
    expect(r.keys.stdout).toMatch(/KEY STORE NOTE: the key store backup .* is missing/);
    expect(listing(alone)).toEqual(before);

    // 2. With its backup beside it.
    const both = join(tmp.dir, 'copy-both');
    cpSync(join(tmp.dir, 'live'), both, { recursive: true });
    const beforeBoth = listing(both);
    const b = checks(both);
    expect([b.verify.status, b.status.status, b.keys.status]).toEqual([0, 0, 0]);
    expect(b.keys.stdout).toMatch(/backup in step/);
    expect(listing(both)).toEqual(beforeBoth);
  }, 120_000);

  it('on a new journal, the key store is "none yet", not MISSING and then ok; status says "newest signed checkpoint: size N"', () => {
    const fresh = cli(['status']);
    expect(fresh.status).toBe(0);
    expect(fresh.stdout).toMatch(/: not created yet\n/);
    expect(fresh.stdout).toMatch(/^key store: none yet \(nothing sealed\)$/m);
    expect(fresh.stdout).not.toMatch(/MISSING|key store: ok/);
    // A journal whose entries need no key: nothing was sealed.
    expect(cli(['checkpoint']).status).toBe(0);
    const status = cli(['status']);
    expect(status.stdout).toMatch(/: 4 entries; newest signed checkpoint: size 2\n/);
    expect(status.stdout).toMatch(/^key store: none yet \(nothing sealed\)$/m);
    expect(status.stdout).not.toMatch(/MISSING|key store: ok/);
    const verify = cli(['verify']);
    expect(verify.status).toBe(0);
    expect(verify.stdout).toMatch(/^key store: none yet \(nothing sealed\)$/m);
    expect(verify.stdout).not.toMatch(/MISSING|key store: ok/);
  });
});

describe('activity-journal users add', () => {
  it('refuses to add a user who exists (exit 2, naming --reset); --reset replaces the password and keeps role and tokens', async () => {
    const usersPath = join(tmp.dir, 'users.json');
    env = { ...env, AUDIT_USERS_PATH: usersPath };
    const user = (): { role: string; passwordHash: string | null; apiTokens: unknown[] } =>
      readUsersFile(usersPath).users.find((u) => u.id === 'maria') as { role: string; passwordHash: string | null; apiTokens: unknown[] };
    const added = cli(['users', 'add', 'maria', '--role', 'reviewer'], 'first password 123\n');
    expect(added.status, added.stderr).toBe(0);
    expect(added.stdout).toMatch(/added maria \(reviewer\)/);
    const first = user().passwordHash as string;
    expect(cli(['users', 'token', 'maria']).status).toBe(0);

    const again = cli(['users', 'add', 'maria', '--role', 'admin'], 'someone elses password\n');
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/maria already exists .*users add maria --reset/);
    expect(user()).toMatchObject({ role: 'reviewer', passwordHash: first });

    expect(cli(['users', 'add', 'nobody', '--reset'], 'a password of twelve\n').status).toBe(2);

    const reset = cli(['users', 'add', 'maria', '--reset'], 'second password 456\n');
    expect(reset.status, reset.stderr).toBe(0);
    expect(reset.stdout).toMatch(/password reset for maria \(reviewer\)/);
    expect(user().role).toBe('reviewer');
    expect(user().apiTokens).toHaveLength(1);
    expect(await verifyPassword('second password 456', user().passwordHash as string)).toBe(true);
    expect(await verifyPassword('first password 123', user().passwordHash as string)).toBe(false);
  }, 60_000);
});

describe('activity-journal import calls', () => {
  it('imports good rows, reports bad ones by line without their content, and a re-import adds nothing', async () => {
    const csv = [
      'call_id,direction,from,to,agent,started_at,duration_seconds,status,subject,notes',
      'c-1,outbound,+15555550100,+15555550142,ana@northwind-analytics.example,2026-11-20T14:30:00Z,312,completed,Renewal call,"Asked for a quote, ""urgent"""',
      'c-2,sideways,+15555550100,+15555550143,,2026-11-20T15:00:00Z,0,no-answer,,PRIVATE-NOTE',
      'c-3,inbound,+15555550144,+15555550100,,not-a-date,10,completed,,',
      'c-4,inbound,+15555550145,+15555550100,,2026-11-20T16:00:00+01:00,95,completed,Support call,"Dashboard is down, please call back"',
    ].join('\r\n');
    const file = join(tmp.dir, 'calls.csv');
    writeFileSync(file, csv);
    const prefix = uniquePrefix();
    const importEnv = { ...env, REDIS_URL, QUEUE_PREFIX: prefix };
    const run = (): CliResult => runCliSync(['import', 'calls', file, '--json'], { env: importEnv });
    try {
      const first = run();
      expect(first.status).toBe(1);
      const report = JSON.parse(first.stdout) as {
        rows: number;
        accepted: number;
        duplicates: number;
        errors: { line: number; message: string }[];
      };
      expect(report).toMatchObject({ rows: 4, accepted: 2, duplicates: 0 });
      expect(report.errors.map((e) => e.line)).toEqual([3, 4]);
      expect(report.errors[0]?.message).toMatch(/direction/);
      expect(report.errors[1]?.message).toMatch(/started_at/);
      expect(JSON.stringify(report)).not.toContain('PRIVATE-NOTE');
      const again = JSON.parse(run().stdout) as { accepted: number; duplicates: number };
      expect(again).toMatchObject({ accepted: 0, duplicates: 2 });
      expect(cli(['trace', 'call-thread/csv-import/c-1']).stdout).toMatch(/interaction\.received/);
      expect(cli(['import', 'emails', file]).status).toBe(2);
    } finally {
      await obliterate(prefix);
    }
  });
});

describe('activity-journal demo', () => {
  it('never calls a real system, even with HubSpot and OpenAI configured', async () => {
    let requests = 0;
    const server = createServer((req, res) => {
      requests++;
      res.writeHead(500).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const demoEnv = {
        ...env,
        REDIS_URL,
        HUBSPOT_ACCESS_TOKEN: 'pat-na1-00000000-0000-0000-0000-000000000000',
        HUBSPOT_BASE_PATH: `http://127.0.0.1:${port}`,
        OPENAI_API_KEY: 'sk-demo-must-not-be-used',
        OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1`,
      };
      // Not blocking: the refusing server above answers from this process.
      const { status, stdout } = await runCli(['demo', '--json'], { env: demoEnv });
      expect(status).toBe(0);
      const s = JSON.parse(stdout.trim().split('\n').pop() as string) as { mirrored: number; jobFailures: number };
      expect(s.mirrored).toBeGreaterThan(0);
      expect(s.jobFailures).toBe(0);
      expect(requests).toBe(0);
    } finally {
      server.close();
    }
  }, 180_000);

  it('runs the bundled samples through the whole pipeline into a separate demo journal', () => {
    const r = runCliSync(['demo', '--json'], { env: { ...env, REDIS_URL }, timeoutMs: 120_000 });
    expect(r.status).toBe(0);
    const s = JSON.parse(r.stdout.trim().split('\n').pop() as string) as {
      journal: string;
      interactions: number;
      excluded: number;
      decisions: number;
      categories: Record<string, number>;
      mirrored: number;
      review: number;
      notifications: number;
      jobFailures: number;
      traceCorrelationId: string;
    };
    expect(s.journal).toContain(join(tmp.dir, 'demo'));
    expect(s.interactions + s.excluded).toBeGreaterThanOrEqual(30);
    expect(s.excluded).toBeGreaterThanOrEqual(1);
    expect(s.decisions).toBe(s.interactions);
    expect(Object.keys(s.categories).length).toBeGreaterThanOrEqual(6);
    expect(s.notifications).toBeGreaterThanOrEqual(1);
    expect(s.review).toBeGreaterThanOrEqual(1);
    expect(s.mirrored).toBeGreaterThan(0);
    expect(s.jobFailures).toBe(0);
    expect(s.traceCorrelationId).toMatch(/thread/);
    // The demo never touched the real journal, and its own journal verifies.
    expect(cli(['verify']).status).toBe(2);
    expect(runCliSync(['--journal', s.journal, 'verify'], { env }).status).toBe(0);
    // Nothing personal of any sample is stored in clear on the dry-run path: not in the interactions, their
    // decisions, the dry-run CRM writes (bodies and associations) or anything else the demo journaled.
    const samples = (
      JSON.parse(readFileSync('samples/demo-interactions.json', 'utf8')) as {
        interactions: { participants: { address: string; name?: string }[]; subject?: string }[];
      }
    ).interactions;
    const planted = new Set<string>();
    for (const ix of samples) {
      for (const p of ix.participants) {
        planted.add(p.address).add(p.address.toLowerCase());
        if (p.name) planted.add(p.name);
      }
      if (ix.subject && ix.subject.length >= 12) planted.add(ix.subject);
    }
    const stored = [s.journal, `${s.journal}-wal`]
      .filter((f) => existsSync(f))
      .map((f) => readFileSync(f).toString('utf8'))
      .join('\n');
    const leaked = [...planted].filter((v) => stored.includes(v) || stored.includes(JSON.stringify(v).slice(1, -1)));
    expect(leaked).toEqual([]);
    // And `privacy scan` finds nothing in what the current code wrote: every seal rule sealed its fields.
    const scan = runCliSync(['--journal', s.journal, '--json', 'privacy', 'scan'], { env });
    expect(JSON.parse(scan.stdout)).toMatchObject({ exposed: 0, findings: [] });
    expect(scan.status).toBe(0);
  });
});
