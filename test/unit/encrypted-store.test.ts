import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EncryptedStore, StateStoreError } from '../../src/state/encrypted-store.ts';
import { tempDir } from '../helpers/tmp.ts';

let tmp: { dir: string; cleanup: () => void };
beforeEach(() => {
  tmp = tempDir('aj-state-');
});
afterEach(() => tmp.cleanup());

type Doc = { inboxes: Record<string, { refreshToken: string }> };
const open = (): EncryptedStore<Doc> => new EncryptedStore<Doc>(join(tmp.dir, 'state', 'tokens.enc'), join(tmp.dir, 'keys'), 'state.key', () => ({ inboxes: {} }));

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
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.update((d) => {
      d.inboxes[`m${i}`] = { refreshToken: String(i) };
    })));
    expect(Object.keys(open().read().inboxes)).toHaveLength(20);
  });
});
