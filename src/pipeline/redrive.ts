/**
 * Re-drives interactions whose jobs were lost: if Redis loses its data (a restart without persistence, a flush),
 * the journal still holds every accepted interaction. This scans them in journal order and re-enqueues the next
 * stage of any that is unfinished; deterministic job ids make a re-enqueue of a job that still exists a no-op,
 * and idempotent appends make a re-run of a finished stage add nothing.
 */
import type { JournalClient } from '../journal/journal-client.ts';
import type { JournalEntry } from '../journal/entry.ts';
import { filterKind, findKind, isKind, type EntryOf } from '../journal/entry-payload.ts';
import type { Enqueue } from './ports.ts';
import { jobIdFor, notifyJobKey, JOBS, type JobData } from './job-catalog.ts';

export interface RedriveOptions {
  readonly journal: JournalClient;
  readonly enqueue: Enqueue;
  /** First interaction seq to look at (everything before is known to be finished). */
  readonly fromSeq: number;
  /** Interactions recorded less than this long ago are left to the normal flow. */
  readonly graceMs: number;
  readonly now?: () => number;
  readonly limit?: number;
}

export interface RedriveReport {
  readonly scanned: number;
  readonly redriven: number;
  /** Where to continue this pass (the seq after the last interaction looked at). */
  readonly nextSeq: number;
  /** True when the page was full and not cut short by the grace period: there may be more to scan. */
  readonly more: boolean;
  /** Where the next scan can start: every interaction before it is finished (or failed for good, on the record). */
  readonly watermark: number;
}

export async function redrive(options: RedriveOptions): Promise<RedriveReport> {
  const { journal, enqueue } = options;
  const now = options.now ?? Date.now;
  const page = await journal.byKind({ kind: 'interaction.received', afterSeq: options.fromSeq - 1, limit: options.limit ?? 500 });
  let watermark = options.fromSeq;
  let contiguous = true;
  let redriven = 0;
  let scanned = 0;
  let nextSeq = options.fromSeq;
  let cut = false;
  for (const ix of page) {
    if (now() - Date.parse(ix.recordedAt) < options.graceMs) {
      cut = true;
      break;
    }
    scanned++;
    nextSeq = ix.seq + 1;
    const chain = await journal.byCorrelation(ix.correlationId);
    const state = stateOf(ix, chain);
    const job = { entryId: ix.id, seq: ix.seq, correlationId: ix.correlationId };
    if (state.kind === 'needs-classify') await enqueue('classify', job, ix.id);
    else if (state.kind === 'needs-decide')
      await enqueue('decide', { ...job, decisionEntryId: state.decision.id, decisionSeq: state.decision.seq }, ix.id);
    else if (state.kind === 'needs-mirror')
      await enqueue('mirror', { ...job, decisionEntryId: state.decision.id, decisionSeq: state.decision.seq }, ix.id);
    // Notifications: every (rule, channel) its decision recorded, until sent or refused for good.
    const notify = state.kind === 'needs-classify' || state.kind === 'needs-decide' ? [] : missingNotifications(ix, chain);
    for (const n of notify)
      await enqueue(
        'notify',
        { ...job, decisionEntryId: n.decision.id, decisionSeq: n.decision.seq, ruleId: n.ruleId, channel: n.channel },
        notifyJobKey(ix.id, n.ruleId, n.channel),
      );
    if (state.kind === 'finished' && notify.length === 0) {
      if (contiguous) watermark = ix.seq + 1;
    } else {
      redriven++;
      contiguous = false;
    }
  }
  if (contiguous && page.length > 0 && scanned === page.length) watermark = (page[page.length - 1] as JournalEntry).seq + 1;
  return { scanned, redriven, watermark, nextSeq, more: !cut && page.length === (options.limit ?? 500) };
}

type State =
  { kind: 'finished' } | { kind: 'needs-classify' } | { kind: 'needs-decide' | 'needs-mirror'; decision: EntryOf<'ai.decision'> };

