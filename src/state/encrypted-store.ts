/**
 * A small encrypted key-value store for connector state that must not sit in the journal or in Redis:
 * OAuth tokens (refresh tokens are long-lived credentials) and sync cursors. One JSON document, sealed under
 * the master key (src/journal/master-key.ts, the one module that encrypts at rest), rewritten atomically
 * (temp file + rename + fsync). Tampering is detected by the GCM tag and refused; a file sealed under another
 * master key is refused with that said.
 *
 * Files written before the master key existed were encrypted under `<stateDir>/state-store.key`: they are read
 * with that legacy key once and rewritten under the master key straight away.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { aesGcmDecrypt, MasterKey } from '../journal/master-key.ts';
import { MasterKeyError } from '../journal/errors/master-key.error.ts';
import { loadOrCreateSecret } from '../journal/keys.ts';
import { StateStoreError } from './errors/state-store.error.ts';

const LEGACY_MAGIC = Buffer.from('AJS1');
const LEGACY_KEY_FILE = 'state-store.key';

export class EncryptedStore<T extends Record<string, unknown>> {
  private cache: T | null = null;
  private writing: Promise<void> = Promise.resolve();
  private readonly context: string;

  /**
   * `path`: the sealed document. `legacyKeyDir`: where a pre-master-key `state-store.key` may be (read only,
   * for files written by older versions).
   */
  constructor(
    private readonly path: string,
    private readonly masterKey: MasterKey,
    private readonly empty: () => T,
    private readonly legacyKeyDir?: string,
  ) {
    this.context = `state:${basename(path)}`;
  }

  read(): T {
    if (this.cache) return this.cache;
    if (!existsSync(this.path)) return (this.cache = this.empty());
    const blob = readFileSync(this.path);
    if (blob.subarray(0, 4).equals(LEGACY_MAGIC)) return (this.cache = this.readLegacy(blob));
    if (!MasterKey.isSealed(blob)) throw new StateStoreError(`${this.path} is not an activity-journal state file`);
    try {
      this.cache = JSON.parse(this.masterKey.open(blob, this.context, this.path).toString('utf8')) as T;
      return this.cache;
    } catch (err) {
      if (err instanceof MasterKeyError && err.reason === 'WRONG_KEY') throw new StateStoreError(err.message, { cause: err });
      throw new StateStoreError(`${this.path} cannot be decrypted: it was altered`, { cause: err });
    }
  }

  /** Applies `change` to the document and persists it; updates are serialised. */
  update(change: (doc: T) => void): Promise<void> {
    const next = this.writing.then(() => {
      const doc = structuredClone(this.read());
      change(doc);
      this.persist(doc);
      this.cache = doc;
    });
    this.writing = next.catch(() => undefined);
    return next;
  }

  /** A file of the previous format (own key file): decrypted once, then re-sealed under the master key. */
  private readLegacy(blob: Buffer): T {
    const keyFile = this.legacyKeyDir ? join(this.legacyKeyDir, LEGACY_KEY_FILE) : null;
    if (keyFile === null || !existsSync(keyFile))
      throw new StateStoreError(`${this.path} was written by an older version under ${LEGACY_KEY_FILE}, which is not there`);
    const key = loadOrCreateSecret(dirname(keyFile), LEGACY_KEY_FILE);
    const plain =
      blob.length >= 32 ? aesGcmDecrypt(key, blob.subarray(4, 16), blob.subarray(32), blob.subarray(16, 32), Buffer.alloc(0)) : null;
    if (plain === null)
      throw new StateStoreError(
        `${this.path} cannot be decrypted: it was altered, or the key in its key file is not the one it was written with`,
      );
    const doc = JSON.parse(plain.toString('utf8')) as T;
    this.persist(doc);
    return doc;
  }

  /**
   * Writes the document atomically. A failed write (disk full, read-only file system) leaves the previous version
   * in place and throws a StateStoreError naming the file and the system's reason, never the content.
   */
  private persist(doc: T): void {
    const blob = this.masterKey.seal(Buffer.from(JSON.stringify(doc), 'utf8'), this.context);
    const tmp = `${this.path}.${process.pid}.tmp`;
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, blob);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.path);
    } catch (err) {
      rmSync(tmp, { force: true });
      const code = (err as { code?: unknown }).code;
      const reason = code === 'ENOSPC' ? 'no space left on the device' : typeof code === 'string' ? code : 'write failed';
      throw new StateStoreError(`${this.path} could not be saved (${reason}); the previous version is kept`, { cause: err });
    }
    const dirFd = openSync(dirname(this.path), 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }
}
