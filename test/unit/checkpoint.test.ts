import { spawn } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  checkpointBody,
  parseSignedCheckpoint,
  signCheckpoint,
  signNote,
  verifyNote,
  verifySignedCheckpoint,
  type Checkpoint,
} from '../../src/journal/checkpoint.ts';
import { CheckpointFormatError } from '../../src/journal/errors/checkpoint-format.error.ts';
import { KeyFormatError } from '../../src/journal/errors/key-format.error.ts';
import { KeyPermissionError } from '../../src/journal/errors/key-permission.error.ts';
import {
  loadOrCreateSecret,
  loadOrCreateSigningKey,
  parseVerifierKey,
  verifierKeyFor,
  type SigningKey,
  type Verifier,
} from '../../src/journal/keys.ts';

const KEYS_MODULE = fileURLToPath(new URL('../../src/journal/keys.ts', import.meta.url));
const ORIGIN = 'activity-journal/0b7c5d0e-6c1f-4a43-9d55-3c1f6d1e2a10';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aj-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function hash(label: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(label).digest());
}

function sampleCheckpoint(overrides: Partial<Checkpoint> = {}): Checkpoint {
  return {
    origin: ORIGIN,
    treeSize: 1234,
    rootHash: hash('root'),
    chainHead: hash('chain'),
    timestamp: '2024-05-01T12:34:56.789Z',
    ...overrides,
  };
}

function freshKey(name = ORIGIN): SigningKey {
  return loadOrCreateSigningKey(fs.mkdtempSync(path.join(tmp, 'keys-')), name);
}

function verifierOf(key: SigningKey): Verifier {
  return parseVerifierKey(key.verifierKey);
}

function modeOf(file: string): number {
  return fs.statSync(file).mode & 0o777;
}

/** Replaces line `index` of the note text (before the blank line), keeping the original signature. */
function replaceTextLine(note: string, index: number, replacement: string): string {
  const split = note.lastIndexOf('\n\n');
  const lines = note.slice(0, split).split('\n');
  lines[index] = replacement;
  return `${lines.join('\n')}${note.slice(split)}`;
}

describe('C2SP cross-implementation vector (golang.org/x/mod/sumdb/note documentation)', () => {
  const skey = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
  const vkey = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
  const text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
  const signed = `${text}\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`;

  function peterNeumann(): SigningKey {
    // The base64 part may itself contain '+': only the first four are separators.
    const [, , name = '', idHex = ''] = skey.split('+');
    const encoded = skey.slice(`PRIVATE+KEY+${name}+${idHex}+`.length);
    const bytes = Buffer.from(encoded, 'base64');
    expect(bytes[0]).toBe(0x01);
    const seed = bytes.subarray(1);
    const privateKey = createPrivateKey({
      key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]),
      format: 'der',
      type: 'pkcs8',
    });
    const publicKey = createPublicKey(privateKey);
    return { name, privateKey, publicKey, keyId: Buffer.from(idHex, 'hex'), verifierKey: verifierKeyFor(name, publicKey) };
  }

  it('derives the documented verifier key and key id from the documented private key', () => {
    const key = peterNeumann();
    expect(key.verifierKey).toBe(vkey);
    expect(Buffer.from(parseVerifierKey(vkey).keyId).toString('hex')).toBe('c74f20a3');
  });

  it('produces the documented signature byte for byte and verifies it', () => {
    expect(signNote(text, peterNeumann())).toBe(signed);
    expect(verifyNote(signed, parseVerifierKey(vkey))).toBe(text);
  });

  it('rejects the documented note once its text is altered', () => {
    expect(verifyNote(signed.replace('cryptography', 'Cryptography'), parseVerifierKey(vkey))).toBeNull();
  });
});

