import { describe, expect, it } from 'vitest';
import { RetentionPolicy, expiryOf } from '../../src/journal/retention.ts';
import { DEFAULT_RETENTION_PATH } from '../../src/config/config.ts';

const shipped = RetentionPolicy.load(DEFAULT_RETENTION_PATH);
const DAY = 86_400_000;

describe('retention policy', () => {
  it('maps kind and source to a class: first matching rule, prefix sources, else the kind default', () => {
    expect(shipped.classify('interaction.received', 'forms/webflow')).toBe('marketing-90d');
    expect(shipped.classify('interaction.received', 'gmail')).toBe('sales-2y');
    expect(shipped.classify('state.changed', 'crm')).toBe('standard');
    expect(shipped.classify('checkpoint', 'journal')).toBe('permanent');
  });

  it('refuses a rule naming an undefined class, an unknown kind, or a policy missing a default class', () => {
    expect(() => RetentionPolicy.parse({ ...shipped.doc, rules: [{ kind: 'crm.write', class: 'nope' }] })).toThrow(/class nope is not defined/);
    expect(() => RetentionPolicy.parse({ ...shipped.doc, rules: [{ kind: 'crm.nope', class: 'standard' }] })).toThrow(/unknown kind/);
    const { permanent: _p, ...classes } = shipped.doc.classes;
    expect(() => RetentionPolicy.parse({ ...shipped.doc, classes })).toThrow(/permanent/);
  });

  it('a later version may lengthen an entry\'s retention but never shortens it', () => {
    const v1 = { version: 1, seq: 1, policy: shipped };
    const shorter = RetentionPolicy.parse({ ...shipped.doc, version: 2, classes: { ...shipped.doc.classes, 'marketing-90d': { days: 30, onExpiry: 'drop-payload' } } });
    const longer = RetentionPolicy.parse({ ...shipped.doc, version: 3, classes: { ...shipped.doc.classes, 'marketing-90d': { days: 365, onExpiry: 'drop-payload' } } });
    const entry = { seq: 5, recordedAt: '2026-01-01T00:00:00.000Z', retentionClass: 'marketing-90d' };
    const t0 = Date.parse(entry.recordedAt);
    expect(expiryOf(entry, [v1]).expiresAt).toBe(t0 + 90 * DAY);
    expect(expiryOf(entry, [v1, { version: 2, seq: 10, policy: shorter }]).expiresAt).toBe(t0 + 90 * DAY);
    expect(expiryOf(entry, [v1, { version: 2, seq: 10, policy: shorter }, { version: 3, seq: 20, policy: longer }]).expiresAt).toBe(t0 + 365 * DAY);
    // An entry appended under the shorter version gets the shorter promise.
    expect(expiryOf({ ...entry, seq: 11 }, [v1, { version: 2, seq: 10, policy: shorter }]).expiresAt).toBe(t0 + 30 * DAY);
    expect(expiryOf({ ...entry, retentionClass: 'permanent' }, [v1]).expiresAt).toBeNull();
    expect(expiryOf({ ...entry, retentionClass: 'unknown-class' }, [v1])).toEqual({ expiresAt: null, onExpiry: 'keep' });
  });
});
