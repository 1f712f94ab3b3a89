/**
 * The closed catalogue of entry kinds. An append whose kind is not here, or whose payload does not match the
 * kind's schema, is refused. Later features add kinds here, and only here.
 *
 * Payload schemas are strict: an unknown field is an error rather than silently dropped or silently kept,
 * because a journal that quietly accepts typos stops being evidence of anything.
 */
import { z } from 'zod';

const id = z.string().min(1).max(256);
const text = z.string().max(10_000);
const isoTime = z.iso.datetime({ offset: true });
const jsonValue = z.json();
const base64Hash = z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'a base64 SHA-256 hash');
const hexHash = z.string().regex(/^[0-9a-f]{64}$/, 'a hex SHA-256 hash');

const participant = z.strictObject({
  role: z.enum(['from', 'to', 'cc', 'bcc', 'caller', 'callee', 'agent', 'submitter', 'other']),
  address: z.string().min(1).max(512),
  name: z.string().max(512).optional(),
});

const attachment = z.strictObject({
  filename: z.string().max(1024).optional(),
  mimeType: z.string().max(256),
  sizeBytes: z.number().int().nonnegative(),
  contentHash: hexHash.optional(),
});

/** An interaction normalised from any source (email, call, form submission). */
const interactionReceived = z.strictObject({
  channel: z.enum(['email', 'call', 'form']),
  sourceId: id,
  direction: z.enum(['inbound', 'outbound', 'internal']),
  occurredAt: isoTime,
  participants: z.array(participant).max(1000),
  subject: z.string().max(2000).optional(),
  text: z.string().max(2_000_000).optional(),
  threadId: id.optional(),
  attachments: z.array(attachment).max(1000).optional(),
  metadata: z.record(z.string(), jsonValue).optional(),
});

const aiDecision = z.strictObject({
  inputEntryId: id,
  inputHash: hexHash,
  promptId: id,
  promptVersion: id,
  promptHash: hexHash,
  provider: id,
  model: id,
  outcome: z.enum(['ok', 'cached', 'failed', 'fallback']),
  output: z.record(z.string(), jsonValue).nullable(),
  confidence: z.number().min(0).max(1).nullable(),
  tokens: z.strictObject({ input: z.number().int().nonnegative(), output: z.number().int().nonnegative() }).nullable(),
  latencyMs: z.number().nonnegative(),
  requestId: z.string().max(256).nullable(),
  attempts: z.number().int().nonnegative(),
  error: text.optional(),
  redactions: z.array(z.strictObject({ rule: id, count: z.number().int().nonnegative() })).optional(),
  truncatedTo: z.number().int().nonnegative().optional(),
  reviewRequired: z.boolean().optional(),
  /** For outcome 'cached': the earlier decision whose output was reused (same input hash and prompt). */
  reusedEntryId: id.optional(),
  /** For outcome 'fallback': the failed decision this one replaces. */
  replacesEntryId: id.optional(),
});

const ruleDecision = z.strictObject({
  ruleId: id,
  ruleVersion: id,
  inputEntryId: id.optional(),
  evaluated: z.record(z.string(), jsonValue),
  outcome: z.string().min(1).max(256),
  reason: text.optional(),
});

