/**
 * How the journal's SQLite connections are opened. better-sqlite3's defaults are kept where they protect us
 * (defensive mode on: we never call `unsafeMode`) and overridden where they would not (WAL defaults to
 * synchronous=NORMAL, which can lose the last commits on power loss; we need FULL).
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { JournalFileError } from './errors/journal-file.error.ts';

/**
 * Creates `path` empty with mode 0600 (and its directory 0700) when it does not exist, whatever the umask, before
 * SQLite opens it: SQLite gives the -wal and -shm files the main file's mode.
 */
export function createPrivateFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  if (existsSync(path)) return;
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/** Opens the journal for writing, creating the file with mode 0600 when it does not exist. */
export function openWriteConnection(path: string): Database.Database {
  createPrivateFile(path);
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

/**
 * Opens the journal for a check that must leave the directory as it found it (`verify`, `status`, `keys
 * status`: a copy checked elsewhere stays byte-identical). A read-only connection to a WAL database creates its
 * -wal and -shm files and, read-only, cannot remove them again. So when neither is there (no connection is open
 * on the journal: a cleanly closed journal, a copy), the check opens it read-write with `query_only` (no
 * statement can write), and SQLite removes the two files when it closes as the last connection: the WAL it
 * checkpoints then is the empty one it made. When they are there (the journal service is running), read-only,
 * as every reader.
 */
export function openCheckConnection(path: string): Database.Database {
  if (existsSync(`${path}-wal`) || existsSync(`${path}-shm`)) return openReadConnection(path);
  if (!existsSync(path)) throw new JournalFileError('UNREADABLE', `no journal at ${path}`);
  if (!statSync(path).isFile()) throw new JournalFileError('UNREADABLE', `${path} is not a file`);
  let db: Database.Database;
  try {
    db = new Database(path, { fileMustExist: true, timeout: 5000 });
  } catch {
    return openReadConnection(path); // not writable here (read-only media, a file of another user): read-only
  }
  try {
    db.pragma('query_only = ON');
    db.pragma('trusted_schema = OFF');
    return db;
  } catch (err) {
    db.close();
    throw new JournalFileError('UNREADABLE', `cannot open the journal ${path}: ${(err as Error).message}`, { cause: err });
  }
}
