/**
 * HubSpot's matching rules, as pure decisions: which contacts, companies and deals an activity is associated
 * with, and why. No HTTP here: the adapter (hubspot.crm.ts) looks the ids up (contacts by email, companies by
 * domain, a contact's deals and which are open), then asks these functions what they mean.
 *
 * - contacts by email (phone numbers are not matched); an address HubSpot does not have is created only when the
 *   create-contacts rule allows it (`always`, or `inbound` for an inbound interaction);
 * - companies by the contact's email domain; several companies with one domain → the oldest record (lowest id);
 * - deals by the deal rule: `single-open-deal` associates the contacts' one open deal, none when they have
 *   several or none; `none` never associates a deal;
 * - a reviewer's association override names its targets and wins over every rule.
 * Each activity's decision (candidates, rule, tie-break) is journaled as a rule.decision `crm-match`.
 */
import { createHash } from 'node:crypto';
import type { AppendInput } from '../../src/journal/entry.ts';
import type { PayloadOf } from '../../src/journal/kinds.ts';
import type { AssociationTargets, MirrorPlan } from '../../src/pipeline/ports.ts';

export type CreateContactsRule = 'never' | 'inbound' | 'always';
export type DealRule = 'single-open-deal' | 'none';

export interface MatchRules {
  readonly createContacts: CreateContactsRule;
  readonly dealRule: DealRule;
}

/** What one activity is associated with, and what was weighed. */
export interface Match {
  readonly contacts: string[];
  readonly companies: string[];
  readonly deals: string[];
  /** What was weighed, as the crm-match rule.decision records it (JSON values). */
  readonly evaluated: PayloadOf<'rule.decision'>['evaluated'];
  readonly reasons: string[];
}

/** Association targets as a journal payload holds them (JSON arrays). */
function targetsJson(t: AssociationTargets): { contacts: string[]; companies: string[]; deals: string[] } {
  return { contacts: [...t.contacts], companies: [...t.companies], deals: [...t.deals] };
}

/**
 * What the lookups found. `contactOf` answers a contact id, `null` when HubSpot has none for the address, or
 * `undefined` when it was not looked up; the others answer undefined when not known.
 */
export interface KnownRecords {
  contactOf(email: string): string | null | undefined;
  companiesOf(domain: string): readonly string[] | undefined;
  dealsOf(contactId: string): { readonly candidates: readonly string[]; readonly open: readonly string[] } | undefined;
}

const isEmail = (counterpart: string): boolean => counterpart.includes('@');

/** The part after the last `@`. */
export function domainOf(email: string): string {
  return email.slice(email.lastIndexOf('@') + 1);
}

/** The addresses to look contacts up by: every email counterpart of the plans without an override, once. */
export function emailsToLookUp(plans: readonly MirrorPlan[]): string[] {
  return [...new Set(plans.filter((p) => !p.associationOverride).flatMap((p) => p.counterparts.filter(isEmail)))];
}

/** Whether the create-contacts rule lets this plan's unknown addresses become contacts. */
export function mayCreateContacts(plan: MirrorPlan, rule: CreateContactsRule): boolean {
  return !plan.associationOverride && (rule === 'always' || (rule === 'inbound' && plan.direction === 'inbound'));
}

/** The looked-up addresses HubSpot has no contact for and a plan's rule allows to create. */
export function contactsToCreate(
  plans: readonly MirrorPlan[],
  emails: readonly string[],
  rule: CreateContactsRule,
  known: KnownRecords,
): string[] {
  const creatable = new Set(plans.filter((p) => mayCreateContacts(p, rule)).flatMap((p) => p.counterparts.filter(isEmail)));
  return emails.filter((e) => known.contactOf(e) === null && creatable.has(e));
}

/** The domains of the addresses that have a contact (companies are matched by the contact's domain). */
export function domainsToLookUp(emails: readonly string[], known: KnownRecords): string[] {
  return [...new Set(emails.filter((e) => known.contactOf(e)).map(domainOf))];
}

/** The contacts found for the addresses, once each (their deals are looked up under the deal rule). */
export function contactIdsOf(emails: readonly string[], known: KnownRecords): string[] {
  return [...new Set(emails.map((e) => known.contactOf(e)).filter((x): x is string => typeof x === 'string'))];
}

/** The tie-break among companies sharing a domain: the oldest record (lowest id). */
export function oldestRecord(ids: readonly string[]): string | undefined {
  return [...ids].sort((a, b) => Number(a) - Number(b) || a.localeCompare(b))[0];
}

