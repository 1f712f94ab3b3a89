/**
 * The rules engine. Rules are data (config/rules.json, edited by the operator and versioned); evaluation is
 * pure and explains itself: which rule matched, what it looked at, and the ruleset version.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { Classification } from './classification.ts';
import { CATEGORIES } from '../journal/categories.ts';
import type { Interaction } from './interaction.ts';
import { RulesetError } from './errors/ruleset.error.ts';

const ConditionSchema = z.strictObject({
  channel: z.array(z.enum(['email', 'call', 'form'])).optional(),
  direction: z.array(z.enum(['inbound', 'outbound', 'internal'])).optional(),
  allParticipantsInOwnDomains: z.boolean().optional(),
  anyParticipantDomainIn: z.array(z.string().min(1)).optional(),
  anyParticipantAddressIn: z.array(z.string().min(1)).optional(),
  categoryIn: z.array(z.enum(CATEGORIES)).optional(),
  urgencyIn: z.array(z.enum(['low', 'normal', 'high'])).optional(),
  confidenceBelow: z.number().min(0).max(1).optional(),
  decisionOutcomeIn: z.array(z.enum(['ok', 'cached', 'fallback'])).optional(),
  metadataEquals: z.record(z.string(), z.json()).optional(),
});
export type Condition = z.infer<typeof ConditionSchema>;

const groupId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/);
/** The name of an environment variable holding a secret (never the secret itself in the rules file). */
const envName = z.string().regex(/^[A-Z][A-Z0-9_]{0,127}$/, 'an environment variable name (A-Z, 0-9, _)');

/**
 * A recipient group: where its notifications go. Addresses are data here; secrets (Slack webhook URLs, webhook
 * URLs and signing secrets) are named by environment variable. A channel whose variable (or, for e-mail,
 * SMTP_HOST) is not set is not used; a group with no usable channel is notified on the log channel (dry run).
 */
const RecipientGroupSchema = z.strictObject({
  description: z.string().optional(),
  email: z.strictObject({ to: z.array(z.email()).min(1).max(50) }).optional(),
  slack: z.strictObject({ webhookUrlEnv: envName }).optional(),
  webhook: z.strictObject({ urlEnv: envName, secretEnv: envName }).optional(),
});
export type RecipientGroup = z.infer<typeof RecipientGroupSchema>;

const ruleBase = { id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/), description: z.string().optional(), when: ConditionSchema };

export const RulesetSchema = z.strictObject({
  $comment: z.string().optional(),
  version: z.string().min(1).max(64),
  ownDomains: z.array(z.string().min(1)).default([]),
  exclusions: z.array(z.strictObject(ruleBase)).default([]),
  mirror: z.array(z.strictObject({ ...ruleBase, outcome: z.enum(['mirror', 'skip']) })).min(1),
  review: z.array(z.strictObject({ ...ruleBase, outcome: z.enum(['review', 'none']) })).min(1),
  notifications: z.array(z.strictObject({ ...ruleBase, notify: groupId })).default([]),
  /** The recipient groups a notification rule's `notify` names, with their channels. */
  recipients: z.record(groupId, RecipientGroupSchema).default({}),
});
export type Ruleset = z.infer<typeof RulesetSchema>;

