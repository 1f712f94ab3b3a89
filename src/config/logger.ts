/**
 * Structured logging. Components log ids and counts, never bodies, tokens or personal data.
 *
 * Two formats, both on stderr (stdout stays free for command output): JSON lines (one object a line, `time` an ISO
 * 8601 UTC string) for files, pipes and log shippers, and pino-pretty's human-readable lines for a terminal.
 * LOG_FORMAT=pretty|json forces one; unset, a terminal on stderr gets pretty. The supervisor hands the format it
 * chose to its children (their stderr is its stderr, so they would choose the same; it makes sure of it).
 */
import { createRequire } from 'node:module';
import { pino, type DestinationStream } from 'pino';

export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

export type LogFormat = 'pretty' | 'json';

/** The format a process logs in: the one asked for (LOG_FORMAT), else pretty on a terminal and JSON otherwise. */
export function chooseLogFormat(asked: string | undefined, stderrIsTty: boolean): LogFormat {
  if (asked === 'pretty' || asked === 'json') return asked;
  return stderrIsTty ? 'pretty' : 'json';
}

/** Colours on a terminal unless NO_COLOR is set (https://no-color.org), never into a file or a pipe. */
export function prettyColours(env: NodeJS.ProcessEnv, stderrIsTty: boolean): boolean {
  return stderrIsTty && (env.NO_COLOR ?? '') === '';
}

function prettyStream(colorize: boolean): DestinationStream {
  // Loaded only when a terminal reads the logs; synchronous, so that nothing is lost when the process exits.
  const pretty = createRequire(import.meta.url)('pino-pretty') as (o: object) => DestinationStream;
  return pretty({
    destination: 2,
    sync: true,
    colorize,
    translateTime: 'SYS:HH:MM:ss.l',
    singleLine: true,
    messageFormat: '{component}: {msg}{if pid} (pid {pid}){end}',
    ignore: 'component,pid',
  });
}

/** A logger on stderr in the chosen format (default: chooseLogFormat of LOG_FORMAT and whether stderr is a terminal). */
export function createLogger(level: string, component: string, format?: LogFormat): Logger {
  const tty = process.stderr.isTTY === true;
  const chosen = format ?? chooseLogFormat(process.env.LOG_FORMAT, tty);
  const options = { level, base: { component }, timestamp: pino.stdTimeFunctions.isoTime };
  return pino(options, chosen === 'pretty' ? prettyStream(prettyColours(process.env, tty)) : pino.destination(2));
}

/** For tests and library use: drops everything. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
