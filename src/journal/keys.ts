import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { KeyFormatError } from './errors/key-format.error.ts';
import { KeyPermissionError } from './errors/key-permission.error.ts';

/** An Ed25519 checkpoint signing key with its C2SP note identity. */
export interface SigningKey {
  readonly name: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** First 4 bytes of SHA-256(name || "\n" || 0x01 || public key). */
  readonly keyId: Uint8Array;
  /** C2SP verifier key: `<name>+<hex key id>+<base64(0x01 || public key)>`. */
  readonly verifierKey: string;
}

/** A public key able to check C2SP note signatures made by one named key. */
export interface Verifier {
  readonly name: string;
  readonly keyId: Uint8Array;
  readonly publicKey: KeyObject;
  /** Canonical C2SP verifier key (lower-case hex key id). */
  readonly verifierKey: string;
}

const KEY_FILE = 'checkpoint-ed25519.pem';
const SECRET_BYTES = 32;
/** C2SP signed-note signature type of Ed25519. */
const ALG_ED25519 = 0x01;
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const ED25519_PUBLIC_KEY_BYTES = 32;
// POSIX permission bits mean nothing on Windows; there the OS ACLs are the only guard.
const CHECK_MODES = process.platform !== 'win32';

/** True when `name` is a valid C2SP note key name: non-empty, well-formed, no Unicode space, no '+', no control character. */
export function isValidKeyName(name: string): boolean {
  return (
    name.length > 0 &&
    !name.includes('+') &&
    // A lone surrogate cannot be encoded as UTF-8, so the name would change on the way to disk.
    !/\p{Surrogate}/u.test(name) &&
    !/\p{White_Space}/u.test(name) &&
    // The name is copied into signature lines, where control characters make the whole note malformed.
    !/\p{Cc}/u.test(name)
  );
}

/** Decodes standard padded base64 only when `text` is its canonical encoding; null otherwise. */
export function decodeCanonicalBase64(text: string): Buffer | null {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  const bytes = Buffer.from(text, 'base64');
  // Node's decoder is lenient (stray padding, non-zero trailing bits); re-encoding rejects every non-canonical form.
  return bytes.toString('base64') === text ? bytes : null;
}

/** Raw 32-byte Ed25519 public key of `publicKey`; throws KeyFormatError for any other key. */
export function rawEd25519PublicKey(publicKey: KeyObject): Buffer {
  if (publicKey.type !== 'public' || publicKey.asymmetricKeyType !== 'ed25519') {
    throw new KeyFormatError(`expected an Ed25519 public key, got a ${publicKey.type} ${publicKey.asymmetricKeyType ?? 'unknown'} key`);
  }
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(der.length - ED25519_PUBLIC_KEY_BYTES));
}

function keyIdFor(name: string, rawPublicKey: Uint8Array): Uint8Array {
  const digest = createHash('sha256').update(name, 'utf8').update(Uint8Array.of(0x0a, ALG_ED25519)).update(rawPublicKey).digest();
  return new Uint8Array(digest.subarray(0, 4));
}

function assertKeyName(name: string): void {
  if (!isValidKeyName(name)) {
    throw new KeyFormatError(
      `invalid note key name ${JSON.stringify(name)}: it must be non-empty and contain no '+', whitespace or control characters`,
    );
  }
}

/** C2SP signed-note verifier key `<name>+<hex key id>+<base64(0x01 || public key)>` of an Ed25519 public key. */
export function verifierKeyFor(name: string, publicKey: KeyObject): string {
  assertKeyName(name);
  const raw = rawEd25519PublicKey(publicKey);
  const keyId = Buffer.from(keyIdFor(name, raw)).toString('hex');
  return `${name}+${keyId}+${Buffer.concat([Uint8Array.of(ALG_ED25519), raw]).toString('base64')}`;
}

