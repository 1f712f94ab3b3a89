/**
 * Journals written before every personal field was sealed, through the real CLI: a journal written the way an
 * older version did (the writer without privacy: personal fields in clear) is scanned (exit 1, seqs and kinds,
 * never a value), contained (`privacy contain`: the closed months archived, those payloads dropped from the
 * archived segments, the originals deleted, the hot file rewritten), and then verifies from seq 0, holds none of
 * the planted values in any archive object or the hot file, and scans clean with the entries listed as contained.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { loadConfig } from '../../src/config/config.ts';
import { JournalWriter } from '../../src/journal/writer.ts';
import { RetentionPolicy } from '../../src/journal/retention.ts';
import { configuredAnchors } from '../../src/journal/configured-anchors.ts';
import { DirectoryArchiveStore } from '../../src/journal/archive-store.ts';
import type { AppendInput } from '../../src/journal/entry.ts';
import { tempDir } from '../helpers/tmp.ts';
import { runCliSync, type CliResult } from '../helpers/cli.ts';

let tmp: { dir: string; cleanup: () => void };
let env: NodeJS.ProcessEnv;
beforeEach(() => {
  tmp = tempDir('aj-scan-');
  env = {
    ...process.env,
    JOURNAL_PATH: join(tmp.dir, 'journal.sqlite'),
    LOG_LEVEL: 'warn',
    JOURNAL_APPEND_TOKEN: '',
    JOURNAL_READ_TOKEN: '',
  };
});
afterEach(() => tmp.cleanup());

const cli = (args: string[]): CliResult => runCliSync(args, { env });

const PLANTED = {
  address: 'planted.alice@example.org',
  name: 'Alice Plantedname',
  subject: 'Planted subject about invoice 4711',
  text: 'Planted body: call me back on my mobile',
  note: 'Planted note body for HubSpot',
  reason: 'Planted reason quoting Bob Reviewer',
  error: 'Planted error for +44 20 7946 0123',
  from: 'planted-from-value',
  to: 'planted-to-value',
  carol: 'planted.carol@example.org',
};

/** The entries an older version wrote in clear, one of each kind it got wrong, and a clean one. */
function olderVersionEntries(): AppendInput[] {
  const c = 'thread/planted-1';
  return [
    {
      kind: 'interaction.received',
      source: 'gmail',
      actor: 'connector',
      correlationId: c,
      idempotencyKey: 'ix-1',
      payload: {
        channel: 'email',
        sourceId: 'm-1',
        direction: 'inbound',
        occurredAt: '2026-01-10T09:00:00.000Z',
        participants: [{ role: 'from', address: PLANTED.address, name: PLANTED.name }],
        subject: PLANTED.subject,
        text: PLANTED.text,
      },
    },
    {
      kind: 'crm.write',
      source: 'pipeline',
      actor: 'mirror',
      correlationId: c,
      idempotencyKey: 'crm-1',
      payload: {
        system: 'hubspot',
        method: 'POST',
        path: '/crm/v3/objects/notes',
        status: 0,
        durationMs: 0,
        dryRun: true,
        properties: { hs_note_body: PLANTED.note },
        associations: [{ objectType: 'contact', id: PLANTED.address }],
      },
    },
    {
      kind: 'rule.decision',
      source: 'pipeline',
      actor: 'rules',
      correlationId: c,
      idempotencyKey: 'rule-1',
      payload: { ruleId: 'mirror-leads', ruleVersion: '3', evaluated: { category: 'new_lead' }, outcome: 'review', reason: PLANTED.reason },
    },
  ];
}

function laterEntries(): AppendInput[] {
  const c = 'thread/planted-2';
  return [
    {
      kind: 'job.failed',
      source: 'pipeline',
      actor: 'worker',
      correlationId: c,
      idempotencyKey: 'job-1',
      payload: { queue: 'mirror', jobId: 'j-1', attempts: 10, error: PLANTED.error, finality: 'attempts-exhausted' },
    },
    {
      kind: 'state.changed',
      source: 'crm',
      actor: 'ops',
      correlationId: c,
      idempotencyKey: 'state-1',
      payload: { entity: 'contact/7', field: 'email', from: PLANTED.from, to: PLANTED.to },
    },
    {
      kind: 'connector.health',
      source: 'gmail',
      actor: 'connector',
      correlationId: c,
      idempotencyKey: 'health-1',
      payload: { connector: 'hubspot', status: 'degraded', reason: `contact ${PLANTED.carol} refused` },
    },
    // Nothing personal: never a finding.
    {
      kind: 'notification.sent',
      source: 'pipeline',
      actor: 'notifier',
      correlationId: c,
      idempotencyKey: 'note-1',
      payload: { channel: 'log', recipient: 'sales-team', ruleId: 'r', ruleVersion: '1', template: 't', dryRun: true },
    },
  ];
}

