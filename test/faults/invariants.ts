/**
 * What must hold after every trial, whatever was killed when:
 * - every acknowledged interaction (and every Gmail message that arrived in the connected inbox) has exactly one
 *   interaction.received, found by its source id (the Gmail message id for mail), and nothing else came in;
 * - each has its decisions: one final AI decision, one mirror rule decision, and exactly one CRM write when
 *   the rule said mirror (none otherwise);
 * - the journal verifies (hashes, chain, tree, seals, checkpoints, anchors).
 */
import { runCliSync } from '../helpers/cli.ts';
import type { JournalEntry } from '../../src/journal/entry.ts';
import type { Sent } from './feed.ts';

export interface Check {
  readonly problems: string[];
  readonly received: number;
  readonly duplicated: number;
  readonly lost: number;
}

const payload = (e: JournalEntry): Record<string, unknown> => e.payload as Record<string, unknown>;

function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/**
 * `activities(entryId)`: how many CRM activities carry that journal entry id (the HubSpot fake's state); when
 * given, exactly one per mirrored interaction is required (and its match for the associations on the record),
 * else exactly one dry-run crm.write.
 */
export function checkEntries(entries: readonly JournalEntry[], sent: readonly Sent[], activities?: (entryId: string) => number): Check {
  const problems: string[] = [];
  const receivedBySource = new Map<string, JournalEntry[]>();
  for (const e of entries) if (e.kind === 'interaction.received') pushTo(receivedBySource, String(payload(e).sourceId), e);
  const expected = new Set(sent.map((s) => s.sourceId));
  let lost = 0;
  let duplicated = 0;
  for (const s of sent) {
    const got = receivedBySource.get(s.sourceId) ?? [];
    if (s.outcome === 'accepted' && got.length === 0) {
      lost++;
      problems.push(
        s.provider === 'gmail'
          ? `gmail ${s.sourceId}: in the inbox but not in the journal`
          : `${s.sourceId}: acknowledged (seq ${s.seq}) but not in the journal`,
      );
    }
    if (s.provider === 'gmail' && got.some((e) => e.source !== 'gmail'))
      problems.push(`gmail ${s.sourceId}: journaled with another source`);
    if (got.length > 1) {
      duplicated += got.length - 1;
      problems.push(`${s.sourceId}: ${got.length} interaction.received entries`);
    }
    if (s.outcome === 'refused') problems.push(`${s.sourceId}: a valid delivery was refused (${s.failures.join(',')})`);
    if (s.outcome === 'pending')
      problems.push(`${s.sourceId}: never acknowledged after ${s.attempts} deliveries (${s.failures.join(',')})`);
  }
  for (const id of receivedBySource.keys()) if (!expected.has(id)) problems.push(`${id}: in the journal but never sent`);

  const byCorrelation = new Map<string, JournalEntry[]>();
  // Pushed, not copied: one correlation (the inbox's cursor, the disk-full probes) can hold thousands of entries.
  for (const e of entries) pushTo(byCorrelation, e.correlationId, e);
  for (const [id, got] of receivedBySource) {
    // A correlation can hold several interactions (a mail thread): each one's decisions are found by its entry id.
    const chain = byCorrelation.get(got[0]?.correlationId ?? '') ?? [];
    const own = got[0]?.id ?? '';
    const decisions = chain.filter((e) => e.kind === 'ai.decision' && payload(e).inputEntryId === own);
    const decisionIds = new Set(decisions.map((e) => e.id));
    const final = decisions.filter((e) => payload(e).outcome !== 'failed');
    const mirrorRules = chain.filter(
      (e) =>
        e.kind === 'rule.decision' &&
        decisionIds.has(String(payload(e).inputEntryId)) &&
        (payload(e).evaluated as { section?: string } | undefined)?.section === 'mirror',
    );
    const writes = chain.filter((e) => e.kind === 'crm.write' && (payload(e).entryId === undefined || payload(e).entryId === own));
    if (final.length !== 1) problems.push(`${id}: ${final.length} final AI decisions`);
    if (mirrorRules.length !== 1) problems.push(`${id}: ${mirrorRules.length} mirror rule decisions`);
    const mirrored = mirrorRules[0] !== undefined && payload(mirrorRules[0]).outcome === 'mirror';
    const first = got[0] as JournalEntry;
    if (activities) {
      const n = activities(first.id);
      if (n !== (mirrored ? 1 : 0)) problems.push(`${id}: ${n} CRM activities (mirror: ${mirrored})`);
      // The associations follow the upsert in a later batch: each mirrored activity was matched exactly once.
      const matched = chain.filter(
        (e) => e.kind === 'rule.decision' && payload(e).ruleId === 'crm-match' && payload(e).inputEntryId === first.id,
      ).length;
      if (mirrored && matched === 0) problems.push(`${id}: written but never matched for its associations`);
    } else if (writes.length !== (mirrored ? 1 : 0)) problems.push(`${id}: ${writes.length} CRM writes (mirror: ${mirrored})`);
  }
  return { problems, received: receivedBySource.size, duplicated, lost };
}

/** `activity-journal verify --json` against the journal (with its anchors), as an operator would run it. */
export function verifyJournal(env: NodeJS.ProcessEnv): { ok: boolean; entries: number; anchorsChecked: number; output: string } {
  const r = runCliSync(['verify', '--json'], { env });
  try {
    const report = JSON.parse(r.stdout) as { ok: boolean; entries: number; anchorsChecked: number };
    return {
      ok: r.status === 0 && report.ok,
      entries: report.entries,
      anchorsChecked: report.anchorsChecked,
      output: r.stdout.slice(0, 500),
    };
  } catch {
    return { ok: false, entries: 0, anchorsChecked: 0, output: `${r.stdout}\n${r.stderr}`.slice(0, 500) };
  }
}
