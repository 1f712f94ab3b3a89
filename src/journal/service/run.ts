/**
 * The journal service process: owns the journal file, serves the append-only API, checkpoints on a timer,
 * and shuts down cleanly (final checkpoint, lock released) on SIGTERM or SIGINT.
 */
import { RetentionPolicy, describeRule } from '../retention.ts';
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Server } from 'node:http';
import type { JournalServiceSettings } from '../settings.ts';
import type { Logger } from '../../config/logger.ts';
import { JournalWriter } from '../writer.ts';
import { JournalReader } from '../reader.ts';
import { configuredAnchors } from '../configured-anchors.ts';
import { resolveCredentials } from './credentials.ts';
import { createJournalServer } from './server.ts';
import { openWriterPrivacy } from '../configured-privacy.ts';
import { checkKeyStore, type Privacy } from '../privacy.ts';

export interface RunningService {
  readonly server: Server;
  readonly writer: JournalWriter;
  /** Where it listens, as a client URL (http://host:port or unix:/path). */
  readonly url: string;
  close(): Promise<void>;
}

export async function startJournalService(config: JournalServiceSettings, logger: Logger): Promise<RunningService> {
  const log = logger.child({ component: 'journal.service' });
  const anchors = configuredAnchors(config.journal);
  const privacy = openWriterPrivacy(config);
  const retention = RetentionPolicy.load(config.journal.retentionPath);
  // A rule that decides nothing the product writes is most likely a typo (a source that never existed): say so.
  for (const u of retention.unmatchedRules())
    log.warn(
      { policyVersion: retention.version, rule: u.index, class: u.rule.class },
      `retention policy rule decides nothing the product writes: ${describeRule(u)}`,
    );
  const writer = await JournalWriter.open({
    path: config.journal.path,
    keysDir: config.journal.keysDir,
    anchors,
    maxPayloadBytes: config.journal.maxPayloadBytes,
    checkpointEveryEntries: config.journal.checkpointEveryEntries,
    retention,
    checkpointEveryMs: config.journal.checkpointEveryMs,
    logger,
    privacy,
  });
  const reader = JournalReader.open(config.journal.path);
  reader.attachPrivacy(privacy);
  await reportKeyStoreProblems(reader, privacy, writer, log);
  const credentials = resolveCredentials(config.journal.keysDir, config.service, true);
  if (!credentials) throw new Error('no service credentials could be resolved');
  const server = createJournalServer({
    writer,
    reader,
    credentials,
    maxBodyBytes: Math.max(16 * 1024 * 1024, config.journal.maxPayloadBytes * 4),
    logger,
  });
  server.keepAliveTimeout = 30_000;
  const listen = config.service.listen;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (listen.kind === 'unix') {
      mkdirSync(dirname(listen.path), { recursive: true, mode: 0o700 });
      if (existsSync(listen.path)) unlinkSync(listen.path); // a socket left by a killed service; the writer lock proved no one else runs
      server.listen(listen.path, () => {
        chmodSync(listen.path, 0o600);
        resolve();
      });
    } else {
      server.listen(listen.port, listen.host, () => resolve());
    }
  });
  const address = server.address();
  const url =
    listen.kind === 'unix'
      ? `unix:${listen.path}`
      : `http://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${typeof address === 'object' && address ? address.port : listen.port}`;
  log.info({ url, journal: config.journal.path, size: writer.size, anchors: anchors.map((a) => a.name) }, 'journal service ready');
  let closing: Promise<void> | null = null;
  return {
    server,
    writer,
    url,
    close(): Promise<void> {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        await writer.close();
        reader.close();
        privacy.close();
        log.info({ size: writer.size }, 'journal service stopped');
      })();
      return closing;
    },
  };
}

/**
 * Start-up: a key store that lost keys the journal needs, or that was rolled back over an erasure, is logged as
 * an error and journaled (connector.health, connector "key-store", once per distinct finding). Never silent.
 */
async function reportKeyStoreProblems(reader: JournalReader, privacy: Privacy, writer: JournalWriter, log: Logger): Promise<void> {
  const store = privacy.openedKeys;
  const check = checkKeyStore(reader.connection, store);
  for (const note of check.notes) log.warn({}, note);
  if (check.ok) return;
  log.error(
    { missing: check.missing.length, resurrected: check.resurrected.length, backupInStep: check.backupInStep },
    `key store problem: ${check.problems.join('; ')}`,
  );
  const finding = `${check.missing.length}/${check.resurrected.length}/${String(check.backupInStep)}/${store?.fingerprint().digest.slice(0, 16) ?? 'no-store'}`;
  await writer.append({
    kind: 'connector.health',
    source: 'journal',
    actor: 'journal-service',
    correlationId: 'privacy/key-store',
    idempotencyKey: `privacy/key-store/health/${finding}`,
    payload: { connector: 'key-store', status: 'failing', reason: check.problems.join('; ').slice(0, 2000) },
  });
}
