/**
 * How an interaction and its decision become one CRM activity: emails as emails, calls as calls, form
 * submissions as notes, with the AI summary and category in the body and the interaction's own time. A call and
 * its transcripts are one call activity (buildCallPlan).
 */
import type { JournalEntry } from '../journal/entry.ts';
import type { EntryOf } from '../journal/entry-payload.ts';
import { classificationOf, type Category } from './classification.ts';
import { isCallItself, type Interaction } from './interaction.ts';
import type { MirrorPlan } from './ports.ts';

/** A reviewer's correction to carry instead of the model's category. */
export interface PlanOverride {
  readonly entryId: string;
  readonly category: Category;
}

/** The Summary, Category (a reviewer's override said as such) and Next steps lines of one decision. */
function decisionLines(decision: EntryOf<'ai.decision'>, override: PlanOverride | null): string[] {
  const model = classificationOf(decision);
  const c = override ? { ...model, category: override.category } : model;
  const categoryLine = override
    ? `Category: ${c.category} (set by a reviewer, override ${override.entryId}; the model said ${model.category} with confidence ${model.confidence.toFixed(2)})`
    : `Category: ${c.category} (confidence ${c.confidence.toFixed(2)})`;
  return [`Summary: ${c.summary}`, categoryLine, c.nextSteps.length > 0 ? `Next steps: ${c.nextSteps.join('; ')}` : ''].filter(Boolean);
}

/** The other side of an interaction: email addresses or phone numbers of the participants that are not us. */
function counterpartsOf(ix: Interaction): string[] {
  const ours = ix.direction === 'outbound' ? ['from', 'caller', 'agent'] : ['to', 'cc', 'bcc', 'callee', 'agent'];
  return [...new Set(ix.participants.filter((p) => !ours.includes(p.role)).map((p) => p.address.toLowerCase()))];
}

export function buildMirrorPlan(
  ix: Interaction,
  entry: JournalEntry,
  decision: EntryOf<'ai.decision'>,
  override: PlanOverride | null = null,
): MirrorPlan {
  const model = classificationOf(decision);
  const c = override ? { ...model, category: override.category } : model;
  const timestamp = new Date(ix.occurredAt).toISOString();
  const body = [...decisionLines(decision, override), `Journal entry: ${entry.id}`].join('\n');
  const counterparts = counterpartsOf(ix);
  const common = {
    entryId: entry.id,
    entrySeq: entry.seq,
    correlationId: entry.correlationId,
    decisionEntryId: decision.id,
    decisionSeq: decision.seq,
    direction: ix.direction,
    counterparts,
    category: c.category,
    ...(override ? { overrideEntryId: override.entryId } : {}),
  };
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
    properties: {
      journal_entry_id: entry.id,
      hs_timestamp: timestamp,
      hs_note_body: `Form submission${ix.subject ? `: ${ix.subject}` : ''}\n${body}`,
    },
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

/** One interaction of a call (the call itself or a transcript of it), as buildCallPlan takes it. */
export interface CallPart {
  readonly entry: JournalEntry;
  readonly ix: Interaction;
  /** Its newest decision, when the activity carries it; null leaves the part out of the body (not decided yet). */
  readonly decision: EntryOf<'ai.decision'> | null;
  /** The reviewer's category override in force for that decision, if any. */
  readonly override: PlanOverride | null;
}

/**
 * One call activity for a call and its transcripts. `parts` are the call's interactions in journal order; the
 * first is the anchor, whose entry id the activity carries as journal_entry_id (normally the call; a transcript
 * journaled before its call stays the anchor, so nothing is ever created twice). `lead` is the decision the plan
 * is caused by: the anchor's, else (the anchor not decided yet) the decision of the part being mirrored.
 *
 * - Properties (title, direction, duration, recording, time) and the association direction come from the call
 *   itself when it is among the parts, else from the anchor; counterparts are those of the call and every part
 *   the body carries.
 * - hs_call_body: the anchor's lines as for a lone call (or only its `Journal entry:` line while it has no
 *   decision), then for every other decided part, in journal order, a blank line, `Transcript (journal entry
 *   <id>):` (`Call (...)` for the call under a transcript anchor) and that part's Summary, Category (override
 *   wording as for a lone interaction) and Next steps lines from its own decision.
 * - category: the category in force of the most confident decided part, a reviewer's override counting above
 *   any model confidence, and of equals the latest: the best-informed word on what the call was about.
 *
 * A call with no other decided part is planned exactly as a lone interaction (buildMirrorPlan).
 */
export function buildCallPlan(parts: readonly CallPart[], lead: EntryOf<'ai.decision'>): MirrorPlan {
  const anchor = parts[0];
  if (!anchor) throw new Error('a call plan needs at least one interaction');
  const call = parts.find((p) => isCallItself(p.ix)) ?? anchor;
  const others = parts.slice(1).filter((p): p is CallPart & { decision: EntryOf<'ai.decision'> } => p.decision !== null);
  if (others.length === 0 && anchor.decision !== null && call === anchor)
    return buildMirrorPlan(anchor.ix, anchor.entry, anchor.decision, anchor.override);

  const base = buildMirrorPlan(call.ix, anchor.entry, lead, null);
  const head = [
    ...(anchor.decision !== null ? decisionLines(anchor.decision, anchor.override) : []),
    `Journal entry: ${anchor.entry.id}`,
  ].join('\n');
  const sections = others.map((p) =>
    [`${isCallItself(p.ix) ? 'Call' : 'Transcript'} (journal entry ${p.entry.id}):`, ...decisionLines(p.decision, p.override)].join('\n'),
  );
  const decided = parts.filter((p): p is CallPart & { decision: EntryOf<'ai.decision'> } => p.decision !== null);
  const rank = (p: CallPart & { decision: EntryOf<'ai.decision'> }): number =>
    p.override ? Number.POSITIVE_INFINITY : classificationOf(p.decision).confidence;
  // parts are in journal order: of equal rank, the later one wins.
  const best = decided.reduce<(CallPart & { decision: EntryOf<'ai.decision'> }) | null>(
    (a, p) => (a === null || rank(p) >= rank(a) ? p : a),
    null,
  );
  const category = best ? (best.override?.category ?? classificationOf(best.decision).category) : base.category;
  const counterparts = [...new Set([call, ...decided].flatMap((p) => counterpartsOf(p.ix)))];
  const { overrideEntryId: _none, ...rest } = base;
  return {
    ...rest,
    counterparts,
    category,
    ...(best?.override ? { overrideEntryId: best.override.entryId } : {}),
    properties: { ...base.properties, hs_call_body: [head, ...sections].join('\n\n') },
    members: decided.map((p) => ({
      entryId: p.entry.id,
      decisionEntryId: p.decision.id,
      ...(p.override ? { overrideEntryId: p.override.entryId } : {}),
    })),
  };
}
