/**
 * The one shape every source is normalised into: an email, a call or a form submission.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { erasedAt } from '../journal/privacy.ts';
import { isJsonObject } from '../journal/json-object.ts';
import { PermanentJobError } from './errors/permanent-job.error.ts';

export const PARTICIPANT_ROLES = ['from', 'to', 'cc', 'bcc', 'caller', 'callee', 'agent', 'submitter', 'other'] as const;

export const ParticipantSchema = z.strictObject({
  role: z.enum(PARTICIPANT_ROLES),
  /** An email address or E.164 phone number. */
  address: z.string().min(1).max(512),
  name: z.string().max(512).optional(),
});

export const AttachmentSchema = z.strictObject({
  filename: z.string().max(1024).optional(),
  mimeType: z.string().max(256),
  sizeBytes: z.number().int().nonnegative(),
  contentHash: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});

export const InteractionSchema = z.strictObject({
  channel: z.enum(['email', 'call', 'form']),
  /** The system it came from: gmail, twilio, aircall, webform, demo... (the journal entry's `source`). */
  source: z.string().regex(/^[a-z][a-z0-9._-]{0,63}$/),
  /** The source's own id for it (Gmail message id, CallSid, submission id). */
  sourceId: z.string().min(1).max(256),
  direction: z.enum(['inbound', 'outbound', 'internal']),
  occurredAt: z.iso.datetime({ offset: true }),
  participants: z.array(ParticipantSchema).max(1000),
  subject: z.string().max(2000).optional(),
  text: z.string().max(2_000_000).optional(),
  /** Email thread, call (for a transcript that follows its call) or form conversation. */
  threadId: z.string().min(1).max(256).optional(),
  attachments: z.array(AttachmentSchema).max(1000).optional(),
  metadata: z.record(z.string(), z.json()).optional(),
});

export type Interaction = z.infer<typeof InteractionSchema>;
export type Participant = z.infer<typeof ParticipantSchema>;

/**
 * Related interactions share a correlation id, so `trace` shows the whole chain: every message of an email
 * thread, a call and its later transcript, a form and the follow-ups it caused.
 */
export function correlationIdFor(ix: Pick<Interaction, 'source' | 'sourceId' | 'threadId' | 'channel'>): string {
  return ix.threadId !== undefined
    ? `${ix.channel}-thread/${ix.source}/${idPart(ix.threadId)}`
    : `${ix.channel}/${ix.source}/${idPart(ix.sourceId)}`;
}

/** How a transcript's sourceId names its call: `<callId>/transcript/<transcriptId>`. */
const TRANSCRIPT_PART = '/transcript/';

/**
 * The call a call-channel interaction is, or is a transcript of (null for the other channels): its threadId (every
 * call provider threads a transcript onto its call id), else the part of its sourceId before `/transcript/`, else
 * its sourceId. The one place that says which interactions belong to one call, i.e. to one CRM call activity.
 */
export function callOf(ix: Pick<Interaction, 'channel' | 'sourceId' | 'threadId'>): string | null {
  if (ix.channel !== 'call') return null;
  if (ix.threadId !== undefined) return ix.threadId;
  const at = ix.sourceId.indexOf(TRANSCRIPT_PART);
  return at > 0 ? ix.sourceId.slice(0, at) : ix.sourceId;
}

/** True for the call itself, false for a later part of it (a transcript): whatever is not the call is. */
export function isCallItself(ix: Pick<Interaction, 'channel' | 'sourceId' | 'threadId'>): boolean {
  return ix.channel === 'call' && callOf(ix) === ix.sourceId;
}

/** The interaction.received idempotency key: one entry per source message, however often it is delivered. */
export function interactionKey(ix: Pick<Interaction, 'source' | 'sourceId'>): string {
  return `interaction/${ix.source}/${idPart(ix.sourceId)}`;
}

/** Characters a journal identifier may hold as they are (printable, no white space), except '%', the escape. */
const PLAIN_ID_CHAR = /[\x21-\x24\x26-\x7e\u00a0-\ud7ff\ue000-\uffff]/u;

/**
 * A provider's id as part of a journal identifier. Ids are the provider's to choose and may hold white space,
 * control characters or astral symbols, which journal identifiers refuse: those are percent-encoded (UTF-8), and
 * an id whose encoding would be too long becomes `sha256:<hex>`. Ordinary ids (hex, SIDs, numbers) are unchanged.
 */
export function idPart(id: string): string {
  let out = '';
  for (const ch of id)
    out += PLAIN_ID_CHAR.test(ch)
      ? ch
      : [...Buffer.from(ch, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  return out.length <= 300 ? out : `sha256:${createHash('sha256').update(id, 'utf8').digest('hex')}`;
}

/** The journal payload: the interaction without `source`, which is the entry's own field. */
export function interactionPayload(ix: Interaction): Omit<Interaction, 'source'> {
  const { source: _source, ...payload } = ix;
  return payload;
}

/**
 * Reads an interaction back from its (opened) journal entry. One whose subject was forgotten cannot be processed
 * further: a PermanentJobError says so; one whose key is missing from the key store is a fault to retry later.
 */
export function interactionFromEntry(entry: { id?: string; source: string; payload: unknown }): Interaction {
  const when = erasedAt(entry.payload);
  if (when !== null)
    throw new PermanentJobError(`interaction ${entry.id ?? ''} was erased on ${when} (privacy.erased); it is not processed further`);
  const payload = isJsonObject(entry.payload) ? entry.payload : {};
  if (typeof payload.unavailable === 'string')
    throw new Error(
      `interaction ${entry.id ?? ''} cannot be opened (${payload.unavailable}): check the key store (activity-journal keys status)`,
    );
  return InteractionSchema.parse({ ...payload, source: entry.source });
}
