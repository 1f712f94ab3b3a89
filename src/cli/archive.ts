/**
 * `archive [--dry-run]` and `retention report`, and opening archived segments for `verify --include-archives`
 * and `trace`.
 */
import type { Config } from '../config/config.ts';
import { JournalWriter } from '../journal/writer.ts';
import { JournalReader } from '../journal/reader.ts';
import { RetentionPolicy } from '../journal/retention.ts';
import { retentionReport } from '../journal/retention-report.ts';
import { archiveJournal, openArchivedSegments } from '../journal/segments.ts';
import { ArchiveStoreError, type ArchiveStore, type StoreRetention } from '../journal/archive-store.ts';
import { archiveStagingDir, configuredArchiveStores } from '../../jobs/archive.ts';
import { configuredAnchors } from '../journal/configured-anchors.ts';
import { JournalFileError } from '../journal/errors/journal-file.error.ts';
import type { ArchivedSegmentSource } from '../journal/verify.ts';
import { progressBar } from './progress.ts';
import { UsageError } from './usage-error.ts';

interface Out {
  out(line: string): void;
  err(line: string): void;
}

/** Where downloaded archived segments are kept (decompressed, read-only use). */
export function archiveCacheDir(config: Config): string {
  return `${config.journal.path}.archive-cache`;
}

/** Opens the archived segments of the journal behind `reader` and attaches them; returns them (closed with the reader). */
export async function attachArchives(config: Config, reader: JournalReader): Promise<ArchivedSegmentSource[]> {
  const archives = await openArchivedSegments(reader.connection, configuredArchiveStores(config), archiveCacheDir(config));
  reader.attachArchives(archives);
  return archives;
}

export async function archiveCommand(config: Config, opts: { dryRun: boolean; json: boolean }, io: Out): Promise<number> {
  let writer: JournalWriter;
  try {
    writer = await JournalWriter.open({
      path: config.journal.path,
      keysDir: config.journal.keysDir,
      anchors: configuredAnchors(config.journal),
      maxPayloadBytes: config.journal.maxPayloadBytes,
      checkpointEveryEntries: config.journal.checkpointEveryEntries,
      checkpointEveryMs: 0,
      retention: RetentionPolicy.load(config.journal.retentionPath),
    });
  } catch (err) {
    if (err instanceof JournalFileError && err.code === 'LOCKED') throw new UsageError(`${err.message}; archive needs the journal to itself: stop the journal service, run \`activity-journal archive\`, start it again`);
    throw err;
  }
  const store = configuredArchiveStores(config)[0] as ArchiveStore;
  const bar = opts.json || opts.dryRun ? { update() {}, done() {} } : progressBar('archiving');
  try {
    // What protects the store's objects, read from the store before anything is written (a bucket's retention policy).
    const retention = await store.retention();
    const summary = await archiveJournal(writer, { store, dryRun: opts.dryRun, onProgress: (d, t) => bar.update(d, t), stagingDir: archiveStagingDir(config) });
    bar.done();
    if (opts.json) io.out(JSON.stringify({ dryRun: opts.dryRun, store: store.description, storeRetention: retention, segments: summary }));
    else if (summary.length === 0) io.out(`nothing to archive: no closed month is left in hot storage (store: ${store.description}; ${retention.description})`);
    else {
      for (const s of summary) {
        const size = s.compressedBytes !== null ? `, ${s.fileBytes ?? '?'} bytes -> ${s.compressedBytes} compressed` : '';
        io.out(`${s.segmentId}: seq ${s.fromSeq}..${s.toSeq} (${s.entries} entries) ${s.action}${s.location ? ` to ${s.location}` : ''}${size}${s.rowsDropped > 0 ? `; ${s.rowsDropped} rows left hot storage` : ''}${s.wouldRefuse ? `; the store would refuse it: ${s.wouldRefuse}` : ''}`);
      }
      io.out(opts.dryRun ? `dry run: nothing was written (store: ${store.description})` : `${summary.length} segment(s) archived to ${store.description}`);
      io.out(`store retention: ${retention.description}`);
    }
    return 0;
  } catch (err) {
    bar.done();
    // A store that refuses (retention too short, permissions) or stays unavailable: say so; the journal is
    // unchanged past the last committed step, and a re-run carries on.
    if (err instanceof ArchiveStoreError) {
      io.err(`archive stopped: ${err.message}`);
      io.err('segments archived before this one stay archived; fix the cause and run `activity-journal archive` again');
      return 1;
    }
    throw err;
  } finally {
    await writer.close();
  }
}

export async function retentionReportCommand(config: Config, asJson: boolean, io: Out): Promise<number> {
  const store = configuredArchiveStores(config)[0] as ArchiveStore;
  // The store's protection is read from the store; one that cannot be reached is reported, not fatal.
  let storeRetention: StoreRetention | null = null;
  let storeError: string | null = null;
  try {
    storeRetention = await store.retention();
  } catch (err) {
    if (!(err instanceof ArchiveStoreError)) throw err;
    storeError = err.message;
  }
  const reader = JournalReader.open(config.journal.path);
  try {
    const report = retentionReport(reader.connection, Date.now(), RetentionPolicy.load(config.journal.retentionPath));
    const archiveStore = { kind: store.kind, description: store.description, retention: storeRetention, ...(storeError ? { error: storeError } : {}) };
    if (asJson) {
      io.out(JSON.stringify({ ...report, archiveStore }));
      return 0;
    }
    io.out(`retention policy version ${report.policyVersion ?? '(none journaled yet)'}`);
    io.out('class            days     on expiry     hot entries  payload bytes  oldest                    oldest expires');
    for (const c of report.classes) {
      io.out(
        `${c.retentionClass.padEnd(16)} ${String(c.days ?? 'forever').padEnd(8)} ${String(c.onExpiry ?? '-').padEnd(13)} ${String(c.hotEntries).padStart(11)}  ${String(c.hotPayloadBytes).padStart(13)}  ${(c.oldestRecordedAt ?? '-').padEnd(24)}  ${c.oldestExpiresAt ?? (c.hotEntries > 0 ? 'never' : '-')}`,
      );
    }
    const s = report.segments;
    io.out(`segments: ${s.sealed} sealed, ${s.archived} archived (${s.archivedEntries} entries, ${s.archivedBytes} bytes compressed)`);
    io.out(`archive store: ${store.description}; ${storeRetention ? storeRetention.description : `retention unknown: ${storeError ?? ''}`}`);
    if (report.nextSeal) io.out(`next seal: ${report.nextSeal.period}${report.nextSeal.dueNow ? ' (due now: run `activity-journal archive`)' : ` once the month closes (${report.nextSeal.sealableFrom})`}`);
    return 0;
  } finally {
    reader.close();
  }
}
