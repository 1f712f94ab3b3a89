import { describe, expect, it } from 'vitest';
import {
  CONTAINMENT_REASON,
  containable,
  containedPayload,
  containedPayloadProblem,
  parseContainedPayload,
  unsealedFieldsOf,
} from '../../src/journal/contained-payload.ts';
import { droppedPayload, parseDroppedPayload, pruneRecordOf } from '../../src/journal/dropped-payload.ts';
import { scanLines } from '../../src/cli/privacy-scan.ts';

const at = '2026-12-03T12:00:00.000Z';

describe('unsealedFieldsOf', () => {
  it('names the seal rule fields stored in clear, never their values; null and sealed fields are not findings', () => {
    expect(
      unsealedFieldsOf(
        'rule.decision',
        JSON.stringify({ ruleId: 'r', ruleVersion: '1', evaluated: {}, outcome: 'review', reason: 'quoting Bob' }),
      ),
    ).toEqual({ fields: ['reason'], byShape: false });
    expect(unsealedFieldsOf('ai.decision', JSON.stringify({ output: null, error: 'model said no' }))).toEqual({
      fields: ['error'],
      byShape: false,
    });
    expect(unsealedFieldsOf('ai.decision', JSON.stringify({ output: null, outcome: 'failed' }))).toBeNull();
    expect(unsealedFieldsOf('state.changed', JSON.stringify({ entity: 'contact/1', field: 'email', $sealed: { v: 1 } }))).toBeNull();
  });

  it("finds addresses and E.164 numbers in what stays in clear, by path, but not ids, counts or the journal's own entries", () => {
    expect(
      unsealedFieldsOf(
        'connector.health',
        JSON.stringify({ connector: 'hubspot', status: 'ok', reason: 'contact x.y@example.org refused' }),
      ),
    ).toEqual({ fields: ['reason'], byShape: true });
    expect(
      unsealedFieldsOf(
        'webhook.rejected',
        JSON.stringify({ endpoint: '/x', status: 400, reason: 'bad', list: [{ n: '+44 20 7946 0123' }] }),
      ),
    ).toEqual({ fields: ['list[0].n'], byShape: true });
    expect(
      unsealedFieldsOf(
        'crm.write',
        JSON.stringify({ system: 'hubspot', path: '/crm/v3/objects/contacts/a@b.co?idProperty=email', $sealed: {} }),
      ),
    ).toEqual({ fields: ['path'], byShape: true });
    expect(
      unsealedFieldsOf(
        'notification.sent',
        JSON.stringify({ recipient: 'sales-team', ruleId: 'r-12345678', jobs: 1234567890, id: '+1234' }),
      ),
    ).toBeNull();
    expect(unsealedFieldsOf('checkpoint.anchored', JSON.stringify({ anchor: 'mailto:ops@example.org' }))).toBeNull();
    expect(unsealedFieldsOf('rule.decision', droppedPayload({ at, policyVersion: 1 }))).toBeNull();
    expect(unsealedFieldsOf('rule.decision', 'not json')).toBeNull();
    // An address inside longer text is found; a run of word characters longer than any local part is not one.
    expect(
      unsealedFieldsOf('webhook.rejected', JSON.stringify({ endpoint: '/x', status: 400, reason: `${'x'.repeat(5000)} bob@example.com` })),
    ).toEqual({ fields: ['reason'], byShape: true });
    expect(
      unsealedFieldsOf(
        'webhook.rejected',
        JSON.stringify({ endpoint: '/x', status: 400, reason: `${'x'.repeat(5000)}@${'y'.repeat(5000)}` }),
      ),
    ).toBeNull();
  });
});