const crmCall = {
  system: id,
  method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']),
  path: z.string().min(1).max(2048),
  status: z.number().int().min(0).max(999),
  durationMs: z.number().nonnegative(),
  objectIds: z.array(id).max(1000).optional(),
  providerCorrelationId: z.string().max(256).optional(),
  /** True when nothing was sent: the dry-run CRM records what it would have written (status 0). */
  dryRun: z.boolean().optional(),
  objectType: z.string().max(64).optional(),
  idProperty: z.string().max(128).optional(),
  /** The properties written (or that would have been), for the record. */
  properties: z.record(z.string(), jsonValue).optional(),
  // As wide as intake admits (an address of 512 characters, 1,000 participants): a dry-run write of what intake
  // took in must never be refused (it was, for addresses over 256 characters, and then retried for 13 minutes).
  associations: z
    .array(z.strictObject({ objectType: z.string().max(64), id: z.string().max(512), typeId: z.number().int().positive().optional() }))
    .max(1000)
    .optional(),
  /** Associations a call removed (a reviewer's association override). */
  removedAssociations: z
    .array(z.strictObject({ objectType: z.string().max(64), id: z.string().max(512) }))
    .max(1000)
    .optional(),
  /** The human.override entry this call carries out. */
  override: id.optional(),
  /** The journal entry whose activity this call wrote (one crm.write per activity per call). */
  entryId: id.optional(),
  /** The interactions whose sections that activity holds (a call and its transcripts), with the decision of each: ids only. */
  members: z
    .array(z.strictObject({ entryId: id, decisionEntryId: id, overrideEntryId: id.optional() }))
    .max(1000)
    .optional(),
  /** How many items the call carried (a batch call is journaled once per activity it wrote). */
  batchSize: z.number().int().min(1).max(10_000).optional(),
  /** For upserts: whether HubSpot created the object (false: it updated an existing one). */
  created: z.boolean().optional(),
  /** For reads and lookups: what the call was for (bootstrap, contact-lookup, company-search, deal-lookup, drift-read...). */
  purpose: z.string().max(64).optional(),
  /** A fixed explanation of what the call's outcome means (e.g. an earlier attempt's answer was lost); never data. */
  note: z.string().max(500).optional(),
};
const crmWrite = z.strictObject(crmCall);
const crmWriteFailed = z.strictObject({ ...crmCall, error: text, retryable: z.boolean() });

const stateChanged = z.strictObject({
  entity: z.string().min(1).max(512),
  field: z.string().min(1).max(512),
  from: jsonValue,
  to: jsonValue,
});

const humanOverride = z.strictObject({
  supersedes: id,
  field: z.string().min(1).max(512),
  from: jsonValue,
  to: jsonValue,
  reason: z.string().min(1).max(10_000),
});

/** A sign-in to the audit UI. The user id only when it names a configured user: never the typed name, password or address. */
const auditLogin = z.strictObject({
  outcome: z.enum(['success', 'failure']),
  userId: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/)
    .optional(),
  role: z.enum(['viewer', 'reviewer', 'admin']).optional(),
  reason: z.enum(['signed-in', 'unknown-user', 'wrong-password', 'locked-out']),
});

/** An export of entries with their inclusion proofs (who: the entry's actor). Scope only, never the content. */
const auditExported = z.strictObject({
  scope: z.enum(['range', 'correlation']),
  from: isoTime.optional(),
  until: isoTime.optional(),
  /** SHA-256 of the correlation id, for a correlation export. */
  correlationHash: hexHash.optional(),
  entries: z.number().int().nonnegative(),
  treeSize: z.number().int().nonnegative(),
  format: z.literal('activity-journal/export/v1'),
});

const cursorAdvanced = z.strictObject({
  connector: id,
  account: id,
  from: z.string().max(1024).nullable(),
  to: z.string().min(1).max(1024),
});

const connectorHealth = z.strictObject({
  connector: id,
  account: id.optional(),
  status: z.enum(['ok', 'degraded', 'needs_consent', 'failing']),
  reason: text,
  windowStart: isoTime.optional(),
  windowEnd: isoTime.optional(),
});

const inboxConnected = z.strictObject({
  connector: id,
  account: id,
  scopes: z.array(z.string().max(256)).max(20),
});

const webhookRejected = z.strictObject({
  endpoint: z.string().min(1).max(1024),
  status: z.number().int().min(400).max(599),
  reason: text,
  /** SHA-256 of the raw body: lets a provider's copy be matched without keeping the body. */
  requestHash: hexHash.optional(),
  sizeBytes: z.number().int().nonnegative().optional(),
  /** The sender sent more than the web server reads of a refused body: requestHash and sizeBytes cover the first sizeBytes bytes. */
  bodyTruncated: z.literal(true).optional(),
  /** Rejections in the same window that were counted but not journaled one by one (the flood cap). */
  suppressed: z.number().int().nonnegative().optional(),
});

