/**
 * `import calls FILE.csv`: call records from a CSV export (src/cli/import-calls.ts; format:
 * connectors/calls/README.md).
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.ts';
import { UsageError } from '../usage-error.ts';

export function registerImportCommands(program: Command, ctx: CliContext): void {
  program
    .command('import')
    .description('import call records from a CSV file (format: connectors/calls/README.md)')
    .argument('<what>', 'what to import: calls')
    .argument('<file>', 'the CSV file')
    .action((what: string, file: string) => importCommand(ctx, what, file));
}

async function importCommand(ctx: CliContext, what: string, file: string): Promise<void> {
  if (what !== 'calls')
    throw new UsageError(`can only import "calls" (got ${JSON.stringify(what)}): activity-journal import calls FILE.csv`);
  const config = ctx.config();
  const { importCalls } = await import('../import-calls.ts');
  const report = await importCalls(config, file, ctx.quietLogger(config), ctx.json());
  if (ctx.json()) ctx.out(JSON.stringify(report));
  else {
    for (const e of report.errors) ctx.out(`line ${e.line}: ${e.message}`);
    ctx.out(
      `${report.rows} row(s): ${report.accepted} imported, ${report.duplicates} already in the journal, ${report.excluded} excluded by rule, ${report.errors.length} refused`,
    );
  }
  ctx.setExit(report.errors.length === 0 ? 0 : 1);
}
