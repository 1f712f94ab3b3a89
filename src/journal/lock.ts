/**
 * The single-writer lock. It is an exclusive SQLite lock on a small side file, held for the life of the
 * process: the operating system releases it when the process dies (even by kill -9), so there is no stale lock
 * to clean up, and a second writer, in this process or another, gets SQLITE_BUSY and refuses to start.
 * The same kind of lock marks a running `activity-journal start` (see src/cli/instance.ts).
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { hostname } from 'node:os';
import { JournalFileError } from './errors/journal-file.error.ts';

export interface WriterLock {
  release(): void;
}

export type FileLockResult =
  { readonly held: true; readonly lock: WriterLock } | { readonly held: false; readonly owner: string | null; readonly cause: unknown };

/**
 * Takes the exclusive lock on `lockPath`, or says who holds it (the text of `<lockPath>.owner`, written by the
 * holder). `owner` (when given) is written there once the lock is ours.
 */
export function tryFileLock(lockPath: string, owner?: string): FileLockResult {
  const infoPath = `${lockPath}.owner`;
  mkdirSync(dirname(lockPath), { recursive: true, mode: 0o700 });
  // Create it 0600 only when missing: opening and closing a file this process holds a POSIX lock on would
  // silently drop that lock (fcntl locks belong to the process, and any close releases them).
  if (!existsSync(lockPath)) {
    try {
      closeSync(openSync(lockPath, 'wx', 0o600));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  const db = new Database(lockPath, { timeout: 0 });
  try {
    db.pragma('journal_mode = DELETE');
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
    // A write makes SQLite take (and, in EXCLUSIVE locking mode, keep) the exclusive lock on the file.
    db.exec('CREATE TABLE IF NOT EXISTS held (at TEXT)');
  } catch (err) {
    db.close();
    let note: string | null = null;
    try {
      note = readFileSync(infoPath, 'utf8').trim() || null;
    } catch {
      // the owner note is a courtesy; the lock itself is what counts
    }
    return { held: false, owner: note, cause: err };
  }
  if (owner !== undefined) writeFileSync(infoPath, `${owner}\n`, { mode: 0o600 });
  return {
    held: true,
    lock: {
      release(): void {
        if (!db.open) return;
        try {
          db.exec('ROLLBACK');
        } catch {
          // nothing to roll back
        }
        db.close();
      },
    },
  };
}

export function writerLockPath(journalPath: string): string {
  return `${journalPath}.writer-lock`;
}

export function acquireWriterLock(journalPath: string): WriterLock {
  mkdirSync(dirname(journalPath), { recursive: true, mode: 0o700 });
  const result = tryFileLock(writerLockPath(journalPath), `pid ${process.pid} on ${hostname()}`);
  if (result.held) return result.lock;
  throw new JournalFileError(
    'LOCKED',
    `the journal ${journalPath} is already open for writing by ${result.owner ?? 'another process'}; only one writer may run (stop it, or send appends through the journal service)`,
    { cause: result.cause },
  );
}
