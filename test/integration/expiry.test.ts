/**
 * Retention expiry with a fake clock: entries of a 90-day class (onExpiry drop-payload) and of a 7-year class are
 * archived; once 90 days have passed, expiry writes a pruned copy of each archived segment without the 90-day
 * payloads, journals `segment.pruned`, deletes the superseded objects; the journal verifies with its archives,
 * trace shows the drop, the 7-year payloads stay. Forged drops fail verification at their seq; a crash at each
 * expiry step is finished by a re-run.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { JournalWriter } from '../../src/journal/writer.ts';
import { JournalReader } from '../../src/journal/reader.ts';
import { verifyJournal } from '../../src/journal/verify.ts';
import { readSealKey } from '../../src/journal/identity.ts';
import { RetentionPolicy } from '../../src/journal/retention.ts';
import { DEFAULT_RETENTION_PATH } from '../../src/config/config.ts';
import { DirectoryArchiveStore } from '../../src/journal/archive-store.ts';
import { archiveJournal, openArchivedSegments } from '../../src/journal/segments.ts';
import { expireArchived, type PruneStep } from '../../src/journal/expiry.ts';
import { droppedPayload } from '../../src/journal/dropped-payload.ts';
import { describeEntry } from '../../src/cli/describe.ts';
import type { AppendInput, JournalEntry } from '../../src/journal/entry.ts';
import { tempDir } from '../helpers/tmp.ts';
import { runCliSync, type CliResult } from '../helpers/cli.ts';
import { ruleDecision, stateChange, formSubmission as formSubmissionAt } from '../helpers/entries.ts';
import { retentionReport } from '../../src/journal/retention-report.ts';

let tmp: { dir: string; cleanup: () => void };
let path: string;
let keysDir: string;
let archiveDir: string;
let clock: number;
const now = (): number => clock;
const policy = RetentionPolicy.load(DEFAULT_RETENTION_PATH);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const open = (retention = policy): Promise<JournalWriter> => JournalWriter.open({ path, keysDir, checkpointEveryMs: 0, now, retention });

// Each with text of its own, so that a dropped payload's bytes can be looked for.
const formSubmission = (key: string, correlationId: string): AppendInput =>
  formSubmissionAt(key, correlationId, clock, `please call me ${key}`);

const invoice = (key: string, correlationId: string): AppendInput => ({
  ...stateChange(key, correlationId, `invoiced ${key}`),
  retentionClass: 'financial-7y',
});

/** January and February: form submissions (marketing-90d) and invoices (financial-7y); archived in March. */
async function archivedMonths(store: DirectoryArchiveStore, retention = policy): Promise<void> {
  const writer = await open(retention);
  clock = Date.parse('2026-01-10T09:00:00Z');
  await writer.appendBatch([formSubmission('jan-form-1', 'corr-jan'), invoice('jan-inv-1', 'corr-jan')]);
  clock = Date.parse('2026-01-20T09:00:00Z');
  await writer.append(formSubmission('jan-form-2', 'corr-jan-2'));
  clock = Date.parse('2026-02-05T09:00:00Z');
  await writer.appendBatch([formSubmission('feb-form-1', 'corr-feb'), invoice('feb-inv-1', 'corr-feb')]);
  clock = Date.parse('2026-03-02T09:00:00Z');
  await writer.append(stateChange('mar-s-1', 'corr-mar'));
  await archiveJournal(writer, { store, now });
  // Nothing has expired yet (January + 90 days is in April).
  expect(await expireArchived(writer, { store, now })).toEqual([]);
  await writer.close();
}

async function openAll(store: DirectoryArchiveStore): Promise<JournalReader> {
  const reader = JournalReader.open(path);
  reader.attachArchives(await openArchivedSegments(reader.connection, [store], join(tmp.dir, 'cache')));
  return reader;
}

