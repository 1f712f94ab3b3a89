/**
 * The csv suite: our call-log CSV tokenizer (connectors/calls/csv-import.ts) against the `csv-parse` package when it
 * is installed (the comparison that decided to keep ours, issue 17; skipped with a note when the package is absent).
 *
 *  1. Speed: ROWS rows (CRLF line ends, a quoted subject with a comma, a two-line quoted note with doubled quotes),
 *     median of RUNS after a warm-up: our tokenizer (`countCsvRecords`, which reads every record), csv-parse's sync
 *     API with the options an import needs (BOM, any line end, ragged rows and bad records reported, not thrown),
 *     and with `info` and `raw` on as well, which a record's line number needs. `parseCallsCsv` end to end (with
 *     validation) for scale.
 *  2. Correctness, on small files: the line csv-parse reports for the row after a note holding a CRLF, and the
 *     good rows it keeps after a row with text after a closing quote.
 */
import { countCsvRecords, parseCallsCsv } from '../connectors/calls/index.ts';
import { fmtFixed, median, now, secondsSince, table, type Suite, type SuiteContext, type SuiteResult } from './suite.ts';

const ROWS = 100_000;
const RUNS = 5;
const HEADER = 'call_id,direction,from,to,agent,started_at,duration_seconds,status,subject,notes';

type SyncParse = (input: string, options: object) => unknown[];

function timeMs(fn: () => unknown): number {
  fn();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = now();
    fn();
    times.push(secondsSince(t) * 1000);
  }
  return median(times);
}

export const csvSuite: Suite = {
  name: 'csv',
  description: 'call-log CSV tokenizing, ours against the csv-parse package (speed, line numbers, recovery)',
  async run(ctx: SuiteContext): Promise<SuiteResult> {
    const lines = [HEADER];
    for (let i = 0; i < ROWS; i++)
      lines.push(
        `c-${i},outbound,+14155550100,+442071838750,ana@example.com,2024-05-01T14:30:00Z,312,completed,"Renewal, Q3","Asked for a quote, ""urgent""\r\nCall back Friday"`,
      );
    const text = lines.join('\r\n') + '\r\n';
    const figures: Record<string, number> = {
      'ours: tokenizer (countCsvRecords)': timeMs(() => countCsvRecords(text)),
    };
    ctx.progress('csv: ours timed');

    // A specifier in a variable: this file type-checks and runs whether or not the package is installed.
    const specifier = 'csv-parse/sync';
    let parse: SyncParse | undefined;
    try {
      parse = ((await import(specifier)) as { parse: SyncParse }).parse;
    } catch {
      parse = undefined;
    }
    const checks: Record<string, unknown> = {};
    if (parse !== undefined) {
      const p = parse;
      const options = { bom: true, record_delimiter: ['\r\n', '\n', '\r'], relax_column_count: true, skip_records_with_error: true };
      figures['csv-parse: sync'] = timeMs(() => p(text, options));
      figures['csv-parse: sync with info and raw'] = timeMs(() => p(text, { ...options, info: true, raw: true }));
      ctx.progress('csv: csv-parse timed');

      // The row after a note with a CRLF starts on line 3 and ends there.
      const crlf = p('a,b\r\n"one\r\ntwo",x\r\nnext,y\r\n', { ...options, info: true }) as { info: { lines: number } }[];
      checks['csv-parse: last line of the row after a CRLF note (true: 4)'] = crlf[2]?.info.lines;
      checks['ours: start line of that row (true: 4)'] = parseCallsCsv(
        'call_id,direction,from,to,started_at,notes\r\nc-1,inbound,+1,+2,2024-05-01T10:00:00Z,"one\r\ntwo"\r\nc-2,inbound,+1,+2,2024-05-01T10:00:00Z,\r\n',
      ).rows[1]?.line;
      // Three good rows after one with text after a closing quote.
      const good = (id: string): string => `${id},inbound,+1,+2,2024-05-01T10:00:00Z,fine`;
      const stray = [
        'call_id,direction,from,to,started_at,notes',
        'bad,inbound,+1,+2,2024-05-01T10:00:00Z,"closed"then',
        good('ok1'),
        good('ok2'),
        good('ok3'),
      ].join('\n');
      checks['csv-parse: good rows kept after "closed"then (true: 3)'] = (p(stray, options) as string[][]).filter((r) =>
        r[0]?.startsWith('ok'),
      ).length;
      checks['ours: good rows kept after "closed"then (true: 3)'] = parseCallsCsv(stray).rows.length;
    }
    const base = figures['ours: tokenizer (countCsvRecords)'] ?? NaN;
    figures['ours: parseCallsCsv end to end'] = timeMs(() => parseCallsCsv(text));
    ctx.progress('csv: parseCallsCsv timed');

    const report = [
      `call-log CSV, ${ROWS.toLocaleString('en-US')} rows, ${fmtFixed(text.length / 1e6, 1)} MB (medians of ${RUNS})`,
      table(
        ['parser', 'ms', 'x our tokenizer'],
        Object.entries(figures).map(([name, ms]) => [name, fmtFixed(ms, 0), fmtFixed(ms / base, 2)]),
      ),
      parse === undefined
        ? 'csv-parse is not installed: comparison skipped'
        : table(
            ['check', 'value'],
            Object.entries(checks).map(([name, value]) => [name, String(value)]),
          ),
    ].join('\n');
    return { text: report, data: { rows: ROWS, bytes: text.length, ms: figures, checks } };
  },
};
