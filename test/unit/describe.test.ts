/** The one-line descriptions of `trace`: a field that is erased, unreadable, sealed or simply absent never prints as "undefined". */
import { describe, expect, it } from 'vitest';
import { describeEntry } from '../../src/cli/describe.ts';
import { KINDS, type EntryKind } from '../../src/journal/kinds.ts';
import type { JournalEntry } from '../../src/journal/entry.ts';

const entry = (kind: EntryKind, payload: unknown): JournalEntry => ({
  seq: 7,
  id: 'e-7',
  recordedAt: '2026-11-20T10:00:00.000Z',
  occurredAt: '2026-11-20T10:00:00.000Z',
  kind,
  source: 'test',
  actor: 'test',
  correlationId: 'c-1',
  causationId: null,
  idempotencyKey: 'k-7',
  retentionClass: 'standard',
  payload,
  payloadHash: '',
  leafHash: '',
  chainHash: '',
});

const ERASED = { erased: true, erasedAt: '2026-12-01T09:30:00.000Z' };

describe('describeEntry', () => {
  it('an override whose reason was erased says so, not "because undefined"', () => {
    const line = describeEntry(entry('human.override', { supersedes: 'd-1', field: 'category', from: 'support', to: 'sales', ...ERASED }));
    expect(line).toBe(
      '[personal data erased on 2026-12-01T09:30:00.000Z] overrides d-1: category "support" → "sales"; reason erased on 2026-12-01',
    );
    expect(
      describeEntry(entry('human.override', { supersedes: 'd-1', field: 'category', from: 'support', to: 'sales', reason: 'wrong team' })),
    ).toBe('overrides d-1: category "support" → "sales" because "wrong team"');
  });

  it('the sealed fields of each kind say why they are missing: erased, unavailable or still sealed', () => {
    expect(describeEntry(entry('state.changed', { entity: 'contact/1', field: 'lifecyclestage', ...ERASED }))).toMatch(
      /contact\/1 lifecyclestage: changed \(values erased on 2026-12-01\)$/,
    );
    expect(
      describeEntry(entry('job.failed', { queue: 'mirror', jobId: 'j-1', attempts: 4, finality: 'exhausted', unavailable: 'key-missing' })),
    ).toMatch(/\(exhausted\); error unavailable \(key-missing\)$/);
    expect(describeEntry(entry('rule.decision', { ruleId: 'r', ruleVersion: 1, outcome: 'exclude', $sealed: { v: 1 } }))).toBe(
      'rule r@1 → exclude (reason sealed (no key store here to open it))',
    );
    expect(describeEntry(entry('interaction.received', { direction: 'inbound', channel: 'email', sourceId: 'm-1', ...ERASED }))).toMatch(
      /inbound email m-1, participants erased on 2026-12-01$/,
    );
    expect(describeEntry(entry('crm.write_failed', { method: 'POST', path: '/crm/v3/objects/emails', status: 400, ...ERASED }))).toMatch(
      /→ 400 failed \(error erased on 2026-12-01\)$/,
    );
  });

  it('no kind prints "undefined", whatever is missing from its payload', () => {
    for (const kind of Object.keys(KINDS) as EntryKind[]) {
      for (const payload of [{}, ERASED, { unavailable: 'does-not-authenticate' }, { $sealed: { v: 1 } }, null]) {
        expect(describeEntry(entry(kind, payload)), `${kind} ${JSON.stringify(payload)}`).not.toMatch(/undefined/);
      }
    }
  });
});