async function verifyAll(store: DirectoryArchiveStore): Promise<ReturnType<typeof verifyJournal>> {
  const reader = JournalReader.open(path);
  try {
    const archives = await openArchivedSegments(reader.connection, [store], join(tmp.dir, 'cache'));
    reader.attachArchives(archives);
    return verifyJournal(reader.connection, { sealKey: readSealKey(keysDir), archives });
  } finally {
    reader.close();
  }
}

const objects = (): string[] =>
  (readdirSync(archiveDir, { recursive: true }) as string[])
    .filter((f) => f.endsWith('.gz'))
    .map((f) => f.split('/').pop() as string)
    .sort();
const bySeqKey = (reader: JournalReader, key: string): JournalEntry => {
  for (let s = 0; s < reader.size(); s++) {
    const e = reader.bySeq(s);
    if (e?.idempotencyKey === key) return e;
  }
  throw new Error(`no entry ${key}`);
};

beforeEach(() => {
  tmp = tempDir('aj-expiry-');
  path = join(tmp.dir, 'journal.sqlite');
  keysDir = join(tmp.dir, 'keys');
  archiveDir = join(tmp.dir, 'archive');
  clock = Date.parse('2026-01-01T00:00:00Z');
});
afterEach(() => tmp.cleanup());

describe('expiry of archived payloads', () => {
  it('drops the 90-day payloads once expired, keeps the 7-year ones, and the journal still verifies and traces', async () => {
    const store = new DirectoryArchiveStore(archiveDir);
    await archivedMonths(store);
    expect(objects()).toEqual(['2026-01.sqlite.gz', '2026-02.sqlite.gz']);

    // May 15: January's forms (Jan 10, Jan 20 + 90 days) and February's (Feb 5 + 90 days = May 6) have expired.
    clock = Date.parse('2026-05-15T12:00:00Z');
    const writer = await open();
    const dry = await expireArchived(writer, { store, now, dryRun: true });
    expect(dry.map((e) => [e.segmentId, e.action, e.classes])).toEqual([
      ['2026-01', 'would prune', { 'marketing-90d': 2 }],
      ['2026-02', 'would prune', { 'marketing-90d': 1 }],
    ]);
    expect(objects()).toEqual(['2026-01.sqlite.gz', '2026-02.sqlite.gz']);
    const run = await expireArchived(writer, { store, now });
    expect(run.map((e) => [e.segmentId, e.action, e.droppedEntries, e.classes, e.generation])).toEqual([
      ['2026-01', 'pruned', 2, { 'marketing-90d': 2 }, 1],
      ['2026-02', 'pruned', 1, { 'marketing-90d': 1 }, 1],
    ]);
    // The directory store can delete: the superseded originals are gone, the pruned copies are there.
    expect(run[0]?.deleted).toHaveLength(1);
    expect(objects()).toEqual(['2026-01.pruned-1.sqlite.gz', '2026-02.pruned-1.sqlite.gz']);
    // A second run finds nothing due.
    expect(await expireArchived(writer, { store, now })).toEqual([]);
    await writer.close();

    // The dropped payloads' bytes are not in the pruned copies; the 7-year payloads are.
    const jan = gunzipSync(readFileSync(join(archiveDir, readdirSync(archiveDir)[0] as string, '2026-01.pruned-1.sqlite.gz'))).toString(
      'latin1',
    );
    expect(jan).not.toContain('jan-form-1@example.com');
    expect(jan).not.toContain('please call me jan-form-2');
    expect(jan).toContain('invoiced jan-inv-1');

    const report = await verifyAll(store);
    expect(report).toMatchObject({ ok: true, verifiedFrom: 0, firstBadSeq: null });

    const reader = await openAll(store);
    try {
      const trace = reader.byCorrelation('corr-jan');
      expect(trace.map((e) => e.idempotencyKey)).toEqual(['jan-form-1', 'jan-inv-1']);
      expect(trace[0]?.payload).toEqual({ $dropped: { at: '2026-05-15T12:00:00.000Z', policyVersion: 2 } });
      expect(describeEntry(trace[0] as JournalEntry)).toBe('payload dropped on 2026-05-15 by retention policy 2 (class marketing-90d)');
      expect(trace[1]?.payload).toMatchObject({ to: 'invoiced jan-inv-1' });
      expect(describeEntry(trace[1] as JournalEntry)).not.toMatch(/dropped/);
      // The prune entries name the segment, the new object, the seqs dropped and the policy version.
      const pruned = reader.byKind({ kind: 'segment.pruned' }).map(
        (e) =>
          e.payload as {
            segmentId: string;
            dropped: [number, number][];
            policyVersion: number;
            location: string;
            entries: number;
            retentionClass?: string;
          },
      );
      const janForms = [bySeqKey(reader, 'jan-form-1').seq, bySeqKey(reader, 'jan-form-2').seq];
      expect(pruned[0]).toMatchObject({ segmentId: '2026-01', policyVersion: 2, entries: 2 });
      expect(pruned[0]?.dropped.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, i) => a + i))).toEqual(janForms);
      expect(pruned[0]?.location).toMatch(/2026-01\.pruned-1\.sqlite\.gz$/);
      expect(reader.byKind({ kind: 'segment.pruned' })[0]?.retentionClass).toBe('permanent');
    } finally {
      reader.close();
    }
  });

  it('prunes a segment again as more of its entries expire: a second generation from the first', async () => {
    const store = new DirectoryArchiveStore(archiveDir);
    await archivedMonths(store);
    // April 15: only jan-form-1 (January 10 + 90 days) has expired; April 25: jan-form-2 too.
    clock = Date.parse('2026-04-15T00:00:00Z');
    let writer = await open();
    expect((await expireArchived(writer, { store, now })).map((e) => [e.segmentId, e.generation, e.droppedEntries])).toEqual([
      ['2026-01', 1, 1],
    ]);
    await writer.close();
    clock = Date.parse('2026-04-25T00:00:00Z');
    writer = await open();
    expect(
      (await expireArchived(writer, { store, now })).map((e) => [e.segmentId, e.generation, e.droppedEntries, e.deleted.length]),
    ).toEqual([['2026-01', 2, 1, 1]]);
    await writer.close();
    expect(objects()).toEqual(['2026-01.pruned-2.sqlite.gz', '2026-02.sqlite.gz']);
    expect((await verifyAll(store)).ok).toBe(true);
    const reader = await openAll(store);
    try {
      expect(reader.byCorrelation('corr-jan')[0]?.payload).toEqual({ $dropped: { at: '2026-04-15T00:00:00.000Z', policyVersion: 2 } });
      expect(reader.byCorrelation('corr-jan-2')[0]?.payload).toEqual({ $dropped: { at: '2026-04-25T00:00:00.000Z', policyVersion: 2 } });
      expect(reader.byCorrelation('corr-feb')[0]?.payload).toMatchObject({ channel: 'form' });
      expect(
        reader.byKind({ kind: 'segment.pruned' }).map((e) => (e.payload as { generation: number; entries: number }).generation),
      ).toEqual([1, 2]);
    } finally {
      reader.close();
    }
  });

  it('prunes nothing when every class keeps payloads (the default onExpiry)', async () => {
    const keepAll = RetentionPolicy.parse({
      ...policy.doc,
      classes: Object.fromEntries(Object.entries(policy.doc.classes).map(([k, c]) => [k, { days: c.days, description: c.description }])),
    });
    expect(keepAll.classOf('marketing-90d')?.onExpiry).toBe('keep');
    const store = new DirectoryArchiveStore(archiveDir);
    await archivedMonths(store, keepAll);
    clock = Date.parse('2027-06-01T00:00:00Z');
    const writer = await open(keepAll);
    expect(await expireArchived(writer, { store, now })).toEqual([]);
    await writer.close();
    expect(objects()).toEqual(['2026-01.sqlite.gz', '2026-02.sqlite.gz']);
    const reader = await openAll(store);
    expect(reader.byKind({ kind: 'segment.pruned' })).toEqual([]);
    expect(reader.byCorrelation('corr-jan')[0]?.payload).toMatchObject({ channel: 'form' });
    reader.close();
  });

  it('fails verification at the seq of a dropped payload no segment.pruned entry lists', async () => {
    const store = new DirectoryArchiveStore(archiveDir);
    await archivedMonths(store);
    clock = Date.parse('2026-05-15T12:00:00Z');
    const writer = await open();
    await expireArchived(writer, { store, now });
    await writer.close();
    expect((await verifyAll(store)).ok).toBe(true);

    // A forged third copy of January that also drops the invoice (a 7-year, keep entry), registered as the newest.
    const db = new Database(path);
    const cur = db.prepare(`SELECT location FROM pruned_segments WHERE segment_id = '2026-01'`).get() as { location: string };
    const file = join(tmp.dir, 'forged.sqlite');
    writeFileSync(file, gunzipSync(readFileSync(cur.location.slice(4))));
    const f = new Database(file);
    const inv = f.prepare(`SELECT seq FROM entries WHERE idempotency_key = 'jan-inv-1'`).get() as { seq: number };
    f.prepare('UPDATE entries SET payload = ? WHERE seq = ?').run(
      droppedPayload({ at: '2026-05-15T12:00:00.000Z', policyVersion: 2 }),
      inv.seq,
    );
    f.close();
    const raw = readFileSync(file);
    const gz = gzipSync(raw);
    const forged = await store.put('forged/2026-01.pruned-2.sqlite.gz', gz);
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
    const report = await verifyAll(store);
    expect(report.ok).toBe(false);
    expect(report.firstBadSeq).toBe(inv.seq);
    expect(report.reason).toMatch(/no segment\.pruned entry lists this seq/);

    // Even a journaled prune entry that lists it does not make dropping a 7-year (keep) payload valid.
    const w = await open();
    await w.commitPrune({
      segmentId: '2026-01',
      generation: 3,
      store: 'directory',
      location: forged.location,
      sha256: sha(gz),
      fileSha256: sha(raw),
      compressedBytes: gz.length,
      replaces: forged.location,
      dropped: [[inv.seq, inv.seq]],
      entries: 1,
      classes: { 'financial-7y': 1 },
      droppedAt: '2026-05-15T12:00:00.000Z',
      policyVersion: 2,
    });
    await w.close();
    const listed = await verifyAll(store);
    expect(listed.ok).toBe(false);
    expect(listed.firstBadSeq).toBe(inv.seq);
    expect(listed.reason).toMatch(/class financial-7y keeps payloads/);
  });

  const steps: PruneStep[] = ['pruned-uploaded', 'pruned-committed', 'pruned-deleted'];
  for (const step of steps) {
    it(`recovers from a crash after "${step}": a re-run finishes with one pruned copy`, async () => {
      const store = new DirectoryArchiveStore(archiveDir);
      await archivedMonths(store);
      clock = Date.parse('2026-05-15T12:00:00Z');
      const writer = await open();
      const crash = new Error(`crash after ${step}`);
      await expect(
        expireArchived(writer, {
          store,
          now,
          onStep: (s, id) => {
            if (s === step && id === '2026-01') throw crash;
          },
        }),
      ).rejects.toBe(crash);
      await writer.close();
      // The re-run comes a day later: the copy already written (dropped on May 15) is the one committed.
      clock = Date.parse('2026-05-16T12:00:00Z');
      const again = await open();
      const rerun = await expireArchived(again, { store, now });
      expect(await expireArchived(again, { store, now })).toEqual([]);
      await again.close();
      const jan = rerun.find((e) => e.segmentId === '2026-01');
      if (step === 'pruned-uploaded') expect(jan).toMatchObject({ action: 'pruned', generation: 1, droppedEntries: 2 });
      if (step === 'pruned-committed')
        expect(jan).toMatchObject({ action: 'cleaned', deleted: [expect.stringMatching(/2026-01\.sqlite\.gz$/)] });
      if (step === 'pruned-deleted') expect(jan).toBeUndefined();
      expect(objects()).toEqual(['2026-01.pruned-1.sqlite.gz', '2026-02.pruned-1.sqlite.gz']);
      expect((await verifyAll(store)).ok).toBe(true);
      const reader = await openAll(store);
      try {
        const pruned = reader.byKind({ kind: 'segment.pruned' }).map((e) => e.payload as { segmentId: string; droppedAt: string });
        expect(pruned.map((p) => p.segmentId).sort()).toEqual(['2026-01', '2026-02']);
        expect(pruned.find((p) => p.segmentId === '2026-01')?.droppedAt).toBe('2026-05-15T12:00:00.000Z');
        expect(reader.byCorrelation('corr-jan-2')[0]?.payload).toEqual({ $dropped: { at: '2026-05-15T12:00:00.000Z', policyVersion: 2 } });
      } finally {
        reader.close();
      }
    });
  }
});

