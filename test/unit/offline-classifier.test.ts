import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ClassificationSchema, classificationProblems } from '../../src/pipeline/classification.ts';
import type { Category, ClassifierInput, ClassifierResult } from '../../src/pipeline/classification.ts';
import { ClassifierError } from '../../src/pipeline/errors/classifier.error.ts';
import { InteractionSchema } from '../../src/pipeline/interaction.ts';
import type { Interaction } from '../../src/pipeline/interaction.ts';
import { DEFAULT_MINIMISE_OPTIONS, minimise } from '../../src/pipeline/minimise.ts';
import { OFFLINE_CLASSIFIER_VERSION, OFFLINE_RULES, OfflineClassifier, explainOffline } from '../../src/pipeline/offline-classifier.ts';
import { loadPrompt } from '../../src/pipeline/prompts.ts';

const DemoSetSchema = z.strictObject({
  version: z.literal(1),
  ownDomains: z.array(z.string()).min(1),
  interactions: z.array(z.unknown()),
});
const demo = DemoSetSchema.parse(JSON.parse(readFileSync(resolve(import.meta.dirname, '../../samples/demo-interactions.json'), 'utf8')));
const interactions: Interaction[] = demo.interactions.map((raw) => InteractionSchema.parse(raw));
const OWN = demo.ownDomains;
const prompt = loadPrompt('classify-interaction', 'v1');
const classifier = new OfflineClassifier({ ownDomains: OWN });

function sample(sourceId: string): Interaction {
  const ix = interactions.find((i) => i.sourceId === sourceId);
  if (ix === undefined) throw new Error(`no sample ${sourceId}`);
  return ix;
}

const inputOf = (ix: Interaction): ClassifierInput => minimise(ix, DEFAULT_MINIMISE_OPTIONS).input;
const classify = (ix: Interaction): Promise<ClassifierResult> => classifier.classify(inputOf(ix), prompt);

function input(text: string, extra: Partial<ClassifierInput> = {}): ClassifierInput {
  return {
    channel: 'email',
    direction: 'inbound',
    subject: null,
    text,
    domains: ['acme.example', 'northwind-analytics.example'],
    ...extra,
  };
}

/** What a careful reader would say each sample is, following prompts/classify-interaction/v1.md. */
const EXPECTED: Record<string, Category> = {
  'em-lead-pricing-001': 'new_lead',
  'em-lead-demo-002': 'new_lead',
  'em-lead-trial-003': 'new_lead',
  'em-harbor-001': 'sales_conversation',
  'em-harbor-002': 'sales_conversation',
  'em-harbor-003': 'sales_conversation',
  'em-renewal-007': 'sales_conversation',
  'em-support-dashboard-008': 'customer_support',
  'em-support-outage-009': 'customer_support',
  'em-support-howto-010': 'customer_support',
  'em-support-login-011': 'customer_support',
  'em-billing-card-012': 'billing',
  'em-billing-otp-013': 'billing',
  'em-billing-invoice-014': 'billing',
  'em-billing-refund-015': 'billing',
  'em-billing-iban-016': 'billing',
  'em-sched-move-017': 'scheduling',
  'em-sched-kickoff-018': 'scheduling',
  'em-internal-pipeline-019': 'internal',
  'em-internal-discount-020': 'internal',
  'em-personal-021': 'personal',
  'em-spam-prize-022': 'spam',
  'em-spam-crypto-023': 'spam',
  'em-newsletter-024': 'spam',
  'em-bounce-025': 'other',
  'em-autoreply-026': 'other',
  'em-partner-028': 'other',
  'em-lead-referral-029': 'new_lead',
  'call-lead-030': 'new_lead',
  'call-support-031': 'customer_support',
  'call-billing-032': 'billing',
  'call-transcript-034': 'sales_conversation',
  'call-voicemail-035': 'scheduling',
  'call-robocall-036': 'spam',
  'form-contact-sales-037': 'new_lead',
  'form-demo-038': 'new_lead',
  'form-support-039': 'customer_support',
  'form-spam-040': 'spam',
  'form-billing-041': 'billing',
};

