/**
 * The key store of crypto-shredding: one AES-256 key per data subject (a contact address), kept apart from the
 * journal in its own SQLite file (0600), each key wrapped under the master key. Destroying a subject's keys is
 * what erases them: the journal keeps the ciphertext, which nobody can open any more.
 *
 * Every creation and destruction is mirrored to a backup file (KEY_STORE_BACKUP) before it counts: a key is
 * written to the backup first and only then to the store, so no entry is ever sealed under a key the backup
 * lacks; a destruction is applied to both, and fails loudly if the backup cannot follow (an erasure that a
 * backup would undo is not an erasure). The backup is a live mirror, not a point-in-time copy.
 *
 * The store holds no address: subjects are named by a keyed hash (HMAC-SHA256 under a random key that is itself
 * wrapped under the master key), so neither the store nor the journal gives a dictionary attack anything to test.
 */
import Database from 'better-sqlite3';
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { KeyStoreError } from './errors/key-store.error.ts';
import type { MasterKey } from './master-key.ts';

export type KeyState =
  | { readonly status: 'active'; readonly key: Buffer; readonly subject: string }
  | { readonly status: 'destroyed'; readonly destroyedAt: string; readonly subject: string }
  | { readonly status: 'missing' };

export interface SubjectKey {
  readonly subject: string;
  readonly keyId: string;
  readonly key: Buffer;
}

export interface KeyRecord {
  readonly keyId: string;
  readonly subject: string;
  readonly createdAt: string;
  readonly destroyedAt: string | null;
}

export interface KeyStoreFingerprint {
  readonly keys: number;
  readonly active: number;
  readonly destroyed: number;
  /** SHA-256 over the sorted "keyId:state" lines: two stores with the same keys in the same states match. */
  readonly digest: string;
}

