/**
 * The single-writer lock. It is an exclusive SQLite lock on a small side file, held for the life of the
 * process: the operating system releases it when the process dies (even by kill -9), so there is no stale lock
 * to clean up, and a second writer, in this process or another, gets SQLITE_BUSY and refuses to start.
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { hostname } from 'node:os';
import { JournalFileError } from './errors/journal-file.error.ts';

export interface WriterLock {
  release(): void;
}

export function acquireWriterLock(journalPath: string): WriterLock {
  const lockPath = `${journalPath}.writer-lock`;
  const infoPath = `${lockPath}.owner`;
  mkdirSync(dirname(journalPath), { recursive: true, mode: 0o700 });
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
    let owner = 'another process';
    try {
      owner = readFileSync(infoPath, 'utf8').trim() || owner;
    } catch {
      // the owner note is a courtesy; the lock itself is what counts
    }
    throw new JournalFileError('LOCKED', `the journal ${journalPath} is already open for writing by ${owner}; only one writer may run (stop it, or send appends through the journal service)`, { cause: err });
  }
  writeFileSync(infoPath, `pid ${process.pid} on ${hostname()}\n`, { mode: 0o600 });
  return {
    release(): void {
      if (!db.open) return;
      try {
        db.exec('ROLLBACK');
      } catch {
        // nothing to roll back
      }
      db.close();
    },
  };
}
