import Database from 'better-sqlite3';
import type { AppendInput } from '../../src/journal/entry.ts';
import type { PayloadOf } from '../../src/journal/kinds.ts';
import { SOURCES } from '../../src/journal/source-catalog.ts';

/** A valid state.changed append, with the given idempotency key and correlation. */
export function stateChange(key: string, correlationId = 'c-1', to: PayloadOf<'state.changed'>['to'] = 'customer'): AppendInput {
  return {
    kind: 'state.changed',
    source: 'crm',
    actor: 'ops',
    correlationId,
    idempotencyKey: key,
    payload: { entity: 'contact/1', field: 'lifecyclestage', from: 'lead', to },
  };
}

/** A rule decision of roughly `bytes` bytes of payload. */
export function ruleDecision(key: string, correlationId: string, bytes = 800): AppendInput {
  return {
    kind: 'rule.decision',
    source: 'pipeline',
    actor: 'rules',
    correlationId,
    idempotencyKey: key,
    payload: { ruleId: 'mirror-leads', ruleVersion: '3', evaluated: { category: 'new_lead', note: 'x'.repeat(bytes) }, outcome: 'mirror' },
  };
}

/** A web form submission (class marketing-90d by the default policy) from `<key>@example.com`, dated `at`. */
export function formSubmission(key: string, correlationId: string, at: number, text = 'please call me'): AppendInput {
  return {
    kind: 'interaction.received',
    source: SOURCES.webform,
    actor: 'connector',
    correlationId,
    idempotencyKey: key,
    payload: {
      channel: 'form',
      sourceId: key,
      direction: 'inbound',
      occurredAt: new Date(at).toISOString(),
      participants: [{ role: 'submitter', address: `${key}@example.com` }],
      text,
    },
  };
}

/** How many entries the journal file at `path` holds in hot storage (read-only). */
export function hotEntryCount(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM entries').get() as { n: number }).n;
  } finally {
    db.close();
  }
}