const jobFailed = z.strictObject({
  queue: id,
  jobId: id,
  attempts: z.number().int().nonnegative(),
  error: text,
  /** Why it will not be retried: 'attempts-exhausted', 'invalid-payload' or 'permanent'. */
  finality: z.enum(['attempts-exhausted', 'invalid-payload', 'permanent']),
  entryId: id.optional(),
});

const notificationChannel = z.enum(['log', 'email', 'slack', 'webhook']);
const notificationCommon = {
  channel: notificationChannel,
  /** A recipient group of the rules (e.g. sales-team), never a person's address. */
  recipient: id,
  ruleId: id,
  ruleVersion: id,
  template: id,
};
/** Why a provider refused, as a short code: an SMTP reply code (550), Slack's error string, an HTTP status, a network error code. */
const refusalCode = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/);

const notificationSent = z.strictObject({
  ...notificationCommon,
  dryRun: z.boolean(),
  /** The interaction notified about, the delivery attempt that succeeded and its delivery id (Message-ID, Idempotency-Key). */
  entryId: id.optional(),
  attempt: z.number().int().positive().optional(),
  deliveryId: id.optional(),
  /** E-mail recipients the server accepted (sealed) and the provider's reply (sealed: an SMTP reply can quote an address). */
  to: z.array(z.string().min(1).max(512)).max(100).optional(),
  providerReply: text.optional(),
  /** Recipients the SMTP server refused while it accepted the others (sealed); not retried: the others have it. */
  rejected: z.array(z.string().min(1).max(512)).max(100).optional(),
});

/** Journaled before a notification is handed to its channel: what is about to be sent, and to whom (sealed). */
const notificationAttempted = z.strictObject({
  ...notificationCommon,
  entryId: id,
  attempt: z.number().int().positive(),
  deliveryId: id,
  to: z.array(z.string().min(1).max(512)).max(100).optional(),
  /** The environment variable naming the Slack or webhook URL (the URL itself is a secret and never journaled). */
  targetEnv: id.optional(),
  subject: z.string().max(2000).optional(),
  text: text.optional(),
});

/** A channel refused or failed one attempt: retryable (a retry follows with backoff) or not (the job fails now). */
const notificationFailed = z.strictObject({
  ...notificationCommon,
  entryId: id,
  attempt: z.number().int().positive(),
  deliveryId: id,
  retryable: z.boolean(),
  code: refusalCode,
  /** The provider's words (sealed: they can quote an address). */
  error: text.optional(),
  retryAfterSeconds: z.number().int().nonnegative().optional(),
});

/** A data subject forgotten: their keys destroyed. Never the address: its keyed hash (see key-store.ts). */
const privacyErased = z.strictObject({
  subjectHash: hexHash,
  /** The subject keys destroyed (empty when nothing was held for the address: the request is still on record). */
  keyIds: z.array(id).max(1000),
  reason: text,
  /** Entries in hot storage sealed under those keys, and their correlations (archived segments are covered too, uncounted). */
  entries: z.number().int().nonnegative(),
  correlations: z.number().int().nonnegative(),
  /**
   * HMAC over the subject hash and key ids under a key derived from the master key (SubjectKeyStore.erasureTag):
   * only `forget`, holding the key store, can make it; the append credential cannot. Erasures that do not
   * authenticate are ignored by `keys restore`, `keys status` and `verify` (and listed as such).
   */
  authentication: z
    .string()
    .regex(/^hmac-sha256:[0-9a-f]{64}$/, 'must be hmac-sha256:<64 hex digits> (written by `activity-journal forget`)'),
});