describe('checkpoint notes', () => {
  it('encodes the body per tlog-checkpoint with chain and time extension lines', () => {
    const cp = sampleCheckpoint();
    expect(checkpointBody(cp)).toBe(
      `${ORIGIN}\n1234\n${Buffer.from(cp.rootHash).toString('base64')}\n` +
        `chain ${Buffer.from(cp.chainHead).toString('base64')}\ntime 2024-05-01T12:34:56.789Z\n`,
    );
  });

  it('round-trips sign → parse → verify', () => {
    const key = freshKey();
    const cp = sampleCheckpoint();
    const note = signCheckpoint(cp, key);
    expect(note.startsWith(`${checkpointBody(cp)}\n\u2014 ${ORIGIN} `)).toBe(true);
    expect(note.endsWith('\n')).toBe(true);

    const parsed = parseSignedCheckpoint(note);
    expect(parsed.checkpoint).toEqual({ ...cp, rootHash: new Uint8Array(cp.rootHash), chainHead: new Uint8Array(cp.chainHead) });
    expect(parsed.signatures).toHaveLength(1);
    expect(parsed.signatures[0]?.name).toBe(ORIGIN);
    expect(Buffer.from(parsed.signatures[0]?.keyId ?? [])).toEqual(Buffer.from(key.keyId));
    expect(parsed.signatures[0]?.signature.length).toBe(64);

    const verified = verifySignedCheckpoint(note, verifierOf(key));
    expect(verified).not.toBeNull();
    expect(checkpointBody(verified!)).toBe(checkpointBody(cp));
  });

  it('round-trips size 0 and the largest safe size', () => {
    const key = freshKey();
    for (const treeSize of [0, Number.MAX_SAFE_INTEGER]) {
      const note = signCheckpoint(sampleCheckpoint({ treeSize }), key);
      expect(verifySignedCheckpoint(note, verifierOf(key))?.treeSize).toBe(treeSize);
    }
  });

  it('refuses to encode an invalid checkpoint', () => {
    const key = freshKey();
    const bad: Partial<Checkpoint>[] = [
      { origin: '' },
      { origin: 'has space' },
      { origin: 'a+b' },
      { treeSize: -1 },
      { treeSize: 1.5 },
      { treeSize: Number.MAX_SAFE_INTEGER + 1 },
      { rootHash: new Uint8Array(31) },
      { chainHead: new Uint8Array(33) },
      { timestamp: '2024-05-01T12:34:56Z' },
      { timestamp: '2024-02-30T00:00:00.000Z' },
      { timestamp: '2024-05-01T12:34:56.789+02:00' },
    ];
    for (const overrides of bad) {
      expect(() => signCheckpoint(sampleCheckpoint(overrides), key), JSON.stringify(overrides)).toThrow(CheckpointFormatError);
    }
  });

  describe('tampering is detected', () => {
    const key = freshKeyOnce();
    const note = signCheckpoint(sampleCheckpoint(), key);
    const verifier = verifierOf(key);

    const tampered: Record<string, string> = {
      origin: replaceTextLine(note, 0, 'activity-journal/someone-else'),
      size: replaceTextLine(note, 1, '1233'),
      root: replaceTextLine(note, 2, Buffer.from(hash('other root')).toString('base64')),
      chain: replaceTextLine(note, 3, `chain ${Buffer.from(hash('other chain')).toString('base64')}`),
      time: replaceTextLine(note, 4, 'time 2024-05-01T12:34:56.790Z'),
    };
    for (const [field, changed] of Object.entries(tampered)) {
      it(`a changed ${field} still parses but no longer verifies`, () => {
        expect(() => parseSignedCheckpoint(changed)).not.toThrow();
        expect(verifySignedCheckpoint(changed, verifier)).toBeNull();
      });
    }

    it('a flipped signature byte no longer verifies', () => {
      const prefix = `\u2014 ${ORIGIN} `;
      const at = note.lastIndexOf(prefix) + prefix.length;
      const sig = Buffer.from(note.slice(at, -1), 'base64');
      for (const index of [4, 20, sig.length - 1]) {
        const flipped = Buffer.from(sig);
        flipped[index] = (flipped[index] ?? 0) ^ 0x01;
        const changed = `${note.slice(0, at)}${flipped.toString('base64')}\n`;
        expect(verifySignedCheckpoint(changed, verifier), `byte ${index}`).toBeNull();
      }
    });

    it('a different key, or the right name and key id with another public key, does not verify', () => {
      expect(verifySignedCheckpoint(note, verifierOf(freshKey()))).toBeNull();
      const impostor = generateKeyPairSync('ed25519').publicKey;
      expect(verifySignedCheckpoint(note, { ...verifier, publicKey: impostor })).toBeNull();
      expect(verifySignedCheckpoint(note, verifierOf(freshKey('activity-journal/other')))).toBeNull();
    });

    it('an unknown extra signature is ignored but a bad second line from the known key rejects the note', () => {
      const other = freshKey('witness.example/w1');
      const cosigned = signNote(note.slice(0, note.lastIndexOf('\n\n') + 1), other);
      const both = `${note}${cosigned.slice(cosigned.lastIndexOf('\n\n') + 2)}`;
      expect(verifySignedCheckpoint(both, verifier)).not.toBeNull();
      expect(verifySignedCheckpoint(both, verifierOf(other))).not.toBeNull();

      const prefix = `\u2014 ${ORIGIN} `;
      const sig = Buffer.from(note.slice(note.lastIndexOf(prefix) + prefix.length, -1), 'base64');
      sig[10] = (sig[10] ?? 0) ^ 0x80;
      expect(verifySignedCheckpoint(`${note}${prefix}${sig.toString('base64')}\n`, verifier)).toBeNull();
    });
  });

  describe('strict parsing', () => {
    const key = freshKeyOnce();
    const note = signCheckpoint(sampleCheckpoint(), key);
    const split = note.lastIndexOf('\n\n');
    const text = note.slice(0, split + 1);
    const sigLine = note.slice(split + 2);

    const malformed: Record<string, string> = {
      'empty note': '',
      'no blank line': `${text}${sigLine}`,
      'no signature': `${text}\n`,
      'no final newline': note.slice(0, -1),
      'CRLF line endings': note.replace(/\n/g, '\r\n'),
      'a tab in the origin': replaceTextLine(note, 0, 'activity\tjournal'),
      'empty origin': replaceTextLine(note, 0, ''),
      'leading zero size': replaceTextLine(note, 1, '01234'),
      'signed size': replaceTextLine(note, 1, '+1234'),
      'decimal size': replaceTextLine(note, 1, '1234.0'),
      'padded size': replaceTextLine(note, 1, ' 1234'),
      'hex size': replaceTextLine(note, 1, '0x4d2'),
      'size beyond 2^53': replaceTextLine(note, 1, '9007199254740993'),
      'root not base64': replaceTextLine(note, 2, '!!!!'),
      'root unpadded': replaceTextLine(note, 2, Buffer.from(hash('root')).toString('base64').replace(/=+$/, '')),
      'root of 31 bytes': replaceTextLine(note, 2, Buffer.from(hash('root').subarray(1)).toString('base64')),
      'chain missing': `${note.slice(0, note.indexOf('chain '))}${note.slice(note.indexOf('time '))}`,
      'chain keyword wrong': replaceTextLine(note, 3, `chains ${Buffer.from(hash('chain')).toString('base64')}`),
      'chain of 33 bytes': replaceTextLine(note, 3, `chain ${Buffer.alloc(33).toString('base64')}`),
      'time missing': replaceTextLine(note, 4, ''),
      'time without ms': replaceTextLine(note, 4, 'time 2024-05-01T12:34:56Z'),
      'impossible date': replaceTextLine(note, 4, 'time 2024-13-01T12:34:56.789Z'),
      'extra extension line': `${text}extra\n\n${sigLine}`,
      'ASCII dash signature': `${text}\n${sigLine.replace('\u2014', '-')}`,
      'signature without name separator': `${text}\n\u2014 ${ORIGIN}\n`,
      'signature not base64': `${text}\n\u2014 ${ORIGIN} ***\n`,
      'signature too short': `${text}\n\u2014 ${ORIGIN} AAAAAA==\n`,
      'non-canonical signature base64': `${text}\n${sigLine.replace(/=\n$/, '\n')}`,
    };
    for (const [label, bad] of Object.entries(malformed)) {
      it(`rejects ${label}`, () => {
        expect(() => parseSignedCheckpoint(bad)).toThrow(CheckpointFormatError);
        expect(verifySignedCheckpoint(bad, verifierOf(key))).toBeNull();
      });
    }

    it('names the error and gives it a code', () => {
      try {
        parseSignedCheckpoint('');
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(CheckpointFormatError);
        expect((error as CheckpointFormatError).name).toBe('CheckpointFormatError');
        expect((error as CheckpointFormatError).code).toBe('CHECKPOINT_FORMAT');
      }
    });

    it('never throws from verifySignedCheckpoint on truncations and byte flips', () => {
      const bytes = Buffer.from(note, 'utf8');
      const verifier = verifierOf(key);
      const mutation = fc.oneof(
        fc.integer({ min: 0, max: bytes.length - 1 }).map((end) => bytes.subarray(0, end)),
        fc.tuple(fc.integer({ min: 0, max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 })).map(([index, mask]) => {
          const copy = Buffer.from(bytes);
          copy[index] = (copy[index] ?? 0) ^ mask;
          return copy;
        }),
      );
      fc.assert(
        fc.property(mutation, (mutated) => {
          expect(verifySignedCheckpoint(mutated.toString('utf8'), verifier)).toBeNull();
        }),
        { numRuns: 2000 },
      );
    });

    it('never throws from verifySignedCheckpoint on arbitrary text', () => {
      const verifier = verifierOf(key);
      fc.assert(
        fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (junk) => {
          expect(verifySignedCheckpoint(junk, verifier)).toBeNull();
          expect(verifySignedCheckpoint(`${text}\n${junk}`, verifier)).toBeNull();
          expect(verifySignedCheckpoint(`${junk}\n${sigLine}`, verifier)).toBeNull();
        }),
        { numRuns: 500 },
      );
      expect(verifySignedCheckpoint(undefined as unknown as string, verifier)).toBeNull();
    });
  });
});

