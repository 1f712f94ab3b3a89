/**
 * Structured logging. Components log ids and counts, never bodies, tokens or personal data.
 */
import { pino } from 'pino';

export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

/** JSON lines on stderr, so that stdout stays free for command output. */
export function createLogger(level: string, component: string): Logger {
  return pino({ level, base: { component } }, pino.destination(2));
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
