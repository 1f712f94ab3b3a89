/**
 * Retention, sealing and archive with a fake clock: entries are stamped by policy, closed months are sealed and
 * moved to a directory store, the archives verify and are found by trace, and a crash at every archive step is
 * recovered by re-running.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, rmSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { JournalWriter } from '../../src/journal/writer.ts';
import { JournalReader } from '../../src/journal/reader.ts';
import { verifyJournal } from '../../src/journal/verify.ts';
import { readSealKey } from '../../src/journal/identity.ts';
import { RetentionPolicy } from '../../src/journal/retention.ts';
import { RetentionPolicyError } from '../../src/journal/errors/retention-policy.error.ts';
import { DEFAULT_RETENTION_PATH } from '../../src/config/config.ts';
import { DirectoryArchiveStore } from '../../src/journal/archive-store.ts';
import { archiveJournal, openArchivedSegments, type ArchiveStep } from '../../src/journal/segments.ts';
import { DirectoryAnchor } from '../../src/journal/anchors.ts';
import type { AppendInput } from '../../src/journal/entry.ts';
import { tempDir } from '../helpers/tmp.ts';
import { runCliSync, type CliResult } from '../helpers/cli.ts';
import { stateChange, formSubmission as formSubmissionAt, hotEntryCount } from '../helpers/entries.ts';

let tmp: { dir: string; cleanup: () => void };
let path: string;
let keysDir: string;
let clock: number;
const now = (): number => clock;
const policy = RetentionPolicy.load(DEFAULT_RETENTION_PATH);

const open = (extra: Partial<Parameters<typeof JournalWriter.open>[0]> = {}): Promise<JournalWriter> =>
  JournalWriter.open({
    path,
    keysDir,
    checkpointEveryMs: 0,
    now,
    retention: policy,
    anchors: [new DirectoryAnchor(join(tmp.dir, 'anchor'))],
    ...extra,
  });

const formSubmission = (key: string, correlationId: string): AppendInput => formSubmissionAt(key, correlationId, clock);

function invoice(key: string, correlationId: string): AppendInput {
  return { ...stateChange(key, correlationId, 'invoiced'), retentionClass: 'financial-7y' };
}

const hotCount = (): number => hotEntryCount(path);

function sizeOf(): number {
  const r = JournalReader.open(path);
  try {
    return r.size();
  } finally {
    r.close();
  }
}

async function verifyAll(
  stores: DirectoryArchiveStore[],
): Promise<{ hot: ReturnType<typeof verifyJournal>; all: ReturnType<typeof verifyJournal> }> {
  const reader = JournalReader.open(path);
  try {
    const hot = verifyJournal(reader.connection, { sealKey: readSealKey(keysDir) });
    const archives = await openArchivedSegments(reader.connection, stores, join(tmp.dir, 'cache'));
    reader.attachArchives(archives);
    const all = verifyJournal(reader.connection, { sealKey: readSealKey(keysDir), archives });
    return { hot, all };
  } finally {
    reader.close();
  }
}

/** January and February entries, then the clock in March. */
async function twoMonths(writer: JournalWriter): Promise<void> {
  clock = Date.parse('2026-01-10T09:00:00Z');
  await writer.appendBatch([
    formSubmission('jan-form-1', 'corr-jan'),
    invoice('jan-inv-1', 'corr-jan'),
    stateChange('jan-s-1', 'corr-jan'),
  ]);
  clock = Date.parse('2026-01-20T09:00:00Z');
  await writer.append(formSubmission('jan-form-2', 'corr-jan-2'));
  await writer.checkpoint();
  clock = Date.parse('2026-02-05T09:00:00Z');
  await writer.appendBatch([formSubmission('feb-form-1', 'corr-feb'), invoice('feb-inv-1', 'corr-feb')]);
  clock = Date.parse('2026-03-02T09:00:00Z');
  await writer.append(stateChange('mar-s-1', 'corr-mar'));
}

beforeEach(() => {
  tmp = tempDir('aj-archive-');
  path = join(tmp.dir, 'journal.sqlite');
  keysDir = join(tmp.dir, 'keys');
  clock = Date.parse('2026-01-01T00:00:00Z');
  mkdirSync(join(tmp.dir, 'anchor'));
});
afterEach(() => tmp.cleanup());

