/**
 * `privacy scan` (what a journal written by an older version holds in clear: seqs, kinds, field names, never a
 * value) and `privacy contain` (the archive run, whose containment step drops those payloads from archived
 * segments, then the hot file rewritten; see src/journal/containment.ts).
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import type { Config } from '../config/config.ts';
import { scanJournal, type ScanReport } from '../journal/containment.ts';
import { archiveCacheDir } from './archive-cache.ts';
import { terminalSafe } from './terminal-text.ts';
import { UsageError } from './usage-error.ts';
import type { AuditCommandContext } from './audit-commands.ts';

export function registerPrivacyScanCommands(program: Command, ctx: AuditCommandContext): void {
  const privacy = program.command('privacy').description('personal data that older versions stored in clear: scan for it, contain it');
  privacy
    .command('scan')
    .description(
      'list the entries whose stored payload holds personal data in clear (seq, kind, field names; never a value); exit 1 when any',
    )
    .action(() => {
      const config = ctx.config();
      ctx.setExit(scanCommand(config, ctx));
    });
  privacy
    .command('contain')
    .description(
      'archive closed months and drop the payloads the scan lists from archived segments (headers and hashes stay; journaled as segment.pruned, reason unsealed-personal-data), then rewrite the hot file',
    )
    .option('--dry-run', 'say what would be sealed, archived and contained; write nothing')
    .action(async (opts: { dryRun?: boolean }) => {
      const config = ctx.config();
      if (!existsSync(config.journal.path)) throw new UsageError(`no journal at ${config.journal.path}`);
      const dryRun = opts.dryRun === true;
      const { archiveCommand } = await import('./archive.ts'); // the archive stores' clients (googleapis) only when used
      const code = await archiveCommand(config, { dryRun, json: ctx.json(), contain: true }, ctx);
      if (code !== 0) {
        ctx.setExit(code);
        return;
      }
      // What is still readable in clear afterwards (a dry run changed nothing: the scan as it is).
      const after = scanCommand(config, ctx);
      ctx.setExit(dryRun ? 0 : after);
    });
}

function scanCommand(config: Config, ctx: AuditCommandContext): number {
  if (!existsSync(config.journal.path)) throw new UsageError(`no journal at ${config.journal.path}`);
  const report = scanJournal(config.journal.path, archiveCacheDir(config));
  if (ctx.json()) ctx.out(JSON.stringify({ journal: config.journal.path, exposed: report.findings.length, ...report }));
  else for (const line of scanLines(config.journal.path, report)) ctx.out(line);
  return report.findings.length > 0 ? 1 : 0;
}

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
