/**
 * Archive to Google Cloud Storage through the real googleapis client, pointed at the in-memory GCS fake:
 * write-once uploads (ifGenerationMatch=0, 412 on a re-run), read back and verified, found by verify and trace;
 * retries of 503/429; a tampered object detected; the bucket's retention policy enforced; and the scheduled
 * archive in the journal service.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { JournalWriter } from '../../src/journal/writer.ts';
import { JournalReader } from '../../src/journal/reader.ts';
import { verifyJournal } from '../../src/journal/verify.ts';
import { readSealKey } from '../../src/journal/identity.ts';
import { RetentionPolicy } from '../../src/journal/retention.ts';
import { DEFAULT_RETENTION_PATH } from '../../src/config/config.ts';
import { type ArchiveStore } from '../../src/journal/archive-store.ts';
import { ArchiveStoreError } from '../../src/journal/errors/archive-store.error.ts';
import { archiveJournal, openArchivedSegments, type ArchiveStep } from '../../src/journal/segments.ts';
import { DirectoryAnchor } from '../../src/journal/anchors.ts';
import { createLogger } from '../../src/config/logger.ts';
import type { AppendInput } from '../../src/journal/entry.ts';
import { GcsArchiveStore } from '../../connectors/gcs/gcs.archive-store.ts';
import { startArchiveSchedule } from '../../jobs/archive.ts';
import { startFakeGcs, type FakeGcs } from '../fakes/gcs.fake.ts';
import { startService } from '../helpers/service.ts';
import { tempDir } from '../helpers/tmp.ts';
import { runCli, runCliSync, type CliResult } from '../helpers/cli.ts';
import { pollUntil } from '../helpers/wait.ts';
import { stateChange, formSubmission as formSubmissionAt, hotEntryCount } from '../helpers/entries.ts';

const DAY_S = 86_400;
/** Longer than financial-7y (2557 days) from the earliest entry: the bucket can protect every class. */
const SEVEN_YEARS_S = 2600 * DAY_S;
const BUCKET = 'aj-archive-test';

let tmp: { dir: string; cleanup: () => void };
let path: string;
let keysDir: string;
let clock: number;
let gcs: FakeGcs;
const now = (): number => clock;
const policy = RetentionPolicy.load(DEFAULT_RETENTION_PATH);

const open = (): Promise<JournalWriter> =>
  JournalWriter.open({
    path,
    keysDir,
    checkpointEveryMs: 0,
    now,
    retention: policy,
    anchors: [new DirectoryAnchor(join(tmp.dir, 'anchor'))],
  });

const gcsStore = (o: Partial<ConstructorParameters<typeof GcsArchiveStore>[0]> = {}): GcsArchiveStore =>
  new GcsArchiveStore({
    bucket: BUCKET,
    prefix: 'journals/',
    credentials: { accessToken: gcs.token },
    rootUrl: gcs.rootUrl,
    backoffMs: 20,
    ...o,
  });

const formSubmission = (key: string, correlationId: string): AppendInput => formSubmissionAt(key, correlationId, clock);

/** January and February entries (one invoice each: financial-7y), then the clock in March. */
async function twoMonths(writer: JournalWriter): Promise<void> {
  clock = Date.parse('2026-01-10T09:00:00Z');
  await writer.appendBatch([
    formSubmission('jan-form-1', 'corr-jan'),
    { ...stateChange('jan-inv-1', 'corr-jan', 'invoiced'), retentionClass: 'financial-7y' },
    stateChange('jan-s-1', 'corr-jan'),
  ]);
  await writer.checkpoint();
  clock = Date.parse('2026-02-05T09:00:00Z');
  await writer.appendBatch([
    formSubmission('feb-form-1', 'corr-feb'),
    { ...stateChange('feb-inv-1', 'corr-feb', 'invoiced'), retentionClass: 'financial-7y' },
  ]);
  clock = Date.parse('2026-03-02T09:00:00Z');
  await writer.append(stateChange('mar-s-1', 'corr-mar'));
}

