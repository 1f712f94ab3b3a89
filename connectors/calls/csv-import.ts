/**
 * Call log import from CSV (RFC 4180). The format is documented in connectors/calls/README.md.
 *
 * Rows that fail validation are reported with their line number and the column at fault, and the good rows
 * are kept. Messages never quote a cell: call logs hold personal data. Parsing never throws.
 *
 * The tokenizer below is ours rather than `csv-parse`'s (7.0.3), measured by `npm run bench -- csv`: csv-parse
 * counts a CRLF inside a quoted field as two lines, so every row after a multi-line note is reported one line off;
 * after text following a closing quote (`"a"b`) it stays in the quoted field and swallows the rest of the file,
 * where this one loses that row only; its messages quote cell values (each would have to be mapped back from its
 * error code); a record's start line has to be rebuilt from its raw text; and it is 3-4× slower (6-10× with the
 * `info` and `raw` options that line numbers need). The RFC 4180 unit tests pin the first two.
 */
import { InteractionSchema, type Interaction, type Participant } from '../../src/pipeline/interaction.ts';
import { SOURCES } from '../../src/journal/source-catalog.ts';

export const CALL_CSV_COLUMNS = [
  'call_id',
  'direction',
  'from',
  'to',
  'agent',
  'started_at',
  'duration_seconds',
  'status',
  'subject',
  'notes',
] as const;
export type CallCsvColumn = (typeof CALL_CSV_COLUMNS)[number];
export const REQUIRED_CALL_CSV_COLUMNS: readonly CallCsvColumn[] = ['call_id', 'direction', 'from', 'to', 'started_at'];

/** One validated CSV row, before it becomes an Interaction. */
export interface CallCsvRow {
  readonly callId: string;
  readonly direction: Interaction['direction'];
  readonly from: string;
  readonly to: string;
  readonly agent?: string;
  /** ISO 8601, normalised to UTC. */
  readonly startedAt: string;
  readonly durationSeconds?: number;
  readonly status?: string;
  readonly subject?: string;
  readonly notes?: string;
}

export interface CallCsvError {
  readonly line: number;
  readonly message: string;
}

export interface CallCsvResult {
  readonly rows: { line: number; interaction: Interaction }[];
  readonly errors: CallCsvError[];
}

interface CsvRecord {
  /** 1-based line on which the record starts. */
  readonly line: number;
  readonly fields: string[];
  readonly error?: string;
}

