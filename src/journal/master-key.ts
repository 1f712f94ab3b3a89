/**
 * The one module that does symmetric encryption at rest. Everything secret that is stored (OAuth refresh
 * tokens and connector state, the per-subject keys of crypto-shredding) is sealed with AES-256-GCM under one
 * master key, which comes from JOURNAL_MASTER_KEY (base64, 32 bytes) or from a 0600 file.
 *
 * A sealed blob names a short check value of the key it was sealed with, so "wrong master key" is told apart
 * from "the file was altered" and reported as such, without trying to decrypt anything.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, basename } from 'node:path';
import { MasterKeyError } from './errors/master-key.error.ts';
import { loadOrCreateSecret } from './keys.ts';

const MAGIC = Buffer.from('AJM1');
const IV_BYTES = 12;
const TAG_BYTES = 16;
const CHECK_BYTES = 4;
const HEADER = MAGIC.length + CHECK_BYTES + IV_BYTES + TAG_BYTES;

/** AES-256-GCM encryption with a caller-chosen 96-bit IV (callers guarantee uniqueness per key). */
export function aesGcmEncrypt(key: Uint8Array, iv: Uint8Array, plain: Uint8Array, aad: Uint8Array): { ct: Buffer; tag: Buffer } {
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const ct = Buffer.concat([cipher.update(plain), cipher.final()]);
  return { ct, tag: cipher.getAuthTag() };
}

/** AES-256-GCM decryption; returns null when the tag does not authenticate (wrong key, or altered data). */
export function aesGcmDecrypt(key: Uint8Array, iv: Uint8Array, ct: Uint8Array, tag: Uint8Array, aad: Uint8Array): Buffer | null {
  if (tag.length !== TAG_BYTES || iv.length !== IV_BYTES) return null;
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(ct), decipher.final()]);
  } catch {
    return null;
  }
}

export class MasterKey {
  /** First bytes of HMAC(key, "key-check"): names the key without revealing it. */
  readonly check: Buffer;
  private readonly key: Buffer;

  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new MasterKeyError('MALFORMED', `a master key has 32 bytes, got ${key.length}`);
    this.key = Buffer.from(key);
    this.check = createHmac('sha256', this.key).update('activity-journal/master-key-check').digest().subarray(0, CHECK_BYTES);
  }

  /** Hex of the check value, for messages ("sealed under key 1a2b3c4d"). */
  get id(): string {
    return this.check.toString('hex');
  }

  /** Seals `plain`; `context` (e.g. "state:gmail-inboxes") is authenticated, so a blob cannot be moved to another use. */
  seal(plain: Uint8Array, context: string): Buffer {
    const iv = randomBytes(IV_BYTES);
    const { ct, tag } = aesGcmEncrypt(this.key, iv, plain, Buffer.from(context, 'utf8'));
    return Buffer.concat([MAGIC, this.check, iv, tag, ct]);
  }

  /** True when `blob` is in the sealed format (whatever key sealed it). */
  static isSealed(blob: Uint8Array): boolean {
    return blob.length >= HEADER && Buffer.from(blob.subarray(0, MAGIC.length)).equals(MAGIC);
  }

  /** Opens a sealed blob; throws MasterKeyError WRONG_KEY (sealed under another key) or TAMPERED (altered). */
  open(blob: Uint8Array, context: string, what: string): Buffer {
    if (!MasterKey.isSealed(blob)) throw new MasterKeyError('TAMPERED', `${what} is not in the sealed format`);
    const b = Buffer.from(blob);
    const check = b.subarray(MAGIC.length, MAGIC.length + CHECK_BYTES);
    if (!check.equals(this.check)) {
      throw new MasterKeyError(
        'WRONG_KEY',
        `${what} was sealed under master key ${check.toString('hex')}, but the configured master key is ${this.id}: set JOURNAL_MASTER_KEY or JOURNAL_MASTER_KEY_FILE to the key it was written with`,
      );
    }
    const iv = b.subarray(MAGIC.length + CHECK_BYTES, MAGIC.length + CHECK_BYTES + IV_BYTES);
    const tag = b.subarray(MAGIC.length + CHECK_BYTES + IV_BYTES, HEADER);
    const plain = aesGcmDecrypt(this.key, iv, b.subarray(HEADER), tag, Buffer.from(context, 'utf8'));
    if (plain === null) throw new MasterKeyError('TAMPERED', `${what} does not authenticate under the master key: it was altered`);
    return plain;
  }

  /** A sub-key for one purpose, so the master key itself never keys two different constructions. */
  derive(purpose: string): Buffer {
    return createHmac('sha256', this.key).update(`activity-journal/derive/${purpose}`).digest();
  }
}

export interface MasterKeySource {
  /** JOURNAL_MASTER_KEY, base64 of 32 bytes. */
  readonly masterKey?: string | undefined;
  readonly masterKeyFile: string;
  /** The file was named explicitly: missing is an error rather than created. */
  readonly masterKeyFileGiven?: boolean;
}

export interface LoadedMasterKey {
  readonly key: MasterKey;
  readonly source: 'env' | 'file' | 'created';
  /** The file it came from (or was created as); null for the environment. */
  readonly file: string | null;
}

/**
 * The master key from the environment, else from its file. When neither exists and `create` is set (npm
 * start, first use), a random key is written to the default file (0600, exclusive create) and reported as
 * `created` so the caller can say so. A file named by JOURNAL_MASTER_KEY_FILE is never invented.
 */
export function loadMasterKey(src: MasterKeySource, options: { create: boolean }): LoadedMasterKey {
  if (src.masterKey !== undefined) {
    const bytes = Buffer.from(src.masterKey, 'base64');
    if (bytes.length !== 32 || bytes.toString('base64') !== src.masterKey)
      throw new MasterKeyError('MALFORMED', 'JOURNAL_MASTER_KEY must be 32 random bytes in base64 (openssl rand -base64 32)');
    return { key: new MasterKey(bytes), source: 'env', file: null };
  }
  const file = src.masterKeyFile;
  const exists = existsSync(file);
  if (!exists && (src.masterKeyFileGiven === true || !options.create)) {
    throw new MasterKeyError(
      'MISSING',
      `no master key: JOURNAL_MASTER_KEY is not set and ${file} does not exist${src.masterKeyFileGiven === true ? ' (JOURNAL_MASTER_KEY_FILE names it)' : '; `npm start` creates one'}`,
    );
  }
  if (exists && statSync(file).size !== 32) {
    // A file holding the base64 text is accepted too: that is what `openssl rand -base64 32 > file` writes.
    const text = readFileSync(file, 'utf8').trim();
    const bytes = Buffer.from(text, 'base64');
    if (bytes.length !== 32 || bytes.toString('base64') !== text)
      throw new MasterKeyError('MALFORMED', `${file} must hold 32 raw bytes or their base64 text`);
    loadOrCreateSecretChecked(file); // the same permission checks as every other key file
    return { key: new MasterKey(bytes), source: 'file', file };
  }
  const key = loadOrCreateSecret(dirname(file), basename(file));
  return { key: new MasterKey(key), source: exists ? 'file' : 'created', file };
}

function loadOrCreateSecretChecked(file: string): void {
  const mode = statSync(file).mode & 0o077;
  if (process.platform !== 'win32' && mode !== 0)
    throw new MasterKeyError(
      'MALFORMED',
      `${file} is readable by group or others (mode ${(statSync(file).mode & 0o777).toString(8)}); chmod 600 it`,
    );
}
