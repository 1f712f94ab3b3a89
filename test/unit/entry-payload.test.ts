/**
 * Appends are typed by kind (AppendInput), and readers narrow an entry to its kind (isKind, payloadOf, findKind,
 * filterKind). The type checks here are checked by `tsc` (test/ is in tsconfig.json): a wrong payload for a kind
 * does not compile. The narrowing helpers are checked at run time.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { AppendInput, JournalEntry } from '../../src/journal/entry.ts';
import { filterKind, findKind, isKind, payloadOf, type EntryOf, type EntryPayload } from '../../src/journal/entry-payload.ts';
import { EntryKindError } from '../../src/journal/errors/entry-kind.error.ts';
import type { JournalClient } from '../../src/journal/journal-client.ts';
import type { PayloadOf } from '../../src/journal/kinds.ts';

const header = { source: 'crm', actor: 'ops', correlationId: 'c-1' } as const;

function entry(seq: number, kind: JournalEntry['kind'], payload: unknown): JournalEntry {
  return {
    seq,
    id: `e-${seq}`,
    recordedAt: '2026-01-01T00:00:00.000Z',
    occurredAt: '2026-01-01T00:00:00.000Z',
    kind,
    source: 'test',
    actor: 'test',
    correlationId: 'c-1',
    causationId: null,
    idempotencyKey: `k-${seq}`,
    retentionClass: 'standard',
    payload,
    payloadHash: '0'.repeat(64),
    leafHash: '0'.repeat(64),
    chainHash: '0'.repeat(64),
  };
}

describe('typed appends', () => {
  it('check the payload against the kind it names', () => {
    const ok: AppendInput = {
      ...header,
      kind: 'state.changed',
      payload: { entity: 'contact/1', field: 'stage', from: 'lead', to: 'customer' },
    };
    expectTypeOf(ok).toExtend<AppendInput>();
    expectTypeOf<AppendInput<'state.changed'>['payload']>().toEqualTypeOf<PayloadOf<'state.changed'>>();

    const change = { entity: 'contact/1', field: 'stage', from: 'lead', to: 'customer' };
    // @ts-expect-error a state.changed payload is not an ai.decision payload
    const wrongKind: AppendInput = { ...header, kind: 'ai.decision', payload: change };
    // @ts-expect-error an unknown kind
    const unknownKind: AppendInput = { ...header, kind: 'email.sent', payload: {} };
    // @ts-expect-error a field the strict schema does not have
    const extraField: AppendInput = { ...header, kind: 'state.changed', payload: { entity: 'e', field: 'f', from: 1, to: 2, note: 'x' } };
    // @ts-expect-error a payload without the kind's required fields
    const missing: AppendInput<'human.override'> = { ...header, kind: 'human.override', payload: { supersedes: 'd-1' } };
    expect([wrongKind, unknownKind, extraField, missing]).toHaveLength(4);

    // What arrives untyped goes in through appendReceived (validated by the journal like every append).
    expectTypeOf<Parameters<JournalClient['appendReceived']>[0]>().toBeUnknown();
    expectTypeOf<Parameters<JournalClient['append']>[0]>().toEqualTypeOf<AppendInput>();
  });
});

describe('typed reads', () => {
  const decision = entry(1, 'ai.decision', { inputEntryId: 'e-0', outcome: 'ok', output: { category: 'billing' } });
  const override = entry(2, 'human.override', { supersedes: 'e-1', field: 'category', from: 'billing', to: 'spam', reason: 'r' });
  const erased = entry(3, 'human.override', {
    supersedes: 'e-1',
    field: 'category',
    from: 'billing',
    to: 'other',
    erased: true,
    erasedAt: 'x',
  });
  const chain = [decision, override, erased];

  it('isKind narrows an entry to its kind, its payload typed', () => {
    expect(isKind(decision, 'ai.decision')).toBe(true);
    expect(isKind(decision, 'human.override')).toBe(false);
    expect(isKind(override, 'ai.decision', 'human.override')).toBe(true);
    expect(isKind(null, 'ai.decision')).toBe(false);
    expect(isKind(undefined, 'ai.decision')).toBe(false);
    if (!isKind(override, 'human.override')) throw new Error('narrowing failed');
    expectTypeOf(override).toEqualTypeOf<EntryOf<'human.override'>>();
    expectTypeOf(override.payload).toEqualTypeOf<EntryPayload<'human.override'>>();
    // Not personal: always there unless the payload was dropped. Personal (sealed): may be withheld.
    expectTypeOf(override.payload.supersedes).toEqualTypeOf<string | undefined>();
    expectTypeOf(override.payload.reason).toEqualTypeOf<string | undefined>();
    expect(override.payload.supersedes).toBe('e-1');
  });

  it('payloadOf gives the typed payload, and throws on another kind', () => {
    const p = payloadOf(decision, 'ai.decision');
    expectTypeOf(p).toEqualTypeOf<EntryPayload<'ai.decision'>>();
    expect(p.outcome).toBe('ok');
    expect(() => payloadOf(decision, 'human.override')).toThrow(EntryKindError);
    expect(() => payloadOf(decision, 'human.override')).toThrow('entry e-1 is a ai.decision, not a human.override');
  });

  it('a union of kinds narrows by testing the kind', () => {
    const e = chain.find((x) => x.id === 'e-2');
    if (!isKind(e, 'ai.decision', 'human.override')) throw new Error('narrowing failed');
    if (e.kind === 'human.override') expectTypeOf(e.payload).toEqualTypeOf<EntryPayload<'human.override'>>();
    else expectTypeOf(e.payload).toEqualTypeOf<EntryPayload<'ai.decision'>>();
    expect(e.kind).toBe('human.override');
  });

  it('findKind and filterKind pick entries of a kind that pass a test, in order', () => {
    expect(findKind(chain, 'human.override')?.id).toBe('e-2');
    expect(findKind(chain, 'human.override', (x) => x.payload.to === 'other')?.id).toBe('e-3');
    expect(findKind(chain, 'crm.write')).toBeUndefined();
    expect(filterKind(chain, 'human.override').map((x) => x.id)).toEqual(['e-2', 'e-3']);
    expect(filterKind(chain, ['ai.decision', 'human.override'], (x) => x.seq > 1).map((x) => x.id)).toEqual(['e-2', 'e-3']);
    // A withheld payload carries its marker: the reader can tell.
    const withheld = filterKind(chain, 'human.override').filter((x) => 'erased' in x.payload);
    expect(withheld.map((x) => x.id)).toEqual(['e-3']);
  });
});
