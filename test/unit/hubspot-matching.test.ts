/**
 * HubSpot's matching rules without HTTP: what the lookups found goes in as plain maps, the rules' decision and
 * its journal entry come out.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  contactIdsOf,
  contactsToCreate,
  domainOf,
  domainsToLookUp,
  emailsToLookUp,
  matchDecision,
  matchPlan,
  oldestRecord,
  type KnownRecords,
  type MatchRules,
} from '../../connectors/hubspot/matching.ts';
import type { MirrorPlan } from '../../src/pipeline/ports.ts';

const plan = (counterparts: string[], extra: Partial<MirrorPlan> = {}): MirrorPlan => {
  const entryId = randomUUID();
  return {
    entryId,
    entrySeq: 1,
    correlationId: `t/${entryId}`,
    decisionEntryId: randomUUID(),
    decisionSeq: 2,
    direction: 'inbound',
    objectType: 'emails',
    properties: { journal_entry_id: entryId },
    counterparts,
    category: 'new_lead',
    ...extra,
  };
};

function known(records: {
  contacts?: Record<string, string | null>;
  companies?: Record<string, string[]>;
  deals?: Record<string, { candidates: string[]; open: string[] }>;
}): KnownRecords {
  return {
    contactOf: (email) => records.contacts?.[email],
    companiesOf: (domain) => records.companies?.[domain],
    dealsOf: (id) => records.deals?.[id],
  };
}

const rules = (o: Partial<MatchRules> = {}): MatchRules => ({ createContacts: 'never', dealRule: 'single-open-deal', ...o });

describe('what the matcher looks up', () => {
  it('looks contacts up by the email counterparts, once each, never for phone numbers or overridden plans', () => {
    const override = {
      entryId: randomUUID(),
      actor: 'user:rita',
      reason: 'the other buyer',
      from: { contacts: [], companies: [], deals: [] },
      to: { contacts: ['7'], companies: [], deals: [] },
      remove: { contacts: [], companies: [], deals: [] },
    };
    const plans = [
      plan(['a@x.example', '+4915112345678', 'b@y.example']),
      plan(['a@x.example']),
      plan(['c@z.example'], { associationOverride: override }),
    ];
    expect(emailsToLookUp(plans)).toEqual(['a@x.example', 'b@y.example']);
  });

  it('creates only the contacts HubSpot lacks that the create-contacts rule allows', () => {
    const inbound = plan(['new@x.example', 'known@x.example']);
    const outbound = plan(['out@x.example'], { direction: 'outbound' });
    const emails = emailsToLookUp([inbound, outbound]);
    const k = known({ contacts: { 'new@x.example': null, 'known@x.example': '1', 'out@x.example': null } });
    expect(contactsToCreate([inbound, outbound], emails, 'never', k)).toEqual([]);
    expect(contactsToCreate([inbound, outbound], emails, 'inbound', k)).toEqual(['new@x.example']);
    expect(contactsToCreate([inbound, outbound], emails, 'always', k)).toEqual(['new@x.example', 'out@x.example']);
    // An address not looked up yet (undefined) is not "missing": nothing is created for it.
    expect(contactsToCreate([inbound], emails, 'always', known({}))).toEqual([]);
  });

  it("looks companies up by the domains of matched contacts, and deals by the contacts' ids", () => {
    const k = known({ contacts: { 'a@x.example': '1', 'b@x.example': '2', 'c@y.example': null } });
    const emails = ['a@x.example', 'b@x.example', 'c@y.example'];
    expect(domainsToLookUp(emails, k)).toEqual(['x.example']);
    expect(contactIdsOf(emails, k)).toEqual(['1', '2']);
    expect(domainOf('first.last@sub.x.example')).toBe('sub.x.example');
  });
});

describe('the matching rules', () => {
  it('matches contacts by email, companies by their domain (the oldest record wins a tie), and explains it', () => {
    const p = plan(['a@acme.example', '+4915112345678', 'nobody@acme.example']);
    const m = matchPlan(
      p,
      known({ contacts: { 'a@acme.example': '11', 'nobody@acme.example': null }, companies: { 'acme.example': ['905', '88', '120'] } }),
      rules({ dealRule: 'none' }),
    );
    expect(m.contacts).toEqual(['11']);
    expect(m.companies).toEqual(['88']);
    expect(m.deals).toEqual([]);
    expect(m.evaluated).toMatchObject({ counterparts: 3, contactCandidates: ['11'], companyCandidates: ['905', '88', '120'] });
    expect(m.reasons).toEqual([
      "3 companies share the contact's domain: the oldest (lowest id) wins",
      '1 phone number(s) not matched (contacts are matched by email)',
      '1 address(es) without a HubSpot contact; create-contacts rule is "never"',
    ]);
    expect(oldestRecord(['10', '9', '100'])).toBe('9');
  });

  it('associates a deal only when the contacts have exactly one open deal', () => {
    const contacts = { 'a@x.example': '1', 'b@x.example': '2' };
    const one = matchPlan(
      plan(['a@x.example', 'b@x.example']),
      known({ contacts, deals: { '1': { candidates: ['d1', 'd2'], open: ['d1'] }, '2': { candidates: ['d1'], open: ['d1'] } } }),
      rules(),
    );
    expect(one.deals).toEqual(['d1']);
    expect(one.evaluated).toMatchObject({ dealCandidates: ['d1', 'd2'], openDeals: ['d1'] });
    expect(one.reasons).toContain('the contacts have exactly one open deal: associated');

    const two = matchPlan(
      plan(['a@x.example', 'b@x.example']),
      known({ contacts, deals: { '1': { candidates: ['d1'], open: ['d1'] }, '2': { candidates: ['d2'], open: ['d2'] } } }),
      rules(),
    );
    expect(two.deals).toEqual([]);
    expect(two.reasons).toContain('the contacts have 2 open deals: no deal associated (the rule needs exactly one)');

    const off = matchPlan(
      plan(['a@x.example']),
      known({ contacts, deals: { '1': { candidates: ['d1'], open: ['d1'] } } }),
      rules({ dealRule: 'none' }),
    );
    expect(off.deals).toEqual([]);
    expect(off.reasons).toEqual([]);
  });

  it("a reviewer's override wins over every rule, and its decision is keyed by the override", () => {
    const overrideId = randomUUID();
    const p = plan(['a@x.example'], {
      associationOverride: {
        entryId: overrideId,
        actor: 'user:rita',
        reason: 'the other buyer',
        from: { contacts: ['1'], companies: [], deals: [] },
        to: { contacts: ['2'], companies: ['c9'], deals: [] },
        remove: { contacts: ['1'], companies: [], deals: [] },
      },
    });
    const m = matchPlan(p, known({ contacts: { 'a@x.example': '1' } }), rules());
    expect([m.contacts, m.companies, m.deals]).toEqual([['2'], ['c9'], []]);
    const d = matchDecision(p, m, rules());
    expect(d).toMatchObject({
      kind: 'rule.decision',
      causationId: overrideId,
      idempotencyKey: `crm-match/${p.entryId}/override/${overrideId}`,
      payload: { ruleVersion: 'human.override', outcome: 'contacts:1 companies:1 deals:0' },
    });
    expect(String((d.payload as { reason: string }).reason)).toBe(`association override ${overrideId} by user:rita: the other buyer`);
  });

  it('journals the same match as the same entry, and a different match as another', () => {
    const p = plan(['a@x.example']);
    const r = rules({ dealRule: 'none', createContacts: 'inbound' });
    const first = matchDecision(p, matchPlan(p, known({ contacts: { 'a@x.example': '1' } }), r), r);
    const again = matchDecision(p, matchPlan(p, known({ contacts: { 'a@x.example': '1' } }), r), r);
    const other = matchDecision(p, matchPlan(p, known({ contacts: { 'a@x.example': '2' } }), r), r);
    expect(again.idempotencyKey).toBe(first.idempotencyKey);
    expect(other.idempotencyKey).not.toBe(first.idempotencyKey);
    expect(first).toMatchObject({
      causationId: p.decisionEntryId,
      payload: {
        ruleId: 'crm-match',
        ruleVersion: 'hubspot-match@1;create=inbound;deal=none',
        inputEntryId: p.entryId,
        outcome: 'contacts:1 companies:0 deals:0',
        reason: 'every counterpart matched',
      },
    });
  });
});
