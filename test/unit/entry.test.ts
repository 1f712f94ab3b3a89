import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { canonicalHeader, headerObject, prepareEntry, uuidv7 } from '../../src/journal/entry.ts';
import { canonicalize } from '../../src/journal/canonical.ts';
import { EntryValidationError } from '../../src/journal/errors/entry-validation.error.ts';
import { stateChange } from '../helpers/entries.ts';
import { sealFields, SEALED } from '../../src/journal/sealed-payload.ts';
import { randomBytes } from 'node:crypto';

const opts = { maxPayloadBytes: 4096 };

function refusal(input: unknown): EntryValidationError {
  try {
    prepareEntry(input, opts);
  } catch (err) {
    if (err instanceof EntryValidationError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('prepareEntry', () => {
  it('accepts a valid entry and hashes its canonical payload', () => {
    const p = prepareEntry(stateChange('k-1'), opts);
    expect(p.kind).toBe('state.changed');
    expect(p.payloadText).toBe('{"entity":"contact/1","field":"lifecyclestage","from":"lead","to":"customer"}');
    expect(p.payloadHash).toMatch(/^[0-9a-f]{64}$/);
    expect(p.retentionClass).toBe('standard');
  });

  it('counts sealed fields at their plain size: sealing never makes an entry the limit admits too large', () => {
    const key = { subject: 'a'.repeat(64), keyId: 'k1', key: randomBytes(32) };
    const seal = (kind: string, payload: unknown): unknown => {
      const { from, to, ...rest } = payload as Record<string, unknown>;
      return { ...rest, [SEALED]: sealFields(kind, { from, to }, [key]) };
    };
    const input = stateChange('k-big', 'c-1', 'z'.repeat(9_000));
    const plain = Buffer.byteLength(canonicalize(input.payload));
    const sealed = prepareEntry(input, { maxPayloadBytes: plain + 400, seal });
    expect(Buffer.byteLength(sealed.payloadText)).toBeGreaterThan(plain * 1.3); // stored: base64 and the envelope
    // The limit still holds for the plain text itself.
    expect(() => prepareEntry(stateChange('k-big2', 'c-1', 'z'.repeat(10_000)), { maxPayloadBytes: plain + 400, seal })).toThrow(
      /the limit is/,
    );
  });

  it('refuses unknown kinds, listing the known ones', () => {
    const e = refusal({ ...stateChange('k'), kind: 'email.sent' });
    expect(e.code).toBe('UNKNOWN_KIND');
    expect(e.message).toMatch(/known kinds: .*state\.changed/);
  });

  it('refuses kinds only the journal writes', () => {
    expect(refusal({ ...stateChange('k'), kind: 'checkpoint' }).code).toBe('INTERNAL_KIND');
  });

  it('reports every problem at once, each naming its field', () => {
    const e = refusal({
      kind: 'state.changed',
      source: 'has space',
      actor: '',
      correlationId: 'c',
      payload: { entity: 'x', field: 'y', from: 1 },
      extra: 1,
    });
    expect(e.code).toBe('INVALID_ENTRY');
    expect(e.issues.some((i) => i.startsWith('source:'))).toBe(true);
    expect(e.issues.some((i) => i.startsWith('actor:'))).toBe(true);
    expect(e.issues.some((i) => i.startsWith('extra:'))).toBe(true);
    expect(e.issues.some((i) => i.startsWith('payload.to:'))).toBe(true);
  });

  it('refuses invalid payloads and unknown payload fields', () => {
    expect(refusal({ ...stateChange('k'), payload: { entity: 'x', field: 'y', from: 1, to: 2, surprise: true } }).code).toBe(
      'INVALID_PAYLOAD',
    );
    expect(refusal({ ...stateChange('k'), payload: 'text' }).code).toBe('INVALID_PAYLOAD');
  });

  it('refuses identifiers with lone surrogates (they have no canonical form)', () => {
    expect(refusal({ ...stateChange('k'), correlationId: 'c-\ud800' }).issues[0]).toMatch(/correlationId/);
  });

  it('refuses oversized payloads', () => {
    expect(refusal({ ...stateChange('k'), payload: { entity: 'x', field: 'y', from: 'a', to: 'b'.repeat(5000) } }).code).toBe(
      'ENTRY_TOO_LARGE',
    );
  });

  it('normalises occurredAt to UTC and refuses timestamps without a zone', () => {
    expect(prepareEntry({ ...stateChange('k'), occurredAt: '2026-01-31T10:30:00+01:00' }, opts).occurredAt).toBe(
      '2026-01-31T09:30:00.000Z',
    );
    expect(refusal({ ...stateChange('k'), occurredAt: '2026-01-31 10:30' }).issues[0]).toMatch(/occurredAt/);
  });

  it('derives the same idempotency key for the same content, a different one for different content', () => {
    const { idempotencyKey: _, ...noKey } = stateChange('unused');
    const a = prepareEntry(noKey, opts);
    const b = prepareEntry({ ...noKey }, opts);
    const c = prepareEntry({ ...noKey, payload: { entity: 'contact/1', field: 'lifecyclestage', from: 'lead', to: 'other' } }, opts);
    expect(a.derivedKey).toBe(true);
    expect(a.idempotencyKey).toBe(b.idempotencyKey);
    expect(a.idempotencyKey).not.toBe(c.idempotencyKey);
  });
});

describe('canonicalHeader', () => {
  it('is the documented RFC 8785 object with v = 1', () => {
    const text = canonicalHeader({
      seq: 3,
      id: 'i',
      recordedAt: 'r',
      occurredAt: 'o',
      kind: 'state.changed',
      source: 's',
      actor: 'a',
      correlationId: 'c',
      causationId: null,
      idempotencyKey: 'k',
      retentionClass: 'standard',
      payloadHash: 'ab',
    });
    expect(text).toBe(
      '{"actor":"a","causationId":null,"correlationId":"c","id":"i","idempotencyKey":"k","kind":"state.changed","occurredAt":"o","payloadHash":"ab","recordedAt":"r","retentionClass":"standard","seq":3,"source":"s","v":1}',
    );
  });
});

describe('canonicalHeader, written out for speed', () => {
  it('is byte-for-byte the RFC 8785 encoding of the header object, for any field values', () => {
    const text = fc.string({ unit: 'grapheme', maxLength: 40 });
    fc.assert(
      fc.property(
        fc.record({
          seq: fc.nat(),
          id: text,
          recordedAt: text,
          occurredAt: text,
          kind: text,
          source: text,
          actor: text,
          correlationId: text,
          causationId: fc.option(text, { nil: null }),
          idempotencyKey: fc.string({ unit: 'binary', maxLength: 40 }),
          retentionClass: text,
          payloadHash: text,
        }),
        (h) => {
          expect(canonicalHeader(h)).toBe(canonicalize(headerObject(h)));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('refuses a lone surrogate like canonicalize does', () => {
    const h = {
      seq: 1,
      id: 'i',
      recordedAt: 'r',
      occurredAt: 'o',
      kind: 'k',
      source: 's',
      actor: 'a\ud800',
      correlationId: 'c',
      causationId: null,
      idempotencyKey: 'k',
      retentionClass: 'standard',
      payloadHash: 'ab',
    };
    expect(() => canonicalHeader(h)).toThrow(/lone surrogate/);
  });
});

describe('uuidv7', () => {
  it('is a version-7 UUID and sorts in creation order, even within one millisecond', () => {
    const ids = Array.from({ length: 1000 }, () => uuidv7(1_700_000_000_000));
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