describe('the demo set', () => {
  it('is a varied set of valid interactions with unique source ids', () => {
    expect(interactions.length).toBeGreaterThanOrEqual(36);
    expect(new Set(interactions.map((i) => `${i.source}/${i.sourceId}`)).size).toBe(interactions.length);
    const count = (pred: (i: Interaction) => boolean): number => interactions.filter(pred).length;
    expect(count((i) => i.channel === 'email')).toBeGreaterThanOrEqual(20);
    expect(count((i) => i.channel === 'call' && ['twilio', 'aircall'].includes(i.source))).toBeGreaterThanOrEqual(5);
    expect(count((i) => i.channel === 'form' && i.source === 'webform')).toBeGreaterThanOrEqual(4);
    expect(count((i) => i.metadata?.['form'] === 'contact-sales')).toBe(1);
    for (const ix of interactions) expect(ix.occurredAt.startsWith('2026-11-')).toBe(true);
  });

  it('uses only reserved domains and fictional 555-01xx numbers', () => {
    const text = JSON.stringify(demo);
    for (const [, domain] of text.matchAll(/@([a-z0-9-]+(?:\.[a-z0-9-]+)+)/gi)) expect(domain).toMatch(/\.(?:example|test)$/);
    for (const [, line] of text.matchAll(/\b555[ .-]?(\d{4})\b/g)) expect(line).toMatch(/^01\d\d$/);
    for (const [, host] of text.matchAll(/https?:\/\/([a-z0-9.-]+)/gi)) expect(host).toMatch(/\.(?:example|test)$/);
    for (const ix of interactions) {
      for (const p of ix.participants) {
        if (p.address.startsWith('+')) expect(p.address).toMatch(/^\+1\d{3}55501\d{2}$/);
        else expect(p.address).toMatch(/@[a-z0-9.-]+\.(?:example|test)$/);
      }
    }
  });

  it('has a three-message email thread with an outgoing reply, and a call whose transcript follows on the same thread', () => {
    const thread = interactions.filter((i) => i.channel === 'email' && i.threadId === 'gmail-thread-harbor-proposal');
    expect(thread).toHaveLength(3);
    expect(thread.map((i) => i.direction)).toEqual(['inbound', 'outbound', 'inbound']);
    const call = sample('call-outbound-033');
    const transcript = sample('call-transcript-034');
    expect(call.threadId).toBeDefined();
    expect(transcript.threadId).toBe(call.threadId);
    expect(transcript.metadata?.['kind']).toBe('transcript');
  });

  it('shows redaction: the card number and the one-time code do not reach the classifier', () => {
    const card = minimise(sample('em-billing-card-012'), DEFAULT_MINIMISE_OPTIONS);
    expect(card.redactions).toContainEqual({ rule: 'card-number', count: 1 });
    expect(card.input.text).not.toContain('4111');
    const otp = minimise(sample('em-billing-otp-013'), DEFAULT_MINIMISE_OPTIONS);
    expect(otp.redactions).toContainEqual({ rule: 'one-time-code', count: 1 });
    expect(otp.input.text).not.toContain('482913');
  });
});