describe('archive and retention report commands with expiry', () => {
  it('archive --dry-run says what would expire, archive drops it, verify --include-archives passes, trace shows the drop', async () => {
    const store = new DirectoryArchiveStore(join(tmp.dir, 'cold'));
    mkdirSync(join(tmp.dir, 'cold'));
    await archivedMonths(store);
    const env = {
      ...process.env,
      JOURNAL_PATH: path,
      LOG_LEVEL: 'warn',
      JOURNAL_APPEND_TOKEN: '',
      JOURNAL_READ_TOKEN: '',
      ARCHIVE_DIR: join(tmp.dir, 'cold'),
    };
    const cli = (args: string[]): CliResult => runCliSync(args, { env });
    // The real clock is well past May 2026: the forms of January and February have expired.
    const report0 = cli(['retention', 'report', '--json']);
    expect(report0.status).toBe(0);
    const dry = cli(['archive', '--dry-run']);
    expect(dry.status).toBe(0);
    expect(dry.stdout).toMatch(/2026-01: would drop 2 expired payload\(s\) \(marketing-90d: 2\)/);
    expect(dry.stdout).toMatch(/expiry: would drop 3 payload\(s\) in 2 archived segment\(s\) \(marketing-90d: 3\)/);
    const run = cli(['archive']);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/2026-01: dropped 2 expired payload\(s\) \(marketing-90d: 2\)/);
    expect(run.stdout).toMatch(/superseded object\(s\) deleted: dir:/);
    const all = cli(['verify', '--include-archives', '--json']);
    expect(all.status).toBe(0);
    expect(JSON.parse(all.stdout)).toMatchObject({ ok: true, verifiedFrom: 0 });
    const trace = cli(['trace', 'corr-jan']);
    expect(trace.status).toBe(0);
    expect(trace.stdout).toMatch(/payload dropped on \d{4}-\d\d-\d\d by retention policy 2/);
    expect(trace.stdout).not.toContain('jan-form-1@example.com');
    const report = cli(['retention', 'report', '--json']);
    expect(report.status).toBe(0);
    const r = JSON.parse(report.stdout) as { classes: { retentionClass: string; droppedPayloads: number }[] };
    expect(r.classes.find((c) => c.retentionClass === 'marketing-90d')?.droppedPayloads).toBe(3);
    expect(r.classes.find((c) => c.retentionClass === 'financial-7y')?.droppedPayloads).toBe(0);
    const text = cli(['retention', 'report']);
    expect(text.stdout).toMatch(/marketing-90d .* 3 +0\n/);
  }, 600_000);
});

