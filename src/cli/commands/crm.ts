/**
 * `crm drift`: the HubSpot mirror compared with the journal (src/cli/crm-drift.ts), and repaired on request.
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.ts';
import { UsageError } from '../usage-error.ts';

interface CrmOpts {
  since?: string;
  repair?: boolean;
}

export function registerCrmCommands(program: Command, ctx: CliContext): void {
  program
    .command('crm')
    .description('the HubSpot mirror: `crm drift` compares the journal with HubSpot')
    .argument('<what>', 'drift')
    .option('--since <date>', 'only activities mirrored since this day (YYYY-MM-DD) or time')
    .option('--repair', 'write back what is missing or changed (journaled as crm.write and state.changed)')
    .action((what: string, opts: CrmOpts) => crm(ctx, what, opts));
}

async function crm(ctx: CliContext, what: string, opts: CrmOpts): Promise<void> {
  if (what !== 'drift')
    throw new UsageError(`unknown crm command ${JSON.stringify(what)}: activity-journal crm drift [--since DAY] [--repair]`);
  const config = ctx.config();
  const { driftLines, parseSince, runCrmDrift } = await import('../crm-drift.ts');
  const since = parseSince(opts.since);
  const report = await runCrmDrift(config, ctx.quietLogger(config), { since, repair: opts.repair === true });
  if (ctx.json()) ctx.out(JSON.stringify(report));
  else for (const line of driftLines(report, opts.repair === true)) ctx.out(line);
  ctx.setExit(report.items.every((i) => i.repaired) ? 0 : 1);
}
