/**
 * The journal's writing side: `journal-service` runs the journal's only writer as a service (with the scheduled
 * archive next to it), and `append` writes entries read from stdin through it, or through a writer of its own
 * when no service holds the journal.
 */
import type { Command } from 'commander';
import { createInterface } from 'node:readline';
import type { Config } from '../../config/config.ts';
import type { AppendResult } from '../../journal/writer.ts';
import type { ArchiveStore } from '../../journal/archive-store.ts';
import type { CliContext } from '../context.ts';
import { serviceClient, withWriterOrService } from '../journal-access.ts';
import { armStopSignals, isSupervised, stopWithin, waitForStop } from '../stop-signal.ts';
import { UsageError } from '../usage-error.ts';

export function registerJournalServiceCommands(program: Command, ctx: CliContext): void {
  program
    .command('journal-service')
    .description('run the journal service: the only writer of the journal')
    .action(() => journalService(ctx));

  program
    .command('append')
    .description('append entries read as JSON lines from stdin; prints one result line per input line')
    .option('--service [url]', 'send through the running journal service (default URL from the configuration)')
    .action(async (opts: { service?: string | boolean }) => {
      ctx.setExit(await appendFromStdin(ctx, ctx.config(), opts.service));
    });
}

async function journalService(ctx: CliContext): Promise<void> {
  armStopSignals(); // a stop asked for during start-up is kept, and honoured once started
  const config = ctx.config();
  const logger = ctx.logger(config);
  const [{ startJournalService }, { archiveStagingDir, configuredArchiveStores, startArchiveSchedule }, { collectProcessMetrics }] =
    await Promise.all([import('../../journal/service/run.ts'), import('../../../jobs/archive.ts'), import('../../metrics/registry.ts')]);
  collectProcessMetrics('journal-service');
  const running = await startJournalService(config, logger);
  // The scheduled archive runs here, next to the journal's only writer (see jobs/archive.ts).
  const schedule = config.journal.archiveSchedule
    ? startArchiveSchedule({
        writer: running.writer,
        store: configuredArchiveStores(config)[0] as ArchiveStore,
        everyMs: config.journal.archiveSchedule.everyMs,
        firstAfterMs: config.journal.archiveSchedule.firstAfterMs,
        stagingDir: archiveStagingDir(config),
        logger,
      })
    : null;
  if (!ctx.json() && !isSupervised())
    ctx.err(`journal service listening on ${running.url} (journal ${config.journal.path}); Ctrl-C to stop`);
  ctx.setExit(
    await stopWithin(
      await waitForStop(),
      async () => {
        await schedule?.stop();
        await running.close();
      },
      config.shutdownDeadlineMs,
      logger,
    ),
  );
}

/** How many input lines go to the writer together: it commits the appends of one group in one transaction. */
const APPEND_GROUP = 1000;

/** The journal's append of an entry as it arrived from outside (a line of stdin), validated there like any. */
type Append = (input: unknown) => Promise<AppendResult>;

/** What `append` counts, for its summary line. */
interface Tally {
  total: number;
  appended: number;
  duplicates: number;
  refused: number;
}

async function appendFromStdin(ctx: CliContext, config: Config, service: string | boolean | undefined): Promise<number> {
  if (process.stdin.isTTY) throw new UsageError('append reads JSON lines from stdin, e.g.: activity-journal append < entries.jsonl');
  const tally: Tally = { total: 0, appended: 0, duplicates: 0, refused: 0 };
  let transactions = null as number | null; // set inside a callback: keep TypeScript from narrowing it to null
  if (service !== undefined && service !== false) {
    const url = typeof service === 'string' ? service : config.service.url;
    const client = serviceClient({ ...config, service: { ...config.service, url } });
    if (!client)
      throw new UsageError("--service needs credentials: set JOURNAL_APPEND_TOKEN and JOURNAL_READ_TOKEN, or run on the service's machine");
    try {
      await appendLines(ctx, tally, (input) => client.appendReceived(input));
    } finally {
      await client.close();
    }
  } else {
    await withWriterOrService(
      config,
      async (writer) => {
        await appendLines(ctx, tally, (input) => writer.appendReceived(input));
        transactions = writer.stats.transactions;
      },
      (client) => appendLines(ctx, tally, (input) => client.appendReceived(input)),
    );
  }
  const { total, appended, duplicates, refused } = tally;
  const summary = { lines: total, appended, duplicates, refused, ...(transactions !== null ? { transactions } : {}) };
  ctx.err(
    ctx.json()
      ? JSON.stringify({ summary })
      : `${appended} appended, ${duplicates} duplicate(s), ${refused} refused${transactions !== null ? ` (${transactions} transactions)` : ''}${refused > 0 ? '; a refused line affects no other line' : ''}`,
  );
  return refused === 0 ? 0 : 1;
}

/** Reads stdin to its end, appending its non-blank lines in groups of APPEND_GROUP; one result line each. */
async function appendLines(ctx: CliContext, tally: Tally, append: Append): Promise<void> {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  let group: { n: number; text: string }[] = [];
  let n = 0;
  for await (const text of lines) {
    n++;
    if (text.trim() === '') continue;
    group.push({ n, text });
    if (group.length >= APPEND_GROUP) {
      await appendGroup(ctx, tally, append, group);
      group = [];
    }
  }
  await appendGroup(ctx, tally, append, group);
}

async function appendGroup(ctx: CliContext, tally: Tally, append: Append, group: readonly { n: number; text: string }[]): Promise<void> {
  // One group's appends are issued together, so the writer commits them in one transaction.
  const settled = await Promise.allSettled(group.map(({ text }) => appendLine(text, append)));
  settled.forEach((s, i) => {
    const line = (group[i] as { n: number }).n;
    tally.total++;
    if (s.status === 'fulfilled') {
      const { entry, duplicate } = s.value;
      if (duplicate) tally.duplicates++;
      else tally.appended++;
      ctx.out(
        ctx.json()
          ? JSON.stringify({ line, ok: true, seq: entry.seq, id: entry.id, duplicate })
          : `line ${line}: ${duplicate ? 'duplicate of' : 'appended as'} seq ${entry.seq}`,
      );
    } else {
      tally.refused++;
      const message = (s.reason as Error).message;
      ctx.out(ctx.json() ? JSON.stringify({ line, ok: false, error: message }) : `line ${line}: refused: ${message}`);
    }
  });
}

function appendLine(text: string, append: Append): Promise<AppendResult> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return Promise.reject(new Error(`not JSON: ${(err as Error).message}`));
  }
  return append(parsed);
}
