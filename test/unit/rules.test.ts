/**
 * The rules engine (src/pipeline/rules.ts): first matching rule wins in exclusions, mirror and review, every
 * matching notification fires, and a rules file that could leave an interaction without an outcome is refused.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.ts';
import {
  domainOf,
  evaluateExclusions,
  evaluateMirror,
  evaluateNotifications,
  evaluateReview,
  loadRuleset,
  RulesetSchema,
  type Facts,
} from '../../src/pipeline/rules.ts';
import { RulesetError } from '../../src/pipeline/errors/ruleset.error.ts';

const RULES = RulesetSchema.parse({
  version: 'r-1',
  ownDomains: ['us.example'],
  exclusions: [
    { id: 'internal', when: { channel: ['email'], allParticipantsInOwnDomains: true } },
    { id: 'blocked', description: 'vendors', when: { anyParticipantDomainIn: ['spam.example'] } },
    { id: 'private', when: { anyParticipantAddressIn: ['me@private.example'] } },
  ],
  mirror: [
    { id: 'skip-noise', when: { categoryIn: ['spam', 'personal'] }, outcome: 'skip' },
    { id: 'mirror-rest', when: {}, outcome: 'mirror' },
  ],
  review: [
    { id: 'fallback', when: { decisionOutcomeIn: ['fallback'] }, outcome: 'review' },
    { id: 'unsure', when: { confidenceBelow: 0.6 }, outcome: 'review' },
    { id: 'none', when: {}, outcome: 'none' },
  ],
  notifications: [
    { id: 'sales-form', when: { channel: ['form'], metadataEquals: { form: 'contact-sales' } }, notify: 'sales' },
    { id: 'urgent-support', when: { categoryIn: ['customer_support'], urgencyIn: ['high'] }, notify: 'on-call' },
    { id: 'any-form', when: { channel: ['form'] }, notify: 'sales' },
  ],
  recipients: { sales: {}, 'on-call': {} },
});

const facts = (
  over: Partial<Facts['interaction']> = {},
  classification?: Facts['classification'],
  decisionOutcome?: Facts['decisionOutcome'],
): Facts => ({
  interaction: {
    channel: 'email',
    direction: 'inbound',
    participants: [
      { role: 'from', address: 'Buyer@Customer.example' },
      { role: 'to', address: 'sales@us.example' },
    ],
    ...over,
  },
  ...(classification ? { classification } : {}),
  ...(decisionOutcome ? { decisionOutcome } : {}),
});
const lead = { category: 'new_lead', confidence: 0.9, urgency: 'normal' } as const;

describe('exclusions', () => {
  it('exclude mail among our own people, blocked domains and listed addresses (case-insensitively); keep the rest', () => {
    expect(evaluateExclusions(RULES, facts())).toBeNull();
    const internal = facts({
      participants: [
        { role: 'from', address: 'a@us.example' },
        { role: 'to', address: 'b@US.example' },
      ],
    });
    expect(evaluateExclusions(RULES, internal)?.ruleId).toBe('internal');
    // Only e-mail is excluded as internal: the same people on a call are kept.
    expect(evaluateExclusions(RULES, { ...internal, interaction: { ...internal.interaction, channel: 'call' } })).toBeNull();
    expect(evaluateExclusions(RULES, facts({ participants: [{ role: 'from', address: 'x@spam.example' }] }))).toEqual({
      ruleId: 'blocked',
      outcome: 'excluded',
      description: 'vendors',
    });
    expect(evaluateExclusions(RULES, facts({ participants: [{ role: 'to', address: 'ME@private.example' }] }))?.ruleId).toBe('private');
    // No participants: not "all in our own domains".
    expect(evaluateExclusions(RULES, facts({ participants: [] }))).toBeNull();
  });
});

describe('mirror and review', () => {
  it('take the first matching rule, in order, falling through to the catch-all', () => {
    expect(evaluateMirror(RULES, facts({}, lead)).ruleId).toBe('mirror-rest');
    expect(evaluateMirror(RULES, facts({}, { ...lead, category: 'spam' }))).toMatchObject({ ruleId: 'skip-noise', outcome: 'skip' });
    // Without a classification a category condition does not hold.
    expect(evaluateMirror(RULES, facts()).outcome).toBe('mirror');
    expect(evaluateReview(RULES, facts({}, lead, 'ok'))).toMatchObject({ ruleId: 'none', outcome: 'none' });
    expect(evaluateReview(RULES, facts({}, { ...lead, confidence: 0.59 }, 'ok')).ruleId).toBe('unsure');
    expect(evaluateReview(RULES, facts({}, { ...lead, confidence: 0.6 }, 'ok')).ruleId).toBe('none');
    // The first match wins even when a later one also matches.
    expect(evaluateReview(RULES, facts({}, { ...lead, confidence: 0.1 }, 'fallback')).ruleId).toBe('fallback');
  });
});

describe('notifications', () => {
  it('fire every matching rule, comparing metadata as JSON', () => {
    const form = (metadata: Record<string, string>): Facts => facts({ channel: 'form', metadata });
    expect(evaluateNotifications(RULES, form({ form: 'contact-sales' }))).toEqual([
      { ruleId: 'sales-form', notify: 'sales' },
      { ruleId: 'any-form', notify: 'sales' },
    ]);
    expect(evaluateNotifications(RULES, form({ form: 'newsletter' }))).toEqual([{ ruleId: 'any-form', notify: 'sales' }]);
    expect(evaluateNotifications(RULES, facts({}, { category: 'customer_support', confidence: 0.9, urgency: 'high' }))).toEqual([
      { ruleId: 'urgent-support', notify: 'on-call' },
    ]);
    expect(evaluateNotifications(RULES, facts({}, { category: 'customer_support', confidence: 0.9, urgency: 'normal' }))).toEqual([]);
  });
});

describe('loadRuleset', () => {
  let tmp: { dir: string; cleanup: () => void };
  beforeEach(() => {
    tmp = tempDir('aj-rules-');
  });
  afterEach(() => tmp.cleanup());
  const load = (value: unknown): ReturnType<typeof loadRuleset> => {
    const path = join(tmp.dir, 'rules.json');
    writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value));
    return loadRuleset(path);
  };
  const base = { version: 'v', mirror: [{ id: 'm', when: {}, outcome: 'mirror' }], review: [{ id: 'r', when: {}, outcome: 'none' }] };

  it('loads the shipped rules and a minimal file (defaults filled in)', () => {
    expect(loadRuleset('config/rules.json').mirror.length).toBeGreaterThan(0);
    expect(load(base)).toMatchObject({ ownDomains: [], exclusions: [], notifications: [], recipients: {} });
  });

  it('refuses a file that could leave an interaction without an outcome, or names what does not exist', () => {
    expect(() => load('{ not json')).toThrow(RulesetError);
    expect(() => load({ ...base, mirror: [{ id: 'm', when: { channel: ['email'] }, outcome: 'mirror' }] })).toThrow(
      /last mirror rule must have an empty "when"/,
    );
    expect(() => load({ ...base, review: [{ id: 'r', when: { confidenceBelow: 0.5 }, outcome: 'review' }] })).toThrow(/last review rule/);
    expect(() => load({ ...base, review: [{ id: 'm', when: {}, outcome: 'none' }] })).toThrow(/rule id m is used twice/);
    expect(() => load({ ...base, notifications: [{ id: 'n', when: {}, notify: 'ghosts' }] })).toThrow(
      /notifies "ghosts", which is not a group/,
    );
    expect(() => load({ ...base, mirror: [{ id: 'm', when: { colour: ['red'] }, outcome: 'mirror' }] })).toThrow(/invalid rules/);
  });

  it('reads the domain of an address in lower case, or none', () => {
    expect(domainOf('A@B.Example')).toBe('b.example');
    expect(domainOf('no-at-sign')).toBeNull();
    expect(domainOf('@leading.example')).toBeNull();
  });
});