type Channel = JobData<'notify'>['channel'];
const CHANNELS: readonly string[] = JOBS.notify.schema.shape.channel.options;

function isChannel(value: unknown): value is Channel {
  return typeof value === 'string' && CHANNELS.includes(value);
}

/** The interaction's decision: its first one that did not fail. */
function decisionOf(ix: JournalEntry, chain: readonly JournalEntry[]): EntryOf<'ai.decision'> | undefined {
  return findKind(chain, 'ai.decision', (e) => e.payload.inputEntryId === ix.id && e.payload.outcome !== 'failed');
}

/** The notify jobs an interaction's notification decisions recorded (evaluated.channels) that have no outcome yet. */
function missingNotifications(
  ix: JournalEntry,
  chain: readonly JournalEntry[],
): { ruleId: string; channel: Channel; decision: JournalEntry }[] {
  const out: { ruleId: string; channel: Channel; decision: JournalEntry }[] = [];
  const decision = decisionOf(ix, chain);
  if (!decision) return out;
  for (const d of filterKind(chain, 'rule.decision', (e) => e.payload.inputEntryId === decision.id)) {
    const evaluated = d.payload.evaluated;
    const section = evaluated?.section;
    const channels = evaluated?.channels;
    if (typeof section !== 'string' || !section.startsWith('notify/') || !Array.isArray(channels)) continue;
    const ruleId = String(d.payload.ruleId);
    for (const channel of channels) {
      if (!isChannel(channel)) continue;
      const jobId = jobIdFor('notify', notifyJobKey(ix.id, ruleId, channel));
      const outcome = (e: EntryOf<'notification.sent' | 'notification.failed'>): boolean =>
        e.causationId === ix.id && e.payload.ruleId === ruleId && e.payload.channel === channel;
      const done = chain.some(
        (e) =>
          (isKind(e, 'notification.sent') && outcome(e)) ||
          (isKind(e, 'notification.failed') && outcome(e) && e.payload.retryable === false) ||
          (isKind(e, 'job.failed') && e.payload.queue === 'notify' && e.payload.jobId === jobId),
      );
      if (!done) out.push({ ruleId, channel, decision });
    }
  }
  return out;
}

function stateOf(ix: JournalEntry, chain: readonly JournalEntry[]): State {
  // A notify job that failed for good ends only its notification (missingNotifications), not the interaction.
  if (chain.some((e) => isKind(e, 'job.failed') && e.payload.entryId === ix.id && e.payload.queue !== 'notify'))
    return { kind: 'finished' };
  const decision = decisionOf(ix, chain);
  if (!decision) return { kind: 'needs-classify' };
  const mirror = findKind(
    chain,
    'rule.decision',
    (e) => e.payload.inputEntryId === decision.id && e.payload.evaluated?.section === 'mirror',
  );
  if (!mirror) return { kind: 'needs-decide', decision };
  if (mirror.payload.outcome !== 'mirror') return { kind: 'finished' };
  // Its writes: those its decision caused, and those of the call activity that holds it (a transcript's section).
  const writes = filterKind(
    chain,
    ['crm.write', 'crm.write_failed'],
    (e) => e.causationId === decision.id || (e.payload.members ?? []).some((m) => m.entryId === ix.id),
  );
  const activities = new Set<unknown>([ix.id, ...writes.map((e) => e.payload.entryId)]);
  // Finished: written in dry-run, refused for good, or (HubSpot) written and matched for its associations, which
  // follow the upsert in a later batch: an activity whose associations were lost with Redis is mirrored again.
  const finished =
    writes.some((e) => e.payload.dryRun === true || (e.kind === 'crm.write_failed' && e.payload.retryable === false)) ||
    (writes.length > 0 &&
      chain.some((e) => isKind(e, 'rule.decision') && e.payload.ruleId === 'crm-match' && activities.has(e.payload.inputEntryId)));
  return finished ? { kind: 'finished' } : { kind: 'needs-mirror', decision };
}
