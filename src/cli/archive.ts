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
import { expireArchived, type ExpirySummary } from '../journal/expiry.ts';
import { containArchived, type ContainResult } from '../journal/containment.ts';
import { type ArchiveStore, type StoreRetention } from '../journal/archive-store.ts';
import { ArchiveStoreError } from '../journal/errors/archive-store.error.ts';
import { archiveStagingDir, configuredArchiveStores } from '../../jobs/archive.ts';
import { configuredAnchors } from '../journal/configured-anchors.ts';
import { JournalFileError } from '../journal/errors/journal-file.error.ts';
import type { ArchivedSegmentSource } from '../journal/verify.ts';
import { progressBar } from './progress.ts';
import { UsageError } from './usage-error.ts';
import { archiveCacheDir } from './archive-cache.ts';

interface Out {
  out(line: string): void;
  err(line: string): void;
}

/** Opens the archived segments of the journal behind `reader` and attaches them; returns them (closed with the reader). */
export async function attachArchives(config: Config, reader: JournalReader): Promise<ArchivedSegmentSource[]> {
  const archives = await openArchivedSegments(reader.connection, configuredArchiveStores(config), archiveCacheDir(config));
  reader.attachArchives(archives);
  return archives;
}

/**
 * `contain` (from `privacy contain` only): after sealing and archiving, drop from archived segments the payloads an
 * older version stored with personal data in clear, then rewrite the hot file (src/journal/containment.ts).
 */