/** A closed period (a calendar month of recordedAt) cut off: its seq range, a signed checkpoint at its end, the segment file's hash. */
const segmentSealed = z.strictObject({
  segmentId: id,
  periodStart: isoTime,
  periodEnd: isoTime,
  fromSeq: z.number().int().nonnegative(),
  toSeq: z.number().int().nonnegative(),
  entries: z.number().int().positive(),
  /** Root and chain head of the tree of size toSeq + 1, and the signed checkpoint note that states them. */
  rootHash: base64Hash,
  chainHead: base64Hash,
  note: z.string().min(1).max(10_000),
  /** SHA-256 and size of the segment file (an SQLite file holding exactly the rows fromSeq..toSeq). */
  fileSha256: hexHash,
  fileBytes: z.number().int().positive(),
});

/** A segment object in an archive store: which seqs, where, and the hashes that identify it. */
const storedSegment = {
  segmentId: id,
  fromSeq: z.number().int().nonnegative(),
  toSeq: z.number().int().nonnegative(),
  store: z.enum(['directory', 'gcs']),
  location: z.string().min(1).max(2048),
  /** SHA-256 of the stored (gzip-compressed) object, and of the segment file inside it. */
  sha256: hexHash,
  fileSha256: hexHash,
  compressedBytes: z.number().int().positive(),
};

/** A sealed segment copied to an archive store, read back and verified; its rows may now leave hot storage. */
const segmentArchived = z.strictObject(storedSegment);

/**
 * Expired payloads dropped from an archived segment: a new (pruned) copy of the segment was written to the store,
 * read back and verified; in it the payloads of the listed seqs are a `{"$dropped": {at, policyVersion}}` marker
 * while every header, payload hash, leaf, chain hash, tree node and seal stays. Verification accepts a dropped
 * payload only at a seq some segment.pruned entry lists.
 */
const segmentPruned = z.strictObject({
  // The pruned copy itself (its hashes are the pruned object's and the pruned segment file's).
  ...storedSegment,
  /** 1 for the first pruned copy of the segment, 2 for the next... */
  generation: z.number().int().positive(),
  /** The object this copy supersedes (readers use the newest generation). */
  replaces: z.string().min(1).max(2048),
  /** Seqs whose payloads this generation dropped, as inclusive ranges [from, to]. */
  dropped: z
    .array(z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]))
    .min(1)
    .max(100_000),
  entries: z.number().int().positive(),
  /** Dropped entries per retention class. */
  classes: z.record(z.string().min(1).max(64), z.number().int().positive()),
  droppedAt: isoTime,
  /** The newest journaled retention policy version when the payloads were dropped (it decides onExpiry). */
  policyVersion: z.number().int().positive(),
  /**
   * Absent: retention expiry. `unsealed-personal-data`: containment of personal fields an older version stored
   * in clear (contained-payload.ts); `classes` then counts by retention class and `kinds` by kind.
   */
  reason: z.literal('unsealed-personal-data').optional(),
  kinds: z.record(z.string().min(1).max(64), z.number().int().positive()).optional(),
});

/** A new version of the retention policy; it applies to entries appended after this one. */
const retentionPolicy = z.strictObject({
  version: z.number().int().positive(),
  sha256: hexHash,
  /** The policy's canonical JSON. */
  policy: z.string().min(2).max(200_000),
});

/**
 * A later decision raises an entry's retention promise: the entry (id and seq) is kept at least as long as
 * `retentionClass` says, counted from its own recordedAt. Its header class stays as it was hashed; expiry,
 * archive and verify take the longest promise (header or any assignment), so an assignment to a shorter class
 * has no effect. Ids and class names only: no personal data.
 */
const retentionAssigned = z.strictObject({
  entryId: id,
  entrySeq: z.number().int().positive(),
  retentionClass: z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/),
  /** Why: the policy rule that gave the class, e.g. "categories.billing". */
  rule: id,
  /** The retention policy version whose rule it applied. */
  policyVersion: z.number().int().positive(),
  /** The decision (ai.decision) that classified the entry. */
  decisionEntryId: id.optional(),
});

