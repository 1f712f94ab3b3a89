import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { openFields, sealFields, type Envelope } from '../../src/journal/sealed-payload.ts';
import { SealedPayloadError } from '../../src/journal/errors/sealed-payload.error.ts';

const alice = { subject: 'a'.repeat(64), keyId: 'key-alice', key: randomBytes(32) };
const sales = { subject: 'b'.repeat(64), keyId: 'key-sales', key: randomBytes(32) };
const fields = {
  subject: 'Pricing for 25 seats',
  text: 'Call me on +44 20 7946 0000',
  participants: [{ role: 'from', address: 'alice@example.test' }],
};

const flip = (b64: string, at = 0): string => {
  const b = Buffer.from(b64, 'base64');
  b[at] = (b[at] ?? 0) ^ 1;
  return b.toString('base64');
};

describe('sealed payload envelope', () => {
  it('opens with every subject key, and holds nothing of the plaintext', () => {
    const env = sealFields('interaction.received', fields, [alice, sales]);
    expect(JSON.stringify(env)).not.toMatch(/Pricing|7946|alice@/);
    expect(env.keys).toEqual([
      { subject: alice.subject, keyId: 'key-alice' },
      { subject: sales.subject, keyId: 'key-sales' },
    ]);
    expect(openFields('interaction.received', env, [alice.key, sales.key])).toEqual(fields);
  });

  it('seals for a meeting of 200 subjects (a key id list longer than HKDF admits), and a short list derives as it always did', () => {
    const many = Array.from({ length: 200 }, (_, i) => ({
      subject: i.toString(16).padStart(64, '0'),
      keyId: `key-${String(i).padStart(40, '0')}`,
      key: randomBytes(32),
    }));
    const env = sealFields('interaction.received', fields, many);
    expect(
      openFields(
        'interaction.received',
        env,
        many.map((k) => k.key),
      ),
    ).toEqual(fields);
    expect(() =>
      openFields(
        'interaction.received',
        env,
        many.slice(1).map((k) => k.key),
      ),
    ).toThrow(SealedPayloadError);
    // The envelope the code before this change made for these fields and key: short key id lists derive as before.
    const fixed = { subject: 'c'.repeat(64), keyId: 'key-fixed', key: Buffer.alloc(32, 7) };
    const before = {
      v: 1,
      keys: [{ subject: fixed.subject, keyId: 'key-fixed' }],
      iv: 'r4SJOUPUmwHOJRzo',
      ct: 'vGaW53hurw==',
      tag: 'CZM8DDYdY3Kdf2BCkNx8+Q==',
    } as Envelope;
    expect(sealFields('interaction.received', { a: 1 }, [fixed])).toEqual(before);
  });

  it('is deterministic for the same fields and keys (retries keep their payload hash), and differs otherwise', () => {
    const a = sealFields('interaction.received', fields, [alice, sales]);
    expect(sealFields('interaction.received', fields, [alice, sales])).toEqual(a);
    const b = sealFields('interaction.received', { ...fields, text: 'Call me on +44 20 7946 0001' }, [alice, sales]);
    expect(b.iv).not.toBe(a.iv);
  });

  it('refuses an altered ciphertext, tag or iv', () => {
    const env = sealFields('interaction.received', fields, [alice]);
    for (const bad of [
      { ...env, ct: flip(env.ct, 3) },
      { ...env, tag: flip(env.tag) },
      { ...env, iv: flip(env.iv) },
    ] as Envelope[]) {
      expect(() => openFields('interaction.received', bad, [alice.key])).toThrow(SealedPayloadError);
    }
  });

  it('refuses a changed key list or kind (both are authenticated), and a missing or wrong key', () => {
    const env = sealFields('ai.decision', { output: { summary: 'wants a quote' } }, [alice, sales]);
    expect(() =>
      openFields('ai.decision', { ...env, keys: [env.keys[1], env.keys[0]] as Envelope['keys'] }, [sales.key, alice.key]),
    ).toThrow(SealedPayloadError);
    expect(() => openFields('crm.write', env, [alice.key, sales.key])).toThrow(SealedPayloadError);
    expect(() => openFields('ai.decision', env, [alice.key])).toThrow(SealedPayloadError);
    expect(() => openFields('ai.decision', env, [alice.key, randomBytes(32)])).toThrow(/does not authenticate/);
  });
});
