/**
 * The classifier that needs no key: transparent keyword and pattern rules, so the demo, the tests and an
 * installation without a model still journal a decision, and a reviewer can see exactly why it was made
 * (`explainOffline`). It reads only the minimised input, like any other classifier.
 */
import { performance } from 'node:perf_hooks';
import { CATEGORIES } from '../journal/categories.ts';
import type { Category, Classification, Classifier, ClassifierInput, ClassifierResult, Prompt } from './classification.ts';
import { ClassifierError } from './errors/classifier.error.ts';

export const OFFLINE_CLASSIFIER_VERSION = 'offline-rules-v1';

type Direction = ClassifierInput['direction'];

/** One row of the rule table: if any pattern matches where it looks, `weight` is added to `category`, once. */
export interface OfflineRule {
  readonly id: string;
  readonly category: Category;
  readonly weight: number;
  readonly patterns: readonly RegExp[];
  /** Where the patterns look: subject and text (default), the subject only, or the domains (one a line). */
  readonly in?: 'content' | 'subject' | 'domains';
  /** Only for these directions (default: any). */
  readonly directions?: readonly Direction[];
  /** The intent reported when this is the strongest rule of the winning category. */
  readonly intent: string;
  /** Replaces the category's next steps when this rule decides. */
  readonly nextSteps?: readonly string[];
}

/**
 * The rule table, in evaluation order (which is also the tie-break order within a category). Weights: 6 is for
 * automatic replies and bounces, which quote the message they answer, so its topic words must not win; 4 is
 * decisive on its own (scams, robocalls); 2.5-3 is a strong topical signal; 1-2 supports; 0.5 only tips a close
 * call. Besides these rows, two structural rules apply (see `score`):
 * - `internal-own-domains` (internal, weight 10): every domain is one of the company's own (or a subdomain), and
 *   there is one. Not for inbound or outbound calls: their outside party is a phone number, which leaves no domain,
 *   so the agent's own address alone would make every call look internal;
 * - `outbound-lead-is-conversation`: on outbound messages, lead signals count for sales_conversation, since
 *   it is the company answering a lead, not a lead asking.
 */
