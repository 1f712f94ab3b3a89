/**
 * How CLI commands reach the journal: their own writer when the journal is free, else the running journal
 * service (which holds the single-writer lock).
 */
import { RetentionPolicy } from '../journal/retention.ts';
import type { Config } from '../config/config.ts';
import { JournalWriter } from '../journal/writer.ts';
import { JournalReader } from '../journal/reader.ts';
import { LocalJournalClient } from '../journal/local-client.ts';
import type { JournalClient } from '../journal/journal-client.ts';
import { HttpJournalClient } from '../journal/service/http-client.ts';
import { resolveCredentials } from '../journal/service/credentials.ts';
import { JournalFileError } from '../journal/errors/journal-file.error.ts';
import { configuredAnchors } from '../journal/configured-anchors.ts';
import { UsageError } from './usage-error.ts';
import { write } from './output.ts';
import { attachConfiguredPrivacy, openWriterPrivacy } from '../journal/configured-privacy.ts';

export function serviceClient(config: Config): HttpJournalClient | null {
  const creds = resolveCredentials(config.journal.keysDir, config.service, false);
  if (!creds) return null;
  return new HttpJournalClient({ url: config.service.url, appendToken: creds.appendToken, readToken: creds.readToken });
}

/** Runs `direct` on our own writer, or, when the journal service holds the journal, `viaService` through it. */
export async function withWriterOrService<T>(
  config: Config,
  direct: (w: JournalWriter) => Promise<T>,
  viaService: (c: HttpJournalClient) => Promise<T>,
): Promise<T> {
  let writer: JournalWriter;
  try {
    writer = await openWriter(config);
  } catch (err) {
    if (!(err instanceof JournalFileError && err.code === 'LOCKED')) throw err;
    const client = serviceClient(config);
    if (!client)
      throw new UsageError(`${err.message}; and no service credentials were found (set JOURNAL_APPEND_TOKEN and JOURNAL_READ_TOKEN)`);
    write(process.stderr, `the journal service holds the journal; going through it at ${config.service.url}\n`);
    try {
      return await viaService(client);
    } finally {
      await client.close();
    }
  }
  try {
    return await direct(writer);
  } finally {
    await writer.close();
  }
}

function openWriter(config: Config): Promise<JournalWriter> {
  return JournalWriter.open({
    path: config.journal.path,
    keysDir: config.journal.keysDir,
    anchors: configuredAnchors(config.journal),
    maxPayloadBytes: config.journal.maxPayloadBytes,
    checkpointEveryEntries: config.journal.checkpointEveryEntries,
    retention: RetentionPolicy.load(config.journal.retentionPath),
    checkpointEveryMs: 0,
    privacy: openWriterPrivacy(config),
  });
}

/** Runs `fn` with a JournalClient: our own writer when the journal is free, else the running journal service. */
export function withJournal<T>(config: Config, fn: (journal: JournalClient) => Promise<T>): Promise<T> {
  return withWriterOrService(
    config,
    async (writer) => {
      const reader = attachConfiguredPrivacy(JournalReader.open(config.journal.path), config);
      try {
        return await fn(new LocalJournalClient(writer, reader));
      } finally {
        reader.close();
      }
    },
    (client) => fn(client),
  );
}

/** A reader of the journal file that opens sealed payloads with the configured key store (as the product reads). */
export function openReader(config: Config): JournalReader {
  return attachConfiguredPrivacy(JournalReader.open(config.journal.path), config);
}