describe('unsealedFieldsOf: the connected inbox', () => {
  it('does not report the connected account kept in clear by design, but does report an address anywhere else', () => {
    expect(
      unsealedFieldsOf(
        'connector.health',
        JSON.stringify({ connector: 'gmail', account: 'sales@northwind.example', status: 'ok', reason: 'synced' }),
      ),
    ).toBeNull();
    expect(
      unsealedFieldsOf('inbox.connected', JSON.stringify({ connector: 'gmail', account: 'sales@northwind.example', scopes: [] })),
    ).toBeNull();
    expect(
      unsealedFieldsOf(
        'connector.health',
        JSON.stringify({
          connector: 'gmail',
          account: 'sales@northwind.example',
          status: 'failing',
          reason: 'dana@customer.example was refused',
        }),
      ),
    ).toEqual({ fields: ['reason'], byShape: true });
  });
});

describe('the contained marker and its verification rule', () => {
  const marker = containedPayload({ at, policyVersion: 2 });
  const record = pruneRecordOf(
    90,
    JSON.stringify({ segmentId: '2026-01', dropped: [[3, 3]], droppedAt: at, policyVersion: 2, reason: CONTAINMENT_REASON }),
  );
  const row = (kind: string, payload = marker, recordedAt = '2026-01-10T09:00:00.000Z') => ({
    seq: 3,
    kind,
    recorded_at: recordedAt,
    payload,
  });

  it('is exact canonical JSON, told apart from the expiry marker', () => {
    expect(parseContainedPayload(marker)).toEqual({ at, policyVersion: 2 });
    expect(parseDroppedPayload(marker)).toBeNull();
    expect(parseContainedPayload(droppedPayload({ at, policyVersion: 2 }))).toBeNull();
    expect(parseContainedPayload(marker.replace('{"$dropped"', '{ "$dropped"'))).toBeNull();
    expect(record?.reason).toBe(CONTAINMENT_REASON);
  });

  it('accepts it on a kind containment drops, listed with the same time and policy, recorded before; nothing else', () => {
    if (!record) throw new Error('no record');
    expect(containedPayloadProblem(row('crm.write'), record)).toBeNull();
    expect(containedPayloadProblem(row('crm.write', '{"properties":{}}'), record)).toBe('the payload does not match its hash');
    expect(
      containedPayloadProblem(row('crm.write', containedPayload({ at: '2026-12-04T00:00:00.000Z', policyVersion: 2 })), record),
    ).toMatch(/differs from the segment\.pruned entry at seq 90/);
    expect(containedPayloadProblem(row('checkpoint'), record)).toMatch(/kind checkpoint is never contained/);
    expect(containedPayloadProblem(row('privacy.erased'), record)).toMatch(/never contained/);
    expect(containedPayloadProblem(row('crm.write', marker, '2026-12-05T00:00:00.000Z'), record)).toMatch(/before the entry was recorded/);
    expect(containable('interaction.received')).toBe(true);
    expect(containable('segment.pruned')).toBe(false);
    expect(containable('no.such.kind')).toBe(false);
  });
});

describe('scanLines', () => {
  it('prints a field path a sender chose (an ESC, a newline) escaped, on its own line', () => {
    const u = unsealedFieldsOf(
      'rule.decision',
      JSON.stringify({ ruleId: 'r', ruleVersion: '1', outcome: 'x', evaluated: { '\u001b]52;c;x\u0007\nUNSEALED seq 999': 'a@b.co' } }),
    );
    expect(u?.byShape).toBe(true);
    const lines = scanLines('/j.sqlite', {
      hotEntries: 1,
      segments: [],
      contained: [],
      findings: [
        {
          seq: 4,
          kind: 'rule.decision',
          recordedAt: at,
          fields: u?.fields ?? [],
          byShape: true,
          where: 'hot',
          segmentId: null,
          month: '2026-12',
          containable: true,
        },
      ],
    });
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/^UNSEALED seq 4 /);
    // eslint-disable-next-line no-control-regex -- looking for raw control characters is the point
    expect(lines.join('\n')).not.toMatch(/[\u0007\u001b]/);
    expect(lines[1]).toContain('\\u001b]52');
    expect(lines[1]).not.toContain('a@b.co');
  });
});