/** The match of one plan: the override's targets when a reviewer set them, else the rules applied to what is known. */
export function matchPlan(plan: MirrorPlan, known: KnownRecords, rules: MatchRules): Match {
  const { createContacts: createRule, dealRule } = rules;
  const o = plan.associationOverride;
  if (o) {
    return {
      contacts: [...o.to.contacts],
      companies: [...o.to.companies],
      deals: [...o.to.deals],
      reasons: [`association override ${o.entryId} by ${o.actor}: ${o.reason}`],
      evaluated: { override: o.entryId, from: targetsJson(o.from), remove: targetsJson(o.remove), createContacts: createRule, dealRule },
    };
  }
  const reasons: string[] = [];
  const contacts: string[] = [];
  const companies = new Set<string>();
  const dealCandidates = new Set<string>();
  const openDeals = new Set<string>();
  const companyCandidates: string[] = [];
  let unmatched = 0;
  let phones = 0;
  for (const c of plan.counterparts) {
    if (!isEmail(c)) {
      phones++;
      continue;
    }
    const id = known.contactOf(c);
    if (!id) {
      unmatched++;
      continue;
    }
    contacts.push(id);
    const found = known.companiesOf(domainOf(c)) ?? [];
    companyCandidates.push(...found);
    const pick = oldestRecord(found);
    if (pick) companies.add(pick);
    if (found.length > 1) reasons.push(`${found.length} companies share the contact's domain: the oldest (lowest id) wins`);
    const deals = known.dealsOf(id);
    for (const d of deals?.candidates ?? []) dealCandidates.add(d);
    for (const d of deals?.open ?? []) openDeals.add(d);
  }
  if (phones > 0) reasons.push(`${phones} phone number(s) not matched (contacts are matched by email)`);
  if (unmatched > 0)
    reasons.push(
      `${unmatched} address(es) without a HubSpot contact; create-contacts rule is "${createRule}"${createRule === 'inbound' ? ` and the interaction is ${plan.direction}` : ''}`,
    );
  const deals = dealRule === 'single-open-deal' && openDeals.size === 1 ? [...openDeals] : [];
  if (dealRule === 'single-open-deal')
    reasons.push(
      openDeals.size === 1
        ? 'the contacts have exactly one open deal: associated'
        : `the contacts have ${openDeals.size} open deals: no deal associated (the rule needs exactly one)`,
    );
  return {
    contacts: [...new Set(contacts)],
    companies: [...companies],
    deals,
    reasons,
    evaluated: {
      counterparts: plan.counterparts.length,
      contactCandidates: [...new Set(contacts)],
      companyCandidates: [...new Set(companyCandidates)],
      dealCandidates: [...dealCandidates],
      openDeals: [...openDeals],
      createContacts: createRule,
      dealRule,
    },
  };
}

/**
 * The rule.decision that explains a plan's match. Idempotent by what was decided: the same match journaled twice
 * is one entry; an override's decision is keyed by the override.
 */
export function matchDecision(plan: MirrorPlan, m: Match, rules: MatchRules): AppendInput {
  const o = plan.associationOverride;
  const outcome = `contacts:${m.contacts.length} companies:${m.companies.length} deals:${m.deals.length}`;
  const evaluated = { ...m.evaluated, contacts: m.contacts, companies: m.companies, deals: m.deals };
  if (o) {
    return {
      kind: 'rule.decision',
      source: 'hubspot',
      actor: 'crm:hubspot',
      correlationId: plan.correlationId,
      causationId: o.entryId,
      idempotencyKey: `crm-match/${plan.entryId}/override/${o.entryId}`,
      payload: {
        ruleId: 'crm-match',
        ruleVersion: 'human.override',
        inputEntryId: plan.entryId,
        evaluated,
        outcome,
        reason: m.reasons.join('; ').slice(0, 10_000),
      },
    };
  }
  const digest = createHash('sha256')
    .update(JSON.stringify([m.contacts, m.companies, m.deals, m.evaluated]))
    .digest('hex');
  return {
    kind: 'rule.decision',
    source: 'hubspot',
    actor: 'crm:hubspot',
    correlationId: plan.correlationId,
    causationId: plan.decisionEntryId,
    idempotencyKey: `crm-match/${plan.entryId}/${digest.slice(0, 32)}`,
    payload: {
      ruleId: 'crm-match',
      ruleVersion: `hubspot-match@1;create=${rules.createContacts};deal=${rules.dealRule}`,
      inputEntryId: plan.entryId,
      evaluated,
      outcome,
      reason: (m.reasons.join('; ') || 'every counterpart matched').slice(0, 10_000),
    },
  };
}