/** A journal as an older version left it: January and February written without sealing. */
async function olderJournal(): Promise<void> {
  const config = loadConfig(env);
  let clock = Date.parse('2026-01-10T09:00:00Z');
  const writer = await JournalWriter.open({
    path: config.journal.path,
    keysDir: config.journal.keysDir,
    anchors: configuredAnchors(config.journal),
    checkpointEveryMs: 0,
    now: () => clock,
    retention: RetentionPolicy.load(config.journal.retentionPath),
  });
  await writer.appendBatch(olderVersionEntries());
  clock = Date.parse('2026-02-05T09:00:00Z');
  await writer.appendBatch(laterEntries());
  await writer.close();
}

/** Every byte an archive object, the hot file or a working directory holds (objects decompressed). */
function storedBytes(): string {
  const parts: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const f = join(dir, name);
      if (statSync(f).isDirectory()) walk(f);
      else parts.push((f.endsWith('.gz') ? gunzipSync(readFileSync(f)) : readFileSync(f)).toString('latin1'));
    }
  };
  walk(tmp.dir);
  return parts.join('\n');
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const leaked = (): string[] => Object.values(PLANTED).filter((v) => storedBytes().includes(v));

describe('privacy scan and privacy contain', () => {
  it('lists what an older version stored in clear, contains it, and the journal still verifies from seq 0 without it', async () => {
    await olderJournal();
    expect(leaked().length).toBeGreaterThan(0); // the plants are there to be found

    const scan = cli(['--json', 'privacy', 'scan']);
    expect(scan.status).toBe(1);
    const report = JSON.parse(scan.stdout) as {
      exposed: number;
      findings: { seq: number; kind: string; fields: string[]; byShape: boolean; where: string }[];
      contained: unknown[];
    };
    expect(report.findings.map((f) => [f.kind, f.fields, f.where])).toEqual([
      ['interaction.received', ['participants', 'subject', 'text'], 'hot'],
      ['crm.write', ['properties', 'associations'], 'hot'],
      ['rule.decision', ['reason'], 'hot'],
      ['job.failed', ['error'], 'hot'],
      ['state.changed', ['from', 'to'], 'hot'],
      ['connector.health', ['reason'], 'hot'],
    ]);
    expect(report.findings.find((f) => f.kind === 'connector.health')?.byShape).toBe(true);
    const seqs = report.findings.map((f) => f.seq);
    // Human output: seqs and kinds, never a value.
    const human = cli(['privacy', 'scan']);
    expect(human.status).toBe(1);
    for (const s of seqs) expect(human.stdout).toMatch(new RegExp(`UNSEALED seq ${s} `));
    expect(human.stdout).toMatch(/6 entries hold personal data in clear \(6 in the hot file, 0 in archived segments\)/);
    for (const v of Object.values(PLANTED)) {
      expect(scan.stdout + scan.stderr).not.toContain(v);
      expect(human.stdout + human.stderr).not.toContain(v);
    }

    // A dry run writes nothing.
    const before = readFileSync(env.JOURNAL_PATH as string);
    expect(cli(['privacy', 'contain', '--dry-run']).status).toBe(0);
    expect(readFileSync(env.JOURNAL_PATH as string).equals(before)).toBe(true);

    const contain = cli(['privacy', 'contain']);
    expect(contain.stderr).toBe('');
    expect(contain.status).toBe(0);
    expect(contain.stdout).toMatch(/2026-01: contained 3 payload\(s\) holding personal data in clear/);
    expect(contain.stdout).toMatch(/2026-02: contained 3 payload\(s\) holding personal data in clear/);
    expect(contain.stdout).toMatch(/superseded object\(s\) deleted/);
    expect(contain.stdout).toMatch(/hot file rewritten \(VACUUM\) and its WAL truncated/);
    for (const v of Object.values(PLANTED)) expect(contain.stdout).not.toContain(v);

    // The record stays provable from seq 0, and each drop is on it.
    const verify = cli(['verify', '--include-archives', '--json']);
    expect(verify.status).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, verifiedFrom: 0 });
    const trace = cli(['trace', 'thread/planted-1']);
    expect(trace.stdout).toMatch(/payload dropped on \d{4}-\d\d-\d\d: it held personal data in clear/);

    // Nowhere any more: not in an archive object (decompressed), the hot file, its WAL, the cache or staging.
    expect(leaked()).toEqual([]);

    const after = cli(['--json', 'privacy', 'scan']);
    expect(after.status).toBe(0);
    const clean = JSON.parse(after.stdout) as {
      exposed: number;
      contained: { seq: number; kind: string }[];
      segments: { segmentId: string; scanned: boolean }[];
    };
    expect(clean.exposed).toBe(0);
    expect(clean.contained.map((c) => c.seq)).toEqual(seqs);
    expect(clean.segments.map((s) => [s.segmentId, s.scanned])).toEqual([
      ['2026-01', true],
      ['2026-02', true],
    ]);
    expect(cli(['privacy', 'scan']).stdout).toMatch(/no personal data in clear found; 6 entries contained/);
  });

  it('verification refuses a contained marker no containment lists, and one on a kind containment never drops', async () => {
    await olderJournal();
    expect(cli(['privacy', 'contain']).status).toBe(0);
    const config = loadConfig(env);
    // A forged copy of January that also drops the retention.policy entry (seq 1), registered as the newest copy.
    const db = new Database(config.journal.path);
    const cur = db.prepare(`SELECT location FROM pruned_segments WHERE segment_id = '2026-01' AND generation = 1`).get() as {
      location: string;
    };
    const file = join(tmp.dir, 'forged.sqlite');
    writeFileSync(file, gunzipSync(readFileSync(cur.location.slice(4))));
    const f = new Database(file);
    const marker = (f.prepare(`SELECT payload FROM entries WHERE kind = 'crm.write'`).get() as { payload: string }).payload;
    expect(f.prepare('SELECT kind FROM entries WHERE seq = 1').get()).toEqual({ kind: 'retention.policy' });
    f.prepare('UPDATE entries SET payload = ? WHERE seq = 1').run(marker);
    f.close();
    const raw = readFileSync(file);
    const gz = gzipSync(raw);
    const forged = await new DirectoryArchiveStore(config.journal.archiveDir).put('forged/2026-01.pruned-2.sqlite.gz', gz);
    db.prepare('INSERT INTO pruned_segments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
      '2026-01',
      2,
      0,
      'directory',
      forged.location,
      sha(gz),
      sha(raw),
      1,
      '{}',
    );
    db.close();
    const unlisted = cli(['verify', '--include-archives', '--json']);
    expect(unlisted.status).toBe(1);
    expect(JSON.parse(unlisted.stdout)).toMatchObject({ ok: false, firstBadSeq: 1, reason: 'the payload does not match its hash' });

    // Even a journaled containment that lists it does not make dropping the journal's own entry valid.
    const { at, policyVersion } = (JSON.parse(marker) as { $dropped: { at: string; policyVersion: number } }).$dropped;
    const w = await JournalWriter.open({
      path: config.journal.path,
      keysDir: config.journal.keysDir,
      anchors: configuredAnchors(config.journal),
      checkpointEveryMs: 0,
      retention: RetentionPolicy.load(config.journal.retentionPath),
    });
    await w.commitPrune({
      segmentId: '2026-01',
      generation: 3,
      store: 'directory',
      location: forged.location,
      sha256: sha(gz),
      fileSha256: sha(raw),
      compressedBytes: gz.length,
      replaces: forged.location,
      dropped: [[1, 1]],
      entries: 1,
      classes: { permanent: 1 },
      kinds: { 'retention.policy': 1 },
      droppedAt: at,
      policyVersion,
      reason: 'unsealed-personal-data',
    });
    await w.close();
    const listed = cli(['verify', '--include-archives', '--json']);
    expect(listed.status).toBe(1);
    expect(JSON.parse(listed.stdout)).toMatchObject({
      ok: false,
      firstBadSeq: 1,
      reason: 'the payload was dropped as unsealed personal data, but kind retention.policy is never contained',
    });
  });

  it('leaves an entry of the open month in the hot file, says so, and keeps exiting 1 until its month is archived', async () => {
    await olderJournal();
    const config = loadConfig(env);
    // Written now (the open month), in clear, the way an older version did.
    const w = await JournalWriter.open({
      path: config.journal.path,
      keysDir: config.journal.keysDir,
      anchors: configuredAnchors(config.journal),
      checkpointEveryMs: 0,
      retention: RetentionPolicy.load(config.journal.retentionPath),
    });
    const { entry } = await w.append({
      kind: 'rule.decision',
      source: 'pipeline',
      actor: 'rules',
      correlationId: 'thread/open',
      idempotencyKey: 'open-1',
      payload: { ruleId: 'r', ruleVersion: '1', evaluated: {}, outcome: 'review', reason: PLANTED.reason },
    });
    await w.close();
    expect(cli(['privacy', 'contain']).status).toBe(1);
    const scan = cli(['privacy', 'scan']);
    expect(scan.status).toBe(1);
    const month = new Date().toISOString().slice(0, 7);
    expect(scan.stdout).toContain(`UNSEALED seq ${entry.seq} `);
    expect(scan.stdout).toContain(`stays there until ${month} is sealed and archived`);
    expect(scan.stdout).toMatch(/1 entry holds personal data in clear \(1 in the hot file, 0 in archived segments\); 6 contained/);
    expect(scan.stdout).not.toContain(PLANTED.reason);
  });

  it('exits 2 on misuse: no journal, an unknown option', () => {
    const none = cli(['privacy', 'scan']);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/no journal at/);
    expect(cli(['privacy', 'scan', '--bogus']).status).toBe(2);
    expect(cli(['privacy', 'contain', '--bogus']).status).toBe(2);
  });
});