/** Parses a C2SP Ed25519 verifier key, checking name rules, key id and key length; throws KeyFormatError. */
export function parseVerifierKey(vkey: string): Verifier {
  // The name holds no '+', so the first two '+' delimit name and key id; base64 may contain '+' itself.
  const first = vkey.indexOf('+');
  const second = first < 0 ? -1 : vkey.indexOf('+', first + 1);
  if (first < 0 || second < 0) {
    throw new KeyFormatError('malformed verifier key: expected <name>+<hex key id>+<base64 key>');
  }
  const name = vkey.slice(0, first);
  const idHex = vkey.slice(first + 1, second);
  const keyText = vkey.slice(second + 1);
  assertKeyName(name);
  if (!/^[0-9a-fA-F]{8}$/.test(idHex)) {
    throw new KeyFormatError(`malformed verifier key for ${name}: the key id must be 8 hex digits`);
  }
  const keyBytes = decodeCanonicalBase64(keyText);
  if (keyBytes === null || keyBytes.length === 0) {
    throw new KeyFormatError(`malformed verifier key for ${name}: the key is not canonical base64`);
  }
  if (keyBytes[0] !== ALG_ED25519) {
    throw new KeyFormatError(
      `unsupported verifier key for ${name}: signature type 0x${(keyBytes[0] ?? 0).toString(16).padStart(2, '0')} is not Ed25519 (0x01)`,
    );
  }
  const raw = keyBytes.subarray(1);
  if (raw.length !== ED25519_PUBLIC_KEY_BYTES) {
    throw new KeyFormatError(`malformed verifier key for ${name}: an Ed25519 key has 32 bytes, got ${raw.length}`);
  }
  const keyId = keyIdFor(name, raw);
  if (Buffer.from(keyId).toString('hex') !== idHex.toLowerCase()) {
    throw new KeyFormatError(`verifier key for ${name} is inconsistent: key id ${idHex} does not match the key`);
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
  } catch (cause) {
    throw new KeyFormatError(`verifier key for ${name} holds an invalid Ed25519 public key`, { cause });
  }
  return Object.freeze({ name, keyId, publicKey, verifierKey: verifierKeyFor(name, publicKey) });
}

function errorCode(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

/** Flushes a directory entry change (create, link) to disk; a no-op where directories cannot be fsynced. */
export function fsyncDirectory(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch (error) {
    if (process.platform === 'win32') return;
    throw error;
  }
  try {
    fs.fsyncSync(fd);
  } catch (error) {
    const code = errorCode(error);
    // Some platforms and file systems refuse fsync on a directory; there is nothing stronger to fall back to.
    if (code !== 'EINVAL' && code !== 'EPERM' && code !== 'EISDIR' && code !== 'EBADF' && code !== 'ENOTSUP') throw error;
  } finally {
    fs.closeSync(fd);
  }
}

/** Durably creates `file` with `data` and exactly `mode` unless it exists; false (existing file untouched) when it does. */
export function createFileExclusively(file: string, data: string | Uint8Array, mode: number): boolean {
  const dir = path.dirname(file);
  // Written under a private name then linked, so other processes never see a half-written file under the final name.
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = fs.openSync(temp, 'wx', mode);
  try {
    try {
      fs.writeFileSync(fd, data);
      // The umask may have removed bits from `mode` (e.g. 0444 under umask 077); the mode is part of the contract.
      if (CHECK_MODES) fs.fchmodSync(fd, mode);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.linkSync(temp, file);
    } catch (error) {
      const code = errorCode(error);
      if (code === 'EEXIST') return false;
      // File systems without hard links (FAT, some network mounts): O_EXCL still guarantees no overwrite.
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') {
        return createFileExclusivelyInPlace(file, data, mode);
      }
      throw error;
    }
  } finally {
    fs.rmSync(temp, { force: true });
  }
  fsyncDirectory(dir);
  return true;
}