describe('verifier keys', () => {
  it('round-trips verifierKeyFor → parseVerifierKey', () => {
    const key = freshKey();
    const verifier = parseVerifierKey(key.verifierKey);
    expect(verifier.name).toBe(ORIGIN);
    expect(Buffer.from(verifier.keyId)).toEqual(Buffer.from(key.keyId));
    expect(verifier.publicKey.equals(key.publicKey)).toBe(true);
    expect(verifier.verifierKey).toBe(key.verifierKey);
    expect(key.verifierKey).toMatch(new RegExp(`^${ORIGIN}\\+[0-9a-f]{8}\\+A[Q-f]`));
  });

  it('accepts an upper-case key id and canonicalises it', () => {
    const key = freshKey();
    const id = Buffer.from(key.keyId).toString('hex');
    const upper = key.verifierKey.replace(`+${id}+`, `+${id.toUpperCase()}+`);
    expect(parseVerifierKey(upper).verifierKey).toBe(key.verifierKey);
  });

  it('rejects malformed and inconsistent keys with KeyFormatError', () => {
    const key = freshKey();
    const good = key.verifierKey;
    const [name = '', id = ''] = good.split('+');
    const data = good.slice(name.length + id.length + 2);
    const raw = Buffer.from(data, 'base64');
    const bad = [
      '',
      'no-plus-at-all',
      `${name}+${id}`,
      `+${id}+${data}`,
      `has space+${id}+${data}`,
      `${name}+${id.slice(1)}+${data}`,
      `${name}+zzzzzzzz+${data}`,
      `${name}+${id}+`,
      `${name}+${id}+${data.slice(0, -1)}`,
      `${name}+${id}+${data}=`,
      // The last character always changes (a regex on [A-Za-z0-9] missed keys ending in '+' or '/').
      `${name}+${id}+${data.slice(0, -1)}${data.endsWith('A') ? 'B' : 'A'}`,
      `${name}+${id}+${Buffer.concat([Buffer.of(0x02), raw.subarray(1)]).toString('base64')}`,
      `${name}+${id}+${raw.subarray(0, 32).toString('base64')}`,
      `${name}+${id}+${Buffer.concat([raw, Buffer.of(0)]).toString('base64')}`,
      `other-name+${id}+${data}`,
      `${name}+${id === '00000000' ? '00000001' : '00000000'}+${data}`,
    ];
    for (const vkey of bad) {
      expect(() => parseVerifierKey(vkey), vkey).toThrow(KeyFormatError);
    }
    try {
      parseVerifierKey('nonsense');
    } catch (error) {
      expect((error as KeyFormatError).name).toBe('KeyFormatError');
      expect((error as KeyFormatError).code).toBe('KEY_FORMAT');
    }
  });

  it('refuses invalid names and non-Ed25519 keys in verifierKeyFor', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    expect(() => verifierKeyFor('', publicKey)).toThrow(KeyFormatError);
    expect(() => verifierKeyFor('a+b', publicKey)).toThrow(KeyFormatError);
    expect(() => verifierKeyFor('a\u00a0b', publicKey)).toThrow(KeyFormatError);
    expect(() => verifierKeyFor('a\u0000b', publicKey)).toThrow(KeyFormatError);
    expect(() => verifierKeyFor('name', privateKey)).toThrow(KeyFormatError);
    expect(() => verifierKeyFor('name', generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey)).toThrow(KeyFormatError);
  });
});