export interface KeyStoreOptions {
  readonly path: string;
  readonly backupPath: string;
  readonly masterKey: MasterKey;
  /** Create a new, empty store when neither the store nor its backup exists. */
  readonly create: boolean;
  /**
   * Open for reading and checking only (`verify`, `status`, `keys status`, readers): nothing is created,
   * initialised, re-created or changed, not even file modes; a missing backup is reported (`backupMissing`)
   * rather than re-created from the store. Keys cannot be created or destroyed through such a store.
   */
  readonly readOnly?: boolean;
  readonly now?: () => Date;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS keys (
  key_id TEXT PRIMARY KEY,
  subject TEXT NOT NULL,
  wrapped BLOB,
  created_at TEXT NOT NULL,
  destroyed_at TEXT,
  CHECK ((wrapped IS NULL) = (destroyed_at IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS keys_by_subject ON keys (subject, created_at);
`;

const CHECK_CONTEXT = 'key-store:check';
const HASH_KEY_CONTEXT = 'key-store:subject-hash-key';
/** The master-key derivation label of the key that authenticates privacy.erased records. */
const ERASURE_PURPOSE = 'privacy-erased/v1';

function openReadOnlyDb(path: string): Database.Database {
  return new Database(path, { readonly: true, fileMustExist: true, timeout: 5000 });
}

function openDb(path: string): Database.Database {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  if (!existsSync(path)) closeSync(openSync(path, 'wx', 0o600));
  const db = new Database(path, { timeout: 5000 });
  // No WAL: a destroyed key must not linger in a write-ahead log; secure_delete zeroes the freed bytes.
  db.pragma('journal_mode = DELETE');
  db.pragma('synchronous = FULL');
  db.pragma('secure_delete = ON');
  db.pragma('trusted_schema = OFF');
  return db;
}

/** Lower-case email, or an E.164-style phone number (+ and digits only): one subject per contact address. */
export function normaliseAddress(address: string): string {
  const a = address.trim();
  if (a.includes('@')) return a.toLowerCase();
  if (/^\+?[\d\s().-]+$/.test(a)) return (a.startsWith('+') ? '+' : '') + a.replace(/\D/g, '');
  return a.toLowerCase();
}

export class SubjectKeyStore {
  /** True when this open found the backup missing and re-created it from the store (reported by checks). */
  backupRecreated = false;
  /** True when the backup is missing and this store was opened read-only, so it was left missing (reported by checks). */
  backupMissing = false;
  /** Opened read-only (KeyStoreOptions.readOnly): no key is created or destroyed through it. */
  readOnly = false;
  private readonly hashKey: Buffer;
  private readonly now: () => Date;
  // Prepared once: every sealed append and every opened read looks keys up.
  private readonly activeStmt: Database.Statement<[string], { key_id: string; wrapped: Buffer }>;
  private readonly stateStmt: Database.Statement<[string], { subject: string; wrapped: Buffer | null; destroyed_at: string | null }>;
  // Prepared once, like the look-ups: a new subject's key is written on the sealing path.
  private readonly insertStmt: Database.Statement<[string, string, Buffer, string]>;
  /** Prepared once: `db.pragma()` prepares anew on every call, and batch() asks it once per append. */
  private readonly dataVersionStmt: Database.Statement<[], number>;
  /** Subject hashes of normalised addresses (the hash key never changes): every sealed entry hashes its participants. */
  private readonly hashes = new Map<string, string>();
  private readonly backupInsertStmt: Database.Statement<[string, string, Buffer, string]> | null;
  /** Unwrapped keys by id: a key id's bytes never change; whether it is still there is asked every time. */
  private readonly unwrapped = new Map<string, Buffer>();
  /**
   * Subjects' active keys as batch() last found or created them; valid while no other connection has committed
   * to the store (SQLite's data_version, asked at the start of every batch) and this one destroyed nothing.
   */
  private readonly activeCache = new Map<string, SubjectKey>();
  private cacheVersion: number | null = null;
  /** Inside batch(): takes the store's write lock on the first look-up the cache cannot answer. */
  private beginForBatch: (() => void) | null = null;

  private constructor(
    private readonly db: Database.Database,
    /** Null only in a read-only store whose backup is missing. */
    private readonly backup: Database.Database | null,
    private readonly masterKey: MasterKey,
    readonly path: string,
    readonly backupPath: string,
    now: (() => Date) | undefined,
  ) {
    this.now = now ?? (() => new Date());
    this.hashKey = masterKey.open(meta(db, 'subject_hash_key', path), HASH_KEY_CONTEXT, `the subject-hash key in ${path}`);
    this.activeStmt = db.prepare(
      'SELECT key_id, wrapped FROM keys WHERE subject = ? AND destroyed_at IS NULL ORDER BY created_at DESC, key_id LIMIT 1',
    );
    this.stateStmt = db.prepare('SELECT subject, wrapped, destroyed_at FROM keys WHERE key_id = ?');
    const insert = 'INSERT INTO keys (key_id, subject, wrapped, created_at) VALUES (?, ?, ?, ?)';
    this.insertStmt = db.prepare(insert);
    this.dataVersionStmt = db.prepare<[], number>('PRAGMA data_version').pluck();
    this.backupInsertStmt = backup?.prepare(insert) ?? null;
  }

  /** True when a store (or its backup) exists at these paths. */
  static exists(path: string, backupPath: string): { store: boolean; backup: boolean } {
    return { store: existsSync(path), backup: existsSync(backupPath) };
  }

  /**
   * Opens the store. A missing store is created only when its backup is missing too (and `create`); a missing
   * store with a backup is an error that names `activity-journal keys restore`. A missing backup is rebuilt
   * from the store. Throws MasterKeyError WRONG_KEY when the store was written under another master key.
   */
  static open(o: KeyStoreOptions): SubjectKeyStore {
    const there = SubjectKeyStore.exists(o.path, o.backupPath);
    if (!there.store && there.backup) {
      throw new KeyStoreError(
        'MISSING',
        `the key store ${o.path} is missing but its backup ${o.backupPath} exists: run \`activity-journal keys restore\``,
      );
    }
    if (!there.store && (!o.create || o.readOnly === true)) throw new KeyStoreError('MISSING', `there is no key store at ${o.path}`);
    if (o.readOnly === true) return SubjectKeyStore.openReadOnly(o, there.backup);
    const db = openDb(o.path);
    let backup: Database.Database | null = null;
    try {
      db.exec(SCHEMA);
      if (!db.prepare(`SELECT 1 FROM meta WHERE name = 'check'`).get()) {
        if (there.store && (db.prepare('SELECT count(*) AS n FROM keys').get() as { n: number }).n > 0)
          throw new KeyStoreError('NOT_A_KEY_STORE', `${o.path} holds keys but no master-key check`);
        const insert = db.prepare('INSERT INTO meta (name, value) VALUES (?, ?)');
        db.transaction(() => {
          insert.run('check', o.masterKey.seal(Buffer.from('activity-journal key store'), CHECK_CONTEXT));
          insert.run('store_id', Buffer.from(randomBytes(16).toString('hex')));
          insert.run('subject_hash_key', o.masterKey.seal(randomBytes(32), HASH_KEY_CONTEXT));
        })();
      }
      // Refuse a wrong master key before anything else reads or writes.
      o.masterKey.open(meta(db, 'check', o.path), CHECK_CONTEXT, `the key store ${o.path}`);
      chmodSync(o.path, 0o600);
      const backupWasMissing = there.store && !existsSync(o.backupPath);
      if (!existsSync(o.backupPath)) copyDatabase(db, o.backupPath);
      backup = openDb(o.backupPath);
      backup.exec(SCHEMA);
      if (!meta(backup, 'store_id', o.backupPath).equals(meta(db, 'store_id', o.path))) {
        throw new KeyStoreError(
          'NOT_A_KEY_STORE',
          `${o.backupPath} is the backup of another key store (store ids differ); move it away or point KEY_STORE_BACKUP elsewhere`,
        );
      }
      const store = new SubjectKeyStore(db, backup, o.masterKey, o.path, o.backupPath, o.now);
      store.backupRecreated = backupWasMissing;
      return store;
    } catch (err) {
      backup?.close();
      db.close();
      throw err;
    }
  }

