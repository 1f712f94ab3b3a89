/**
 * `activity-journal import calls FILE.csv`: call records from a CSV export (format: connectors/calls/README.md)
 * taken in through the pipeline's intake, like any webhook. Bad rows are reported with their line and the
 * column at fault and affect no other row; re-importing the same file adds nothing (the call id is the key).
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../config/config.ts';
import type { Logger } from '../config/logger.ts';
import { JournalWriter } from '../journal/writer.ts';
import { JournalReader } from '../journal/reader.ts';
import { LocalJournalClient } from '../journal/local-client.ts';
import type { JournalClient } from '../journal/journal-client.ts';
import { JournalFileError } from '../journal/errors/journal-file.error.ts';
import { configuredAnchors } from '../journal/configured-anchors.ts';
import { parseCallsCsv } from '../../connectors/calls/index.ts';
import { journalServiceClient, startPipeline } from '../../jobs/main.ts';
import { progressBar } from './progress.ts';
import { UsageError } from './usage-error.ts';

export interface ImportReport {
  readonly rows: number;
  readonly accepted: number;
  readonly duplicates: number;
  readonly excluded: number;
  readonly errors: readonly { line: number; message: string }[];
}

export async function importCalls(config: Config, file: string, logger: Logger, asJson: boolean): Promise<ImportReport> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const parsed = parseCallsCsv(text);
  const errors = [...parsed.errors];
  // The journal: our own writer when the journal is free, else the running journal service.
  let journal: JournalClient;
  let writer: JournalWriter | null = null;
  try {
    writer = await JournalWriter.open({ path: config.journal.path, keysDir: config.journal.keysDir, anchors: configuredAnchors(config.journal), checkpointEveryMs: 0 });
    journal = new LocalJournalClient(writer, JournalReader.open(config.journal.path));
  } catch (err) {
    if (!(err instanceof JournalFileError && err.code === 'LOCKED')) throw err;
    journal = journalServiceClient(config);
  }
  const runtime = await startPipeline(config, logger, { journal, queues: [] });
  const bar = asJson ? { update() {}, done() {} } : progressBar('importing calls');
  let accepted = 0;
  let duplicates = 0;
  let excluded = 0;
  try {
    let done = 0;
    for (const row of parsed.rows) {
      try {
        const r = await runtime.pipeline.intake(row.interaction);
        if (r.status === 'excluded') excluded++;
        else if (r.duplicate) duplicates++;
        else accepted++;
      } catch (err) {
        errors.push({ line: row.line, message: (err as Error).message });
      }
      bar.update(++done, parsed.rows.length);
    }
    bar.done();
  } finally {
    await runtime.close();
    await journal.close();
  }
  errors.sort((a, b) => a.line - b.line);
  return { rows: parsed.rows.length + parsed.errors.length, accepted, duplicates, excluded, errors };
}
