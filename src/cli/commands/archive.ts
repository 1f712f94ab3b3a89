/**
 * `archive` (seal closed months and move them to the archive store) and `retention report`; both run in
 * src/cli/archive.ts, loaded when the command runs (the archive stores' clients, googleapis, only then).
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.ts';

export function registerArchiveCommands(program: Command, ctx: CliContext): void {
  program
    .command('archive')
    .description('seal closed months and move them to the archive store (read back and verified before they leave hot storage)')
    .option('--dry-run', 'say what would be sealed and archived; write nothing')
    .action(async (opts: { dryRun?: boolean }) => {
      const { archiveCommand } = await import('../archive.ts');
      ctx.setExit(await archiveCommand(ctx.config(), { dryRun: opts.dryRun === true, json: ctx.json() }, ctx));
    });

  const retention = program.command('retention').description('retention classes and policy');
  retention
    .command('report')
    .description('per class: hot entries, size, oldest entry and when it expires; archived segments; the next seal')
    .action(async () => {
      const { retentionReportCommand } = await import('../archive.ts');
      ctx.setExit(await retentionReportCommand(ctx.config(), ctx.json(), ctx));
    });
}