async function verifyAll(stores: ArchiveStore[]): Promise<ReturnType<typeof verifyJournal>> {
  const reader = JournalReader.open(path);
  try {
    const archives = await openArchivedSegments(reader.connection, stores, join(tmp.dir, `cache-${Math.random()}`));
    reader.attachArchives(archives);
    return verifyJournal(reader.connection, { sealKey: readSealKey(keysDir), archives });
  } finally {
    reader.close();
  }
}

/** Locations of the pruned copies journaled by expiry (segment.pruned). */
function prunedLocations(): string[] {
  const r = JournalReader.open(path);
  try {
    return r.byKind({ kind: 'segment.pruned' }).map((e) => (e.payload as { location: string }).location);
  } finally {
    r.close();
  }
}

function archivedIds(): string[] {
  const r = JournalReader.open(path);
  try {
    return r.archivedRanges().map((a) => a.segmentId);
  } finally {
    r.close();
  }
}

function hotBelow(seq: number): number {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM entries WHERE seq < ?').get(seq) as { n: number }).n;
  } finally {
    db.close();
  }
}

const hotCount = (): number => hotEntryCount(path);

const uploads = (): FakeGcs['requests'] => gcs.requests.filter((r) => r.method === 'POST' && r.path.startsWith('/upload/'));
const bucketObjects = (): string[] =>
  [...gcs.objects.values()]
    .filter((o) => o.bucket === BUCKET)
    .map((o) => o.name)
    .sort();

beforeEach(async () => {
  tmp = tempDir('aj-archive-gcs-');
  path = join(tmp.dir, 'journal.sqlite');
  keysDir = join(tmp.dir, 'keys');
  clock = Date.parse('2026-01-01T00:00:00Z');
  mkdirSync(join(tmp.dir, 'anchor'));
  gcs = await startFakeGcs();
  gcs.addBucket(BUCKET, { periodSeconds: SEVEN_YEARS_S, locked: true });
});
afterEach(async () => {
  await gcs.close();
  tmp.cleanup();
});