/** Splits RFC 4180 text into records; malformed quoting marks the record instead of throwing. */
function* readRecords(input: string): Generator<CsvRecord> {
  const text = input.startsWith('\uFEFF') ? input.slice(1) : input;
  let i = 0;
  let line = 1;
  const n = text.length;
  while (i < n) {
    const startLine = line;
    const fields: string[] = [];
    let error: string | undefined;
    let field = '';
    let endOfRecord = false;
    while (!endOfRecord) {
      if (i < n && text[i] === '"') {
        // Quoted field: runs to the next lone quote; "" is an escaped quote.
        i++;
        let closed = false;
        while (i < n) {
          const ch = text[i];
          if (ch === '"') {
            if (text[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            closed = true;
            break;
          }
          if (ch === '\n') line++;
          else if (ch === '\r' && text[i + 1] !== '\n') line++;
          field += ch;
          i++;
        }
        if (!closed) error ??= 'a quoted field is not closed (missing ")';
        // Anything between the closing quote and the next separator is malformed; skip it.
        if (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') {
          error ??= 'unexpected text after a closing quote';
          while (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') i++;
        }
      } else {
        while (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') {
          if (text[i] === '"') error ??= 'a quote inside an unquoted field (quote the whole field and double the quote)';
          field += text[i];
          i++;
        }
      }
      fields.push(field);
      field = '';
      if (i >= n) {
        endOfRecord = true;
      } else if (text[i] === ',') {
        i++;
      } else {
        // \r\n, \n or a lone \r ends the record.
        if (text[i] === '\r' && text[i + 1] === '\n') i++;
        i++;
        line++;
        endOfRecord = true;
      }
    }
    const blank = fields.length === 1 && fields[0] === '' && error === undefined;
    if (!blank) yield error !== undefined ? { line: startLine, fields, error } : { line: startLine, fields };
  }
}

/** Counts data records (excluding the header and blank lines), e.g. for a progress bar. */
export function countCsvRecords(text: string): number {
  let count = 0;
  for (const _record of readRecords(text)) count++;
  return Math.max(0, count - 1);
}

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}:?\d{2})$/;

function isColumn(name: string): name is CallCsvColumn {
  return (CALL_CSV_COLUMNS as readonly string[]).includes(name);
}

/** Quotes a header name for an error message, shortened: headers are not personal data but may be long. */
function showHeader(name: string): string {
  return JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}…` : name);
}

/**
 * Parses a call log CSV into interactions (source `csv-import`, sourceId = threadId = call_id, so importing
 * the same file twice adds nothing). A header problem yields one error and no rows.
 */
export function parseCallsCsv(text: string): CallCsvResult {
  const rows: { line: number; interaction: Interaction }[] = [];
  const errors: CallCsvError[] = [];
  const records = readRecords(text);
  const first = records.next();
  if (first.done === true) {
    errors.push({ line: 1, message: `empty file: expected a header row with the columns ${REQUIRED_CALL_CSV_COLUMNS.join(', ')}` });
    return { rows, errors };
  }
  const header = first.value;
  if (header.error !== undefined) {
    errors.push({ line: header.line, message: `header row: ${header.error}` });
    return { rows, errors };
  }

  const names = header.fields.map((f) => f.trim().toLowerCase());
  const problems: string[] = [];
  const unknown = names.filter((name) => !isColumn(name));
  if (unknown.length > 0) {
    problems.push(`unknown column(s) ${unknown.map(showHeader).join(', ')}: allowed columns are ${CALL_CSV_COLUMNS.join(', ')}`);
  }
  const duplicated = names.filter((name, idx) => names.indexOf(name) !== idx);
  if (duplicated.length > 0) problems.push(`duplicated column(s) ${[...new Set(duplicated)].map(showHeader).join(', ')}`);
  const missing = REQUIRED_CALL_CSV_COLUMNS.filter((c) => !names.includes(c));
  if (missing.length > 0) problems.push(`missing required column(s) ${missing.join(', ')}`);
  if (problems.length > 0) {
    errors.push({ line: header.line, message: `header row: ${problems.join('; ')}` });
    return { rows, errors };
  }
  const columns = names as CallCsvColumn[];

  const seen = new Map<string, number>();
  for (const record of records) {
    if (record.error !== undefined) {
      errors.push({ line: record.line, message: record.error });
      continue;
    }
    if (record.fields.length !== columns.length) {
      errors.push({ line: record.line, message: `expected ${columns.length} fields as in the header, found ${record.fields.length}` });
      continue;
    }
    const cells = new Map<CallCsvColumn, string>();
    columns.forEach((col, idx) => cells.set(col, record.fields[idx] ?? ''));
    const result = toRow(cells);
    if ('problems' in result) {
      for (const message of result.problems) errors.push({ line: record.line, message });
      continue;
    }
    const earlier = seen.get(result.row.callId);
    if (earlier !== undefined) {
      errors.push({ line: record.line, message: `call_id: the same call_id is already on line ${earlier}` });
      continue;
    }
    const interaction = toInteraction(result.row);
    const checked = InteractionSchema.safeParse(interaction);
    if (!checked.success) {
      const path = checked.error.issues[0]?.path.map(String).join('.') ?? '';
      errors.push({ line: record.line, message: `the row does not make a valid interaction (field ${path || 'unknown'})` });
      continue;
    }
    seen.set(result.row.callId, record.line);
    rows.push({ line: record.line, interaction: checked.data });
  }
  return { rows, errors };
}

function toRow(cells: ReadonlyMap<CallCsvColumn, string>): { row: CallCsvRow } | { problems: string[] } {
  const problems: string[] = [];
  const get = (col: CallCsvColumn): string | undefined => {
    const v = cells.get(col)?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  const required = (col: CallCsvColumn, what: string, max: number): string => {
    const v = get(col);
    if (v === undefined) problems.push(`${col}: required, expected ${what}`);
    else if (v.length > max) problems.push(`${col}: too long, expected at most ${max} characters`);
    return v ?? '';
  };
  const optional = (col: CallCsvColumn, max: number): string | undefined => {
    const v = get(col);
    if (v !== undefined && v.length > max) {
      problems.push(`${col}: too long, expected at most ${max} characters`);
      return undefined;
    }
    return v;
  };

  const callId = required('call_id', 'the call id from the source system', 256);
  const from = required('from', 'the caller (E.164 phone number or address)', 512);
  const to = required('to', 'the callee (E.164 phone number or address)', 512);
  const agent = optional('agent', 512);

  const rawDirection = get('direction')?.toLowerCase();
  let direction: Interaction['direction'] = 'inbound';
  if (rawDirection === 'inbound' || rawDirection === 'outbound' || rawDirection === 'internal') direction = rawDirection;
  else problems.push('direction: expected inbound, outbound or internal');

  let startedAt = '';
  const rawStarted = get('started_at');
  const started = rawStarted !== undefined && ISO_DATE_TIME.test(rawStarted) ? Date.parse(rawStarted.replace(' ', 'T')) : NaN;
  if (Number.isNaN(started)) problems.push('started_at: expected an ISO 8601 date-time with an offset, e.g. 2024-05-01T14:30:00Z');
  else startedAt = new Date(started).toISOString();

  let durationSeconds: number | undefined;
  const rawDuration = get('duration_seconds');
  if (rawDuration !== undefined) {
    if (/^\d{1,9}$/.test(rawDuration)) durationSeconds = Number(rawDuration);
    else problems.push('duration_seconds: expected a whole number of seconds (0 or more)');
  }
  const status = optional('status', 64);
  const subject = optional('subject', 2000);
  // Notes keep their inner whitespace and line breaks; only an all-blank cell counts as empty.
  const rawNotes = cells.get('notes');
  let notes: string | undefined;
  if (rawNotes !== undefined && rawNotes.trim() !== '') {
    if (rawNotes.length > 2_000_000) problems.push('notes: too long, expected at most 2000000 characters');
    else notes = rawNotes;
  }

  if (problems.length > 0) return { problems };
  return {
    row: {
      callId,
      direction,
      from,
      to,
      startedAt,
      ...(agent !== undefined ? { agent } : {}),
      ...(durationSeconds !== undefined ? { durationSeconds } : {}),
      ...(status !== undefined ? { status } : {}),
      ...(subject !== undefined ? { subject } : {}),
      ...(notes !== undefined ? { notes } : {}),
    },
  };
}

function toInteraction(row: CallCsvRow): Interaction {
  const participants: Participant[] = [
    { role: 'caller', address: row.from },
    { role: 'callee', address: row.to },
  ];
  if (row.agent !== undefined) participants.push({ role: 'agent', address: row.agent });
  const metadata: Record<string, string | number> = {};
  if (row.durationSeconds !== undefined) metadata['durationSeconds'] = row.durationSeconds;
  if (row.status !== undefined) metadata['callStatus'] = row.status;
  const label = row.status ?? 'logged';
  const subject = row.subject ?? (row.durationSeconds !== undefined ? `Call ${label} (${row.durationSeconds} s)` : `Call ${label}`);
  return {
    channel: 'call',
    source: SOURCES.callsCsv,
    sourceId: row.callId,
    threadId: row.callId,
    direction: row.direction,
    occurredAt: row.startedAt,
    participants,
    subject,
    ...(row.notes !== undefined ? { text: row.notes } : {}),
    metadata,
  };
}