export async function archiveCommand(
  config: Config,
  opts: { dryRun: boolean; json: boolean; contain?: boolean },
  io: Out,
): Promise<number> {
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
    if (err instanceof JournalFileError && err.code === 'LOCKED')
      throw new UsageError(
        `${err.message}; archive needs the journal to itself: stop the journal service, run \`activity-journal archive\`, start it again`,
      );
    throw err;
  }
  const store = configuredArchiveStores(config)[0] as ArchiveStore;
  const bar = opts.json || opts.dryRun ? { update() {}, done() {} } : progressBar('archiving');
  try {
    // What protects the store's objects, read from the store before anything is written (a bucket's retention policy).
    const retention = await store.retention();
    const summary = await archiveJournal(writer, {
      store,
      dryRun: opts.dryRun,
      onProgress: (d, t) => bar.update(d, t),
      stagingDir: archiveStagingDir(config),
    });
    // Then, when asked (`privacy contain`), containment: payloads an older version stored with personal data in clear.
    const containment =
      opts.contain === true
        ? await containArchived(writer, {
            store,
            stores: configuredArchiveStores(config),
            dryRun: opts.dryRun,
            stagingDir: archiveStagingDir(config),
            cacheDir: archiveCacheDir(config),
            compactAlways: true,
          })
        : null;
    // Then expiry: payloads of archived entries whose class drops them and whose retention has ended.
    const expiry = await expireArchived(writer, {
      store,
      stores: configuredArchiveStores(config),
      dryRun: opts.dryRun,
      stagingDir: archiveStagingDir(config),
      cacheDir: archiveCacheDir(config),
    });
    bar.done();
    if (opts.json)
      io.out(
        JSON.stringify({
          dryRun: opts.dryRun,
          store: store.description,
          storeRetention: retention,
          segments: summary,
          ...(containment ? { containment } : {}),
          expiry,
        }),
      );
    else {
      if (summary.length === 0)
        io.out(`nothing to archive: no closed month is left in hot storage (store: ${store.description}; ${retention.description})`);
      else {
        for (const s of summary) {
          const size = s.compressedBytes !== null ? `, ${s.fileBytes ?? '?'} bytes -> ${s.compressedBytes} compressed` : '';
          io.out(
            `${s.segmentId}: seq ${s.fromSeq}..${s.toSeq} (${s.entries} entries) ${s.action}${s.location ? ` to ${s.location}` : ''}${size}${s.rowsDropped > 0 ? `; ${s.rowsDropped} rows left hot storage` : ''}${s.wouldRefuse ? `; the store would refuse it: ${s.wouldRefuse}` : ''}`,
          );
        }
        io.out(
          opts.dryRun
            ? `dry run: nothing was written (store: ${store.description})`
            : `${summary.length} segment(s) archived to ${store.description}`,
        );
        io.out(`store retention: ${retention.description}`);
      }
      if (containment) for (const line of containmentLines(containment)) io.out(line);
      for (const line of expiryLines(expiry)) io.out(line);
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

function perClass(classes: Readonly<Record<string, number>>): string {
  return Object.entries(classes)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([c, n]) => `${c}: ${n}`)
    .join(', ');
}

/** What containment did (or would do): one line per segment; silent when there was nothing to contain. */
export function containmentLines(c: ContainResult): string[] {
  const lines: string[] = [];
  for (const s of c.segments) {
    const seqs = s.seqs.length > 20 ? `${s.seqs.slice(0, 20).join(', ')}, …` : s.seqs.join(', ');
    if (s.action === 'would contain')
      lines.push(
        `${s.segmentId}: would contain ${s.entries} payload(s) holding personal data in clear (${perClass(s.kinds)}): seq ${seqs}`,
      );
    else {
      lines.push(
        `${s.segmentId}: contained ${s.entries} payload(s) holding personal data in clear (${perClass(s.kinds)}): seq ${seqs}; headers and hashes stay; copy ${s.generation ?? '?'} at ${s.location ?? '?'}`,
      );
      if (s.deleted.length > 0) lines.push(`  superseded object(s) deleted: ${s.deleted.join(', ')}`);
      if (s.kept.length > 0)
        lines.push(
          `  superseded object(s) kept, STILL HOLDING THOSE PAYLOADS (the store cannot delete, e.g. a bucket under a retention lock): ${s.kept.join(', ')}`,
        );
    }
  }
  if (c.compacted)
    lines.push(
      `hot file rewritten (VACUUM)${c.compacted.walTruncated ? ' and its WAL truncated' : '; its WAL is in use by another process and is overwritten at its next checkpoint'}`,
    );
  return lines;
}

/** What expiry did (or would do), one line per segment and a total per class. */
export function expiryLines(expiry: readonly ExpirySummary[]): string[] {
  const lines: string[] = [];
  const total: Record<string, number> = {};
  for (const e of expiry) {
    for (const [c, n] of Object.entries(e.classes)) total[c] = (total[c] ?? 0) + n;
    if (e.action === 'would prune')
      lines.push(`${e.segmentId}: would drop ${e.droppedEntries} expired payload(s) (${perClass(e.classes)})`);
    else if (e.action === 'pruned') {
      lines.push(
        `${e.segmentId}: dropped ${e.droppedEntries} expired payload(s) (${perClass(e.classes)}); headers and hashes stay; pruned copy ${e.generation ?? '?'} at ${e.location ?? '?'}`,
      );
      if (e.deleted.length > 0) lines.push(`  superseded object(s) deleted: ${e.deleted.join(', ')}`);
      if (e.kept.length > 0)
        lines.push(
          `  superseded object(s) kept (the store cannot delete, e.g. a bucket under a retention lock; readers use the newest copy): ${e.kept.join(', ')}`,
        );
    } else lines.push(`${e.segmentId}: superseded object(s) of an interrupted expiry deleted: ${e.deleted.join(', ')}`);
  }
  const dropped = expiry.filter((e) => e.action !== 'cleaned');
  if (dropped.length > 0)
    lines.push(
      `expiry: ${dropped[0]?.action === 'would prune' ? 'would drop' : 'dropped'} ${dropped.reduce((n, e) => n + e.droppedEntries, 0)} payload(s) in ${dropped.length} archived segment(s) (${perClass(total)})`,
    );
  else lines.push('expiry: no archived payload is due to be dropped');
  return lines;
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
    const archiveStore = {
      kind: store.kind,
      description: store.description,
      retention: storeRetention,
      ...(storeError ? { error: storeError } : {}),
    };
    if (asJson) {
      io.out(JSON.stringify({ ...report, archiveStore }));
      return 0;
    }
    io.out(`retention policy version ${report.policyVersion ?? '(none journaled yet)'}`);
    io.out(
      'class            days     on expiry     hot entries  payload bytes  oldest                    oldest expires            expired hot  dropped  raised',
    );
    for (const c of report.classes) {
      io.out(
        `${c.retentionClass.padEnd(16)} ${String(c.days ?? 'forever').padEnd(8)} ${String(c.onExpiry ?? '-').padEnd(13)} ${String(c.hotEntries).padStart(11)}  ${String(c.hotPayloadBytes).padStart(13)}  ${(c.oldestRecordedAt ?? '-').padEnd(24)}  ${(c.oldestExpiresAt ?? (c.hotEntries > 0 ? 'never' : '-')).padEnd(24)}  ${String(c.expiredHot).padStart(11)}  ${String(c.droppedPayloads).padStart(7)}  ${String(c.raisedHot).padStart(6)}`,
      );
    }
    io.out(
      'expired hot: entries past retention whose class drops payloads; dropped once their month is archived (hot storage is never pruned). dropped: archived payloads already dropped by expiry. raised: hot entries a retention.assigned raised to a longer class (kept as that class says).',
    );
    const s = report.segments;
    io.out(`segments: ${s.sealed} sealed, ${s.archived} archived (${s.archivedEntries} entries, ${s.archivedBytes} bytes compressed)`);
    io.out(
      `archive store: ${store.description}; ${storeRetention ? storeRetention.description : `retention unknown: ${storeError ?? ''}`}`,
    );
    for (const w of report.warnings) io.out(`WARNING: ${w}`);
    if (report.nextSeal)
      io.out(
        `next seal: ${report.nextSeal.period}${report.nextSeal.dueNow ? ' (due now: run `activity-journal archive`)' : ` once the month closes (${report.nextSeal.sealableFrom})`}`,
      );
    return 0;
  } finally {
    reader.close();
  }
}