function createFileExclusivelyInPlace(file: string, data: string | Uint8Array, mode: number): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx', mode);
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false;
    throw error;
  }
  try {
    fs.writeFileSync(fd, data);
    if (CHECK_MODES) fs.fchmodSync(fd, mode);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fsyncDirectory(path.dirname(file));
  return true;
}

function ensurePrivateDirectory(dir: string): void {
  const created = fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (created !== undefined && CHECK_MODES) fs.chmodSync(dir, 0o700);
  const stat = fs.statSync(dir);
  if (!stat.isDirectory()) throw new KeyFormatError(`key directory ${dir} exists but is not a directory`);
  // Whoever can write the directory can replace the key file, whatever the file's own mode.
  if (CHECK_MODES && (stat.mode & 0o022) !== 0) {
    throw new KeyPermissionError(
      `key directory ${dir} has mode ${formatMode(stat.mode)} and is writable by other users, who could replace the key; fix it with: chmod 700 ${dir}`,
    );
  }
}

function formatMode(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}

/** Reads an owner-only regular file; null when it does not exist. */
function readPrivateFile(file: string): Buffer | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return null;
    throw error;
  }
  try {
    // fstat on the opened descriptor so the checked file is the one read, even if the path is swapped meanwhile.
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw new KeyFormatError(`${file} is not a regular file`);
    if (CHECK_MODES && (stat.mode & 0o077) !== 0) {
      throw new KeyPermissionError(
        `${file} has mode ${formatMode(stat.mode)} and is accessible to other users; it must be readable by its owner only. Fix it with: chmod 600 ${file}`,
      );
    }
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads `<dir>/<file>` or creates it from `create()` (0600, exclusively), returning the content that won any race. */
function loadOrCreatePrivateFile(dir: string, file: string, create: () => Uint8Array): Buffer {
  if (file === '' || file === '.' || file === '..' || path.basename(file) !== file) {
    throw new KeyFormatError(`key file name ${JSON.stringify(file)} must be a plain file name inside the key directory`);
  }
  ensurePrivateDirectory(dir);
  const target = path.join(dir, file);
  const existing = readPrivateFile(target);
  if (existing !== null) return existing;
  createFileExclusively(target, create(), 0o600);
  // Read back rather than trust what we generated: a concurrent process may have created the file first.
  const stored = readPrivateFile(target);
  if (stored === null) throw new KeyFormatError(`${target} disappeared right after it was created`);
  return stored;
}

/** Loads or first creates `<dir>/checkpoint-ed25519.pem` (dir 0700, file 0600, exclusive); throws KeyPermissionError on loose modes. */
export function loadOrCreateSigningKey(dir: string, name: string): SigningKey {
  assertKeyName(name);
  const pem = loadOrCreatePrivateFile(dir, KEY_FILE, () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    return Buffer.from(privateKey.export({ format: 'pem', type: 'pkcs8' }));
  });
  const target = path.join(dir, KEY_FILE);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch (cause) {
    throw new KeyFormatError(`${target} does not hold a PEM private key`, { cause });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new KeyFormatError(`${target} holds a ${privateKey.asymmetricKeyType ?? 'unknown'} key, expected Ed25519`);
  }
  const publicKey = createPublicKey(privateKey);
  const keyId = keyIdFor(name, rawEd25519PublicKey(publicKey));
  return Object.freeze({ name, privateKey, publicKey, keyId, verifierKey: verifierKeyFor(name, publicKey) });
}

/** Loads the 32-byte secret `<dir>/<file>`, or creates it from random bytes with the same rules as the signing key. */
export function loadOrCreateSecret(dir: string, file: string): Buffer {
  const secret = loadOrCreatePrivateFile(dir, file, () => randomBytes(SECRET_BYTES));
  if (secret.length !== SECRET_BYTES) {
    throw new KeyFormatError(`${path.join(dir, file)} holds ${secret.length} bytes, expected a ${SECRET_BYTES}-byte secret`);
  }
  return secret;
}
