/**
 * A small encrypted key-value store for connector state that must not sit in the journal or in Redis:
 * OAuth tokens (refresh tokens are long-lived credentials) and sync cursors. One JSON document, encrypted
 * with AES-256-GCM under a key kept in its own 0600 file, rewritten atomically (temp file + rename + fsync).
 * Tampering with the file is detected by the GCM tag and refused.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { loadOrCreateSecret } from '../journal/keys.ts';

const MAGIC = Buffer.from('AJS1');

export class StateStoreError extends Error {
  readonly code = 'STATE_STORE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StateStoreError';
  }
}

export class EncryptedStore<T extends Record<string, unknown>> {
  private readonly key: Buffer;
  private cache: T | null = null;
  private writing: Promise<void> = Promise.resolve();

  /** `path`: the encrypted document; the key lives in `keyDir/<keyFile>` (created 0600 on first use). */
  constructor(private readonly path: string, keyDir: string, keyFile: string, private readonly empty: () => T) {
    this.key = loadOrCreateSecret(keyDir, keyFile);
  }

  read(): T {
    if (this.cache) return this.cache;
    if (!existsSync(this.path)) return (this.cache = this.empty());
    const blob = readFileSync(this.path);
    if (blob.length < 4 + 12 + 16 || !blob.subarray(0, 4).equals(MAGIC)) throw new StateStoreError(`${this.path} is not an activity-journal state file`);
    const iv = blob.subarray(4, 16);
    const tag = blob.subarray(16, 32);
    const decipher = createDecipheriv('aes-256-gcm', this.key, iv);
    decipher.setAuthTag(tag);
    try {
      const plain = Buffer.concat([decipher.update(blob.subarray(32)), decipher.final()]);
      this.cache = JSON.parse(plain.toString('utf8')) as T;
      return this.cache;
    } catch (err) {
      throw new StateStoreError(`${this.path} cannot be decrypted: it was altered, or the key in its key file is not the one it was written with`, { cause: err });
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

  private persist(doc: T): void {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(JSON.stringify(doc), 'utf8'), cipher.final()]);
    const blob = Buffer.concat([MAGIC, iv, cipher.getAuthTag(), body]);
    const tmp = `${this.path}.${process.pid}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, blob);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    const dirFd = openSync(dirname(this.path), 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }
}
