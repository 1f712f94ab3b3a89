import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadMasterKey, MasterKey } from '../../src/journal/master-key.ts';
import { MasterKeyError } from '../../src/journal/errors/master-key.error.ts';
import { tempDir } from '../helpers/tmp.ts';

let tmp: { dir: string; cleanup: () => void };
beforeEach(() => {
  tmp = tempDir('aj-master-');
});
afterEach(() => tmp.cleanup());

describe('master key', () => {
  it('is generated once (0600) when none is configured and creation is allowed, then read back', () => {
    const file = join(tmp.dir, 'secrets', 'master.key');
    expect(() => loadMasterKey({ masterKeyFile: file }, { create: false })).toThrow(MasterKeyError);
    const first = loadMasterKey({ masterKeyFile: file }, { create: true });
    expect(first.source).toBe('created');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const again = loadMasterKey({ masterKeyFile: file }, { create: true });
    expect(again.source).toBe('file');
    expect(again.key.id).toBe(first.key.id);
  });

  it('takes the environment first, refuses a malformed one, and never invents a file named by JOURNAL_MASTER_KEY_FILE', () => {
    const bytes = randomBytes(32);
    const env = loadMasterKey({ masterKey: bytes.toString('base64'), masterKeyFile: join(tmp.dir, 'unused') }, { create: true });
    expect(env.source).toBe('env');
    expect(env.key.id).toBe(new MasterKey(bytes).id);
    expect(() => loadMasterKey({ masterKey: 'c2hvcnQ=', masterKeyFile: join(tmp.dir, 'x') }, { create: true })).toThrow(/32 random bytes/);
    expect(() => loadMasterKey({ masterKeyFile: join(tmp.dir, 'named.key'), masterKeyFileGiven: true }, { create: true })).toThrow(
      /does not exist/,
    );
  });

  it('accepts a file holding the base64 text (openssl rand -base64 32 > file)', () => {
    const bytes = randomBytes(32);
    mkdirSync(join(tmp.dir, 's'), { mode: 0o700 });
    const file = join(tmp.dir, 's', 'm.key');
    writeFileSync(file, bytes.toString('base64') + '\n', { mode: 0o600 });
    expect(loadMasterKey({ masterKeyFile: file, masterKeyFileGiven: true }, { create: false }).key.id).toBe(new MasterKey(bytes).id);
  });

  it('tells a wrong key from an altered blob, and binds a blob to its context', () => {
    const a = new MasterKey(randomBytes(32));
    const blob = a.seal(Buffer.from('refresh-token'), 'state:x');
    expect(a.open(blob, 'state:x', 'x').toString()).toBe('refresh-token');
    expect(() => new MasterKey(randomBytes(32)).open(blob, 'state:x', 'x')).toThrow(expect.objectContaining({ reason: 'WRONG_KEY' }));
    expect(() => a.open(blob, 'state:y', 'x')).toThrow(expect.objectContaining({ reason: 'TAMPERED' }));
    const altered = Buffer.from(blob);
    altered[altered.length - 1] = (altered[altered.length - 1] ?? 0) ^ 1;
    expect(() => a.open(altered, 'state:x', 'x')).toThrow(expect.objectContaining({ reason: 'TAMPERED' }));
  });
});