  /** The read-only open (see KeyStoreOptions.readOnly): the same checks as open(), and no write of any kind. */
  private static openReadOnly(o: KeyStoreOptions, backupThere: boolean): SubjectKeyStore {
    const db = openReadOnlyDb(o.path);
    let backup: Database.Database | null = null;
    try {
      const hasMeta = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'`).get() !== undefined;
      if (!hasMeta) throw new KeyStoreError('NOT_A_KEY_STORE', `${o.path} is not an activity-journal key store (no meta table)`);
      o.masterKey.open(meta(db, 'check', o.path), CHECK_CONTEXT, `the key store ${o.path}`);
      if (backupThere) {
        backup = openReadOnlyDb(o.backupPath);
        if (!meta(backup, 'store_id', o.backupPath).equals(meta(db, 'store_id', o.path))) {
          throw new KeyStoreError(
            'NOT_A_KEY_STORE',
            `${o.backupPath} is the backup of another key store (store ids differ); move it away or point KEY_STORE_BACKUP elsewhere`,
          );
        }
      }
      const store = new SubjectKeyStore(db, backup, o.masterKey, o.path, o.backupPath, o.now);
      store.backupMissing = !backupThere;
      store.readOnly = true;
      return store;
    } catch (err) {
      backup?.close();
      db.close();
      throw err;
    }
  }

  /**
   * Replaces the store with its backup (after checking the backup opens under the master key). The caller then
   * re-applies the erasures the journal records (see privacy.ts), so a stale backup cannot bring anyone back.
   */
  static restoreFromBackup(o: Omit<KeyStoreOptions, 'create'>): SubjectKeyStore {
    if (!existsSync(o.backupPath)) throw new KeyStoreError('RESTORE_REFUSED', `there is no key store backup at ${o.backupPath}`);
    const src = openDb(o.backupPath);
    try {
      o.masterKey.open(meta(src, 'check', o.backupPath), CHECK_CONTEXT, `the key store backup ${o.backupPath}`);
      if (existsSync(o.path)) renameSync(o.path, `${o.path}.replaced-${Date.now()}`);
      copyDatabase(src, o.path);
    } finally {
      src.close();
    }
    return SubjectKeyStore.open({ ...o, create: false });
  }

  /**
   * The authentication of a privacy.erased record of `keyIds` for `subjectHash`: an HMAC under a key derived from
   * the master key, so only a holder of the key store's master key (`forget`) can make one; the journal's append
   * credential, which the web server and workers hold, cannot.
   */
  erasureTag(subjectHash: string, keyIds: readonly string[]): string {
    const mac = createHmac('sha256', this.masterKey.derive(ERASURE_PURPOSE));
    mac.update(`${subjectHash}\n`);
    for (const id of [...keyIds].sort()) mac.update(`${id}\n`);
    return `hmac-sha256:${mac.digest('hex')}`;
  }