describe('archive to Google Cloud Storage (googleapis against the fake)', () => {
  it('uploads each sealed segment once, reads it back, and the archives verify and trace from the bucket', async () => {
    const store = gcsStore();
    expect(await store.retention()).toMatchObject({
      periodSeconds: SEVEN_YEARS_S,
      locked: true,
      description: expect.stringContaining('2600 days, locked') as string,
    });
    const writer = await open();
    await twoMonths(writer);
    const summary = await archiveJournal(writer, { store, now });
    await writer.close();
    const journalId = writer.identity.journalId;
    expect(summary.map((s) => [s.segmentId, s.location])).toEqual([
      ['2026-01', `gs://${BUCKET}/journals/${journalId}/2026-01.sqlite.gz`],
      ['2026-02', `gs://${BUCKET}/journals/${journalId}/2026-02.sqlite.gz`],
    ]);
    expect(bucketObjects()).toEqual([`journals/${journalId}/2026-01.sqlite.gz`, `journals/${journalId}/2026-02.sqlite.gz`]);
    // Write-once on the wire: every insert carried ifGenerationMatch=0, as a multipart upload with metadata.
    expect(uploads().map((u) => [u.query.uploadType, u.query.ifGenerationMatch, u.status])).toEqual([
      ['multipart', '0', 200],
      ['multipart', '0', 200],
    ]);
    // Read back by alt=media after each upload.
    expect(gcs.requests.filter((r) => r.method === 'GET' && r.query.alt === 'media').length).toBeGreaterThanOrEqual(2);
    const stored = gcs.object(BUCKET, `journals/${journalId}/2026-01.sqlite.gz`);
    expect(stored?.contentType).toBe('application/gzip');
    expect(stored?.retentionExpirationTime).not.toBeNull();

    const all = await verifyAll([gcsStore()]);
    expect(all).toMatchObject({ ok: true, verifiedFrom: 0, firstBadSeq: null });
    const traced = JournalReader.open(path);
    traced.attachArchives(await openArchivedSegments(traced.connection, [gcsStore()], join(tmp.dir, 'trace-cache')));
    expect(traced.byCorrelation('corr-jan').map((e) => e.idempotencyKey)).toEqual(['jan-form-1', 'jan-inv-1', 'jan-s-1']);
    traced.close();
  });

  for (const step of ['uploaded', 'verified'] as ArchiveStep[]) {
    it(`a crash after "${step}" (object in the bucket, no segment.archived yet): the re-run gets 412, verifies the object and commits without a second one`, async () => {
      const writer = await open();
      await twoMonths(writer);
      const crash = new Error(`crash after ${step}`);
      await expect(
        archiveJournal(writer, {
          store: gcsStore(),
          now,
          onStep: (s, id) => {
            if (s === step && id === '2026-01') throw crash;
          },
        }),
      ).rejects.toBe(crash);
      await writer.close();
      expect(archivedIds()).toEqual([]);
      expect(bucketObjects()).toHaveLength(1);
      rmSync(`${path}.segments`, { recursive: true, force: true }); // the staging copy is lost too
      const again = await open();
      const summary = await archiveJournal(again, { store: gcsStore(), now });
      await again.close();
      expect(summary.map((s) => s.segmentId)).toEqual(['2026-01', '2026-02']);
      expect(uploads().map((u) => u.status)).toEqual([200, 412, 200]);
      expect(bucketObjects()).toHaveLength(2);
      expect(archivedIds()).toEqual(['2026-01', '2026-02']);
      expect((await verifyAll([gcsStore()])).ok).toBe(true);
    });
  }

  it('retries 503 and 429 with backoff; an upload whose response was lost is found by its 412 and verified', async () => {
    const writer = await open();
    await twoMonths(writer);
    gcs.fail(2, 503); // the bucket read and the first upload try
    const store = gcsStore();
    await store.retention();
    gcs.fail(2, 429);
    const first = await archiveJournal(writer, { store, now: () => Date.parse('2026-02-10T00:00:00Z') });
    expect(first.map((s) => s.segmentId)).toEqual(['2026-01']);
    expect(uploads().map((u) => u.status)).toEqual([429, 429, 200]);
    // February: stored, but the answer is lost (503); the retry's 412 shows it is there.
    gcs.failAfterWrite(1);
    const second = await archiveJournal(writer, { store, now });
    await writer.close();
    expect(second.map((s) => s.segmentId)).toEqual(['2026-02']);
    expect(uploads().map((u) => u.status)).toEqual([429, 429, 200, 503, 412]);
    expect(bucketObjects()).toHaveLength(2);
    expect((await verifyAll([gcsStore()])).ok).toBe(true);
  });

  it('gives up after its tries with a clear error, and nothing leaves hot storage', async () => {
    const writer = await open();
    await twoMonths(writer);
    const before = hotCount();
    const store = gcsStore({ attempts: 3 });
    await store.retention();
    gcs.fail(3, 503);
    const err = await archiveJournal(writer, { store, now }).catch((e: unknown) => e);
    await writer.close();
    expect(err).toBeInstanceOf(ArchiveStoreError);
    expect((err as ArchiveStoreError).reason).toBe('unavailable');
    expect((err as Error).message).toMatch(/after 3 tries \(last: HTTP 503\)/);
    expect(archivedIds()).toEqual([]);
    // January was sealed (entries were added), but no row left hot storage.
    expect(hotCount()).toBeGreaterThan(before);
    expect(hotBelow(before)).toBe(before);
  });

  it('detects an object that was changed in the bucket', async () => {
    const writer = await open();
    await twoMonths(writer);
    await archiveJournal(writer, { store: gcsStore(), now });
    await writer.close();
    gcs.tamper(BUCKET, `journals/${writer.identity.journalId}/2026-01.sqlite.gz`);
    await expect(verifyAll([gcsStore()])).rejects.toThrow(
      /archived segment 2026-01 at gs:\/\/aj-archive-test\/journals\/.+ does not match the hash journaled/,
    );
  });

  it('refuses a bucket whose retention policy is shorter than the entries need, before writing anything', async () => {
    gcs.addBucket('short-retention', { periodSeconds: 30 * DAY_S });
    const writer = await open();
    await twoMonths(writer);
    const store = gcsStore({ bucket: 'short-retention' });
    const err = await archiveJournal(writer, { store, now }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArchiveStoreError);
    expect((err as ArchiveStoreError).reason).toBe('retention');
    expect((err as Error).message).toMatch(/must be kept until 2033-.* but bucket short-retention retention policy 30 days, not locked/);
    expect(uploads()).toEqual([]);
    expect(archivedIds()).toEqual([]);
    // No retention policy at all is refused too, unless the operator says otherwise.
    gcs.addBucket('no-retention');
    await expect(archiveJournal(writer, { store: gcsStore({ bucket: 'no-retention' }), now })).rejects.toThrow(/has no retention policy/);
    const summary = await archiveJournal(writer, { store: gcsStore({ bucket: 'no-retention', requireRetention: false }), now });
    await writer.close();
    expect(summary.map((s) => s.segmentId)).toEqual(['2026-01', '2026-02']);
  });

  it('a locked object cannot be deleted or replaced in the fake, as in GCS (the store never tries)', async () => {
    const writer = await open();
    await twoMonths(writer);
    await archiveJournal(writer, { store: gcsStore(), now });
    await writer.close();
    const name = encodeURIComponent(`journals/${writer.identity.journalId}/2026-01.sqlite.gz`);
    const del = await fetch(`${gcs.rootUrl}storage/v1/b/${BUCKET}/o/${name}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${gcs.token}` },
    });
    expect(del.status).toBe(403);
    expect(((await del.json()) as { error: { errors: { reason: string }[] } }).error.errors[0]?.reason).toBe('retentionPolicyNotMet');
    expect(gcs.requests.filter((r) => r.method === 'DELETE')).toHaveLength(1); // only ours, here
  });

  it('a 403 says which permissions are missing and never shows the token', async () => {
    const denied = 'ya29.denied-token-that-must-not-appear';
    gcs.forbiddenTokens.add(denied);
    const err = await gcsStore({ credentials: { accessToken: denied } })
      .retention()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArchiveStoreError);
    expect((err as ArchiveStoreError).reason).toBe('denied');
    expect((err as Error).message).toMatch(
      /GCS refused to read the bucket \(403 forbidden\): the service account needs storage.buckets.get, storage.objects.create and storage.objects.get/,
    );
    expect(JSON.stringify(err, Object.getOwnPropertyNames(err))).not.toContain(denied);
    expect((err as Error).cause).toBeUndefined();
    expect(() => gcsStore({ credentials: { keyFile: join(tmp.dir, 'no-such-key.json') } })).toThrow(
      /service-account key file .*no-such-key\.json \(GOOGLE_APPLICATION_CREDENTIALS\) does not exist/,
    );
  });
});

