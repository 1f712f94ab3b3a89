/**
 * The ports the pipeline depends on besides the journal and the classifier. Each declares only what we call.
 */
import type { Interaction } from './interaction.ts';
import type { QueueName, JobData } from './job-catalog.ts';
import type { Category } from './classification.ts';

/** Where the ingest stage fetches an item by id (Gmail, a call platform's API, the bundled samples...). */
export interface ActivitySource {
  readonly name: string;
  /** The item, or null when the source no longer has it. */
  fetch(sourceId: string, account?: string): Promise<Interaction | null>;
}

/** What the mirror stage asks the CRM to hold: exactly one activity per journaled interaction. */
export interface MirrorPlan {
  /** The interaction entry; becomes the activity's unique `journal_entry_id`. */
  readonly entryId: string;
  readonly correlationId: string;
  readonly decisionEntryId: string;
  readonly objectType: 'emails' | 'calls' | 'notes';
  readonly properties: Readonly<Record<string, string>>;
  /** Who to associate it with: email addresses or phone numbers of the other side. */
  readonly counterparts: readonly string[];
  readonly category: Category;
  /** The human.override whose category this plan carries (absent: the model's decision stands). */
  readonly overrideEntryId?: string | undefined;
}

export interface MirrorResult {
  readonly objectId: string | null;
  readonly dryRun: boolean;
}

/** Writes a mirror plan to the CRM, journaling every call it makes (crm.write / crm.write_failed). */
export interface CrmClient {
  readonly dryRun: boolean;
  mirror(plan: MirrorPlan): Promise<MirrorResult>;
}

export interface Notification {
  readonly entryId: string;
  readonly correlationId: string;
  readonly recipient: string;
  readonly ruleId: string;
  readonly ruleVersion: string;
  readonly category: Category;
  readonly summary: string;
}

/** Sends a notification and journals it (notification.sent) under the interaction's correlation. */
export interface Notifier {
  notify(n: Notification): Promise<void>;
}

/** Identical minimised input with the same prompt is classified once: this remembers where that decision is. */
export interface DecisionCache {
  get(promptHash: string, inputHash: string): Promise<number | null>;
  set(promptHash: string, inputHash: string, decisionSeq: number): Promise<void>;
}

/** Adds a job (deterministic id: adding the same job twice is a no-op). */
export type Enqueue = <Q extends QueueName>(queue: Q, data: JobData<Q>, jobKey: string) => Promise<void>;
