/**
 * RFC 5322 bytes (Gmail `format: 'raw'`) to an Interaction. postal-mime does the MIME and charset work; this file
 * applies our rules: participants, direction, time, body text, attachment metadata (never content), report type
 * and a record of every part that could not be decoded.
 */
import { createHash } from 'node:crypto';
import PostalMime from 'postal-mime';
import type { Address, Attachment as MimeAttachment, Email } from 'postal-mime';
import { InteractionSchema } from '../../src/pipeline/interaction.ts';
import type { Interaction, Participant } from '../../src/pipeline/interaction.ts';
import { htmlToText } from './html-to-text.ts';
import { scanMimeStructure } from './mime-structure.ts';
import { SOURCES } from '../../src/journal/source-catalog.ts';

export const MAX_TEXT_CHARS = 1_000_000;
const MAX_PARTICIPANTS = 1000;
const MAX_ATTACHMENTS = 1000;
const MAX_ID_CHARS = 256;

export interface RawMessageContext {
  /** Gmail's message id: the interaction's sourceId. */
  readonly messageId: string;
  readonly threadId?: string;
  /** The mailbox the message was read from (decides direction). */
  readonly mailbox: string;
  readonly labelIds?: readonly string[];
  /** Gmail's internalDate: epoch milliseconds as a decimal string. */
  readonly internalDate?: string | null;
}

export type ReportKind = 'delivery-status' | 'feedback' | 'disposition-notification' | 'other';

const ADDRESS_RE = /^[^\s@<>,;:"()[\]\\]+@[^\s@<>,;:"()[\]\\]+$/;

function truncationMarker(omitted: number): string {
  return `\n[truncated: ${omitted} characters omitted]`;
}

/** Keeps the first MAX_TEXT_CHARS characters and says how many were cut. */
export function truncateText(text: string): { text: string; truncated: boolean } {
  if (text.length <= MAX_TEXT_CHARS) return { text, truncated: false };
  return { text: text.slice(0, MAX_TEXT_CHARS) + truncationMarker(text.length - MAX_TEXT_CHARS), truncated: true };
}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1);
}

function clip(s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, max);
}

/** Message-IDs are `<...>`; ids we store must fit the schema's 256 characters. */
function idFromHeader(value: string): string {
  const id = value.trim();
  return id.length <= MAX_ID_CHARS ? id : createHash('sha256').update(id).digest('hex');
}

function firstMessageId(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /<[^<>\s]+>/.exec(header);
  const id = m?.[0] ?? header.trim().split(/\s+/)[0];
  return id === undefined || id === '' ? undefined : idFromHeader(id);
}

function collectParticipants(email: Email): { participants: Participant[]; malformed: number } {
  const participants: Participant[] = [];
  let malformed = 0;
  const lists: Array<[Participant['role'], readonly Address[] | undefined]> = [
    ['from', email.from === undefined ? undefined : [email.from]],
    ['to', email.to],
    ['cc', email.cc],
    ['bcc', email.bcc],
  ];
  for (const [role, list] of lists) {
    for (const entry of list ?? []) {
      // Groups hold mailboxes only (postal-mime flattens no further), so one level is all there is.
      const mailboxes = entry.group ?? [entry];
      for (const mb of mailboxes) {
        const address = (mb.address ?? '').trim().toLowerCase();
        if (address.length > 512 || !ADDRESS_RE.test(address)) {
          malformed++;
          continue;
        }
        if (participants.length >= MAX_PARTICIPANTS) continue;
        const name = mb.name.trim();
        participants.push(name === '' ? { role, address } : { role, address, name: clip(name, 512) });
      }
    }
  }
  return { participants, malformed };
}

function occurredAt(ctx: RawMessageContext, email: Email): string {
  if (ctx.internalDate !== undefined && ctx.internalDate !== null && /^\d+$/.test(ctx.internalDate)) {
    const d = new Date(Number(ctx.internalDate));
    if (!Number.isNaN(d.getTime())) return d.toISOString();
  }
  if (email.date !== undefined) {
    const d = new Date(email.date);
    if (!Number.isNaN(d.getTime())) return d.toISOString();
  }
  return new Date().toISOString();
}

function attachmentBytes(a: MimeAttachment): Uint8Array {
  if (typeof a.content === 'string') return Buffer.from(a.content, a.encoding === 'base64' ? 'base64' : 'utf8');
  return a.content instanceof Uint8Array ? a.content : new Uint8Array(a.content);
}

function reportKindOf(type: string): ReportKind | undefined {
  switch (type) {
    case 'delivery-status':
    case 'message/delivery-status':
    case 'message/global-delivery-status':
      return 'delivery-status';
    case 'feedback-report':
    case 'message/feedback-report':
      return 'feedback';
    case 'disposition-notification':
    case 'message/disposition-notification':
      return 'disposition-notification';
    default:
      return undefined;
  }
}

