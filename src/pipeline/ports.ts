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

/**
 * What the mirror stage asks the CRM to hold: exactly one activity per journaled interaction, except that a call
 * and its transcripts are one call activity (its anchor's; see buildCallPlan).
 */
export interface MirrorPlan {
  /** The interaction entry (a call's anchor); becomes the activity's unique `journal_entry_id`. */
  readonly entryId: string;
  /** Where the interaction and its decision are in the journal: what a batch job rebuilds the plan from. */
  readonly entrySeq: number;
  readonly correlationId: string;
  readonly decisionEntryId: string;
  readonly decisionSeq: number;
  readonly direction: 'inbound' | 'outbound' | 'internal';
  readonly objectType: 'emails' | 'calls' | 'notes';
  readonly properties: Readonly<Record<string, string>>;
  /** Who to associate it with: email addresses or phone numbers of the other side. */
  readonly counterparts: readonly string[];
  readonly category: Category;
  /** The human.override whose category this plan carries (absent: the model's decision stands). */
  readonly overrideEntryId?: string | undefined;
  /** A reviewer's association override: these targets replace the matching rule's (absent: the rule matches). */
  readonly associationOverride?: AssociationOverride | undefined;
  /**
   * For an activity that holds more than its own entry (a call and its transcripts): every interaction whose
   * section the body holds, in journal order, with the decision (and category override) it is built from. Absent:
   * the activity is its entry's alone.
   */
  readonly members?: readonly PlanMember[] | undefined;
}

export interface PlanMember {
  readonly entryId: string;
  readonly decisionEntryId: string;
  readonly overrideEntryId?: string | undefined;
}

/** CRM record ids by target type. */
export interface AssociationTargets {
  readonly contacts: readonly string[];
  readonly companies: readonly string[];
  readonly deals: readonly string[];
}

export interface AssociationOverride {
  /** The newest human.override of field "associations" for this interaction's decision. */
  readonly entryId: string;
  readonly actor: string;
  readonly reason: string;
  /** What the override replaced, and what the activity is associated with from now on. */
  readonly from: AssociationTargets;
  readonly to: AssociationTargets;
  /** Targets named by earlier matches or overrides that are not in `to`: their associations are removed. */
  readonly remove: AssociationTargets;
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

/** What became of one plan in a batch write. */
export interface MirrorItemOutcome {
  readonly entryId: string;
  readonly status: 'mirrored' | 'failed';
  readonly objectId: string | null;
  /** For failures: why (HubSpot's message), and whether trying again may help. */
  readonly reason?: string;
  readonly retryable?: boolean;
}

/** An activity as the CRM holds it, found by its journal_entry_id. */
export interface MirroredActivity {
  readonly objectId: string;
  readonly properties: Readonly<Record<string, string | null>>;
}

/** A limit on CRM requests shared by every worker process: wait for a slot; pause everyone after a 429. */
/** The paths of an activity write (batch upsert, or update/create under search-before-create): what drift and re-mirrors read back. */
export const ACTIVITY_WRITE_PATH = /^\/crm\/v3\/objects\/[^/]+\/batch\/(upsert|update|create)$/;

export interface RequestGate {
  acquire(): Promise<void>;
  /** Stops every sender sharing the gate for `ms` and returns once that holds (before anything is recorded). */
  halt(ms: number): Promise<void>;
  /** halt, then waits the `ms` out. */
  pause(ms: number): Promise<void>;
}

/** A CRM that writes many plans at once (batch upsert, batched associations) and can be read back for drift. */
export interface BatchCrmClient extends CrmClient {
  /** Creates what the CRM needs before the first write (the journal_entry_id property), journaled. Idempotent. */
  bootstrap(): Promise<void>;
  /** Writes up to 100 plans; each plan's outcome, item by item. Throws only when nothing can be said per item. */
  mirrorBatch(plans: readonly MirrorPlan[], batchId: string, gate?: RequestGate): Promise<MirrorItemOutcome[]>;
  /** Only the activity upserts of up to 100 plans (associations follow through associateBatch). */
  upsertBatch(plans: readonly MirrorPlan[], batchId: string, gate?: RequestGate): Promise<MirrorItemOutcome[]>;
  /** Matches (journaled as rule.decision) and associates activities already written, any number at once. */
  associateBatch(items: readonly { plan: MirrorPlan; objectId: string }[], batchId: string, gate?: RequestGate): Promise<void>;
  /** The activities of one type that carry these journal entry ids (absent ones are missing from the map). */
  readMirrored(
    objectType: MirrorPlan['objectType'],
    entryIds: readonly string[],
    properties: readonly string[],
  ): Promise<Map<string, MirroredActivity>>;
}

export function isBatchCrm(crm: CrmClient): crm is BatchCrmClient {
  return typeof (crm as Partial<BatchCrmClient>).mirrorBatch === 'function';
}

/** The channels a notification can go out on ('log': journaled as a dry run only). */
export type NotifyChannelName = 'log' | 'email' | 'slack' | 'webhook';

/** Which channels a recipient group is notified on here (those configured); the notify jobs deliver on each. */
export interface Notifier {
  channelsFor(group: string): readonly NotifyChannelName[];
}

/** Identical minimised input with the same prompt is classified once: this remembers where that decision is. */
export interface DecisionCache {
  get(promptHash: string, inputHash: string): Promise<number | null>;
  set(promptHash: string, inputHash: string, decisionSeq: number): Promise<void>;
}

/** Adds a job (deterministic id: adding the same job twice is a no-op). */
export type Enqueue = <Q extends QueueName>(queue: Q, data: JobData<Q>, jobKey: string) => Promise<void>;
