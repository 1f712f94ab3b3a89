import { describe, expect, it } from 'vitest';
import { RetentionPolicy, describeRule, expiryOf } from '../../src/journal/retention.ts';
import { DEFAULT_RETENTION_PATH } from '../../src/config/config.ts';
import { INTERACTION_SOURCES, SOURCES } from '../../src/journal/source-catalog.ts';
import { Privacy, personalFieldsOf } from '../../src/journal/privacy.ts';
import { SealedPayloadError } from '../../src/journal/errors/sealed-payload.error.ts';
import type { EntryKind } from '../../src/journal/kinds.ts';

const shipped = RetentionPolicy.load(DEFAULT_RETENTION_PATH);
const DAY = 86_400_000;

describe('retention policy', () => {
  it('maps kind and source to a class: first matching rule, prefix sources, else the kind default', () => {
    const p = RetentionPolicy.parse({
      ...shipped.doc,
      rules: [
        { kind: 'interaction.received', source: 'forms*', class: 'marketing-90d' },
        { sources: ['a', 'b*'], class: 'financial-7y' },
        ...shipped.doc.rules,
      ],
    });
    expect(p.classify('interaction.received', 'forms/webflow')).toBe('marketing-90d');
    expect(p.classify('crm.write', 'a')).toBe('financial-7y');
    expect(p.classify('crm.write', 'bee')).toBe('financial-7y');
    expect(p.classify('crm.write', 'ab')).toBe('sales-2y');
    expect(shipped.classify('interaction.received', 'gmail')).toBe('sales-2y');
    expect(shipped.classify('state.changed', 'crm')).toBe('standard');
    expect(shipped.classify('checkpoint', 'journal')).toBe('permanent');
  });

  it('refuses a rule naming an undefined class, an unknown kind, or a policy missing a default class', () => {
    expect(() => RetentionPolicy.parse({ ...shipped.doc, rules: [{ kind: 'crm.write', class: 'nope' }] })).toThrow(
      /class nope is not defined/,
    );
    expect(() => RetentionPolicy.parse({ ...shipped.doc, rules: [{ kind: 'crm.nope', class: 'standard' }] })).toThrow(/unknown kind/);
    const { permanent: _p, ...classes } = shipped.doc.classes;
    expect(() => RetentionPolicy.parse({ ...shipped.doc, classes })).toThrow(/permanent/);
  });

  it("a later version may lengthen an entry's retention but never shortens it", () => {
    const v1 = { version: 1, seq: 1, policy: shipped };
    const shorter = RetentionPolicy.parse({
      ...shipped.doc,
      version: 2,
      classes: { ...shipped.doc.classes, 'marketing-90d': { days: 30, onExpiry: 'drop-payload' } },
    });
    const longer = RetentionPolicy.parse({
      ...shipped.doc,
      version: 3,
      classes: { ...shipped.doc.classes, 'marketing-90d': { days: 365, onExpiry: 'drop-payload' } },
    });
    const entry = { seq: 5, recordedAt: '2026-01-01T00:00:00.000Z', retentionClass: 'marketing-90d' };
    const t0 = Date.parse(entry.recordedAt);
    expect(expiryOf(entry, [v1]).expiresAt).toBe(t0 + 90 * DAY);
    expect(expiryOf(entry, [v1, { version: 2, seq: 10, policy: shorter }]).expiresAt).toBe(t0 + 90 * DAY);
    expect(expiryOf(entry, [v1, { version: 2, seq: 10, policy: shorter }, { version: 3, seq: 20, policy: longer }]).expiresAt).toBe(
      t0 + 365 * DAY,
    );
    // An entry appended under the shorter version gets the shorter promise.
    expect(expiryOf({ ...entry, seq: 11 }, [v1, { version: 2, seq: 10, policy: shorter }]).expiresAt).toBe(t0 + 30 * DAY);
    expect(expiryOf({ ...entry, retentionClass: 'permanent' }, [v1]).expiresAt).toBeNull();
    expect(expiryOf({ ...entry, retentionClass: 'unknown-class' }, [v1])).toEqual({
      expiresAt: null,
      onExpiry: 'keep',
      retentionClass: 'unknown-class',
    });
  });

  it('every source the product writes gets the class the catalogue documents (by its channel, and by the source alone)', () => {
    const sources = Object.entries(INTERACTION_SOURCES);
    expect(sources.length).toBeGreaterThanOrEqual(8);
    for (const [source, spec] of sources) {
      expect({ source, cls: shipped.classify('interaction.received', source, spec.channel) }).toEqual({ source, cls: spec.retentionClass });
      expect({ source, cls: shipped.classify('interaction.received', source) }).toEqual({ source, cls: spec.retentionClass });
    }
    // Every form source is marketing-90d (the finding: webform and the polled forms were sales-2y).
    for (const s of [SOURCES.webform, SOURCES.hubspotForms, SOURCES.googleForms])
      expect(shipped.classify('interaction.received', s, 'form')).toBe('marketing-90d');
    // A form interaction from a source not catalogued yet is still a form: the channel decides.
    expect(shipped.classify('interaction.received', 'typeform', 'form')).toBe('marketing-90d');
    expect(shipped.classify('interaction.received', 'typeform', 'email')).toBe('sales-2y');
  });

  it('finds rules that decide nothing the product writes: no source matches, or earlier rules decide all they match', () => {
    expect(shipped.unmatchedRules()).toEqual([]);
    // The version-1 rule: no source the product writes starts with "forms".
    const v1 = RetentionPolicy.parse({
      ...shipped.doc,
      version: 1,
      rules: [{ kind: 'interaction.received', source: 'forms*', class: 'marketing-90d' }, ...shipped.doc.rules.slice(1)],
    });
    const found = v1.unmatchedRules();
    expect(found.map((u) => u.index)).toEqual([0]);
    expect(describeRule(found[0] as (typeof found)[number])).toBe(
      'rules[0] {kind interaction.received, source forms*} -> marketing-90d: matches no source the product writes',
    );
    // Shadowed: every interaction is decided by the kind-wide rule before it.
    const shadowed = RetentionPolicy.parse({
      ...shipped.doc,
      rules: [
        { kind: 'interaction.received', class: 'sales-2y' },
        { kind: 'interaction.received', channel: 'call', class: 'financial-7y' },
      ],
    });
    expect(shadowed.unmatchedRules().map((u) => [u.index, u.reason])).toEqual([
      [1, 'every entry it matches is decided by an earlier rule'],
    ]);
  });

  it('categories raise a class; a category or class that does not exist is refused', () => {
    expect(shipped.classForCategory('billing')).toBe('financial-7y');
    expect(shipped.classForCategory('new_lead')).toBeNull();
    expect(() => RetentionPolicy.parse({ ...shipped.doc, categories: { billing: 'nope' } })).toThrow(/class nope is not defined/);
    expect(() => RetentionPolicy.parse({ ...shipped.doc, categories: { invoices: 'financial-7y' } })).toThrow(/categories/);
  });

  it('an entry keeps its longest promise: a retention.assigned raises it, a shorter one changes nothing', () => {
    const v1 = { version: 1, seq: 1, policy: shipped };
    const t0 = Date.parse('2026-01-01T00:00:00.000Z');
    const form = { seq: 5, recordedAt: '2026-01-01T00:00:00.000Z', retentionClass: 'marketing-90d' };
    expect(expiryOf(form, [v1])).toEqual({ expiresAt: t0 + 90 * DAY, onExpiry: 'drop-payload', retentionClass: 'marketing-90d' });
    // Raised to financial-7y: counted from the entry's own recordedAt, and the payload is kept.
    expect(expiryOf(form, [v1], [{ seq: 9, retentionClass: 'financial-7y' }])).toEqual({
      expiresAt: t0 + 2557 * DAY,
      onExpiry: 'keep',
      retentionClass: 'financial-7y',
    });
    // A shrinking assignment (sales-2y down to marketing-90d) is without effect.
    const sale = { ...form, retentionClass: 'sales-2y' };
    expect(expiryOf(sale, [v1], [{ seq: 9, retentionClass: 'marketing-90d' }])).toEqual({
      expiresAt: t0 + 731 * DAY,
      onExpiry: 'keep',
      retentionClass: 'sales-2y',
    });
    // Several: the longest wins whatever their order.
    expect(
      expiryOf(
        form,
        [v1],
        [
          { seq: 9, retentionClass: 'financial-7y' },
          { seq: 10, retentionClass: 'sales-2y' },
        ],
      ).retentionClass,
    ).toBe('financial-7y');
    expect(expiryOf(form, [v1], [{ seq: 9, retentionClass: 'permanent' }]).expiresAt).toBeNull();
  });

  it('privacy knows every kind: retention.assigned has no personal fields, and a kind without a rule is refused, not stored unsealed', () => {
    expect(personalFieldsOf('retention.assigned' satisfies EntryKind)).toEqual([]);
    const privacy = new Privacy(() => {
      throw new Error('no key store needed');
    });
    const linked = { byId: () => null, byCorrelation: () => [] };
    const payload = { entryId: 'x', entrySeq: 3, retentionClass: 'financial-7y', rule: 'categories.billing', policyVersion: 2 };
    expect(privacy.seal('retention.assigned', payload, { causationId: null, correlationId: 'c' }, linked)).toBe(payload);
    expect(() => privacy.seal('no.such-kind' as EntryKind, payload, { causationId: null, correlationId: 'c' }, linked)).toThrow(
      SealedPayloadError,
    );
  });
});
