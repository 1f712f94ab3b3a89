/**
 * How the journal's SQLite connections are opened. better-sqlite3's defaults are kept where they protect us
 * (defensive mode on: we never call `unsafeMode`) and overridden where they would not (WAL defaults to
 * synchronous=NORMAL, which can lose the last commits on power loss; we need FULL).
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { JournalFileError } from './errors/journal-file.error.ts';

/** Opens the journal for writing, creating the file with mode 0600 when it does not exist. */
export function openWriteConnection(path: string): Database.Database {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  if (!existsSync(path)) {
    try {
      closeSync(openSync(path, 'wx', 0o600));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  const db = new Database(path, { timeout: 5000 });
  const mode = db.pragma('journal_mode = WAL', { simple: true }) as string;
  if (mode !== 'wal') throw new JournalFileError('UNREADABLE', `could not switch the journal to WAL mode (got ${mode})`);
  db.pragma('synchronous = FULL');
  db.pragma('trusted_schema = OFF');
  // The WAL is checkpointed by SQLite automatically; a larger threshold keeps checkpoints off the commit path longer.
  db.pragma('wal_autocheckpoint = 4000');
  return db;
}

/** Opens the journal read-only; the readers never hold a write handle. */
export function openReadConnection(path: string): Database.Database {
  if (!existsSync(path)) throw new JournalFileError('UNREADABLE', `no journal at ${path}`);
  const st = statSync(path);
  if (!st.isFile()) throw new JournalFileError('UNREADABLE', `${path} is not a file`);
  try {
    const db = new Database(path, { readonly: true, fileMustExist: true, timeout: 5000 });
    db.pragma('trusted_schema = OFF');
    return db;
  } catch (err) {
    throw new JournalFileError('UNREADABLE', `cannot open the journal ${path}: ${(err as Error).message}`, { cause: err });
  }
}
