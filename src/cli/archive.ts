/**
 * `archive [--dry-run]` and `retention report`, and opening archived segments for `verify --include-archives`
 * and `trace`.
 */
import { join } from 'node:path';
import type { Config } from '../config/config.ts';
import { JournalWriter } from '../journal/writer.ts';
import { JournalReader } from '../journal/reader.ts';
import { RetentionPolicy } from '../journal/retention.ts';
import { retentionReport } from '../journal/retention-report.ts';
import { archiveJournal, openArchivedSegments } from '../journal/segments.ts';
import { DirectoryArchiveStore, type ArchiveStore } from '../journal/archive-store.ts';
import { configuredAnchors } from '../journal/configured-anchors.ts';
import { JournalFileError } from '../journal/errors/journal-file.error.ts';
import type { ArchivedSegmentSource } from '../journal/verify.ts';
import { progressBar } from './progress.ts';
import { UsageError } from './usage-error.ts';

interface Out {
  out(line: string): void;
  err(line: string): void;
}

/** The archive stores segments are written to and read from. */
export function configuredArchiveStores(config: Config): ArchiveStore[] {
  return [new DirectoryArchiveStore(config.journal.archiveDir)];
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
    const summary = await archiveJournal(writer, { store, dryRun: opts.dryRun, onProgress: (d, t) => bar.update(d, t), stagingDir: join(`${config.journal.path}.segments`) });
    bar.done();
    if (opts.json) io.out(JSON.stringify({ dryRun: opts.dryRun, store: store.description, segments: summary }));
    else if (summary.length === 0) io.out('nothing to archive: no closed month is left in hot storage');
    else {
      for (const s of summary) {
        const size = s.compressedBytes !== null ? `, ${s.fileBytes ?? '?'} bytes -> ${s.compressedBytes} compressed` : '';
        io.out(`${s.segmentId}: seq ${s.fromSeq}..${s.toSeq} (${s.entries} entries) ${s.action}${s.location ? ` to ${s.location}` : ''}${size}${s.rowsDropped > 0 ? `; ${s.rowsDropped} rows left hot storage` : ''}`);
      }
      io.out(opts.dryRun ? `dry run: nothing was written (store: ${store.description})` : `${summary.length} segment(s) archived to ${store.description}`);
    }
    return 0;
  } finally {
    await writer.close();
  }
}

export function retentionReportCommand(config: Config, asJson: boolean, io: Out): number {
  const reader = JournalReader.open(config.journal.path);
  try {
    const report = retentionReport(reader.connection, Date.now(), RetentionPolicy.load(config.journal.retentionPath));
    if (asJson) {
      io.out(JSON.stringify(report));
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
    if (report.nextSeal) io.out(`next seal: ${report.nextSeal.period}${report.nextSeal.dueNow ? ' (due now: run `activity-journal archive`)' : ` once the month closes (${report.nextSeal.sealableFrom})`}`);
    return 0;
  } finally {
    reader.close();
  }
}