  /** Whether a privacy.erased payload carries this store's authentication of its subject hash and key ids. */
  erasureAuthentic(payload: { subjectHash: string; keyIds: readonly string[]; authentication?: unknown }): boolean {
    if (typeof payload.authentication !== 'string') return false;
    const expected = Buffer.from(this.erasureTag(payload.subjectHash, payload.keyIds));
    const given = Buffer.from(payload.authentication);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /** The keyed hash that names a subject (in the store, in envelopes and in privacy.erased). */
  subjectHash(address: string): string {
    const normal = normaliseAddress(address);
    let hash = this.hashes.get(normal);
    if (hash === undefined) {
      hash = createHmac('sha256', this.hashKey).update(normal, 'utf8').digest('hex');
      remember(this.hashes, normal, hash);
    }
    return hash;
  }

  /** The subject's current key, created (backup first) when it has none or all of its keys were destroyed. */
  activeKey(subject: string): SubjectKey {
    if (this.beginForBatch === null) return this.findOrCreateKey(subject);
    const known = this.activeCache.get(subject);
    if (known) return known;
    this.beginForBatch();
    const found = this.findOrCreateKey(subject);
    remember(this.activeCache, subject, found);
    return found;
  }

  private findOrCreateKey(subject: string): SubjectKey {
    const row = this.activeStmt.get(subject);
    if (row) return { subject, keyId: row.key_id, key: this.unwrap(row.key_id, row.wrapped) };
    if (this.readOnly)
      throw new KeyStoreError('READ_ONLY', `the key store ${this.path} was opened read-only: no subject key is created through it`);
    const keyId = randomBytes(12).toString('hex');
    const key = randomBytes(32);
    const wrapped = this.masterKey.seal(key, `subject-key:${keyId}`);
    const createdAt = this.now().toISOString();
    try {
      if (this.backupInsertStmt === null) throw new Error(`there is no backup at ${this.backupPath}`);
      this.backupInsertStmt.run(keyId, subject, wrapped, createdAt);
    } catch (err) {
      throw new KeyStoreError(
        'BACKUP_FAILED',
        `a new subject key could not be written to the backup ${this.backupPath}; nothing was sealed under it`,
        { cause: err },
      );
    }
    this.insertStmt.run(keyId, subject, wrapped, createdAt);
    return { subject, keyId, key };
  }

  /**
   * Runs `f` (the sealing of one append batch) with the subjects' keys cached across batches: a batch whose
   * subjects are all known costs one check that no other process changed the store (a `forget` destroys keys in
   * its own process; SQLite's data_version says so) and no key-store transaction. The first subject the cache
   * cannot answer takes the store's write lock (BEGIN IMMEDIATE: a concurrent writer waits its turn rather than
   * meeting us half-way, where a read lock upgrading to a write lock can deadlock); the keys the batch creates
   * (each already in the backup: backup first, as always) are committed together when `f` returns, before any
   * entry sealed under them can be, and none of them when `f` throws.
   */
  batch<T>(f: () => T): T {
    if (this.beginForBatch !== null || this.db.inTransaction) return f();
    const version = this.dataVersionStmt.get() as number;
    if (version !== this.cacheVersion) {
      this.activeCache.clear();
      this.cacheVersion = version;
    }
    let began = false;
    this.beginForBatch = () => {
      if (began) return;
      this.db.exec('BEGIN IMMEDIATE');
      began = true;
    };
    try {
      const result = f();
      if (began) this.db.exec('COMMIT');
      return result;
    } catch (err) {
      if (began && this.db.inTransaction) this.db.exec('ROLLBACK');
      this.activeCache.clear(); // it may hold keys the rollback took back
      throw err;
    } finally {
      this.beginForBatch = null;
    }
  }

  /** What the store knows of a key id: its key, when it was destroyed, or nothing (missing: a loss). */
  state(keyId: string): KeyState {
    const row = this.stateStmt.get(keyId);
    if (!row) return { status: 'missing' };
    if (row.wrapped === null || row.destroyed_at !== null)
      return { status: 'destroyed', destroyedAt: row.destroyed_at ?? '', subject: row.subject };
    return { status: 'active', key: this.unwrap(keyId, row.wrapped), subject: row.subject };
  }

  keysOf(subject: string): KeyRecord[] {
    return (
      this.db
        .prepare('SELECT key_id, subject, created_at, destroyed_at FROM keys WHERE subject = ? ORDER BY created_at, key_id')
        .all(subject) as { key_id: string; subject: string; created_at: string; destroyed_at: string | null }[]
    ).map(toRecord);
  }

  /**
   * Destroys the given keys in the store and in the backup (the wrapped bytes are overwritten: secure_delete).
   * Idempotent; throws BACKUP_FAILED when the backup could not follow, so the erasure is re-run, not trusted.
   */
  destroy(keyIds: readonly string[], at: Date = this.now()): void {
    const sql = 'UPDATE keys SET wrapped = NULL, destroyed_at = ? WHERE key_id = ? AND destroyed_at IS NULL';
    const when = at.toISOString();
    if (this.readOnly)
      throw new KeyStoreError('READ_ONLY', `the key store ${this.path} was opened read-only: no key is destroyed through it`);
    for (const id of keyIds) this.unwrapped.delete(id);
    this.activeCache.clear();
    this.db.transaction(() => {
      for (const id of keyIds) this.db.prepare(sql).run(when, id);
    })();
    try {
      const backup = this.backup;
      if (backup === null) throw new Error(`there is no backup at ${this.backupPath}`);
      backup.transaction(() => {
        for (const id of keyIds) backup.prepare(sql).run(when, id);
      })();
    } catch (err) {
      throw new KeyStoreError(
        'BACKUP_FAILED',
        `the keys were destroyed in ${this.path} but not in the backup ${this.backupPath}: re-run the erasure`,
        { cause: err },
      );
    }
  }

  fingerprint(): KeyStoreFingerprint {
    return fingerprintOf(this.db);
  }

  /**
   * Key by key, store against backup. Keys only the backup holds are what a store write that failed after its
   * backup write leaves (the backup goes first): harmless unless the journal references them (then they are
   * "missing" from the store, and `keys restore` brings them back). Keys only the store holds, or held in
   * different states, are what a backup that fell behind looks like. Null when there is no backup to compare
   * (a read-only store whose backup is missing: `backupMissing`).
   */
  compareWithBackup(): { storeOnly: string[]; backupOnly: string[]; differing: string[] } | null {
    if (this.backup === null) return null;
    const read = (db: Database.Database): Map<string, boolean> =>
      new Map(
        (db.prepare('SELECT key_id, destroyed_at FROM keys').all() as { key_id: string; destroyed_at: string | null }[]).map((r) => [
          r.key_id,
          r.destroyed_at === null,
        ]),
      );
    const store = read(this.db);
    const backup = read(this.backup);
    const storeOnly = [...store.keys()].filter((id) => !backup.has(id));
    const backupOnly = [...backup.keys()].filter((id) => !store.has(id));
    const differing = [...store.entries()].filter(([id, active]) => backup.has(id) && backup.get(id) !== active).map(([id]) => id);
    return { storeOnly, backupOnly, differing };
  }

  close(): void {
    this.backup?.close();
    this.db.close();
  }

  private unwrap(keyId: string, wrapped: Buffer): Buffer {
    let key = this.unwrapped.get(keyId);
    if (key === undefined) {
      key = this.masterKey.open(wrapped, `subject-key:${keyId}`, `subject key ${keyId}`);
      remember(this.unwrapped, keyId, key);
    }
    return key;
  }
}

/** How many subjects' keys the caches keep: memory stays bounded however many contacts the journal meets. */
const CACHE_LIMIT = 4096;

/** Puts `value` in a cache bounded at CACHE_LIMIT, dropping the oldest entry (Map keeps insertion order). */
function remember<K, V>(cache: Map<K, V>, key: K, value: V): void {
  cache.set(key, value);
  if (cache.size > CACHE_LIMIT) {
    const oldest = cache.keys().next();
    if (!oldest.done) cache.delete(oldest.value);
  }
}

function meta(db: Database.Database, name: string, path: string): Buffer {
  const row = db.prepare('SELECT value FROM meta WHERE name = ?').get(name) as { value: Buffer } | undefined;
  if (!row) throw new KeyStoreError('NOT_A_KEY_STORE', `${path} is not an activity-journal key store (no ${name})`);
  return Buffer.from(row.value);
}

function toRecord(r: { key_id: string; subject: string; created_at: string; destroyed_at: string | null }): KeyRecord {
  return { keyId: r.key_id, subject: r.subject, createdAt: r.created_at, destroyedAt: r.destroyed_at };
}

function fingerprintOf(db: Database.Database): KeyStoreFingerprint {
  const rows = db.prepare('SELECT key_id, destroyed_at FROM keys ORDER BY key_id').all() as {
    key_id: string;
    destroyed_at: string | null;
  }[];
  const h = createHash('sha256');
  let destroyed = 0;
  for (const r of rows) {
    if (r.destroyed_at !== null) destroyed++;
    h.update(`${r.key_id}:${r.destroyed_at === null ? 'active' : 'destroyed'}\n`);
  }
  return { keys: rows.length, active: rows.length - destroyed, destroyed, digest: h.digest('hex') };
}

/** A consistent copy (VACUUM INTO a temp file, fsync, rename), mode 0600. */
function copyDatabase(db: Database.Database, target: string): void {
  mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
  const tmp = `${target}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  db.prepare('VACUUM INTO ?').run(tmp);
  chmodSync(tmp, 0o600);
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, target);
}
