/**
 * What every command shares: the configuration (loaded when the command runs, with the global `--journal`
 * applied), whether `--json` was given, the two output streams, the exit code, and a logger. Each file under
 * commands/ registers its commands with `register…Commands(program, ctx)`; main.ts builds the one context.
 */
import type { Command } from 'commander';
import { loadConfig, type Config } from '../config/config.ts';
import { createLogger, type Logger } from '../config/logger.ts';
import { terminalSafe } from './terminal-text.ts';
import { write } from './output.ts';

/** Where a command prints: one line at a time, to stdout (`out`) or stderr (`err`). */
export interface CliOutput {
  out(line: string): void;
  err(line: string): void;
}

export interface CliContext extends CliOutput {
  /** The configuration from the environment, with the global `--journal` applied; loaded anew on each call. */
  config(): Config;
  /** True when the global `--json` was given: machine-readable output. */
  json(): boolean;
  /** The exit code the command line ends with once the command's action returns (0 unless set). */
  setExit(code: number): void;
  /** The logger of a long-running process (`start`, `worker`, `web`, `journal-service`) at the configured level. */
  logger(config: Config): Logger;
  /** The logger of a foreground command that prints its own report: `info` is lowered to `warn`. */
  quietLogger(config: Config): Logger;
}

interface GlobalOpts {
  journal?: string;
  json?: boolean;
}

/**
 * The context of one run of the command line over `program` (whose global options it reads); `setExit` hands
 * the exit code to `onExit`.
 */
export function createCliContext(program: Command, onExit: (code: number) => void): CliContext {
  return {
    config: () => loadConfig(process.env, { journalPath: program.opts<GlobalOpts>().journal }),
    json: () => program.opts<GlobalOpts>().json === true,
    // Every line the CLI prints passes terminalSafe: journal content must not reach the terminal as control
    // characters. And output.ts: a reader that goes away (`| head`) ends the output quietly, not with an EPIPE
    // stack trace.
    out: (line) => write(process.stdout, terminalSafe(line) + '\n'),
    err: (line) => write(process.stderr, terminalSafe(line) + '\n'),
    setExit: onExit,
    logger: (config) => createLogger(config.logLevel, 'activity-journal'),
    quietLogger: (config) => createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, 'activity-journal'),
  };
}
