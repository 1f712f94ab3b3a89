/**
 * How an interaction and its decision become one CRM activity: emails as emails, calls as calls, form
 * submissions as notes, with the AI summary and category in the body and the interaction's own time.
 */
import type { JournalEntry } from '../journal/entry.ts';
import type { Category, Classification } from './classification.ts';
import type { Interaction } from './interaction.ts';
import type { MirrorPlan } from './ports.ts';

/** A reviewer's correction to carry instead of the model's category. */
export interface PlanOverride {
  readonly entryId: string;
  readonly category: Category;
}

export function buildMirrorPlan(ix: Interaction, entry: JournalEntry, decision: JournalEntry, override: PlanOverride | null = null): MirrorPlan {
  const model = (decision.payload as { output: Classification }).output;
  const c = override ? { ...model, category: override.category } : model;
  const categoryLine = override
    ? `Category: ${c.category} (set by a reviewer, override ${override.entryId}; the model said ${model.category} with confidence ${model.confidence.toFixed(2)})`
    : `Category: ${c.category} (confidence ${c.confidence.toFixed(2)})`;
  const timestamp = new Date(ix.occurredAt).toISOString();
  const body = [`Summary: ${c.summary}`, categoryLine, c.nextSteps.length > 0 ? `Next steps: ${c.nextSteps.join('; ')}` : '', `Journal entry: ${entry.id}`]
    .filter(Boolean)
    .join('\n');
  const ours = ix.direction === 'outbound' ? ['from', 'caller', 'agent'] : ['to', 'cc', 'bcc', 'callee', 'agent'];
  const counterparts = [...new Set(ix.participants.filter((p) => !ours.includes(p.role)).map((p) => p.address.toLowerCase()))];
  const common = { entryId: entry.id, entrySeq: entry.seq, correlationId: entry.correlationId, decisionEntryId: decision.id, decisionSeq: decision.seq, direction: ix.direction, counterparts, category: c.category, ...(override ? { overrideEntryId: override.entryId } : {}) };
  if (ix.channel === 'email') {
    return {
      ...common,
      objectType: 'emails',
      properties: {
        journal_entry_id: entry.id,
        hs_timestamp: timestamp,
        hs_email_direction: ix.direction === 'outbound' ? 'EMAIL' : 'INCOMING_EMAIL',
        hs_email_subject: ix.subject ?? '',
        hs_email_text: body,
      },
    };
  }
  if (ix.channel === 'call') {
    const seconds = typeof ix.metadata?.durationSeconds === 'number' ? ix.metadata.durationSeconds : null;
    return {
      ...common,
      objectType: 'calls',
      properties: {
        journal_entry_id: entry.id,
        hs_timestamp: timestamp,
        hs_call_direction: ix.direction === 'outbound' ? 'OUTBOUND' : 'INBOUND',
        hs_call_title: ix.subject ?? `Call ${ix.sourceId}`,
        hs_call_body: body,
        ...(seconds !== null ? { hs_call_duration: String(Math.round(seconds * 1000)) } : {}),
        ...(recordingUrl(ix) ? { hs_call_recording_url: recordingUrl(ix) as string } : {}),
      },
    };
  }
  return {
    ...common,
    objectType: 'notes',
    properties: { journal_entry_id: entry.id, hs_timestamp: timestamp, hs_note_body: `Form submission${ix.subject ? `: ${ix.subject}` : ''}\n${body}` },
  };
}

/** A call recording is linked only when it is an HTTPS URL of an mp3 or wav file (what HubSpot can play). */
export function recordingUrl(ix: Interaction): string | null {
  const raw = ix.metadata?.recordingUrl;
  if (typeof raw !== 'string') return null;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return null;
  }
  if (u.protocol !== 'https:') return null;
  if (/\.(mp3|wav)$/i.test(u.pathname)) return u.toString();
  // Twilio serves a recording as mp3 when asked for it with the extension.
  if (/(^|\.)twilio\.com$/i.test(u.hostname) && /\/Recordings\/RE[0-9a-f]{32}$/i.test(u.pathname)) return `${u.origin}${u.pathname}.mp3`;
  return null;
}
