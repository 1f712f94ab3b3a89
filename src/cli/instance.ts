/**
 * One `activity-journal start` per data directory. The supervisor holds an exclusive lock on
 * `<journal>.supervisor-lock` for its whole life (released by the OS when it dies, even by kill -9, so a stale
 * note never blocks a start) and writes who it is beside it. A second start finds the lock taken, or the journal
 * open for writing, or a port in use, before it spawns anything, and refuses at once naming what is running.
 */
import { createServer, Socket } from 'node:net';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { hostname } from 'node:os';
import type { Config } from '../config/config.ts';
import type { Listen } from '../journal/settings.ts';
import { tryFileLock, writerLockPath, type WriterLock } from '../journal/lock.ts';
import { UsageError } from './usage-error.ts';

export function describeListen(l: Listen): string {
  return l.kind === 'unix' ? `unix:${l.path}` : `${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`;
}

/** Whether something else is bound to this address (a bind that fails with EADDRINUSE; a unix socket that answers). */
async function inUse(l: Listen): Promise<boolean> {
  if (l.kind === 'unix') {
    if (!existsSync(l.path)) return false;
    return new Promise((resolve) => {
      const s = new Socket();
      s.once('error', () => resolve(false));
      s.connect(l.path, () => {
        s.destroy();
        resolve(true);
      });
    });
  }
  if (l.port === 0) return false;
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EADDRINUSE'));
    server.listen({ port: l.port, host: l.host, exclusive: true }, () => server.close(() => resolve(false)));
  });
}

/** Refuses (UsageError, exit 2) when this data directory or these ports are taken; else holds the lock for the supervisor's life. */
export async function claimInstance(config: Config): Promise<WriterLock> {
  const dataDir = dirname(config.journal.path);
  const journalAt = describeListen(config.service.listen);
  const webAt = describeListen(config.web.listen);
  const stopHint = 'stop it first (Ctrl-C where it runs, or kill -TERM <pid>), or point JOURNAL_PATH at another data directory';
  const mine = `pid ${process.pid} on ${hostname()}, journal service ${journalAt} (JOURNAL_SERVICE_LISTEN), web ${webAt} (WEB_LISTEN), data dir ${dataDir}, since ${new Date().toISOString()}`;
  const claim = tryFileLock(`${config.journal.path}.supervisor-lock`, mine);
  if (!claim.held) {
    throw new UsageError(
      `activity-journal is already running on the data directory ${dataDir}: ${claim.owner ?? 'another process (it left no note)'}; ${stopHint}`,
    );
  }
  try {
    // A journal service started on its own (activity-journal journal-service), or one left running: same refusal.
    const writer = tryFileLock(writerLockPath(config.journal.path));
    if (!writer.held)
      throw new UsageError(
        `the journal ${config.journal.path} (data dir ${dataDir}) is already open for writing by ${writer.owner ?? 'another process'}; ${stopHint}`,
      );
    writer.lock.release();
    for (const [name, l] of [
      ['JOURNAL_SERVICE_LISTEN', config.service.listen],
      ['WEB_LISTEN', config.web.listen],
    ] as const) {
      if (await inUse(l))
        throw new UsageError(
          `${describeListen(l)} (${name}) is already in use by another process, perhaps another activity-journal (data dir here: ${dataDir}); stop it, or set ${name} to a free address`,
        );
    }
  } catch (err) {
    claim.lock.release();
    throw err;
  }
  return claim.lock;
}
