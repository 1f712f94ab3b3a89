/**
 * The journal service's HTTP API in a process of its own, for the sealing-cost measurement: the same
 * createJournalServer + JournalWriter (+ reader) that src/journal/service/run.ts wires, from the same
 * configuration, with per-subject sealing (`sealed`, what the journal service always runs) or without it
 * (`unsealed`, the baseline). Both variants run exactly this code, so their CPU per entry differs by what sealing
 * costs and nothing else. The product has no switch that turns sealing off; this bench-only process is the only
 * place a service runs without it.
 *
 *   node bin/run-ts.mjs bench/journal-service-child.ts sealed|unsealed JOURNAL_PATH   (environment as for the CLI)
 *
 * Prints one line `listening <url>` on stdout when ready; stops on SIGTERM.
 */
import type { Server } from 'node:http';
import { loadConfig } from '../src/config/config.ts';
import { silentLogger } from '../src/config/logger.ts';
import { JournalWriter } from '../src/journal/writer.ts';
import { JournalReader } from '../src/journal/reader.ts';
import { RetentionPolicy } from '../src/journal/retention.ts';
import { configuredAnchors } from '../src/journal/configured-anchors.ts';
import { openWriterPrivacy } from '../src/journal/configured-privacy.ts';
import { resolveCredentials } from '../src/journal/service/credentials.ts';
import { createJournalServer } from '../src/journal/service/server.ts';

const [variant, journalPath] = process.argv.slice(2);
if ((variant !== 'sealed' && variant !== 'unsealed') || !journalPath) {
  process.stderr.write('usage: journal-service-child.ts sealed|unsealed JOURNAL_PATH\n');
  process.exit(2);
}
const config = loadConfig(process.env, { journalPath });
const privacy = variant === 'sealed' ? openWriterPrivacy(config) : undefined;
const writer = await JournalWriter.open({
  path: config.journal.path,
  keysDir: config.journal.keysDir,
  anchors: configuredAnchors(config.journal),
  maxPayloadBytes: config.journal.maxPayloadBytes,
  checkpointEveryEntries: config.journal.checkpointEveryEntries,
  retention: RetentionPolicy.load(config.journal.retentionPath),
  checkpointEveryMs: config.journal.checkpointEveryMs,
  ...(privacy ? { privacy } : {}),
});
const reader = JournalReader.open(config.journal.path);
if (privacy) reader.attachPrivacy(privacy);
const credentials = resolveCredentials(config.journal.keysDir, config.service, true);
if (!credentials) throw new Error('no service credentials could be resolved');
const server: Server = createJournalServer({
  writer,
  reader,
  credentials,
  maxBodyBytes: Math.max(16 * 1024 * 1024, config.journal.maxPayloadBytes * 4),
  logger: silentLogger,
});
server.keepAliveTimeout = 30_000;
const listen = config.service.listen;
if (listen.kind !== 'tcp') throw new Error('the bench service listens on TCP');
await new Promise<void>((resolve, reject) => {
  server.once('error', reject);
  server.listen(listen.port, listen.host, () => resolve());
});
const address = server.address();
process.stdout.write(`listening http://${listen.host}:${typeof address === 'object' && address ? address.port : listen.port}\n`);
process.once('SIGTERM', () => {
  server.close();
  server.closeIdleConnections();
  void writer.close().then(() => {
    reader.close();
    privacy?.close();
    process.exit(0);
  });
});
