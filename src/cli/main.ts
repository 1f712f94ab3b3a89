/**
 * The `activity-journal` command line. Exit codes: 0 success, 1 the journal (or a proof) is not intact or some
 * input lines were refused, 2 usage errors and unreadable files, and a journal (or, for `start`, a data directory
 * or port) already in use.
 *
 * Each group of commands is registered by its file under commands/, in the order `--help` lists them; what they
 * share (configuration, output, exit code, logger) is the CliContext (context.ts). Each command imports its
 * implementation when it runs (`await import(...)` in its action): `--help` and the light commands do not pay
 * for googleapis, bullmq, fastify, openai..., nor does `start`'s supervisor process.
 */
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/errors/config.error.ts';
import { RulesetError } from '../pipeline/errors/ruleset.error.ts';
import { JournalFileError } from '../journal/errors/journal-file.error.ts';
import { UsageError } from './usage-error.ts';
import { terminalSafe } from './terminal-text.ts';
import { guardOutput, write } from './output.ts';
import { createCliContext, type CliContext } from './context.ts';
import { registerProcessCommands } from './commands/processes.ts';
import { registerDemoCommands } from './commands/demo.ts';
import { registerJournalServiceCommands } from './commands/journal-service.ts';
import { registerInboxCommands } from './commands/inboxes.ts';
import { registerCrmCommands } from './commands/crm.ts';
import { registerStatusCommands } from './commands/status.ts';
import { registerImportCommands } from './commands/import.ts';
import { registerAuditCommands } from './commands/audit.ts';
import { registerUserCommands } from './commands/users.ts';
import { registerPrivacyCommands } from './commands/privacy.ts';
import { registerVerifyCommands } from './commands/verify.ts';
import { registerArchiveCommands } from './commands/archive.ts';
import { registerProofCommands } from './commands/proofs.ts';

/** Runs the command line; resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  guardOutput();
  let exitCode = 0;
  const program = new Command();
  program
    .name('activity-journal')
    .description('Insert-only, tamper-evident journal of sales interactions and automated decisions.')
    .option('--journal <path>', 'journal file (default: $JOURNAL_PATH, else ./data/journal.sqlite)')
    .option('--json', 'machine-readable output')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => write(process.stderr, terminalSafe(s)), writeOut: (s) => write(process.stdout, terminalSafe(s)) });
  const ctx = createCliContext(program, (code) => void (exitCode = code));

  registerProcessCommands(program, ctx); // start, worker, web
  registerDemoCommands(program, ctx); // demo, send-sample
  registerJournalServiceCommands(program, ctx); // journal-service, append
  registerInboxCommands(program, ctx); // connect, gmail labels, sync, reconcile
  registerCrmCommands(program, ctx); // crm drift
  registerStatusCommands(program, ctx); // status
  registerImportCommands(program, ctx); // import calls
  registerAuditCommands(program, ctx); // decisions, override, export, verify-export
  registerUserCommands(program, ctx); // users add|hash-password|token|list
  registerPrivacyCommands(program, ctx); // forget, keys status|confirm-erasure|restore, privacy scan|contain
  registerVerifyCommands(program, ctx); // verify
  registerArchiveCommands(program, ctx); // archive, retention report
  registerProofCommands(program, ctx); // trace, prove, verify-proof, checkpoint, public-key

  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (err) {
    return exitCodeOf(err, ctx);
  }
}

/** What a command that threw exits with, after saying why: 2 for misuse and unusable files, 1 for the rest. */
function exitCodeOf(err: unknown, ctx: CliContext): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
  if (err instanceof UsageError || err instanceof ConfigError || err instanceof RulesetError || err instanceof JournalFileError) {
    ctx.err(`activity-journal: ${err.message}`);
    return 2;
  }
  ctx.err(`activity-journal: ${(err as Error).name}: ${(err as Error).message}`);
  return 1;
}
