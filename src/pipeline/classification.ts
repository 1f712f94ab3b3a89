/**
 * What a classifier decides about an interaction, and the port every classifier (the OpenAI adapter, the
 * offline rules) implements.
 */
import { z } from 'zod';

export const CATEGORIES = [
  'new_lead',
  'sales_conversation',
  'customer_support',
  'billing',
  'scheduling',
  'internal',
  'personal',
  'spam',
  'other',
] as const;
export type Category = (typeof CATEGORIES)[number];

/** The structured output; every field is required so that strict structured outputs can express it. */
export const ClassificationSchema = z.strictObject({
  summary: z.string().describe('One or two sentences: who wants what. No personal data beyond names already in the text.'),
  category: z.enum(CATEGORIES),
  intent: z.string().describe('The sender\'s intent in a few words, e.g. "request a quote".'),
  sentiment: z.enum(['positive', 'neutral', 'negative']),
  urgency: z.enum(['low', 'normal', 'high']),
  nextSteps: z.array(z.string()).describe('Concrete next steps for the sales team; empty if none.'),
  confidence: z.number().describe('How sure you are of the category, from 0 to 1.'),
});
export type Classification = z.infer<typeof ClassificationSchema>;

/** Bounds the schema above cannot carry into a strict JSON schema; checked after parsing. */
export function classificationProblems(c: Classification): string[] {
  const problems: string[] = [];
  if (!(c.confidence >= 0 && c.confidence <= 1)) problems.push(`confidence ${c.confidence} is outside 0..1`);
  if (c.summary.trim().length === 0) problems.push('summary is empty');
  if (c.summary.length > 2000) problems.push('summary is longer than 2000 characters');
  if (c.nextSteps.length > 20) problems.push('more than 20 next steps');
  return problems;
}

/** A versioned prompt, loaded from `prompts/<id>/<version>.md`; its hash is recorded with every decision. */
export interface Prompt {
  readonly id: string;
  readonly version: string;
  /** Hex SHA-256 of the prompt file's bytes. */
  readonly hash: string;
  /** The instructions (the system message). */
  readonly instructions: string;
}

/** What the model sees: already minimised (redacted and truncated). */
export interface ClassifierInput {
  readonly channel: 'email' | 'call' | 'form';
  readonly direction: 'inbound' | 'outbound' | 'internal';
  readonly subject: string | null;
  readonly text: string;
  /** Sender and recipient domains only (never full addresses). */
  readonly domains: readonly string[];
}

export interface ClassifierResult {
  readonly output: Classification;
  readonly provider: string;
  readonly model: string;
  /** The provider's request id (x-request-id), null for local classifiers. */
  readonly requestId: string | null;
  readonly tokens: { readonly input: number; readonly output: number } | null;
  readonly attempts: number;
  readonly latencyMs: number;
}

/** Classifies one minimised interaction. Throws ClassifierError (with its code) when it cannot. */
export interface Classifier {
  readonly provider: string;
  readonly model: string;
  classify(input: ClassifierInput, prompt: Prompt, options?: { signal?: AbortSignal }): Promise<ClassifierResult>;
}
