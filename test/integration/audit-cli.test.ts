/**
 * The audit CLI on a journal the pipeline filled: `decisions` lists from the read index, `override` appends a
 * human.override naming the user and queues the mirror again under a job id of its own; misuse exits 2.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { tempDir } from '../helpers/tmp.ts';
import { runCliSync, type CliResult } from '../helpers/cli.ts';
import { REDIS_URL, allEntries, drained, generatedInteractions, inProcessPipeline, obliterate, uniquePrefix } from '../helpers/pipeline.ts';
import { hashPassword, writeUsersFile } from '../../src/audit/users.ts';
import type { JournalEntry } from '../../src/journal/entry.ts';

let tmp: { dir: string; cleanup: () => void };
let env: Record<string, string>;
const prefix = uniquePrefix();

const cli = (args: string[]): CliResult => runCliSync(args, { env: { ...process.env, ...env } });

beforeAll(async () => {
  tmp = tempDir('aj-audit-cli-');
  env = {
    JOURNAL_PATH: join(tmp.dir, 'journal.sqlite'),
    AUDIT_USERS_PATH: join(tmp.dir, 'users.json'),
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'silent',
  };
  writeUsersFile(env.AUDIT_USERS_PATH as string, {
    users: [
      { id: 'rita', role: 'reviewer', passwordHash: await hashPassword('reviewer password 1'), apiTokens: [] },
      { id: 'vic', role: 'viewer', passwordHash: null, apiTokens: [] },
    ],
  });
  // The pipeline fills the journal, then lets go of it (the CLI takes the writer itself).
  const p = await inProcessPipeline(tmp.dir, {}, env);
  for (const ix of generatedInteractions(10, 'cli')) await p.runtime.pipeline.intake(ix);
  await drained(p.prefix);
  await p.stop();
});

afterAll(async () => {
  await obliterate(prefix);
  tmp.cleanup();
});

describe('the audit CLI', () => {
  it('lists decisions, overrides one as a named reviewer and re-queues its mirror; refuses misuse with exit 2', async () => {
    const all = cli(['--json', 'decisions']);
    expect(all.status).toBe(0);
    const rows = all.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { decisionId: string; category: string; reviewState: string; confidence: number });
    expect(rows).toHaveLength(10);
    const review = cli(['--json', 'decisions', '--needs-review']);
    expect(
      review.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { reviewState: string }).reviewState)
        .every((s) => s === 'pending'),
    ).toBe(true);
    const billing = cli(['--json', 'decisions', '--category', 'billing']);
    expect(
      billing.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .every((l) => (JSON.parse(l) as { category: string }).category === 'billing'),
    ).toBe(true);

    const target = rows.find((r) => r.category !== 'spam') as { decisionId: string; category: string };
    expect(cli(['override', target.decisionId, '--outcome', 'spam', '--reason', 'r', '--as', 'vic']).status).toBe(2);
    expect(cli(['override', target.decisionId, '--outcome', 'nonsense', '--reason', 'r', '--as', 'rita']).status).toBe(2);
    expect(cli(['decisions', '--max-confidence', '7']).status).toBe(2);
    const done = cli([
      '--json',
      'override',
      target.decisionId,
      '--outcome',
      'spam',
      '--reason',
      'A vendor newsletter, not a customer.',
      '--as',
      'rita',
    ]);
    expect(done.stderr).toBe('');
    expect(done.status).toBe(0);
    expect(JSON.parse(done.stdout) as { redriven: boolean }).toMatchObject({ redriven: true });

    const override = allEntries(env.JOURNAL_PATH as string).find((e) => e.kind === 'human.override') as JournalEntry;
    expect(override.actor).toBe('user:rita');
    expect(override.source).toBe('cli');
    expect(override.payload).toMatchObject({
      supersedes: target.decisionId,
      field: 'category',
      from: target.category,
      to: 'spam',
      reason: 'A vendor newsletter, not a customer.',
    });
    // The mirror job is queued again under its own id (the first mirror job's id would be deduplicated away).
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const queue = new Queue('mirror', { connection: redis, prefix });
    try {
      const jobs = await queue.getJobs(['waiting', 'delayed', 'prioritized']);
      expect(jobs.map((j) => (j.data as { decisionEntryId: string }).decisionEntryId)).toContain(target.decisionId);
    } finally {
      await queue.close();
      redis.disconnect();
    }
    // The index follows: the category in force is the override's.
    const after = cli(['--json', 'decisions', '--category', 'spam']);
    expect(after.stdout).toContain(target.decisionId);
  }, 300_000);

  it('overrides the CRM associations of a decision: the new targets reach the plan the mirror writes, the old ones are removed', async () => {
    const rows = cli(['--json', 'decisions'])
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { decisionId: string; interactionId: string });
    const target = rows[rows.length - 1] as { decisionId: string };
    // Misuse: an unknown target type, ids that are not HubSpot ids, both kinds of override at once.
    for (const bad of [
      ['--associate', 'people=1'],
      ['--associate', 'contacts=abc'],
      ['--outcome', 'spam', '--associate', 'contacts=1'],
      ['--associate', 'deals=1', '--associate', 'deals=2'],
    ]) {
      const r = cli(['override', target.decisionId, ...bad, '--reason', 'r', '--as', 'rita']);
      expect(r.status, bad.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/--associate|--outcome/);
    }
    const first = cli([
      '--json',
      'override',
      target.decisionId,
      '--associate',
      'contacts=101,102',
      '--associate',
      'deals=7',
      '--reason',
      'The buyer is on the other account.',
      '--as',
      'rita',
    ]);
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    const second = cli([
      '--json',
      'override',
      target.decisionId,
      '--associate',
      'contacts=102',
      '--reason',
      'Only the second buyer.',
      '--as',
      'rita',
    ]);
    expect(second.status).toBe(0);
    // The same again changes nothing: refused, not recorded twice.
    expect(cli(['override', target.decisionId, '--associate', 'contacts=102', '--reason', 'again', '--as', 'rita']).status).toBe(1);

    const overrides = allEntries(env.JOURNAL_PATH as string).filter(
      (e) => e.kind === 'human.override' && (e.payload as { field: string }).field === 'associations',
    );
    expect(overrides.map((e) => e.payload)).toEqual([
      {
        supersedes: target.decisionId,
        field: 'associations',
        from: { contacts: [], companies: [], deals: [] },
        to: { contacts: ['101', '102'], companies: [], deals: ['7'] },
        reason: 'The buyer is on the other account.',
      },
      {
        supersedes: target.decisionId,
        field: 'associations',
        from: { contacts: ['101', '102'], companies: [], deals: ['7'] },
        to: { contacts: ['102'], companies: [], deals: ['7'] },
        reason: 'Only the second buyer.',
      },
    ]);
    // The plan the mirror builds from the journal carries the newest override and what it takes away.
    const p = await inProcessPipeline(tmp.dir, {}, env);
    try {
      const decision = allEntries(env.JOURNAL_PATH as string).find((e) => e.id === target.decisionId) as JournalEntry;
      const ix = allEntries(env.JOURNAL_PATH as string).find(
        (e) => e.id === (decision.payload as { inputEntryId: string }).inputEntryId,
      ) as JournalEntry;
      const plan = await p.runtime.pipeline.planFor({
        entryId: ix.id,
        entrySeq: ix.seq,
        correlationId: ix.correlationId,
        decisionEntryId: decision.id,
        decisionSeq: decision.seq,
      });
      expect(plan.associationOverride).toMatchObject({
        entryId: (overrides[1] as JournalEntry).id,
        actor: 'user:rita',
        to: { contacts: ['102'], companies: [], deals: ['7'] },
        remove: { contacts: ['101'], companies: [], deals: [] },
      });
    } finally {
      await p.stop();
    }
  }, 300_000);
});
