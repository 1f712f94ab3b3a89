/**
 * The audit UI's sign-in state that must outlive a process and be shared by every web process on the host:
 * revoked sessions (sign-outs) and failed sign-in counters (lockouts). A small SQLite file (AUDIT_AUTH_STATE_PATH,
 * mode 0600, WAL so that several processes read and write it at once; it must be on a local disk).
 *
 * Nothing in it is a credential or names anyone: session ids and throttle keys (a typed user name, a client
 * address) are stored as HMAC-SHA256 under a key derived from the session secret, so the file alone does not
 * say who tried to sign in from where. Rows carry their own expiry and are pruned as new ones are written.
 */
import Database from 'better-sqlite3';
import { createHmac } from 'node:crypto';
import { createPrivateFile } from '../journal/sqlite.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS revoked_sessions (
  sid_hash TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS revoked_sessions_by_expiry ON revoked_sessions (expires_at);
CREATE TABLE IF NOT EXISTS login_failures (
  key_hash TEXT PRIMARY KEY,
  failures INTEGER NOT NULL,
  window_start INTEGER NOT NULL,
  locked_until INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS login_failures_by_expiry ON login_failures (expires_at);
`;

/** Where sign-outs are kept. */
export interface RevocationList {
  isRevoked(sid: string): boolean;
  revoke(sid: string, expiresAt: number): void;
}

/** Failed sign-ins per key, in a fixed window; a key that reaches `max` is locked for `windowMs`. */
export interface FailureCounters {
  lockedUntil(key: string): number;
  recordFailure(key: string, max: number, windowMs: number): void;
  clearFailures(key: string): void;
}

interface FailureRow {
  failures: number;
  window_start: number;
  locked_until: number;
}

export class AuthStateStore implements RevocationList, FailureCounters {
  private readonly db: Database.Database;
  private readonly stmts: {
    isRevoked: Database.Statement<[string, number], { one: number }>;
    revoke: Database.Statement<[string, number]>;
    pruneRevoked: Database.Statement<[number]>;
    failure: Database.Statement<[string], FailureRow>;
    putFailure: Database.Statement<[string, number, number, number, number]>;
    clearFailure: Database.Statement<[string]>;
    pruneFailures: Database.Statement<[number]>;
  };

  private constructor(
    db: Database.Database,
    private readonly hashKey: Buffer,
    private readonly now: () => number,
  ) {
    this.db = db;
    this.stmts = {
      isRevoked: db.prepare('SELECT 1 AS one FROM revoked_sessions WHERE sid_hash = ? AND expires_at > ?'),
      revoke: db.prepare(
        'INSERT INTO revoked_sessions (sid_hash, expires_at) VALUES (?, ?) ON CONFLICT (sid_hash) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)',
      ),
      pruneRevoked: db.prepare('DELETE FROM revoked_sessions WHERE expires_at <= ?'),
      failure: db.prepare('SELECT failures, window_start, locked_until FROM login_failures WHERE key_hash = ?'),
      putFailure: db.prepare(
        'INSERT INTO login_failures (key_hash, failures, window_start, locked_until, expires_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (key_hash) DO UPDATE SET failures = excluded.failures, window_start = excluded.window_start, locked_until = excluded.locked_until, expires_at = excluded.expires_at',
      ),
      clearFailure: db.prepare('DELETE FROM login_failures WHERE key_hash = ?'),
      pruneFailures: db.prepare('DELETE FROM login_failures WHERE expires_at <= ?'),
    };
  }

  /** Opens (creating with mode 0600) the store; `hashKey` keys the HMAC of every stored id and must be the same in every process sharing the file. */
  static open(path: string, hashKey: Buffer, now: () => number = Date.now): AuthStateStore {
    if (hashKey.length < 32) throw new RangeError('the auth state hash key must be at least 32 bytes');
    createPrivateFile(path);
    const db = new Database(path, { timeout: 5000 });
    try {
      const mode = db.pragma('journal_mode = WAL', { simple: true }) as string;
      if (mode !== 'wal') throw new Error(`could not switch ${path} to WAL mode (got ${mode})`);
      // A sign-out must not be lost to a power cut right after it was confirmed.
      db.pragma('synchronous = FULL');
      db.pragma('trusted_schema = OFF');
      db.exec(SCHEMA);
    } catch (err) {
      db.close();
      throw err;
    }
    return new AuthStateStore(db, hashKey, now);
  }

  isRevoked(sid: string): boolean {
    return this.stmts.isRevoked.get(this.hash(`sid/${sid}`), this.now()) !== undefined;
  }

  revoke(sid: string, expiresAt: number): void {
    const now = this.now();
    this.db.transaction(() => {
      this.stmts.revoke.run(this.hash(`sid/${sid}`), expiresAt);
      this.stmts.pruneRevoked.run(now);
    })();
  }

  /** When the key's lock ends (ms since the epoch), or 0 when it is not locked. */
  lockedUntil(key: string): number {
    const row = this.stmts.failure.get(this.hash(`throttle/${key}`));
    return row && row.locked_until > this.now() ? row.locked_until : 0;
  }

  recordFailure(key: string, max: number, windowMs: number): void {
    const h = this.hash(`throttle/${key}`);
    const now = this.now();
    // IMMEDIATE: two processes counting the same key do not both read the old count.
    this.db
      .transaction(() => {
        const row = this.stmts.failure.get(h);
        const fresh = !row || row.window_start + windowMs <= now;
        const failures = fresh ? 1 : row.failures + 1;
        const windowStart = fresh ? now : row.window_start;
        const lockedUntil = failures >= max ? now + windowMs : (row?.locked_until ?? 0);
        this.stmts.putFailure.run(h, failures, windowStart, lockedUntil, Math.max(windowStart + windowMs, lockedUntil));
        this.stmts.pruneFailures.run(now);
      })
      .immediate();
  }

  clearFailures(key: string): void {
    this.stmts.clearFailure.run(this.hash(`throttle/${key}`));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private hash(text: string): string {
    return createHmac('sha256', this.hashKey).update(text).digest('base64url');
  }
}