export const OFFLINE_RULES: readonly OfflineRule[] = [
  // spam: bulk mail, scams, phishing, robocalls
  {
    id: 'spam-prize',
    category: 'spam',
    weight: 4,
    intent: 'scam: claim a prize',
    patterns: [
      /\b(?:you(?:'ve| have)? (?:won|been selected)|congratulations[,!]* (?:you|winner)|lottery|jackpot|claim (?:your|the) (?:prize|reward|winnings)|cash prize)\b/i,
    ],
  },
  {
    id: 'spam-money-scam',
    category: 'spam',
    weight: 4,
    intent: 'scam: money transfer',
    patterns: [
      /\b(?:bitcoin|btc|crypto(?:currency)?|usdt|wallet address|inheritance|next of kin|western union|gift cards?|investment opportunity|double your (?:money|investment|bitcoin|crypto)|guaranteed (?:returns|profits?)|wire the funds|urgent(?:ly)? wire|transfer fee)\b/i,
    ],
  },
  {
    id: 'spam-phishing',
    category: 'spam',
    weight: 3,
    intent: 'phishing',
    patterns: [
      /\b(?:verify your (?:account|identity|mailbox)|(?:account|mailbox) (?:will be )?(?:suspended|deactivated|locked)|confirm your (?:login|credentials|password)|unusual sign-?in activity|mailbox (?:is )?full)\b/i,
    ],
  },
  {
    id: 'spam-robocall',
    category: 'spam',
    weight: 4,
    intent: 'robocall',
    patterns: [
      /\b(?:extended (?:car |vehicle )?warranty|press (?:one|1|9) to|final notice|this is not a sales call|pre-?approved (?:loan|credit))\b/i,
    ],
  },
  {
    id: 'spam-marketing',
    category: 'spam',
    weight: 2.5,
    intent: 'unsolicited marketing',
    patterns: [
      /\b(?:limited[- ]time offer|act now|click (?:here|below) to|100% free|risk[- ]free|buy now|special promotion|seo (?:services|agency|experts?)|rank (?:#1|first|number one) on google|first page of google|boost your (?:sales|traffic|ranking)|(?:b2b |verified )?(?:lead|email|contact) lists?|dear (?:friend|sir\/madam|sir or madam|valued customer))\b/i,
    ],
  },
  {
    id: 'spam-unsubscribe',
    category: 'spam',
    weight: 2,
    intent: 'bulk mailing',
    patterns: [
      /\b(?:unsubscribe|opt[- ]out|manage (?:your )?(?:email )?preferences|you (?:are|were) receiving this (?:email|because)|view (?:this email )?in (?:your )?browser)\b/i,
    ],
  },
  {
    id: 'spam-newsletter',
    category: 'spam',
    weight: 1.5,
    intent: 'newsletter',
    patterns: [/\b(?:newsletter|weekly digest|monthly digest|this week in|top stories|read more|edition|webinar)\b/i],
  },
  {
    id: 'spam-shouting',
    category: 'spam',
    weight: 1.5,
    intent: 'unsolicited marketing',
    patterns: [/\b[A-Z]{3,}(?:[^A-Za-z\n]{1,3}[A-Z]{3,}){3,}/, /!{3,}|(?:![^!]*){5,}/],
  },

  // other: automatic replies, bounces, partnerships, recruiting
  {
    id: 'auto-reply',
    category: 'other',
    weight: 6,
    intent: 'automatic reply',
    nextSteps: ["Note the contact's return date and follow up after it"],
    patterns: [
      /\b(?:out of (?:the )?office|auto(?:matic)?[- ]?reply|autoreply|i am (?:currently )?(?:away|out)|on (?:annual |parental )?leave until|limited access to (?:my )?email)\b/i,
    ],
  },
  {
    id: 'bounce',
    category: 'other',
    weight: 6,
    intent: 'delivery failure',
    nextSteps: ["Check the contact's email address in the CRM"],
    patterns: [
      /\b(?:delivery status notification|undeliverable|mail delivery (?:failed|subsystem)|address not found|(?:could not|couldn't|wasn't|was not) (?:be )?delivered|mailer-daemon|recipient address rejected|message (?:not delivered|blocked))\b/i,
    ],
  },
  {
    id: 'partnership',
    category: 'other',
    weight: 2.5,
    intent: 'propose a partnership',
    nextSteps: ['Forward to the partnerships owner'],
    patterns: [
      /\b(?:partnership|partner program|reseller|resell|affiliate|referral agreement|co-?marketing|press inquiry|journalist|podcast)\b/i,
    ],
  },
  {
    id: 'recruiting',
    category: 'other',
    weight: 2.5,
    intent: 'job application',
    nextSteps: ['Forward to recruiting'],
    patterns: [/\b(?:job (?:application|opening)|my (?:resume|cv)|cv attached|apply for the (?:role|position)|open (?:role|position))\b/i],
  },

  // billing: invoices, payments, refunds, card or bank details
  {
    id: 'billing-invoice',
    category: 'billing',
    weight: 3,
    intent: 'question about an invoice',
    patterns: [/\b(?:invoices?|invoiced|invoicing|receipts?|credit note|billing|billed|inv-\d+)\b/i],
  },
  {
    id: 'billing-payment',
    category: 'billing',
    weight: 2.5,
    intent: 'sort out a payment',
    patterns: [
      /\b(?:payments?(?! terms)|paid|pay (?:the|our|by|it)|charged?|charges|charged twice|double[- ]charged|refunds?|refunded|overdue|outstanding balance|past due|direct debit|wire (?:transfer|payment)|bank (?:transfer|details|account)|card (?:on file|details|number|ending|was declined|declined|expired?)|expired card|vat|tax id|remittance)\b/i,
    ],
  },
  {
    id: 'billing-redacted-details',
    category: 'billing',
    weight: 2,
    intent: 'update payment details',
    patterns: [/\[REDACTED:(?:card-number|iban)\]/],
  },

  // customer_support: problems and how-to questions from customers
  {
    id: 'support-outage',
    category: 'customer_support',
    weight: 3,
    intent: 'report an outage',
    patterns: [/\b(?:outage|(?:is|are|went|been) down|production (?:is )?down|service disruption|degraded|unavailable|offline)\b/i],
  },
  {
    id: 'support-error',
    category: 'customer_support',
    weight: 2.5,
    intent: 'report a problem',
    patterns: [
      /\b(?:errors?|exceptions?|bugs?|crash(?:es|ed|ing)?|(?<!(?:payment|charge|transaction|card) )fail(?:s|ed|ing|ures?)|broken|not (?:working|loading|syncing|updating|showing|refreshing)|(?:does|do)(?:n't| not) work|stopped (?:working|syncing|loading)|(?:can(?:no|')t|unable to) (?:log ?in|sign in|access|see|export|connect|load)|timed? ?out|returns? (?:a )?(?:4|5)\d\d|wrong (?:numbers|totals|data))\b/i,
    ],
  },
  {
    id: 'support-how-to',
    category: 'customer_support',
    weight: 2,
    intent: 'ask how to use the product',
    patterns: [
      /\b(?:how (?:do|can|should) (?:i|we)|is there a way to|where (?:do|can) (?:i|we) find|documentation|(?:set ?up|configure) (?:the|an?|our) |step[- ]by[- ]step)\b/i,
    ],
  },
  {
    id: 'support-ticket',
    category: 'customer_support',
    weight: 2,
    intent: 'follow up on a support case',
    patterns: [/\b(?:ticket|support (?:case|request|team)|case (?:number|#|id)|sla|escalat(?:e|ion)|workaround|technical issue)\b/i],
  },
  {
    id: 'support-product-area',
    category: 'customer_support',
    weight: 1,
    intent: 'ask about a product feature',
    patterns: [/\b(?:dashboards?|exports?|sync(?:ing)?|connectors?|sso|saml|api|login|permissions?)\b/i],
  },

  // scheduling: arranging, moving or cancelling a meeting, and nothing else
  {
    id: 'sched-reschedule',
    category: 'scheduling',
    weight: 3,
    intent: 'move a meeting',
    patterns: [
      /\b(?:reschedul(?:e|ing)|move (?:our|the|my|this|tomorrow's|today's|(?:mon|tues|wednes|thurs|fri)day's) (?:call|meeting|demo|session|kickoff|kick-off)|push (?:our|the) (?:call|meeting)|postpone|cancel (?:our|the|my) (?:call|meeting|demo|appointment|session))\b/i,
    ],
  },
  {
    id: 'sched-availability',
    category: 'scheduling',
    weight: 2,
    intent: 'arrange a meeting',
    patterns: [
      /\b(?:availability|are you (?:free|available)|does (?:mon|tues|wednes|thurs|fri)day work|what time works|works? for you|calendar invite|send (?:an |a )?invite|time slots?|book(?:ed)? (?:a|some) (?:call|meeting|time)|meeting (?:link|request)|zoom link|teams link|google meet)\b/i,
    ],
  },
  {
    id: 'sched-time-mention',
    category: 'scheduling',
    weight: 1,
    intent: 'arrange a meeting',
    patterns: [/\b(?:(?:mon|tues|wednes|thurs|fri)day|tomorrow) (?:at|morning|afternoon)\b|\b\d{1,2}(?::\d{2})?\s?(?:am|pm)\b/i],
  },
  {
    id: 'sched-calendar-subject',
    category: 'scheduling',
    weight: 2,
    intent: 'respond to an invitation',
    in: 'subject',
    patterns: [/^(?:accepted|declined|tentative|invitation|updated invitation|canceled event|cancelled event):/i],
  },

  // sales_conversation: proposals, quotes, contracts, renewals
  {
    id: 'sales-contract',
    category: 'sales_conversation',
    weight: 2.5,
    intent: 'negotiate the contract',
    patterns: [
      /\b(?:proposal|order form|statement of work|sow|msa|master services agreement|redlines?|red-?lined|contracts?|countersign(?:ed)?|docusign|signature page)\b/i,
    ],
  },
  {
    id: 'sales-renewal',
    category: 'sales_conversation',
    weight: 2.5,
    intent: 'discuss the renewal',
    patterns: [
      /\b(?:renewal|renew(?:ing)?|upsell|add (?:\d+ )?(?:more |extra )?(?:seats|licen[cs]es|users)|expand(?:ing)? (?:to|our)|upgrade (?:to|our))\b/i,
    ],
  },
  {
    id: 'sales-terms',
    category: 'sales_conversation',
    weight: 2,
    intent: 'agree commercial terms',
    patterns: [
      /\b(?:(?:the|your|revised|updated|new) quote|multi-year|\d+ ?% (?:off|discount)|\d-year (?:term|deal|commitment)|volume pricing|payment terms|net[ -]?(?:30|45|60)|procurement|purchase order|vendor (?:onboarding|form|registration))\b/i,
    ],
  },
  {
    id: 'sales-decision',
    category: 'sales_conversation',
    weight: 1.5,
    intent: 'move the deal forward',
    patterns: [
      /\b(?:legal (?:team|review)|security (?:review|questionnaire)|decision[- ]maker|budget (?:is )?(?:approved|holder|approval|sign-?off)|signed off|go ahead|green light|business case)\b/i,
    ],
  },
  {
    id: 'sales-follow-up',
    category: 'sales_conversation',
    weight: 1,
    directions: ['outbound'],
    intent: 'follow up with a prospect',
    patterns: [
      /\b(?:following up|as discussed|as promised|attached (?:is|you'll find|please find)|per our (?:call|conversation)|great (?:speaking|talking) (?:with|to) you)\b/i,
    ],
  },

  // new_lead: someone not yet a customer asks about buying, pricing, a demo or a trial
  {
    id: 'lead-contact-sales',
    category: 'new_lead',
    weight: 3,
    intent: 'contact sales',
    patterns: [
      /\b(?:contact sales|talk to (?:sales|someone in sales|a sales ?rep)|sales (?:inquiry|enquiry)|request (?:a )?quote|get a quote)\b/i,
    ],
  },
  {
    id: 'lead-demo',
    category: 'new_lead',
    weight: 2.5,
    intent: 'request a demo',
    patterns: [
      /\b(?:(?:book|schedule|request|see|get|arrange|set up|like) (?:a |an )?(?:live |quick |short |product )?demo|demo request|request a demo|walk ?-?through of)\b/i,
    ],
  },
  {
    id: 'lead-pricing',
    category: 'new_lead',
    weight: 2,
    intent: 'ask about pricing',
    patterns: [
      /\b(?:pricing|price list|how much (?:does|do|is|would|will|(?:it|this) (?:would|will|does))|what (?:does|would|will) (?:it|this) cost|what (?:it|this) (?:would|will) cost|costs? for)\b/i,
    ],
  },
  {
    id: 'lead-trial',
    category: 'new_lead',
    weight: 2,
    intent: 'start a trial',
    patterns: [
      /\b(?:free trial|trial (?:account|licen[cs]e|period)|(?:a|small|paid) pilot|pilot (?:project|program|phase)|proof of concept|poc|try (?:it|out|your))\b/i,
    ],
  },
  {
    id: 'lead-interest',
    category: 'new_lead',
    weight: 1.5,
    intent: 'explore the product',
    patterns: [
      /\b(?:interested in|evaluating|looking (?:for|at) (?:a|an|your)(?: [\w-]+)? (?:tool|solution|platform|vendor|product)|alternatives? to|would like to learn more|learn more about|shortlist(?:ed)?|comparing (?:vendors|tools|platforms))\b/i,
    ],
  },

  // personal: private matters unrelated to work
  {
    id: 'personal-life',
    category: 'personal',
    weight: 2.5,
    intent: 'personal message',
    patterns: [
      /\b(?:birthday|wedding|anniversary|baby shower|my (?:mom|mum|dad|wife|husband|partner|kids?|son|daughter|sister|brother)|family|grandma|grandpa|bbq|barbecue|weekend plans|vacation photos|holiday photos)\b/i,
    ],
  },
  {
    id: 'personal-social',
    category: 'personal',
    weight: 1.5,
    intent: 'personal message',
    patterns: [
      /\b(?:catch up over|grab (?:a )?(?:coffee|drinks?|lunch|beer|dinner)|dinner (?:on|at|this|tonight)|see you (?:at|on) (?:the|sunday|saturday)|miss you|hugs|xoxo)\b/i,
    ],
  },
  {
    id: 'personal-free-mail',
    category: 'personal',
    weight: 0.5,
    intent: 'personal message',
    in: 'domains',
    patterns: [
      /^(?:gmail\.com|googlemail\.com|yahoo\.[a-z.]+|hotmail\.[a-z.]+|outlook\.com|live\.com|icloud\.com|me\.com|proton\.me|protonmail\.com|gmx\.[a-z.]+|aol\.com)$/m,
    ],
  },
];

const INTERNAL_RULE_ID = 'internal-own-domains';
const INTERNAL_WEIGHT = 10;
const OUTBOUND_LEAD_RULE_ID = 'outbound-lead-is-conversation';

/** When scores tie, the earlier category wins. */
const TIE_BREAK: readonly Category[] = [
  'internal',
  'spam',
  'billing',
  'customer_support',
  'scheduling',
  'sales_conversation',
  'new_lead',
  'personal',
  'other',
];

const NEXT_STEPS: Record<Category, readonly string[]> = {
  new_lead: ['Reply within one business day', 'Qualify budget and timeline', 'Offer a demo slot'],
  sales_conversation: ['Answer the open points on the proposal or contract', 'Update the deal stage in the CRM', 'Agree the next meeting'],
  customer_support: ['Open or update a support ticket', 'Confirm impact and a workaround with the customer'],
  billing: ['Forward to accounts receivable', 'Confirm the invoice or payment status with the customer'],
  scheduling: ['Confirm the time and update the calendar invite'],
  internal: [],
  personal: [],
  spam: [],
  other: ['Review manually'],
};

const CATEGORY_LABEL: Record<Category, string> = {
  new_lead: 'new lead',
  sales_conversation: 'sales conversation',
  customer_support: 'customer support',
  billing: 'billing',
  scheduling: 'scheduling',
  internal: 'internal',
  personal: 'personal',
  spam: 'spam',
  other: 'other',
};

const POSITIVE =
  /\b(?:thanks?|thank you|great|love|happy|appreciate[ds]?|excellent|excited|perfect|glad|pleased|awesome|wonderful|impressed|looks good)\b/gi;
const NEGATIVE =
  /\b(?:frustrat(?:ed|ing)|angry|disappoint(?:ed|ing)|unacceptable|broken|terrible|awful|worst|complain(?:t|ing)?|annoy(?:ed|ing)|upset|unhappy|not happy|still (?:no|not|waiting)|charged twice|failing|fails|failed)\b/gi;
const URGENT = [
  /\b(?:urgent(?:ly)?|asap|a\.s\.a\.p\.|as soon as possible|immediately|right away|critical|emergency|blocker|blocking|blocked|outage|(?:is|are|went|been) down|production (?:is )?down|cancel(?:ling|lation|led)?)\b/i,
  /\b(?:by|before|until|no later than) (?:today|tonight|tomorrow|end of (?:day|today|the week|this week)|eod|cob|(?:mon|tues|wednes|thurs|fri)day)\b/i,
  /\b(?:today|tonight) (?:please|if possible|at the latest)\b|\bneed (?:it|this|them|an answer) (?:today|tonight|tomorrow)\b|\bdeadline\b/i,
];

const CONTENT_LIMIT = 20_000;
const SUMMARY_LIMIT = 200;

interface Scored {
  readonly scores: Record<Category, number>;
  readonly matched: readonly OfflineRule[];
  readonly matchedRules: string[];
}

/** Classifies with the rule table; needs no network and gives the same output for the same input. */
export class OfflineClassifier implements Classifier {
  readonly provider = 'offline';
  readonly model = OFFLINE_CLASSIFIER_VERSION;
  private readonly ownDomains: readonly string[];

  constructor(options: { ownDomains?: readonly string[] } = {}) {
    this.ownDomains = normaliseDomains(options.ownDomains ?? []);
  }

  classify(input: ClassifierInput, _prompt: Prompt, options: { signal?: AbortSignal } = {}): Promise<ClassifierResult> {
    const started = performance.now();
    if (options.signal?.aborted === true) {
      return Promise.reject(
        new ClassifierError('TIMEOUT', 'classification was aborted before it started', { attempts: 0, requestId: null }),
      );
    }
    const output = classifyOffline(input, this.ownDomains);
    return Promise.resolve({
      output,
      provider: this.provider,
      model: this.model,
      requestId: null,
      tokens: null,
      attempts: 1,
      latencyMs: performance.now() - started,
    });
  }
}

/** Why the offline classifier decides as it does: every category's score and the rules that matched, in table order. */
export function explainOffline(
  input: ClassifierInput,
  options: { ownDomains?: readonly string[] } = {},
): { scores: Record<Category, number>; matchedRules: string[] } {
  const { scores, matchedRules } = score(input, normaliseDomains(options.ownDomains ?? []));
  return { scores, matchedRules };
}

function classifyOffline(input: ClassifierInput, ownDomains: readonly string[]): Classification {
  const { scores, matched } = score(input, ownDomains);
  const ranked = [...TIE_BREAK].sort((a, b) => scores[b] - scores[a] || TIE_BREAK.indexOf(a) - TIE_BREAK.indexOf(b));
  const best = scores[ranked[0]!];
  const second = scores[ranked[1]!];
  const category: Category = best > 0 ? ranked[0]! : 'other';
  const content = contentOf(input);

  let confidence: number;
  if (best <= 0) {
    confidence = 0.2;
  } else {
    // Margin: how clearly the winner beats the runner-up. Evidence: how much support it has in absolute terms.
    const margin = (best - second) / best;
    const evidence = 1 - Math.exp(-best / 2);
    confidence = 0.2 + 0.75 * margin * evidence;
    if (content.replace(/\s+/g, ' ').trim().length < 80) confidence = Math.min(confidence, 0.55);
  }
  confidence = Math.round(Math.min(0.95, Math.max(0.05, confidence)) * 100) / 100;

  // The strongest rule of the winning category (table order breaks ties) gives intent and any special next steps.
  const deciding = matched
    .filter((r) => effectiveCategory(r, input.direction) === category)
    .reduce<OfflineRule | undefined>((top, r) => (top === undefined || r.weight > top.weight ? r : top), undefined);
  const internalDecides = category === 'internal' && scores.internal >= INTERNAL_WEIGHT;

  const urgency = urgencyOf(category, deciding, content);
  const nextSteps = [...(deciding?.nextSteps ?? NEXT_STEPS[category])];
  if (category === 'customer_support' && urgency === 'high') nextSteps.push('Escalate to on-call support');
  if (category === 'billing' && /\[REDACTED:(?:card-number|iban)\]/.test(content))
    nextSteps.push('Ask for payment details through the secure billing portal, never by email');
  if (confidence < 0.6 && category !== 'other') nextSteps.push('Check the category by hand: the rules are not sure');

  return {
    summary: summaryOf(input, category, deciding),
    category,
    intent: internalDecides ? 'internal coordination' : (deciding?.intent ?? 'unclear'),
    sentiment: category === 'spam' ? 'neutral' : sentimentOf(content),
    urgency,
    nextSteps: nextSteps.slice(0, 5),
    confidence,
  };
}

function score(input: ClassifierInput, ownDomains: readonly string[]): Scored {
  const scores = Object.fromEntries(CATEGORIES.map((c) => [c, 0])) as Record<Category, number>;
  const matched: OfflineRule[] = [];
  const matchedRules: string[] = [];

  const domains = normaliseDomains(input.domains);
  const isOwn = (d: string): boolean => ownDomains.some((own) => d === own || d.endsWith(`.${own}`));
  const callWithOutsider = input.channel === 'call' && input.direction !== 'internal';
  if (!callWithOutsider && domains.length > 0 && domains.every(isOwn)) {
    scores.internal += INTERNAL_WEIGHT;
    matchedRules.push(INTERNAL_RULE_ID);
  }

  const content = contentOf(input);
  const fields = { content, subject: input.subject ?? '', domains: domains.join('\n') };
  let outboundLead = false;
  for (const rule of OFFLINE_RULES) {
    if (rule.directions !== undefined && !rule.directions.includes(input.direction)) continue;
    const haystack = fields[rule.in ?? 'content'];
    if (!rule.patterns.some((p) => p.test(haystack))) continue;
    const category = effectiveCategory(rule, input.direction);
    if (category !== rule.category) outboundLead = true;
    scores[category] += rule.weight;
    matched.push(rule);
    matchedRules.push(rule.id);
  }
  if (outboundLead) matchedRules.push(OUTBOUND_LEAD_RULE_ID);
  return { scores, matched, matchedRules };
}

function effectiveCategory(rule: OfflineRule, direction: Direction): Category {
  return rule.category === 'new_lead' && direction === 'outbound' ? 'sales_conversation' : rule.category;
}

function contentOf(input: ClassifierInput): string {
  const text = input.subject === null ? input.text : `${input.subject}\n${input.text}`;
  // The rules look at the beginning; a classifier input is already truncated, this only bounds the work.
  return text.length > CONTENT_LIMIT ? text.slice(0, CONTENT_LIMIT) : text;
}

function urgencyOf(category: Category, deciding: OfflineRule | undefined, content: string): Classification['urgency'] {
  if (category === 'spam' || category === 'personal' || deciding?.id === 'auto-reply' || deciding?.id === 'bounce') return 'low';
  // Cancelling a meeting is scheduling, not a threat to cancel the contract.
  const relevant = category === 'scheduling' ? content.replace(/\bcancel\w*/gi, '') : content;
  return URGENT.some((p) => p.test(relevant)) ? 'high' : 'normal';
}

function sentimentOf(content: string): Classification['sentiment'] {
  const positive = content.match(POSITIVE)?.length ?? 0;
  const negative = content.match(NEGATIVE)?.length ?? 0;
  if (positive > negative) return 'positive';
  if (negative > positive) return 'negative';
  return 'neutral';
}

const CHANNEL_NOUN: Record<ClassifierInput['channel'], string> = { email: 'email', call: 'call', form: 'form submission' };
const DIRECTION_ADJECTIVE: Record<Direction, string> = { inbound: 'Inbound', outbound: 'Outbound', internal: 'Internal' };
const EMAIL = /[^\s@<>()[\]"',;:]+@[^\s@<>()[\]"',;:]+/g;
const PHONE = /(?<![\w-])(?:\+\d[\d ().-]{5,}\d|\(?\d{3}\)?[ .-]?\d{3}[ .-]\d{4}|\d{3}[ .-]\d{4})(?![\w-])/g;
// Speaker labels of the company's own side in transcripts: their greetings say little about the interaction.
const OWN_SPEAKER = /^(?:agent|rep|representative|operator|support|sales|ivr|system|northwind)\b[^:]{0,30}:/i;

/** "Inbound email, new lead: <subject or first sentence>", without addresses or phone numbers, at most 200 characters. */
function summaryOf(input: ClassifierInput, category: Category, deciding: OfflineRule | undefined): string {
  const prefix = `${DIRECTION_ADJECTIVE[input.direction]} ${CHANNEL_NOUN[input.channel]}, ${CATEGORY_LABEL[category]}: `;
  const subject = input.subject === null ? '' : stripContactDetails(input.subject);
  const gist = subject !== '' ? subject : firstSentence(input.text, deciding);
  const line = prefix + (gist === '' ? '(no subject or text)' : gist);
  return line.length > SUMMARY_LIMIT ? line.slice(0, SUMMARY_LIMIT - 1).trimEnd() + '…' : line;
}

/**
 * A sentence of four words or more that carries the deciding rule's evidence, else the first of four words or
 * more (form labels and greetings are shorter), else the first sentence.
 */
function firstSentence(text: string, deciding: OfflineRule | undefined): string {
  const sentences: string[] = [];
  for (const rawLine of text.slice(0, 4000).split('\n')) {
    if (OWN_SPEAKER.test(rawLine.trim())) continue;
    // Drop a leading "Caller:" or "Message:" label so the sentence itself remains.
    const line = rawLine.trim().replace(/^[A-Za-z][\w ]{0,30}:\s+/, '');
    for (const sentence of line.split(/(?<=[.!?])\s+/)) {
      const clean = stripContactDetails(sentence);
      if (clean !== '') sentences.push(clean);
    }
  }
  const long = sentences.filter((s) => s.split(' ').length >= 4);
  const carriesEvidence = (s: string): boolean =>
    deciding !== undefined && deciding.in === undefined && deciding.patterns.some((p) => p.test(s));
  return long.find(carriesEvidence) ?? long[0] ?? sentences[0] ?? '';
}

function stripContactDetails(s: string): string {
  return s
    .replace(EMAIL, '')
    .replace(PHONE, '')
    .replace(/\(\s*\)|<\s*>/g, '')
    .replace(/\s+/g, ' ')
    .replace(/\s+([,.;:!?])/g, '$1')
    .trim();
}

function normaliseDomains(domains: readonly string[]): string[] {
  return [...new Set(domains.map((d) => d.trim().toLowerCase().replace(/\.$/, '')).filter((d) => d !== ''))];
}