const journalCreated = z.strictObject({
  journalId: id,
  origin: id,
  verifierKey: z.string().min(1).max(1024),
  format: z.literal(1),
});

const checkpoint = z.strictObject({
  treeSize: z.number().int().nonnegative(),
  rootHash: base64Hash,
  chainHead: base64Hash,
  note: z.string().min(1).max(10_000),
});

const checkpointAnchored = z.strictObject({
  treeSize: z.number().int().nonnegative(),
  anchor: z.string().min(1).max(2048),
  ok: z.boolean(),
  location: z.string().max(2048).optional(),
  alreadyPresent: z.boolean().optional(),
  error: text.optional(),
});

export interface KindSpec {
  readonly schema: z.ZodType;
  /** Retention class used when an append does not name one. */
  readonly defaultRetention: string;
  /** Written by the journal itself; refused from clients. */
  readonly internal: boolean;
}

export const KINDS = {
  'interaction.received': { schema: interactionReceived, defaultRetention: 'standard', internal: false },
  'ai.decision': { schema: aiDecision, defaultRetention: 'standard', internal: false },
  'rule.decision': { schema: ruleDecision, defaultRetention: 'standard', internal: false },
  'crm.write': { schema: crmWrite, defaultRetention: 'standard', internal: false },
  'crm.write_failed': { schema: crmWriteFailed, defaultRetention: 'standard', internal: false },
  'state.changed': { schema: stateChanged, defaultRetention: 'standard', internal: false },
  'human.override': { schema: humanOverride, defaultRetention: 'standard', internal: false },
  'audit.login': { schema: auditLogin, defaultRetention: 'standard', internal: false },
  'audit.exported': { schema: auditExported, defaultRetention: 'standard', internal: false },
  'connector.cursor_advanced': { schema: cursorAdvanced, defaultRetention: 'standard', internal: false },
  'connector.health': { schema: connectorHealth, defaultRetention: 'standard', internal: false },
  'inbox.connected': { schema: inboxConnected, defaultRetention: 'standard', internal: false },
  'webhook.rejected': { schema: webhookRejected, defaultRetention: 'standard', internal: false },
  'job.failed': { schema: jobFailed, defaultRetention: 'standard', internal: false },
  'notification.sent': { schema: notificationSent, defaultRetention: 'standard', internal: false },
  'notification.attempted': { schema: notificationAttempted, defaultRetention: 'standard', internal: false },
  'notification.failed': { schema: notificationFailed, defaultRetention: 'standard', internal: false },
  'privacy.erased': { schema: privacyErased, defaultRetention: 'permanent', internal: false },
  'segment.sealed': { schema: segmentSealed, defaultRetention: 'permanent', internal: true },
  'segment.archived': { schema: segmentArchived, defaultRetention: 'permanent', internal: true },
  'segment.pruned': { schema: segmentPruned, defaultRetention: 'permanent', internal: true },
  'retention.policy': { schema: retentionPolicy, defaultRetention: 'permanent', internal: true },
  'retention.assigned': { schema: retentionAssigned, defaultRetention: 'permanent', internal: false },
  'journal.created': { schema: journalCreated, defaultRetention: 'permanent', internal: true },
  checkpoint: { schema: checkpoint, defaultRetention: 'permanent', internal: true },
  'checkpoint.anchored': { schema: checkpointAnchored, defaultRetention: 'permanent', internal: true },
} as const satisfies Record<string, KindSpec>;

export type EntryKind = keyof typeof KINDS;
export type PayloadOf<K extends EntryKind> = z.infer<(typeof KINDS)[K]['schema']>;

/** Kinds the journal writes about itself; they do not make a new checkpoint due. */
export const HOUSEKEEPING_KINDS: ReadonlySet<string> = new Set([
  'journal.created',
  'checkpoint',
  'checkpoint.anchored',
  'retention.policy',
]);

export function isEntryKind(kind: string): kind is EntryKind {
  return Object.prototype.hasOwnProperty.call(KINDS, kind);
}