describe('retention classes', () => {
  it('stamps each entry with the class its kind and source map to, and journals the policy version once', async () => {
    const writer = await open();
    await twoMonths(writer);
    const reader = JournalReader.open(path);
    const classes = reader.range(0, 100).map((e) => [e.idempotencyKey, e.retentionClass]);
    reader.close();
    expect(classes).toContainEqual(['jan-form-1', 'marketing-90d']);
    expect(classes).toContainEqual(['jan-inv-1', 'financial-7y']);
    expect(classes).toContainEqual(['jan-s-1', 'standard']);
    expect(classes.filter(([k]) => k === `retention-policy/${policy.version}`)).toEqual([
      [`retention-policy/${policy.version}`, 'permanent'],
    ]);
    await writer.close();
    const again = await open();
    await again.close();
    const r2 = JournalReader.open(path);
    expect(r2.byKind({ kind: 'retention.policy' })).toHaveLength(1);
    r2.close();
  });

  it('refuses a class the policy does not define, and a changed policy without a new version', async () => {
    const writer = await open();
    await expect(writer.append({ ...stateChange('x'), retentionClass: 'forever-and-a-day' })).rejects.toThrow(
      `not a class of retention policy version ${policy.version}`,
    );
    await writer.close();
    const changed = RetentionPolicy.parse({
      ...policy.doc,
      classes: { ...policy.doc.classes, 'marketing-90d': { days: 30, onExpiry: 'drop-payload' } },
    });
    await expect(open({ retention: changed })).rejects.toThrow(RetentionPolicyError);
    const next = RetentionPolicy.parse({ ...changed.doc, version: policy.version + 1 });
    const w2 = await open({ retention: next });
    await w2.close();
    const reader = JournalReader.open(path);
    expect(reader.byKind({ kind: 'retention.policy' }).map((e) => (e.payload as { version: number }).version)).toEqual([
      policy.version,
      policy.version + 1,
    ]);
    reader.close();
  });
});

describe('seal and archive to a directory', () => {
  it('seals closed months, moves their rows to the store, and the whole journal still verifies and traces', async () => {
    const store = new DirectoryArchiveStore(join(tmp.dir, 'archive'));
    const writer = await open();
    await twoMonths(writer);
    const sizeBefore = writer.size;
    const dry = await archiveJournal(writer, { store, now, dryRun: true });
    expect(dry.map((s) => [s.segmentId, s.action])).toEqual([
      ['2026-01', 'would seal+archive'],
      ['2026-02', 'would seal+archive'],
    ]);
    expect(hotCount()).toBe(sizeBefore);
    const summary = await archiveJournal(writer, { store, now });
    expect(summary.map((s) => s.segmentId)).toEqual(['2026-01', '2026-02']);
    const jan = summary[0];
    expect(jan?.fromSeq).toBe(0);
    expect(jan?.rowsDropped).toBe((jan?.entries ?? 0) - 1); // seq 0 (journal.created) stays hot
    await writer.close();
    // The rows left hot storage, the objects are in the store.
    const reader = JournalReader.open(path);
    expect(reader.bySeq(2)).toBeNull();
    expect(reader.byCorrelation('corr-jan')).toEqual([]);
    expect(reader.archivedRanges().map((r) => r.segmentId)).toEqual(['2026-01', '2026-02']);
    reader.close();
    expect(readdirSync(join(tmp.dir, 'archive'), { recursive: true }).filter((f) => String(f).endsWith('.sqlite.gz'))).toHaveLength(2);

    const { hot, all } = await verifyAll([store]);
    expect(hot.ok).toBe(true);
    expect(hot.verifiedFrom).toBe(summary[1]?.toSeq !== undefined ? summary[1].toSeq + 1 : -1);
    expect(all).toMatchObject({ ok: true, verifiedFrom: 0, firstBadSeq: null });
    // Hot + archives together hold every entry once: seqs 0..size-1.
    expect(all.entries).toBe(sizeOf());
    const reopened = await open();
    expect(hot.rootHash === '' ? null : all.rootHash).toBe(hot.rootHash);
    await reopened.append(stateChange('after-archive', 'corr-mar'));
    await reopened.close();

    const traced = JournalReader.open(path);
    traced.attachArchives(await openArchivedSegments(traced.connection, [store], join(tmp.dir, 'cache')));
    expect(traced.byCorrelation('corr-jan').map((e) => e.idempotencyKey)).toEqual(['jan-form-1', 'jan-inv-1', 'jan-s-1']);
    expect(traced.byCorrelation('corr-mar').map((e) => e.idempotencyKey)).toEqual(['mar-s-1', 'after-archive']);
    expect(traced.bySeq(2)?.idempotencyKey).toBe('jan-form-1');
    traced.close();
    const after = await verifyAll([store]);
    expect(after.all.ok).toBe(true);
  });

  it('refuses to delete rows outside an archived segment, even with a write connection', async () => {
    const writer = await open();
    await twoMonths(writer);
    await writer.close();
    const db = new Database(path);
    try {
      expect(() => db.prepare('DELETE FROM entries WHERE seq = 2').run()).toThrow(/DELETE is forbidden/);
      // An archived_ranges row alone is not enough: the segment.archived entry must be committed.
      db.prepare(`INSERT INTO segments VALUES ('x', '', '', 1, 3, 0, '', 1)`).run();
      db.prepare(`INSERT INTO archived_ranges VALUES ('x', 1, 3, 4, zeroblob(32), 'directory', 'dir:/x', '')`).run();
      expect(() => db.prepare('DELETE FROM entries WHERE seq = 2').run()).toThrow(/DELETE is forbidden/);
    } finally {
      db.close();
    }
  });

  it('detects an archived object that was replaced in the store', async () => {
    const store = new DirectoryArchiveStore(join(tmp.dir, 'archive'));
    const writer = await open();
    await twoMonths(writer);
    await archiveJournal(writer, { store, now });
    await writer.close();
    const reader = JournalReader.open(path);
    const loc = reader.archivedRanges()[0]?.location ?? '';
    reader.close();
    const file = loc.slice(4);
    chmodSync(file, 0o600);
    const bytes = readFileSync(file);
    bytes[bytes.length - 10] = (bytes[bytes.length - 10] ?? 0) ^ 1;
    writeFileSync(file, bytes);
    await expect(verifyAll([store])).rejects.toThrow(/does not match the hash journaled/);
  });

  const steps: ArchiveStep[] = ['sealed', 'uploaded', 'verified', 'committed', 'dropped'];
  for (const step of steps) {
    it(`recovers from a crash after step "${step}": a re-run finishes, nothing lost or duplicated`, async () => {
      const store = new DirectoryArchiveStore(join(tmp.dir, 'archive'));
      const writer = await open();
      await twoMonths(writer);
      const crash = new Error(`crash after ${step}`);
      await expect(
        archiveJournal(writer, {
          store,
          now,
          onStep: (s, id) => {
            if (s === step && id === '2026-01') throw crash;
          },
        }),
      ).rejects.toBe(crash);
      await writer.close();
      // The local staging copy is lost too: the re-run must rebuild a byte-identical segment file.
      rmSync(`${path}.segments`, { recursive: true, force: true });
      const again = await open();
      await archiveJournal(again, { store, now });
      await again.close();
      const size = sizeOf();
      const { hot, all } = await verifyAll([store]);
      expect(hot.ok).toBe(true);
      expect(all.ok).toBe(true);
      expect(all.entries).toBe(size);
      const reader = JournalReader.open(path);
      expect(reader.archivedRanges().map((r) => r.segmentId)).toEqual(['2026-01', '2026-02']);
      expect(reader.byKind({ kind: 'segment.sealed' }).length + reader.byKind({ kind: 'segment.archived' }).length).toBeGreaterThan(0);
      reader.attachArchives(await openArchivedSegments(reader.connection, [store], join(tmp.dir, 'cache')));
      const keys = Array.from({ length: size }, (_, i) => reader.bySeq(i)?.idempotencyKey);
      reader.close();
      expect(keys.every((k) => k !== undefined)).toBe(true);
      expect(new Set(keys).size).toBe(size);
      for (const k of [
        'jan-form-1',
        'jan-inv-1',
        'jan-s-1',
        'jan-form-2',
        'feb-form-1',
        'feb-inv-1',
        'mar-s-1',
        'segment/2026-01/sealed',
        'segment/2026-01/archived',
        'segment/2026-02/archived',
      ])
        expect(keys).toContain(k);
    });
  }
});