describe('the archive commands and the scheduled archive with ARCHIVE_STORE=gs://…', () => {
  const gcsEnv = (): NodeJS.ProcessEnv => ({
    ARCHIVE_STORE: `gs://${BUCKET}/cold`,
    GCS_BASE_URL: gcs.rootUrl,
    GCS_ACCESS_TOKEN: gcs.token,
  });

  it('archive, verify --include-archives, trace and retention report read and write the bucket', async () => {
    const writer = await open();
    await twoMonths(writer);
    await writer.close();
    const env = { ...process.env, JOURNAL_PATH: path, LOG_LEVEL: 'warn', JOURNAL_APPEND_TOKEN: '', JOURNAL_READ_TOKEN: '', ...gcsEnv() };
    // spawnSync would block this process, and with it the fake: run the CLI asynchronously.
    const cli = (args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CliResult> => runCli(args, { env: { ...env, ...extra } });
    // A bucket that cannot protect the entries as long as they must be kept: a clear refusal, exit 1, nothing moved.
    gcs.addBucket('short-retention', { periodSeconds: DAY_S });
    const dry = await cli(['archive', '--dry-run'], { ARCHIVE_STORE: 'gs://short-retention/cold' });
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(
      /2026-01: seq 0\.\.\d+ \(\d+ entries\) would seal\+archive; the store would refuse it: its entries must be kept until 2033-/,
    );
    expect(dry.stdout).toMatch(/dry run: nothing was written/);
    const refused = await cli(['archive'], { ARCHIVE_STORE: 'gs://short-retention/cold' });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(
      /archive stopped: gs:\/\/short-retention\/cold\/.+2026-01\.sqlite\.gz was not written: its entries must be kept until .*bucket short-retention retention policy 1 day\b/,
    );
    expect(refused.stderr).toMatch(/GCS_REQUIRE_RETENTION=false/);
    expect(refused.stderr).not.toContain(gcs.token);
    expect(archivedIds()).toEqual([]);
    const run = await cli(['archive']);
    expect(run.status, run.stderr).toBe(0);
    // January was sealed by the refused run (sealing does not depend on the store): now it is only archived.
    expect(run.stdout).toMatch(new RegExp(`2026-01: seq 0\\.\\.\\d+ \\(\\d+ entries\\) archived to gs://${BUCKET}/cold/`));
    expect(run.stdout).toMatch(new RegExp(`2026-02: seq \\d+\\.\\.\\d+ \\(\\d+ entries\\) sealed\\+archived to gs://${BUCKET}/cold/`));
    expect(run.stdout).toMatch(/3 segment\(s\) archived to Google Cloud Storage gs:\/\/aj-archive-test\/cold\//);
    expect(run.stdout).toMatch(/store retention: bucket aj-archive-test retention policy 2600 days, locked/);
    // The real clock is past January + 90 days: expiry wrote pruned copies of January and February (their form
    // submissions' payloads dropped); the locked bucket cannot delete, so the originals stay.
    expect(run.stdout).toMatch(/expiry: dropped 2 payload\(s\) in 2 archived segment\(s\) \(marketing-90d: 2\)/);
    expect(run.stdout).toMatch(/superseded object\(s\) kept \(the store cannot delete/);
    expect(bucketObjects().filter((n) => n.startsWith('cold/'))).toHaveLength(5);
    expect(
      bucketObjects()
        .filter((n) => n.includes('.pruned-1.'))
        .map((n) => `gs://${BUCKET}/${n}`),
    ).toEqual(prunedLocations());
    const all = await cli(['verify', '--include-archives', '--json']);
    expect(all.status).toBe(0);
    expect(JSON.parse(all.stdout)).toMatchObject({ ok: true, verifiedFrom: 0 });
    const trace = await cli(['trace', 'corr-jan', '--json']);
    expect(trace.status).toBe(0);
    expect(
      trace.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { idempotencyKey: string }).idempotencyKey),
    ).toEqual(['jan-form-1', 'jan-inv-1', 'jan-s-1']);
    const report = await cli(['retention', 'report', '--json']);
    expect(report.status).toBe(0);
    expect(JSON.parse(report.stdout)).toMatchObject({
      segments: { archived: 3 },
      archiveStore: { kind: 'gcs', retention: { periodSeconds: SEVEN_YEARS_S, locked: true } },
    });
    const text = await cli(['retention', 'report']);
    expect(text.stdout).toMatch(
      /archive store: Google Cloud Storage gs:\/\/aj-archive-test\/cold\/; bucket aj-archive-test retention policy 2600 days, locked/,
    );
    const bad = { ...env, ARCHIVE_STORE: 'gs://Not_A_Bucket' };
    const usage = runCliSync(['archive'], { env: bad });
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/ARCHIVE_STORE: expected "directory" \(ARCHIVE_DIR\) or gs:\/\/bucket\/optional\/prefix/);
  }, 300_000);

  it('the journal service archives a due segment on its schedule, journaled like the command', async () => {
    const writer = await open();
    await twoMonths(writer);
    await writer.close();
    const service = await startService(tmp.dir, {
      env: { ...gcsEnv(), ARCHIVE_SCHEDULE: '1s', JOURNAL_KEYS_DIR: keysDir, JOURNAL_ANCHOR_DIRS: join(tmp.dir, 'anchor') },
    });
    try {
      const archivedObjects = (): string[] => bucketObjects().filter((n) => !n.includes('.pruned-'));
      await pollUntil(() => archivedObjects().length >= 3, { timeoutMs: 60_000 });
      expect(archivedObjects()).toHaveLength(3); // January, February, March (the real clock is past them)
      // The service stays up and keeps taking appends while and after it archives.
      const client = service.client();
      const appended = await client.append(stateChange('after-schedule', 'corr-after'));
      expect(appended.duplicate).toBe(false);
      await client.close();
      // Let the committed run finish before stopping (a run cut short is finished by the next, as the crash tests show).
      // ...and the expiry that follows in the same pass: January's and February's expired form payloads dropped.
      await pollUntil(() => archivedIds().length >= 3 && prunedLocations().length >= 2, { timeoutMs: 30_000 });
    } finally {
      expect(await service.stop()).toBe(0);
    }
    expect(archivedIds()).toEqual(['2026-01', '2026-02', '2026-03']);
    const reader = JournalReader.open(path);
    expect(reader.byKind({ kind: 'segment.archived' }).map((e) => (e.payload as { location: string }).location)).toEqual(
      bucketObjects()
        .filter((n) => !n.includes('.pruned-'))
        .map((n) => `gs://${BUCKET}/${n}`),
    );
    reader.close();
    expect(prunedLocations()).toEqual(
      bucketObjects()
        .filter((n) => n.includes('.pruned-'))
        .map((n) => `gs://${BUCKET}/${n}`),
    );
    expect(prunedLocations()).toHaveLength(2);
    expect((await verifyAll([gcsStore({ prefix: 'cold/' })])).ok).toBe(true);
  }, 180_000);

  it('the schedule runs one pass at a time and archives what is due', async () => {
    const writer = await open();
    await twoMonths(writer);
    const schedule = startArchiveSchedule({
      writer,
      store: gcsStore(),
      everyMs: 60_000,
      firstAfterMs: 60_000,
      stagingDir: `${path}.segments`,
      logger: createLogger('silent', 'test'),
      now,
    });
    try {
      const [a, b] = await Promise.all([schedule.runOnce(), schedule.runOnce()]);
      expect(a?.map((s) => s.segmentId)).toEqual(['2026-01', '2026-02']);
      expect(b).toBeNull(); // a pass was already running: not doubled
      expect(await schedule.runOnce()).toEqual([]); // nothing due any more
      expect(schedule.stats).toMatchObject({ runs: 2, failures: 0, segments: 2 });
      gcs.fail(100, 503);
      clock = Date.parse('2026-04-02T00:00:00Z');
      await writer.append(stateChange('apr-1', 'corr-apr'));
      const failed = await schedule.runOnce();
      expect(failed).toEqual([]);
      expect(schedule.stats.failures).toBe(1);
      expect(schedule.stats.lastError).toMatch(/ArchiveStoreError: GCS could not read the bucket after 5 tries \(last: HTTP 503\)/);
    } finally {
      await schedule.stop();
      await writer.close();
    }
    expect(uploads().filter((u) => u.status === 200)).toHaveLength(2);
  });

  it('stopping ends a running pass at its next step; the next run finishes the job', async () => {
    const writer = await open();
    await twoMonths(writer);
    const options = {
      writer,
      store: gcsStore(),
      everyMs: 60_000,
      stagingDir: `${path}.segments`,
      logger: createLogger('silent', 'test'),
      now,
    };
    const first = startArchiveSchedule(options);
    const pass = first.runOnce();
    await first.stop();
    expect(await pass).toEqual([]);
    expect(first.stats.failures).toBe(0);
    expect(archivedIds()).toEqual([]); // stopped after January's seal, before its upload was committed
    const second = startArchiveSchedule(options);
    expect((await second.runOnce())?.map((s) => s.segmentId)).toEqual(['2026-01', '2026-02']);
    await second.stop();
    await writer.close();
    expect(archivedIds()).toEqual(['2026-01', '2026-02']);
    expect((await verifyAll([gcsStore()])).ok).toBe(true);
  });
});