describe('OfflineClassifier on the demo set', () => {
  it('classifies every sample into a valid classification with no problems', async () => {
    for (const ix of interactions) {
      const result = await classify(ix);
      expect(ClassificationSchema.parse(result.output)).toEqual(result.output);
      expect(classificationProblems(result.output), ix.sourceId).toEqual([]);
      expect(result).toMatchObject({ provider: 'offline', model: OFFLINE_CLASSIFIER_VERSION, requestId: null, tokens: null, attempts: 1 });
      expect(result.latencyMs).toBeGreaterThanOrEqual(0);
      expect(result.output.summary.length).toBeLessThanOrEqual(200);
      expect(result.output.summary).not.toMatch(/@|555[ .-]?01\d\d/);
      expect(result.output.nextSteps.length).toBeLessThanOrEqual(5);
    }
  });

  it('gives the obvious samples their expected category, over at least six categories', async () => {
    expect(Object.keys(EXPECTED).length).toBeGreaterThanOrEqual(20);
    const got: Record<string, Category> = {};
    for (const id of Object.keys(EXPECTED)) got[id] = (await classify(sample(id))).output.category;
    expect(got).toEqual(EXPECTED);
    const all = await Promise.all(interactions.map(async (ix) => (await classify(ix)).output.category));
    expect(new Set(all).size).toBeGreaterThanOrEqual(6);
  });

  it('is unsure about the ambiguous sample and about a call with no text', async () => {
    const ambiguous = (await classify(sample('em-ambiguous-027'))).output;
    expect(ambiguous.confidence).toBeLessThan(0.6);
    expect(explainOffline(inputOf(sample('em-ambiguous-027'))).matchedRules).toEqual(
      expect.arrayContaining(['billing-payment', 'support-error']),
    );
    const empty = (await classify(sample('call-outbound-033'))).output;
    expect(empty).toMatchObject({ category: 'other', intent: 'unclear' });
    expect(empty.confidence).toBeLessThanOrEqual(0.3);
  });

  it('is confident where the evidence is clear', async () => {
    for (const id of [
      'em-internal-pipeline-019',
      'em-spam-prize-022',
      'em-billing-invoice-014',
      'em-support-outage-009',
      'form-contact-sales-037',
    ]) {
      expect((await classify(sample(id))).output.confidence, id).toBeGreaterThanOrEqual(0.75);
    }
  });

  it('sets urgency, sentiment and next steps from the content', async () => {
    const outage = (await classify(sample('em-support-outage-009'))).output;
    expect(outage).toMatchObject({ urgency: 'high', sentiment: 'negative', intent: 'report an outage' });
    expect(outage.nextSteps).toContain('Escalate to on-call support');
    const refund = (await classify(sample('em-billing-refund-015'))).output;
    expect(refund.sentiment).toBe('negative');
    const spam = (await classify(sample('em-spam-prize-022'))).output;
    expect(spam).toMatchObject({ urgency: 'low', sentiment: 'neutral', nextSteps: [] });
    expect((await classify(sample('em-newsletter-024'))).output.urgency).toBe('low');
    const lead = (await classify(sample('em-lead-pricing-001'))).output;
    expect(lead.nextSteps.slice(0, 2)).toEqual(['Reply within one business day', 'Qualify budget and timeline']);
    expect(lead.summary).toBe('Inbound email, new lead: Pricing for 40 analyst seats');
    const card = (await classify(sample('em-billing-card-012'))).output;
    expect(card.nextSteps.some((s) => /secure billing portal/.test(s))).toBe(true);
  });

  it('is deterministic: two runs differ at most in latencyMs', async () => {
    for (const ix of interactions) {
      const { latencyMs: _a, ...first } = await classify(ix);
      const { latencyMs: _b, ...second } = await new OfflineClassifier({ ownDomains: OWN }).classify(inputOf(structuredClone(ix)), prompt);
      expect(second).toEqual(first);
    }
  });
});

