/**
 * A journal's identity: its id (and so its checkpoint origin), the Ed25519 key that signs its checkpoints and
 * the secret that seals each entry. They live in the keys directory, apart from the journal file, so that a
 * copy of the journal alone can neither forge a checkpoint nor re-seal an edited entry.
 */
import { randomUUID, createHmac } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadOrCreateSecret, loadOrCreateSigningKey, type SigningKey } from './keys.ts';

const JOURNAL_ID_FILE = 'journal-id';
const SEAL_KEY_FILE = 'entry-seal.key';

export interface JournalIdentity {
  readonly journalId: string;
  readonly origin: string;
  readonly signingKey: SigningKey;
  readonly sealKey: Buffer;
}

export function originFor(journalId: string): string {
  return `activity-journal/${journalId}`;
}

/** The id recorded in the keys directory, or null when the directory has none yet. */
export function readKeysJournalId(keysDir: string): string | null {
  const file = join(keysDir, JOURNAL_ID_FILE);
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : null;
}

/** Loads the identity for `journalId` (or creates a new one when null and the keys directory is empty). */
export function loadOrCreateIdentity(keysDir: string, journalId: string | null): JournalIdentity {
  mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  let id = journalId ?? readKeysJournalId(keysDir);
  if (id === null) {
    id = randomUUID();
    writeFileSync(join(keysDir, JOURNAL_ID_FILE), `${id}\n`, { mode: 0o600, flag: 'wx' });
  } else if (readKeysJournalId(keysDir) === null) {
    writeFileSync(join(keysDir, JOURNAL_ID_FILE), `${id}\n`, { mode: 0o600, flag: 'wx' });
  }
  const origin = originFor(id);
  return {
    journalId: id,
    origin,
    signingKey: loadOrCreateSigningKey(keysDir, origin),
    sealKey: loadOrCreateSecret(keysDir, SEAL_KEY_FILE),
  };
}

/** The seal key if the keys directory has one; verification without it checks everything but the seals. */
export function readSealKey(keysDir: string): Buffer | null {
  const file = join(keysDir, SEAL_KEY_FILE);
  return existsSync(file) ? loadOrCreateSecret(keysDir, SEAL_KEY_FILE) : null;
}

/** seal = HMAC-SHA256(seal key, chain hash): the chain hash commits to every entry so far. */
export function sealOf(sealKey: Buffer, chainHash: Uint8Array): Buffer {
  return createHmac('sha256', sealKey).update(chainHash).digest();
}