describe('the archive, verify --include-archives, trace and retention report commands', () => {
  it('archives closed months from the command line; the archives verify from seq 0 and trace finds their entries', async () => {
    const writer = await open();
    await twoMonths(writer);
    await writer.close();
    const env = {
      ...process.env,
      JOURNAL_PATH: path,
      LOG_LEVEL: 'warn',
      JOURNAL_APPEND_TOKEN: '',
      JOURNAL_READ_TOKEN: '',
      ARCHIVE_DIR: join(tmp.dir, 'cold'),
    };
    mkdirSync(join(tmp.dir, 'cold'));
    const cli = (args: string[]): CliResult => runCliSync(args, { env });
    // The real clock is months after March 2026: January, February and March are closed.
    const run = cli(['archive']);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/2026-01: seq 0\.\.\d+ \(\d+ entries\) sealed\+archived to dir:/);
    expect(run.stdout).toMatch(/3 segment\(s\) archived/);
    const all = cli(['verify', '--include-archives', '--json']);
    expect(all.status).toBe(0);
    expect(JSON.parse(all.stdout)).toMatchObject({ ok: true, verifiedFrom: 0 });
    const trace = cli(['trace', 'corr-jan', '--json']);
    expect(trace.status).toBe(0);
    expect(
      trace.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { idempotencyKey: string }).idempotencyKey),
    ).toEqual(['jan-form-1', 'jan-inv-1', 'jan-s-1']);
    const report = cli(['retention', 'report', '--json']);
    expect(report.status).toBe(0);
    const r = JSON.parse(report.stdout) as {
      policyVersion: number;
      segments: { archived: number };
      classes: { retentionClass: string; days: number | null }[];
    };
    expect(r.policyVersion).toBe(2);
    expect(r.segments.archived).toBe(3);
    expect(r.classes.find((c) => c.retentionClass === 'marketing-90d')?.days).toBe(90);
  }, 600_000);
});