describe('OfflineClassifier rules', () => {
  it('calls mail internal when every domain is the company own, and only then', async () => {
    const c = new OfflineClassifier({ ownDomains: ['Northwind-Analytics.example'] });
    const ownOnly = input('Can you send me the Harborline proposal and the invoice?', {
      domains: ['northwind-analytics.example', 'mail.northwind-analytics.example'],
      direction: 'internal',
    });
    expect((await c.classify(ownOnly, prompt)).output).toMatchObject({ category: 'internal', intent: 'internal coordination' });
    const mixed = input('Can you send me the Harborline proposal?', { domains: ['acme.example', 'northwind-analytics.example'] });
    expect((await c.classify(mixed, prompt)).output.category).not.toBe('internal');
    const noDomains = input('Can you send me the Harborline proposal?', { domains: [] });
    expect((await c.classify(noDomains, prompt)).output.category).not.toBe('internal');
    // Without ownDomains nothing is internal.
    expect((await new OfflineClassifier().classify(ownOnly, prompt)).output.category).not.toBe('internal');
    // A call between a customer's phone and our agent leaves only our domain; that is not internal.
    const call = input('Caller: I would like pricing for 20 users and a demo.', {
      channel: 'call',
      domains: ['northwind-analytics.example'],
    });
    expect((await c.classify(call, prompt)).output.category).toBe('new_lead');
  });

  it('recognises spam signals', async () => {
    const cases = [
      'Congratulations, you have won an iPhone! Claim your prize today.',
      'Send 0.1 BTC to the wallet address below and double your investment.',
      'Your mailbox will be suspended. Verify your account within 24 hours.',
      'BEST DEAL EVER FOR YOUR BUSINESS TODAY ONLY',
      'Monthly newsletter: top stories. Unsubscribe at any time.',
    ];
    for (const text of cases) expect((await classifier.classify(input(text), prompt)).output.category, text).toBe('spam');
  });

  it('defaults to other with low confidence when nothing matches', async () => {
    const out = (await classifier.classify(input('Lorem ipsum dolor sit amet.'), prompt)).output;
    expect(out).toMatchObject({ category: 'other', intent: 'unclear' });
    expect(out.confidence).toBeLessThanOrEqual(0.3);
    expect(explainOffline(input('Lorem ipsum')).matchedRules).toEqual([]);
  });

  it('gives a close call a confidence below 0.6', async () => {
    const out = (
      await classifier.classify(
        input('Our invoice shows the wrong numbers and the dashboard is not loading either, which we need to pay the invoice.'),
        prompt,
      )
    ).output;
    expect(out.confidence).toBeLessThan(0.6);
  });

  it('counts lead signals in our own outbound messages as a sales conversation', async () => {
    const out = (
      await classifier.classify(
        input('Here is the pricing you asked for, and I can book a demo for Tuesday.', { direction: 'outbound' }),
        prompt,
      )
    ).output;
    expect(out.category).toBe('sales_conversation');
    expect(explainOffline(input('Here is our pricing.', { direction: 'outbound' })).matchedRules).toEqual([
      'lead-pricing',
      'outbound-lead-is-conversation',
    ]);
  });

  it('builds a one-line summary without addresses or phone numbers', async () => {
    const text =
      'Agent: Thanks for calling Northwind.\nCaller: Please call me back at +1 (206) 555-0142 or write to jane.doe@acme.example about pricing for 10 seats.';
    const out = (await classifier.classify(input(text, { channel: 'call' }), prompt)).output;
    expect(out.summary).toBe('Inbound call, new lead: Please call me back at or write to about pricing for 10 seats.');
    const long = (await classifier.classify(input('body', { subject: `Pricing ${'x'.repeat(400)}` }), prompt)).output;
    expect(long.summary.length).toBeLessThanOrEqual(200);
    expect(long.summary.endsWith('…')).toBe(true);
    const empty = (await classifier.classify(input(''), prompt)).output;
    expect(empty.summary).toBe('Inbound email, other: (no subject or text)');
  });

  it('explains its decision: scores for every category and the matched rules in table order', () => {
    const { scores, matchedRules } = explainOffline(inputOf(sample('em-billing-card-012')), { ownDomains: OWN });
    expect(Object.keys(scores).sort()).toEqual([
      'billing',
      'customer_support',
      'internal',
      'new_lead',
      'other',
      'personal',
      'sales_conversation',
      'scheduling',
      'spam',
    ]);
    expect(matchedRules).toEqual(['billing-payment', 'billing-redacted-details']);
    expect(scores.billing).toBe(4.5);
    const internal = explainOffline(inputOf(sample('em-internal-discount-020')), { ownDomains: OWN });
    expect(internal.matchedRules[0]).toBe('internal-own-domains');
    const tableOrder = OFFLINE_RULES.map((r) => r.id);
    const spam = explainOffline(inputOf(sample('em-spam-prize-022'))).matchedRules;
    expect([...spam].sort((a, b) => tableOrder.indexOf(a) - tableOrder.indexOf(b))).toEqual(spam);
  });

  it('has a well-formed rule table', () => {
    const ids = OFFLINE_RULES.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const rule of OFFLINE_RULES) {
      expect(rule.patterns.length, rule.id).toBeGreaterThan(0);
      expect(rule.weight, rule.id).toBeGreaterThan(0);
      // A global or sticky pattern would carry lastIndex from one test() to the next.
      for (const p of rule.patterns) expect(p.flags, rule.id).not.toMatch(/[gy]/);
    }
  });

  it('honours an aborted signal', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(classifier.classify(input('pricing'), prompt, { signal: controller.signal })).rejects.toBeInstanceOf(ClassifierError);
    await expect(classifier.classify(input('pricing'), prompt, { signal: controller.signal })).rejects.toMatchObject({ code: 'TIMEOUT' });
  });
});
