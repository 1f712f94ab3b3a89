/**
 * What a classifier decides about an interaction, and the port every classifier (the OpenAI adapter, the
 * offline rules) implements.
 */
import { z } from 'zod';
import type { EntryOf } from '../journal/entry-payload.ts';
import type { PayloadOf } from '../journal/kinds.ts';
import { CATEGORIES } from '../journal/categories.ts';

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

/**
 * What a decision recorded, its `output` as the Classification it is; throws when it holds none: a failed
 * decision, or one whose personal fields (the output among them) are withheld (its subject forgotten, its key
 * missing) or dropped. The journal's catalogue types `output` as any JSON object (the journal knows no pipeline
 * types); the pipeline wrote it from a parsed Classification, and this is the one place that takes it back as one.
 */
export function recordedDecision(decision: EntryOf<'ai.decision'>): RecordedDecision {
  const p = decision.payload;
  // A failed decision's output is null: the outcome is checked too only so that the type can say so.
  if (p.output === null || p.output === undefined || p.outcome === 'failed') throw noClassification(decision.id);
  return { ...p, outcome: p.outcome, output: p.output as Classification };
}

/** A decision that holds a classification (see recordedDecision). */
export type RecordedDecision = Omit<PayloadOf<'ai.decision'>, 'output' | 'outcome'> & {
  readonly outcome: Exclude<PayloadOf<'ai.decision'>['outcome'], 'failed'>;
  readonly output: Classification;
};

/** The classification a decision recorded (see recordedDecision). */
export function classificationOf(decision: EntryOf<'ai.decision'>): Classification {
  const output = decision.payload.output;
  if (output === null || output === undefined) throw noClassification(decision.id);
  return output as Classification;
}

function noClassification(id: string): Error {
  return new Error(`decision ${id} holds no classification (a failed decision, or its output is withheld or dropped)`);
}

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
