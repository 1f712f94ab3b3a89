/**
 * The product's long-running processes: `start` (all of them under one supervisor), `worker` and `web`. The
 * journal service, the fourth, is `journal-service` (journal-service.ts).
 */
import type { Command } from 'commander';
import type { CliContext } from '../context.ts';
import { announceReady, armStopSignals, stopWithin, waitForStop } from '../stop-signal.ts';

export function registerProcessCommands(program: Command, ctx: CliContext): void {
  program
    .command('start')
    .description('run the product: journal service, pipeline workers and web server, under one supervisor')
    .action(() => start(ctx));

  program
    .command('worker')
    .description('run the pipeline workers (ingest, classify, decide, mirror); needs Redis and the journal service')
    .action(() => worker(ctx));

  program
    .command('web')
    .description('run the web server (/healthz, /metrics, webhooks, the audit UI at /audit and its API at /api/v1)')
    .action(() => web(ctx));
}

async function start(ctx: CliContext): Promise<void> {
  const config = ctx.config();
  const { runSupervisor } = await import('../supervisor.ts');
  ctx.setExit(await runSupervisor(config, ctx.logger(config), process.env));
}

async function worker(ctx: CliContext): Promise<void> {
  armStopSignals();
  const config = ctx.config();
  const logger = ctx.logger(config);
  const [{ startPipeline }, { collectProcessMetrics }, { serveMetrics }] = await Promise.all([
    import('../../../jobs/main.ts'),
    import('../../metrics/registry.ts'),
    import('../../metrics/serve.ts'),
  ]);
  collectProcessMetrics('worker');
  const runtime = await startPipeline(config, logger);
  const metrics = await serveMetrics(config.web.workerMetrics, logger);
  announceReady(); // its workers run: the supervisor's banner waits for this
  ctx.setExit(
    await stopWithin(
      await waitForStop(),
      async () => {
        await metrics.close();
        await runtime.close();
      },
      config.shutdownDeadlineMs + 5_000,
      logger,
    ),
  );
}

async function web(ctx: CliContext): Promise<void> {
  armStopSignals();
  const config = ctx.config();
  const logger = ctx.logger(config);
  const [{ startWeb }, { collectProcessMetrics }] = await Promise.all([import('../web.ts'), import('../../metrics/registry.ts')]);
  collectProcessMetrics('web');
  const web = await startWeb(config, logger);
  ctx.setExit(await stopWithin(await waitForStop(), () => web.close(), config.shutdownDeadlineMs, logger));
}
