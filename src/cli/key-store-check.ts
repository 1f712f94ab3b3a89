/**
 * Whether the subject key store of crypto-shredding (and its backup) holds every key the journal needs: the check
 * `verify`, `status` and `keys status` print.
 */
import { existsSync } from 'node:fs';
import type { Config } from '../config/config.ts';
import { JournalReader } from '../journal/reader.ts';
import { checkKeyStore, openKeyStoreForCheck, type KeyStoreCheck } from '../journal/privacy.ts';

/**
 * The key store check of `verify`, `status` and `keys status`; a store that cannot be opened is a problem too.
 * It writes nothing: the store and its backup are opened read-only (a missing backup is reported, not re-created).
 */
export function keyStoreCheck(config: Config): KeyStoreCheck & { error?: string } {
  const storeThere = existsSync(config.privacy.keyStorePath);
  const backupThere = existsSync(config.privacy.keyStoreBackupPath);
  // Every reader refuses a store missing while its backup exists; the check says what to do about it.
  const orphanedBackup =
    !storeThere && backupThere
      ? [
          `the key store ${config.privacy.keyStorePath} is missing but its backup ${config.privacy.keyStoreBackupPath} exists: run \`activity-journal keys restore\``,
        ]
      : [];
  const withFiles = (c: KeyStoreCheck & { error?: string }): KeyStoreCheck & { error?: string } => {
    const problems = [...c.problems, ...orphanedBackup];
    return { ...c, ok: problems.length === 0, storePresent: storeThere, backupPresent: storeThere ? backupThere : null, problems };
  };
  const nothing: KeyStoreCheck = {
    ok: true,
    storePresent: storeThere,
    backupPresent: null,
    referenced: 0,
    missing: [],
    resurrected: [],
    unauthenticatedErasures: [],
    backupInStep: null,
    problems: [],
    notes: [],
  };
  if (!existsSync(config.journal.path)) return withFiles(nothing);
  const reader = JournalReader.open(config.journal.path, { check: true });
  try {
    // A missing store is compared as empty: every key the journal needs is then reported missing.
    if (!storeThere) return withFiles(checkKeyStore(reader.connection, null));
    let privacy;
    try {
      privacy = openKeyStoreForCheck(config.privacy);
    } catch (err) {
      const message = (err as Error).message;
      return withFiles({ ...nothing, ok: false, problems: [`the key store cannot be opened: ${message}`], error: message });
    }
    try {
      return withFiles(checkKeyStore(reader.connection, privacy?.keys ?? null));
    } finally {
      privacy?.close();
    }
  } finally {
    reader.close();
  }
}

export function describeCheck(config: Config, check: KeyStoreCheck): string[] {
  // A journal that never sealed anything has no key store yet: that is not a loss, and not worth two lines.
  if (!check.storePresent && check.referenced === 0 && check.ok) return ['key store: none yet (nothing sealed)'];
  const backup =
    check.backupPresent === false
      ? 'MISSING'
      : check.backupInStep === null
        ? 'not compared'
        : check.backupInStep
          ? 'in step'
          : 'NOT IN STEP';
  const lines = [
    `key store ${config.privacy.keyStorePath} (backup ${config.privacy.keyStoreBackupPath}): ${check.storePresent ? 'present' : 'MISSING'}; ${check.referenced} key(s) referenced by the journal; backup ${backup}`,
  ];
  if (check.ok) lines.push('key store: ok, every key the journal needs is present');
  for (const p of check.problems) lines.push(`KEY STORE PROBLEM: ${p}`);
  for (const n of check.notes) lines.push(`KEY STORE NOTE: ${n}`);
  return lines;
}
