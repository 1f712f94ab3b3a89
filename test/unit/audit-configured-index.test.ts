/**
 * The configured audit read index keys contacts by the key store's subject hash (the keyed hash that already
 * names subjects), and, while there is no key store, by an HMAC under a key derived from the master key: never
 * a plain hash, and the same key for every process that opens it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { existsSync, statSync } from 'node:fs';
import { createHash, createHmac } from 'node:crypto';
import { tempDir } from '../helpers/tmp.ts';
import { loadConfig, type Config } from '../../src/config/config.ts';
import { openWriterPrivacy } from '../../src/journal/configured-privacy.ts';
import { openKeyStoreForCheck } from '../../src/journal/privacy.ts';
import { loadMasterKey } from '../../src/journal/master-key.ts';
import { configuredContactHasher, INDEX_KEY_PURPOSE, openConfiguredIndex } from '../../src/audit/configured-index.ts';

let tmp: { dir: string; cleanup: () => void };
let config: Config;
beforeEach(() => {
  tmp = tempDir('aj-configured-index-');
  config = loadConfig({ JOURNAL_PATH: join(tmp.dir, 'data', 'journal.sqlite'), LOG_LEVEL: 'silent' });
});
afterEach(() => tmp.cleanup());

const ADDRESS = 'Dana.Person@Example.com';
const plain = (a: string): string => createHash('sha256').update(a.trim().toLowerCase()).digest('hex');

describe('the configured audit read index', () => {
  it("keys contacts by the key store's subject hash when there is a key store", () => {
    const writer = openWriterPrivacy(config);
    const subject = writer.keys.subjectHash(ADDRESS); // creates the master key and the store
    writer.close();
    const privacy = openKeyStoreForCheck(config.privacy);
    expect(privacy).not.toBeNull();
    const hash = configuredContactHasher(config, privacy);
    expect(hash(' dana.person@EXAMPLE.com')).toBe(subject);
    expect(hash(ADDRESS)).not.toBe(plain(ADDRESS));
    privacy?.close();
  });

  it('without a key store, keys them under a key derived from the master key (its own label), the same in every process', () => {
    const hash = configuredContactHasher(config, null);
    const first = hash(ADDRESS); // the master key is created, as npm start would, on first use
    const { key } = loadMasterKey(config.privacy, { create: false });
    expect(first).toBe(hash(ADDRESS));
    expect(hash(ADDRESS)).toBe(createHmac('sha256', key.derive(INDEX_KEY_PURPOSE)).update(ADDRESS.toLowerCase()).digest('hex'));
    expect(hash(ADDRESS)).not.toBe(plain(ADDRESS));
    expect(configuredContactHasher(config, null)(ADDRESS)).toBe(hash(ADDRESS));
    // Distinct from the key store's subject hash: the two constructions never share a key.
    const writer = openWriterPrivacy(config);
    expect(writer.keys.subjectHash(ADDRESS)).not.toBe(hash(ADDRESS));
    writer.close();
  });

  it('opens the index at AUDIT_INDEX_PATH', () => {
    expect(existsSync(config.audit.indexPath)).toBe(false);
    const index = openConfiguredIndex(config, null);
    expect(index.lastSeq()).toBe(-1);
    index.close();
    expect(statSync(join(tmp.dir, 'data', 'audit-index.sqlite')).mode & 0o777).toBe(0o600);
  });
});