describe('retention raised by a later decision (retention.assigned)', () => {
  /** What the pipeline's decide stage appends for a billing interaction (pipeline.ts retentionRaise). */
  const assign = (target: JournalEntry, retentionClass: string, key: string): AppendInput => ({
    kind: 'retention.assigned',
    source: 'pipeline',
    actor: 'rules',
    correlationId: target.correlationId,
    causationId: target.id,
    idempotencyKey: key,
    payload: { entryId: target.id, entrySeq: target.seq, retentionClass, rule: 'categories.billing', policyVersion: policy.version },
  });

  /** January: a billing form raised to financial-7y, a plain form, a sales-2y rule decision "lowered" to marketing-90d; archived in March. */
  async function raisedMonth(store: DirectoryArchiveStore): Promise<{ billing: JournalEntry; plain: JournalEntry; sale: JournalEntry }> {
    const writer = await open();
    clock = Date.parse('2026-01-10T09:00:00Z');
    const [billing, plain, sale] = (
      await writer.appendBatch([
        formSubmission('jan-bill', 'corr-bill'),
        formSubmission('jan-plain', 'corr-plain'),
        ruleDecision('jan-sale', 'corr-sale', 50),
      ])
    ).map((r) => r.entry) as [JournalEntry, JournalEntry, JournalEntry];
    expect([billing.retentionClass, plain.retentionClass, sale.retentionClass]).toEqual(['marketing-90d', 'marketing-90d', 'sales-2y']);
    clock = Date.parse('2026-01-10T09:05:00Z');
    const raised = await writer.append(assign(billing, 'financial-7y', 'raise-bill'));
    expect(raised.entry.retentionClass).toBe('permanent');
    await writer.append(assign(sale, 'marketing-90d', 'shrink-sale'));
    // A re-delivery adds nothing.
    expect((await writer.append(assign(billing, 'financial-7y', 'raise-bill'))).duplicate).toBe(true);
    // The report sees the raise before anything is archived: one marketing-90d entry kept as financial-7y.
    clock = Date.parse('2026-05-15T00:00:00Z');
    const ro = new Database(path, { readonly: true });
    const hot = retentionReport(ro, clock, policy);
    ro.close();
    expect(hot.classes.find((c) => c.retentionClass === 'marketing-90d')).toMatchObject({ hotEntries: 2, raisedHot: 1, expiredHot: 1 });
    expect(hot.classes.find((c) => c.retentionClass === 'sales-2y')).toMatchObject({ raisedHot: 0, expiredHot: 0 });
    clock = Date.parse('2026-03-02T09:00:00Z');
    await writer.append(stateChange('mar-s-1', 'corr-mar'));
    await archiveJournal(writer, { store, now });
    await writer.close();
    return { billing, plain, sale };
  }

  it('expiry keeps a billing interaction raised to financial-7y past 90 days and 2 years, and ignores a shrinking assignment', async () => {
    const store = new DirectoryArchiveStore(archiveDir);
    const { billing, plain, sale } = await raisedMonth(store);
    // May 15: the plain form is dropped; the raised one is not, nor the rule decision "lowered" to marketing-90d.
    clock = Date.parse('2026-05-15T12:00:00Z');
    let writer = await open();
    expect((await expireArchived(writer, { store, now })).map((e) => [e.segmentId, e.droppedEntries, e.classes])).toEqual([
      ['2026-01', 1, { 'marketing-90d': 1 }],
    ]);
    await writer.close();
    // Three years on (past sales-2y): nothing more is due.
    clock = Date.parse('2029-02-01T00:00:00Z');
    writer = await open();
    expect(await expireArchived(writer, { store, now })).toEqual([]);
    await writer.close();
    expect((await verifyAll(store)).ok).toBe(true);
    const reader = await openAll(store);
    try {
      expect(reader.bySeq(plain.seq)?.payload).toEqual({ $dropped: { at: '2026-05-15T12:00:00.000Z', policyVersion: policy.version } });
      expect(reader.bySeq(billing.seq)?.payload).toMatchObject({ channel: 'form', text: 'please call me jan-bill' });
      expect(reader.bySeq(sale.seq)?.payload).toMatchObject({ outcome: 'mirror' });
    } finally {
      reader.close();
    }
  });

  it('verification refuses a dropped payload of a raised entry, even when a prune entry lists it', async () => {
    const store = new DirectoryArchiveStore(archiveDir);
    const { billing } = await raisedMonth(store);
    clock = Date.parse('2026-05-15T12:00:00Z');
    const writer = await open();
    await expireArchived(writer, { store, now });
    // A forged next copy that also drops the raised form's payload, journaled as generation 2.
    const db = new Database(path, { readonly: true });
    const cur = db.prepare(`SELECT location FROM pruned_segments WHERE segment_id = '2026-01'`).get() as { location: string };
    db.close();
    const file = join(tmp.dir, 'forged.sqlite');
    writeFileSync(file, gunzipSync(readFileSync(cur.location.slice(4))));
    const f = new Database(file);
    f.prepare('UPDATE entries SET payload = ? WHERE seq = ?').run(
      droppedPayload({ at: '2026-05-15T12:00:00.000Z', policyVersion: policy.version }),
      billing.seq,
    );
    f.close();
    const raw = readFileSync(file);
    const gz = gzipSync(raw);
    const forged = await store.put('forged/2026-01.pruned-2.sqlite.gz', gz);
    await writer.commitPrune({
      segmentId: '2026-01',
      generation: 2,
      store: 'directory',
      location: forged.location,
      sha256: sha(gz),
      fileSha256: sha(raw),
      compressedBytes: gz.length,
      replaces: cur.location,
      dropped: [[billing.seq, billing.seq]],
      entries: 1,
      classes: { 'marketing-90d': 1 },
      droppedAt: '2026-05-15T12:00:00.000Z',
      policyVersion: policy.version,
    });
    await writer.close();
    const report = await verifyAll(store);
    expect(report.ok).toBe(false);
    expect(report.firstBadSeq).toBe(billing.seq);
    expect(report.reason).toMatch(/class financial-7y \(raised from marketing-90d by retention\.assigned\) keeps payloads/);
  });

  it('refuses an assignment naming an entry that is not there or a class the policy lacks; a lookup row gone fails verify', async () => {
    const writer = await open();
    const form = (await writer.append(formSubmission('f-1', 'corr-f'))).entry;
    const refused = async (input: AppendInput): Promise<{ code?: string; message: string }> =>
      writer.append(input).then(
        () => ({ message: 'accepted' }),
        (err: unknown) => err as { code?: string; message: string },
      );
    expect(await refused(assign({ ...form, id: '0190aaaa-0000-7000-8000-000000000000' }, 'financial-7y', 'bad-id'))).toMatchObject({
      code: 'INVALID_PAYLOAD',
      message: `invalid retention.assigned entry: entry seq ${form.seq} is not 0190aaaa-0000-7000-8000-000000000000 in hot storage`,
    });
    expect(await refused(assign({ ...form, seq: 999 }, 'financial-7y', 'bad-seq'))).toMatchObject({ code: 'INVALID_PAYLOAD' });
    expect(await refused(assign(form, 'forever-and-a-day', 'bad-class'))).toMatchObject({
      code: 'INVALID_PAYLOAD',
      message: `invalid retention.assigned entry: retentionClass forever-and-a-day is not a class of retention policy version ${policy.version}`,
    });
    const ok = await writer.append(assign(form, 'financial-7y', 'good'));
    await writer.close();
    const verifyHot = (): ReturnType<typeof verifyJournal> => {
      const ro = new Database(path, { readonly: true });
      try {
        return verifyJournal(ro, { sealKey: readSealKey(keysDir) });
      } finally {
        ro.close();
      }
    };
    expect(verifyHot().ok).toBe(true);
    // The lookup table expiry reads is checked against the hashed entries.
    const db = new Database(path);
    db.exec('DROP TRIGGER retention_assignments_no_delete');
    db.prepare('DELETE FROM retention_assignments WHERE assigned_seq = ?').run(ok.entry.seq);
    db.close();
    const after = verifyHot();
    expect(after).toMatchObject({ ok: false, firstBadSeq: ok.entry.seq });
    expect(after.reason).toMatch(/retention_assignments/);
  });
});
