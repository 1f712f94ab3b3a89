/**
 * The walkthrough's two commands: `demo` (the bundled samples through the whole pipeline into a separate demo
 * journal, src/cli/demo.ts) and `send-sample` (one signed form submission to the running product, send-sample.ts).
 */
import { Option, type Command } from 'commander';
import { parseListen } from '../../config/config.ts';
import type { CliContext } from '../context.ts';
import { UsageError } from '../usage-error.ts';
import { DEFAULT_DEMO_PORT, SAMPLE_FORMS, type SampleKind } from '../walkthrough.ts';

interface DemoOpts {
  keep?: boolean;
  serve?: string | boolean;
}

interface SendSampleOpts {
  kind: SampleKind;
  url?: string;
  wait: string;
}

export function registerDemoCommands(program: Command, ctx: CliContext): void {
  program
    .command('demo')
    .description('feed the bundled sample interactions through the whole pipeline into a separate demo journal')
    .option('--keep', 'keep the demo queues in Redis afterwards')
    .option('--serve [host:port]', `then serve the demo journal's audit UI (default 127.0.0.1:${DEFAULT_DEMO_PORT}) until Ctrl-C`)
    .action((opts: DemoOpts) => demo(ctx, opts));

  program
    .command('send-sample')
    .description('send one signed sample form submission to the running web server, wait for its decision and print where to see it')
    .addOption(new Option('--kind <kind>', 'which sample').choices(Object.keys(SAMPLE_FORMS)).default('contact-sales'))
    .option('--url <url>', 'the web server (default: http://WEB_LISTEN)')
    .option('--wait <seconds>', 'how long to wait for the decision', '30')
    .action((opts: SendSampleOpts) => sendSample(ctx, opts));
}

async function demo(ctx: CliContext, opts: DemoOpts): Promise<void> {
  const config = ctx.config();
  const serve =
    opts.serve === undefined || opts.serve === false
      ? undefined
      : tcpListen(opts.serve === true ? `127.0.0.1:${DEFAULT_DEMO_PORT}` : opts.serve, '--serve');
  const { runDemo } = await import('../demo.ts');
  ctx.setExit(await runDemo(config, { json: ctx.json(), keep: opts.keep === true, serve }));
}

async function sendSample(ctx: CliContext, opts: SendSampleOpts): Promise<void> {
  const wait = Number(opts.wait);
  if (!Number.isFinite(wait) || wait < 0) throw new UsageError(`--wait must be a number of seconds, not ${JSON.stringify(opts.wait)}`);
  const config = ctx.config();
  const { sendSample } = await import('../send-sample.ts');
  const r = await sendSample(config, { kind: opts.kind, url: opts.url, waitMs: wait * 1000 });
  if (ctx.json()) {
    ctx.out(JSON.stringify(r));
  } else {
    ctx.out(`Sent a signed sample form submission (${opts.kind}): journal entry #${r.seq}, correlation ${r.correlationId}.`);
    ctx.out(
      r.decision
        ? `Decided by ${r.decision.provider}: ${r.decision.category} (confidence ${r.decision.confidence.toFixed(2)}).`
        : `Not decided within ${wait} s: are the workers running (npm start runs them)?`,
    );
    ctx.out(`See it, with its decision and proofs: ${r.traceUrl}`);
    if (r.firstUser) ctx.out(r.firstUser);
  }
  ctx.setExit(r.decision ? 0 : 1);
}

/** HOST:PORT from a command-line option, or a UsageError saying what is expected. */
function tcpListen(value: string, option: string): { host: string; port: number } {
  const l = parseListen(value);
  if (!l || l.kind !== 'tcp')
    throw new UsageError(`${option} takes HOST:PORT (e.g. 127.0.0.1:${DEFAULT_DEMO_PORT}), not ${JSON.stringify(value)}`);
  return { host: l.host, port: l.port };
}
