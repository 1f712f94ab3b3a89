/**
 * Exports of the journal as JSON Lines that a third party can check offline: the first line names the format,
 * the signed checkpoint and the journal's public key; every other line is one entry's inclusion-proof bundle
 * (header, payload, audit path) against that checkpoint. `activity-journal verify-export FILE` checks it.
 */
import { createHash } from 'node:crypto';
import type { JournalReader, InclusionProofBundle } from '../journal/reader.ts';
import { checkInclusionBundle } from '../journal/proof.ts';
import { payloadOf } from '../journal/entry-payload.ts';
import { parseVerifierKey, type Verifier } from '../journal/keys.ts';
import { ExportError } from './errors/export.error.ts';
import { NotAnExportError } from './errors/not-an-export.error.ts';

export const EXPORT_FORMAT = 'activity-journal/export/v1';

export type ExportScope =
  | { readonly kind: 'range'; readonly from: string; readonly until: string }
  | { readonly kind: 'correlation'; readonly correlationId: string };

export interface ExportHeader {
  readonly format: typeof EXPORT_FORMAT;
  readonly exportedAt: string;
  readonly scope: ExportScope;
  readonly treeSize: number;
  readonly checkpoint: string;
  readonly verifierKey: string;
  /** Entry lines that follow. */
  readonly entries: number;
  /** Entries in scope that the checkpoint does not cover yet (left out: they cannot be proven until the next checkpoint). */
  readonly notYetCovered: number;
}

/** The seqs in scope, in order. */
function seqsInScope(reader: JournalReader, scope: ExportScope): number[] {
  if (scope.kind === 'correlation') return reader.byCorrelation(scope.correlationId).map((e) => e.seq);
  const from = Date.parse(scope.from);
  const until = Date.parse(scope.until);
  if (Number.isNaN(from) || Number.isNaN(until) || from >= until)
    throw new ExportError('BAD_SCOPE', 'the range needs a start before its end');
  const size = reader.size();
  // recordedAt is the journal's own clock and never decreases along seq: binary search the bounds.
  const lowerBound = (t: number): number => {
    let lo = 0;
    let hi = size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const e = reader.bySeq(mid);
      if (e && Date.parse(e.recordedAt) < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const a = lowerBound(from);
  const b = lowerBound(until);
  return Array.from({ length: b - a }, (_, i) => a + i);
}

export interface ExportSummary {
  readonly header: ExportHeader;
  readonly correlationHash: string | null;
}

/** Writes the export line by line through `write` (so a large export never sits in memory). */
export async function writeExport(
  reader: JournalReader,
  scope: ExportScope,
  write: (line: string) => void | Promise<void>,
  now: () => Date = () => new Date(),
): Promise<ExportSummary> {
  const cp = reader.latestCheckpoint();
  if (!cp) throw new ExportError('NO_CHECKPOINT', 'the journal has no checkpoint yet; write one with `activity-journal checkpoint`');
  const treeSize = cp.checkpoint.treeSize;
  const seqs = seqsInScope(reader, scope);
  const covered = seqs.filter((s) => s < treeSize);
  const genesis = reader.bySeq(0);
  const verifierKey = genesis ? payloadOf(genesis, 'journal.created').verifierKey : undefined;
  if (verifierKey === undefined) throw new ExportError('NO_GENESIS', 'the journal has no genesis entry (journal.created at seq 0)');
  const header: ExportHeader = {
    format: EXPORT_FORMAT,
    exportedAt: now().toISOString(),
    scope,
    treeSize,
    checkpoint: cp.note,
    verifierKey,
    entries: covered.length,
    notYetCovered: seqs.length - covered.length,
  };
  await write(JSON.stringify(header));
  for (const seq of covered) {
    const bundle: InclusionProofBundle = reader.proveInclusion(seq, { includePayload: true });
    await write(JSON.stringify(bundle));
  }
  return { header, correlationHash: scope.kind === 'correlation' ? createHash('sha256').update(scope.correlationId).digest('hex') : null };
}

export interface ExportCheck {
  readonly ok: boolean;
  readonly entries: number;
  readonly treeSize: number | null;
  readonly verifierKey: string | null;
  readonly keyPinned: boolean;
  readonly failures: readonly { readonly line: number; readonly seq: number | null; readonly reason: string }[];
}

/** Checks an export offline: every line's proof against the header's checkpoint, under the pinned key if given. */
export function checkExport(text: string, pinned: Verifier | null): ExportCheck {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  let header: ExportHeader;
  try {
    header = JSON.parse(lines[0] ?? '') as ExportHeader;
  } catch {
    throw new NotAnExportError('the first line is not JSON: not an activity-journal export');
  }
  if ((header as { format?: unknown } | null)?.format !== EXPORT_FORMAT)
    throw new NotAnExportError(`not an activity-journal export (expected format ${EXPORT_FORMAT} on the first line)`);
  const failures: { line: number; seq: number | null; reason: string }[] = [];
  let verifier = pinned;
  if (!verifier) {
    try {
      verifier = parseVerifierKey(header.verifierKey);
    } catch (err) {
      return {
        ok: false,
        entries: 0,
        treeSize: header.treeSize,
        verifierKey: null,
        keyPinned: false,
        failures: [{ line: 1, seq: null, reason: `the header's key is malformed: ${(err as Error).message}` }],
      };
    }
  }
  let entries = 0;
  const seen = new Set<number>();
  lines.slice(1).forEach((text, i) => {
    const line = i + 2;
    let bundle: unknown;
    try {
      bundle = JSON.parse(text);
    } catch {
      failures.push({ line, seq: null, reason: 'not JSON' });
      return;
    }
    entries++;
    const b = bundle as { checkpoint?: unknown; seq?: unknown };
    const seq = typeof b.seq === 'number' ? b.seq : null;
    if (b.checkpoint !== header.checkpoint)
      failures.push({ line, seq, reason: "the proof is against another checkpoint than the header's" });
    if (!('payload' in (bundle as object))) failures.push({ line, seq, reason: 'the line has no payload' });
    if (seq !== null && seen.has(seq)) failures.push({ line, seq, reason: `seq ${seq} appears twice` });
    if (seq !== null) seen.add(seq);
    const check = checkInclusionBundle(bundle, verifier);
    if (!check.ok) failures.push({ line, seq, reason: check.reason ?? 'invalid' });
  });
  if (entries !== header.entries)
    failures.push({ line: 1, seq: null, reason: `the header announces ${header.entries} entries, the file holds ${entries}` });
  return {
    ok: failures.length === 0,
    entries,
    treeSize: header.treeSize,
    verifierKey: verifier.verifierKey,
    keyPinned: pinned !== null,
    failures,
  };
}