function headerValue(email: Email, key: string): string | undefined {
  return email.headers.find((h) => h.key === key)?.value;
}

/**
 * Parses a raw message into an Interaction that passes InteractionSchema. Never throws on message content:
 * a message postal-mime rejects outright becomes an interaction with the failure recorded in its metadata.
 * Throws only when the result fails the schema, naming the field.
 */
export async function parseRawMessage(raw: Uint8Array, ctx: RawMessageContext): Promise<Interaction> {
  const mailbox = ctx.mailbox.trim().toLowerCase();
  const structure = scanMimeStructure(raw);
  const metadata: Record<string, NonNullable<Interaction['metadata']>[string]> = {
    mailbox,
    labelIds: [...(ctx.labelIds ?? [])],
  };
  const undecodable: Array<{ mimeType: string; reason: string }> = structure.undecodable.map((p) => ({
    mimeType: p.mimeType,
    reason: p.reason,
  }));

  let email: Email;
  try {
    email = await PostalMime.parse(raw, { forceRfc822Attachments: true, attachmentEncoding: 'arraybuffer' });
  } catch (err) {
    // Keep the message: an interaction with no content but a record of why.
    email = { headers: [], headerLines: [], attachments: [] };
    undecodable.push({ mimeType: structure.rootType, reason: 'parse-failed' });
    metadata['parseError'] = clip(err instanceof Error ? err.message : String(err), 500);
  }

  const { participants, malformed } = collectParticipants(email);
  if (malformed > 0) metadata['malformedAddresses'] = malformed;

  const from = participants.find((p) => p.role === 'from')?.address;
  const labels = ctx.labelIds ?? [];
  let direction: Interaction['direction'];
  if (from === mailbox || labels.includes('SENT')) direction = 'outbound';
  else if (participants.length > 0 && participants.every((p) => domainOf(p.address) === domainOf(mailbox))) direction = 'internal';
  else direction = 'inbound';

  let text: string | undefined;
  if (email.text !== undefined && email.text.trim() !== '') text = email.text;
  else if (email.html !== undefined) text = htmlToText(email.html);
  if (text !== undefined) {
    const t = truncateText(text);
    text = t.text;
    if (t.truncated) metadata['textTruncated'] = true;
  }

  const attachments: NonNullable<Interaction['attachments']> = [];
  for (const a of email.attachments) {
    if (attachments.length >= MAX_ATTACHMENTS) {
      metadata['attachmentsOmitted'] = email.attachments.length - MAX_ATTACHMENTS;
      break;
    }
    const bytes = attachmentBytes(a);
    const entry: NonNullable<Interaction['attachments']>[number] = {
      mimeType: clip(a.mimeType || 'application/octet-stream', 256),
      sizeBytes: bytes.byteLength,
      contentHash: createHash('sha256').update(bytes).digest('hex'),
    };
    if (a.filename !== null && a.filename !== '') entry.filename = clip(a.filename, 1024);
    attachments.push(entry);
  }

  const report =
    (structure.reportType !== undefined ? (reportKindOf(structure.reportType) ?? 'other') : undefined) ??
    [...structure.partTypes, ...email.attachments.map((a) => a.mimeType)].map(reportKindOf).find((k) => k !== undefined);
  if (report !== undefined) metadata['report'] = report;

  if (undecodable.length > 0) {
    metadata['undecodableParts'] = {
      count: undecodable.length,
      mimeTypes: [...new Set(undecodable.map((p) => p.mimeType))].slice(0, 50),
      reasons: [...new Set(undecodable.map((p) => p.reason))],
    };
  }

  const messageIdHeader = email.messageId !== undefined && email.messageId.trim() !== '' ? idFromHeader(email.messageId) : null;
  metadata['messageIdHeader'] = messageIdHeader;
  const inReplyTo = firstMessageId(email.inReplyTo);
  if (inReplyTo !== undefined) metadata['inReplyTo'] = inReplyTo;

  const threadId =
    ctx.threadId !== undefined && ctx.threadId !== ''
      ? ctx.threadId
      : (firstMessageId(email.references ?? headerValue(email, 'references')) ?? inReplyTo ?? ctx.messageId);

  const candidate: Interaction = {
    channel: 'email',
    source: SOURCES.gmail,
    sourceId: ctx.messageId,
    direction,
    occurredAt: occurredAt(ctx, email),
    participants,
    threadId: clip(threadId, MAX_ID_CHARS),
    metadata,
  };
  if (email.subject !== undefined) candidate.subject = clip(email.subject, 2000);
  if (text !== undefined) candidate.text = text;
  if (attachments.length > 0) candidate.attachments = attachments;

  const checked = InteractionSchema.safeParse(candidate);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    const field = issue === undefined ? '(unknown)' : issue.path.map(String).join('.') || '(root)';
    throw new Error(`gmail message ${ctx.messageId}: parsed interaction is invalid at "${field}": ${issue?.message ?? 'invalid'}`);
  }
  return checked.data;
}
