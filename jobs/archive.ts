/**
 * Archive wiring: the configured archive stores, and the scheduled archive run inside the journal service.
 *
 * Why in the journal service and not a BullMQ job: archiving seals, commits and deletes through the journal
 * writer, and the journal service is its only holder (an exclusive lock on the journal file). Running there
 * makes "one runner at a time across processes" a property of that lock: a second service cannot open the
 * journal, and `activity-journal archive` refuses while the service runs. Inside the process, a run that is
 * still going when the next is due is not doubled (the next is skipped). Each run journals what it does as the
 * command does (`segment.sealed`, `segment.archived`, and `segment.pruned` when expiry drops payloads of archived
 * entries, see src/journal/expiry.ts); a run with nothing due writes nothing.
 */
import type { Config } from '../src/config/config.ts';
import type { Logger } from '../src/config/logger.ts';
import { DirectoryArchiveStore, type ArchiveStore } from '../src/journal/archive-store.ts';
import { archiveJournal, type SegmentSummary } from '../src/journal/segments.ts';
import { expireArchived } from '../src/journal/expiry.ts';
import type { JournalWriter } from '../src/journal/writer.ts';
import { GcsArchiveStore } from '../connectors/gcs/gcs.archive-store.ts';
import { ArchivePassStopped } from './errors/archive-pass-stopped.error.ts';

/** The store archive writes to first, then every store archived segments may be read from. */
export function configuredArchiveStores(config: Config): ArchiveStore[] {
  const s = config.journal.archiveStore;
  const directory = new DirectoryArchiveStore(config.journal.archiveDir);
  if (s.kind === 'directory') return [new DirectoryArchiveStore(s.dir)];
  const gcs = new GcsArchiveStore({
    bucket: s.bucket,
    prefix: s.prefix,
    credentials: s.credentials,
    rootUrl: s.baseUrl,
    requireRetention: s.requireRetention,
  });
  // Segments archived to the directory before the bucket was configured stay readable.
  return [gcs, directory];
}

/** Where sealed segment files are built before upload. */
export function archiveStagingDir(config: Config): string {
  return `${config.journal.path}.segments`;
}

export interface ArchiveScheduleOptions {
  readonly writer: JournalWriter;
  readonly store: ArchiveStore;
  /** Every store archived objects may be read from, for expiry (default: just `store`). */
  readonly stores?: readonly ArchiveStore[];
  readonly everyMs: number;
  /** Delay before the first run (default everyMs). */
  readonly firstAfterMs?: number;
  readonly stagingDir: string;
  readonly logger: Logger;
  readonly now?: () => number;
}

export interface ArchiveSchedule {
  /** Runs one archive pass now; resolves to null when a pass was already running (it is not doubled). */
  runOnce(): Promise<SegmentSummary[] | null>;
  /** Stops the timer and ends a running pass at its next step (the writer must stay open until it has). */
  stop(): Promise<void>;
  readonly stats: { runs: number; failures: number; segments: number; pruned: number; lastRunAt: string | null; lastError: string | null };
}

export function startArchiveSchedule(o: ArchiveScheduleOptions): ArchiveSchedule {
  const log = o.logger.child({ component: 'journal.archive-schedule' });
  const stats: ArchiveSchedule['stats'] = { runs: 0, failures: 0, segments: 0, pruned: 0, lastRunAt: null, lastError: null };
  let running: Promise<SegmentSummary[] | null> | null = null;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;

  const pass = async (): Promise<SegmentSummary[] | null> => {
    const started = Date.now();
    try {
      // The bucket's retention policy may have changed since the last run: read it again before writing.
      await o.store.retention();
      const summary = await archiveJournal(o.writer, {
        store: o.store,
        stagingDir: o.stagingDir,
        ...(o.now ? { now: o.now } : {}),
        // On shutdown, end the pass at the next step boundary; every step is committed or redone by the next run.
        onStep: () => {
          if (stopped) throw new ArchivePassStopped();
        },
      });
      // Then expiry: archived payloads whose class drops them and whose retention has ended (hot rows never).
      const expiry = await expireArchived(o.writer, {
        store: o.store,
        ...(o.stores ? { stores: o.stores } : {}),
        stagingDir: o.stagingDir,
        ...(o.now ? { now: o.now } : {}),
        onStep: () => {
          if (stopped) throw new ArchivePassStopped();
        },
      });
      const pruned = expiry.filter((e) => e.action === 'pruned');
      stats.pruned += pruned.length;
      if (expiry.length > 0) {
        log.info(
          {
            segments: expiry.map((e) => ({
              segmentId: e.segmentId,
              action: e.action,
              droppedEntries: e.droppedEntries,
              classes: e.classes,
              location: e.location,
              deleted: e.deleted.length,
              kept: e.kept.length,
            })),
          },
          'scheduled archive: expired payloads dropped from archived segments',
        );
      }
      stats.runs++;
      stats.segments += summary.length;
      stats.lastError = null;
      if (summary.length > 0) {
        log.info(
          {
            store: o.store.kind,
            segments: summary.map((s) => ({
              segmentId: s.segmentId,
              entries: s.entries,
              location: s.location,
              compressedBytes: s.compressedBytes,
            })),
            ms: Date.now() - started,
          },
          'scheduled archive moved segments',
        );
      } else {
        log.debug({ ms: Date.now() - started }, 'scheduled archive: nothing due');
      }
      return summary;
    } catch (err) {
      if (err instanceof ArchivePassStopped) {
        log.info({ ms: Date.now() - started }, 'scheduled archive stopped for shutdown; the next run carries on');
        return [];
      }
      stats.runs++;
      stats.failures++;
      // Our error messages name segments, stores and locations, never credentials; a re-run carries on from the journal.
      stats.lastError = `${(err as Error).name}: ${(err as Error).message}`;
      log.error(
        {
          err: {
            name: (err as Error).name,
            code: (err as { code?: unknown }).code,
            reason: (err as { reason?: unknown }).reason,
            message: (err as Error).message,
          },
        },
        'scheduled archive failed; the next run carries on',
      );
      return [];
    } finally {
      stats.lastRunAt = new Date().toISOString();
    }
  };

  const runOnce = (): Promise<SegmentSummary[] | null> => {
    if (running) return Promise.resolve(null);
    running = pass().finally(() => {
      running = null;
    });
    return running;
  };

  const arm = (ms: number): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      void runOnce().finally(() => arm(o.everyMs));
    }, ms);
    timer.unref();
  };
  arm(o.firstAfterMs ?? o.everyMs);
  log.info({ everyMs: o.everyMs, firstAfterMs: o.firstAfterMs ?? o.everyMs, store: o.store.description }, 'archive scheduled');

  return {
    runOnce,
    stats,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (running) await running;
    },
  };
}