/** Loads and validates a rules file; every problem is listed, each with its path. */
export function loadRuleset(path: string): Ruleset {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new RulesetError(`cannot read rules from ${path}: ${(err as Error).message}`, { cause: err });
  }
  const parsed = RulesetSchema.safeParse(raw);
  if (!parsed.success)
    throw new RulesetError(`invalid rules in ${path}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const ids = new Set<string>();
  for (const r of [...parsed.data.exclusions, ...parsed.data.mirror, ...parsed.data.review, ...parsed.data.notifications]) {
    if (ids.has(r.id)) throw new RulesetError(`invalid rules in ${path}: rule id ${r.id} is used twice`);
    ids.add(r.id);
  }
  const last = (list: { id: string; when: Condition }[], section: string): void => {
    const final = list[list.length - 1];
    if (!final || Object.keys(final.when).length !== 0)
      throw new RulesetError(
        `invalid rules in ${path}: the last ${section} rule must have an empty "when" so every interaction gets an outcome`,
      );
  };
  for (const n of parsed.data.notifications) {
    if (!Object.prototype.hasOwnProperty.call(parsed.data.recipients, n.notify)) {
      throw new RulesetError(
        `invalid rules in ${path}: notification rule ${n.id} notifies "${n.notify}", which is not a group in "recipients" (known: ${Object.keys(parsed.data.recipients).join(', ') || 'none'})`,
      );
    }
  }
  last(parsed.data.mirror, 'mirror');
  last(parsed.data.review, 'review');
  return parsed.data;
}

/** The facts a condition can look at. */
export interface Facts {
  readonly interaction: Pick<Interaction, 'channel' | 'direction' | 'participants' | 'metadata'>;
  readonly classification?: Pick<Classification, 'category' | 'confidence' | 'urgency'>;
  readonly decisionOutcome?: 'ok' | 'cached' | 'fallback';
}

export function domainOf(address: string): string | null {
  const at = address.lastIndexOf('@');
  return at > 0 ? address.slice(at + 1).toLowerCase() : null;
}

function matches(when: Condition, facts: Facts, own: readonly string[]): boolean {
  const ix = facts.interaction;
  const domains = ix.participants.map((p) => domainOf(p.address));
  if (when.channel && !when.channel.includes(ix.channel)) return false;
  if (when.direction && !when.direction.includes(ix.direction)) return false;
  if (when.allParticipantsInOwnDomains !== undefined) {
    const all = domains.length > 0 && domains.every((d) => d !== null && own.includes(d));
    if (all !== when.allParticipantsInOwnDomains) return false;
  }
  if (when.anyParticipantDomainIn && !domains.some((d) => d !== null && when.anyParticipantDomainIn?.includes(d))) return false;
  if (when.anyParticipantAddressIn && !ix.participants.some((p) => when.anyParticipantAddressIn?.includes(p.address.toLowerCase())))
    return false;
  const c = facts.classification;
  if (when.categoryIn && !(c && when.categoryIn.includes(c.category))) return false;
  if (when.urgencyIn && !(c && when.urgencyIn.includes(c.urgency))) return false;
  if (when.confidenceBelow !== undefined && !(c && c.confidence < when.confidenceBelow)) return false;
  if (when.decisionOutcomeIn && !(facts.decisionOutcome && when.decisionOutcomeIn.includes(facts.decisionOutcome))) return false;
  if (when.metadataEquals) {
    for (const [k, v] of Object.entries(when.metadataEquals)) if (JSON.stringify(ix.metadata?.[k]) !== JSON.stringify(v)) return false;
  }
  return true;
}

export interface RuleOutcome<O extends string> {
  readonly ruleId: string;
  readonly outcome: O;
  readonly description: string | undefined;
}

/** First matching exclusion, or null when the interaction is to be kept. */
export function evaluateExclusions(rules: Ruleset, facts: Facts): RuleOutcome<'excluded'> | null {
  const hit = rules.exclusions.find((r) => matches(r.when, facts, rules.ownDomains));
  return hit ? { ruleId: hit.id, outcome: 'excluded', description: hit.description } : null;
}

export function evaluateMirror(rules: Ruleset, facts: Facts): RuleOutcome<'mirror' | 'skip'> {
  const hit = rules.mirror.find((r) => matches(r.when, facts, rules.ownDomains)) as Ruleset['mirror'][number];
  return { ruleId: hit.id, outcome: hit.outcome, description: hit.description };
}

export function evaluateReview(rules: Ruleset, facts: Facts): RuleOutcome<'review' | 'none'> {
  const hit = rules.review.find((r) => matches(r.when, facts, rules.ownDomains)) as Ruleset['review'][number];
  return { ruleId: hit.id, outcome: hit.outcome, description: hit.description };
}

export function evaluateNotifications(rules: Ruleset, facts: Facts): { ruleId: string; notify: string }[] {
  return rules.notifications.filter((r) => matches(r.when, facts, rules.ownDomains)).map((r) => ({ ruleId: r.id, notify: r.notify }));
}
