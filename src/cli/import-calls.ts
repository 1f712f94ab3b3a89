/**
 * `activity-journal import calls FILE.csv`: call records from a CSV export (format: connectors/calls/README.md)
 * taken in through the pipeline's intake, like any webhook. Bad rows are reported with their line and the
 * column at fault and affect no other row; re-importing the same file adds nothing (the call id is the key).
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../config/config.ts';
import type { Logger } from '../config/logger.ts';
import { parseCallsCsv } from '../../connectors/calls/index.ts';
import { startPipeline } from '../../jobs/main.ts';
import { withJournal } from './journal-access.ts';
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
  let accepted = 0;
  let duplicates = 0;
  let excluded = 0;
  await withJournal(config, async (journal) => {
    const runtime = await startPipeline(config, logger, { journal, queues: [] });
    const bar = asJson ? { update() {}, done() {} } : progressBar('importing calls');
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
    }
  });
  errors.sort((a, b) => a.line - b.line);
  return { rows: parsed.rows.length + parsed.errors.length, accepted, duplicates, excluded, errors };
}