describe('key store', () => {
  it('creates the key 0600 in a 0700 directory and loads the same key again', () => {
    const dir = path.join(tmp, 'nested', 'keys');
    const first = loadOrCreateSigningKey(dir, ORIGIN);
    expect(modeOf(dir)).toBe(0o700);
    expect(modeOf(path.join(dir, 'checkpoint-ed25519.pem'))).toBe(0o600);
    expect(fs.readFileSync(path.join(dir, 'checkpoint-ed25519.pem'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(fs.readdirSync(dir)).toEqual(['checkpoint-ed25519.pem']);

    const second = loadOrCreateSigningKey(dir, ORIGIN);
    expect(second.verifierKey).toBe(first.verifierKey);
    const note = signCheckpoint(sampleCheckpoint(), first);
    expect(verifySignedCheckpoint(note, parseVerifierKey(second.verifierKey))).not.toBeNull();
  });

  it('refuses a key file other users can read, and says how to fix it', () => {
    const dir = path.join(tmp, 'keys');
    loadOrCreateSigningKey(dir, ORIGIN);
    const file = path.join(dir, 'checkpoint-ed25519.pem');
    fs.chmodSync(file, 0o644);
    expect(() => loadOrCreateSigningKey(dir, ORIGIN)).toThrow(KeyPermissionError);
    expect(() => loadOrCreateSigningKey(dir, ORIGIN)).toThrow(`chmod 600 ${file}`);
    fs.chmodSync(file, 0o600);
    expect(() => loadOrCreateSigningKey(dir, ORIGIN)).not.toThrow();
  });

  it('refuses a key directory other users can write', () => {
    const dir = path.join(tmp, 'keys');
    fs.mkdirSync(dir);
    fs.chmodSync(dir, 0o777);
    expect(() => loadOrCreateSigningKey(dir, ORIGIN)).toThrow(KeyPermissionError);
    expect(() => loadOrCreateSigningKey(dir, ORIGIN)).toThrow(`chmod 700 ${dir}`);
  });

  it('refuses an invalid key name and a key file that is not an Ed25519 key', () => {
    expect(() => loadOrCreateSigningKey(path.join(tmp, 'k1'), 'bad name')).toThrow(KeyFormatError);
    const dir = path.join(tmp, 'k2');
    fs.mkdirSync(dir, { mode: 0o700 });
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' });
    fs.writeFileSync(path.join(dir, 'checkpoint-ed25519.pem'), ec, { mode: 0o600 });
    expect(() => loadOrCreateSigningKey(dir, ORIGIN)).toThrow(KeyFormatError);
    fs.writeFileSync(path.join(dir, 'checkpoint-ed25519.pem'), 'garbage', { mode: 0o600 });
    expect(() => loadOrCreateSigningKey(dir, ORIGIN)).toThrow(KeyFormatError);
  });

  it('gives every process racing to create the key the same key', async () => {
    const dir = path.join(tmp, 'race');
    const script = path.join(tmp, 'race.ts');
    fs.writeFileSync(
      script,
      `import { loadOrCreateSigningKey } from ${JSON.stringify(KEYS_MODULE)};\n` +
        `process.stdout.write(loadOrCreateSigningKey(${JSON.stringify(dir)}, 'race/test').verifierKey);\n`,
    );
    const run = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${err}`))));
      });
    const keys = await Promise.all(Array.from({ length: 6 }, run));
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toBe(loadOrCreateSigningKey(dir, 'race/test').verifierKey);
    expect(fs.readdirSync(dir)).toEqual(['checkpoint-ed25519.pem']);
  });

  it('keeps a 32-byte secret with the same rules', () => {
    const dir = path.join(tmp, 'secrets');
    const secret = loadOrCreateSecret(dir, 'entry-seal.key');
    expect(secret).toHaveLength(32);
    expect(modeOf(path.join(dir, 'entry-seal.key'))).toBe(0o600);
    expect(loadOrCreateSecret(dir, 'entry-seal.key').equals(secret)).toBe(true);

    fs.chmodSync(path.join(dir, 'entry-seal.key'), 0o640);
    expect(() => loadOrCreateSecret(dir, 'entry-seal.key')).toThrow(KeyPermissionError);

    fs.writeFileSync(path.join(dir, 'short.key'), Buffer.alloc(16), { mode: 0o600 });
    expect(() => loadOrCreateSecret(dir, 'short.key')).toThrow(KeyFormatError);
    expect(() => loadOrCreateSecret(dir, '../escape.key')).toThrow(KeyFormatError);
  });
});

/** A key made once for a describe block, in its own directory outside the per-test temp folder. */
function freshKeyOnce(): SigningKey {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aj-'));
  try {
    return loadOrCreateSigningKey(path.join(dir, 'keys'), ORIGIN);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
