/**
 * The report of `privacy scan` (commands/privacy.ts) as lines: what a journal written by an older version holds
 * in clear (seqs, kinds, field names, never a value), where, and what `privacy contain` already contained.
 */
import type { ScanReport } from '../journal/containment.ts';
import { terminalSafe } from './terminal-text.ts';

const one = (s: string): string => terminalSafe(s, { singleLine: true });

export function scanLines(journalPath: string, report: ScanReport): string[] {
  const lines: string[] = [];
  lines.push(`scanned: the hot file ${one(journalPath)} (${report.hotEntries} entries)`);
  for (const s of report.segments)
    lines.push(
      `  archived segment ${s.segmentId} (seq ${s.fromSeq}..${s.toSeq}): ${s.scanned ? `scanned (${one(s.source)})` : one(s.source)}`,
    );
  for (const f of report.findings) {
    const where =
      f.where === 'hot'
        ? `hot file; stays there until ${f.month} is sealed and archived, which contains it`
        : `archived segment ${f.segmentId ?? '?'}; \`activity-journal privacy contain\` drops it`;
    const what = f.byShape
      ? `values shaped like an address or phone number at ${f.fields.map(one).join(', ')}`
      : `unsealed ${f.fields.map(one).join(', ')}`;
    lines.push(
      `UNSEALED seq ${f.seq}  ${one(f.recordedAt)}  ${one(f.kind)}: ${what} (${one(where)}${f.containable ? '' : '; this kind is never contained'})`,
    );
  }
  for (const c of report.contained)
    lines.push(
      `contained seq ${c.seq}  ${one(c.recordedAt)}  ${one(c.kind)}: payload dropped on ${one(c.droppedAt)} (archived segment ${one(c.segmentId)}; headers and hashes stay)`,
    );
  const hot = report.findings.filter((f) => f.where === 'hot').length;
  const unscanned = report.segments.filter((s) => !s.scanned).length;
  lines.push(
    report.findings.length === 0
      ? `no personal data in clear found${report.contained.length > 0 ? `; ${report.contained.length} entr${report.contained.length === 1 ? 'y' : 'ies'} contained` : ''}${unscanned > 0 ? `; ${unscanned} archived segment(s) not scanned (above)` : ''}`
      : `${report.findings.length} entr${report.findings.length === 1 ? 'y holds' : 'ies hold'} personal data in clear (${hot} in the hot file, ${report.findings.length - hot} in archived segments); ${report.contained.length} contained${unscanned > 0 ? `; ${unscanned} archived segment(s) not scanned` : ''}`,
  );
  return lines;
}
