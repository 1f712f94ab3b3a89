import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { EncryptedStore } from '../../src/state/encrypted-store.ts';
import { StateStoreError } from '../../src/state/errors/state-store.error.ts';
import { MasterKey } from '../../src/journal/master-key.ts';
import { tempDir } from '../helpers/tmp.ts';

let tmp: { dir: string; cleanup: () => void };
beforeEach(() => {
  tmp = tempDir('aj-state-');
});
afterEach(() => tmp.cleanup());

type Doc = { inboxes: Record<string, { refreshToken: string }> };
const MASTER = new MasterKey(randomBytes(32));
const open = (key: MasterKey = MASTER): EncryptedStore<Doc> =>
  new EncryptedStore<Doc>(join(tmp.dir, 'state', 'tokens.enc'), key, () => ({ inboxes: {} }), join(tmp.dir, 'state'));

describe('EncryptedStore', () => {
  it('keeps a document encrypted at rest (0600), and reads it back in a new process', async () => {
    const store = open();
    await store.update((d) => {
      d.inboxes['sales@example.test'] = { refreshToken: '1//refresh-token-VERY-SECRET' };
    });
    const file = join(tmp.dir, 'state', 'tokens.enc');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file).toString('latin1')).not.toContain('VERY-SECRET');
    expect(readFileSync(file).toString('latin1')).not.toContain('sales@example.test');
    expect(open().read().inboxes['sales@example.test']?.refreshToken).toBe('1//refresh-token-VERY-SECRET');
  });

  it('refuses a file that was altered', async () => {
    await open().update((d) => {
      d.inboxes.a = { refreshToken: 'x' };
    });
    const file = join(tmp.dir, 'state', 'tokens.enc');
    const blob = readFileSync(file);
    blob[blob.length - 1] = (blob[blob.length - 1] ?? 0) ^ 1;
    writeFileSync(file, blob);
    expect(() => open().read()).toThrow(StateStoreError);
    expect(() => open().read()).toThrow(/altered/);
  });

  it('serialises concurrent updates without losing any', async () => {
    const store = open();
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        store.update((d) => {
          d.inboxes[`m${i}`] = { refreshToken: String(i) };
        }),
      ),
    );
    expect(Object.keys(open().read().inboxes)).toHaveLength(20);
  });

  it('refuses a file sealed under another master key, saying so, and decrypts nothing', async () => {
    await open().update((d) => {
      d.inboxes.a = { refreshToken: 'secret-a' };
    });
    const other = new MasterKey(randomBytes(32));
    expect(() => open(other).read()).toThrow(StateStoreError);
    expect(() => open(other).read()).toThrow(new RegExp(`sealed under master key ${MASTER.id}.*configured master key is ${other.id}`));
  });

  it('reads a file of the previous format (own state-store.key) once and re-seals it under the master key', () => {
    const stateDir = join(tmp.dir, 'state');
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const legacyKey = randomBytes(32);
    writeFileSync(join(stateDir, 'state-store.key'), legacyKey, { mode: 0o600 });
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', legacyKey, iv);
    const body = Buffer.concat([
      cipher.update(JSON.stringify({ inboxes: { old: { refreshToken: 'legacy-token' } } }), 'utf8'),
      cipher.final(),
    ]);
    const file = join(stateDir, 'tokens.enc');
    writeFileSync(file, Buffer.concat([Buffer.from('AJS1'), iv, cipher.getAuthTag(), body]), { mode: 0o600 });
    expect(open().read().inboxes.old?.refreshToken).toBe('legacy-token');
    expect(readFileSync(file).subarray(0, 4).toString()).toBe('AJM1');
    expect(open().read().inboxes.old?.refreshToken).toBe('legacy-token');
  });

  it('on a full disk, refuses the update with the reason, keeps the previous version and leaves no temp file', async () => {
    const store = open();
    await store.update((d) => {
      d.inboxes.a = { refreshToken: 'first-token' };
    });
    const file = join(tmp.dir, 'state', 'tokens.enc');
    // The store's temp file is made to be /dev/full: every write to it fails with ENOSPC, as on a full disk.
    const temp = `${file}.${process.pid}.tmp`;
    symlinkSync('/dev/full', temp);
    const failed = store.update((d) => {
      d.inboxes.a = { refreshToken: '1//second-token-VERY-SECRET' };
    });
    await expect(failed).rejects.toBeInstanceOf(StateStoreError);
    const err = (await failed.then(
      () => null,
      (e: unknown) => e,
    )) as Error;
    expect(err.message).toContain('no space left on the device');
    expect(err.message).not.toContain('VERY-SECRET');
    expect(existsSync(temp)).toBe(false);
    expect(store.read().inboxes.a?.refreshToken).toBe('first-token');
    expect(open().read().inboxes.a?.refreshToken).toBe('first-token');
    // Space is back: the next update goes through.
    await store.update((d) => {
      d.inboxes.a = { refreshToken: 'third-token' };
    });
    expect(open().read().inboxes.a?.refreshToken).toBe('third-token');
  });
});
