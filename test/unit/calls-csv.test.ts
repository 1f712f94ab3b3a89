import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { countCsvRecords, parseCallsCsv } from '../../connectors/calls/index.ts';
import { InteractionSchema } from '../../src/pipeline/interaction.ts';

const HEADER = 'call_id,direction,from,to,agent,started_at,duration_seconds,status,subject,notes';

describe('parseCallsCsv', () => {
  it('parses quoted fields with commas, newlines and escaped quotes, CRLF line ends', () => {
    const csv = [
      HEADER,
      'c-1,outbound,+14155550100,+442071838750,ana@example.com,2024-05-01T14:30:00Z,312,completed,"Renewal, Q3","Asked for a quote, ""urgent""\r\nCall back Friday"',
      'c-2,INBOUND,+442071838750,+14155550100,,2024-05-01 16:00:00+02:00,,no-answer,,',
      '',
    ].join('\r\n');
    const { rows, errors } = parseCallsCsv(csv);
    expect(errors).toEqual([]);
    expect(rows.map((r) => r.line)).toEqual([2, 4]);
    expect(rows[0]?.interaction).toEqual({
      channel: 'call',
      source: 'csv-import',
      sourceId: 'c-1',
      threadId: 'c-1',
      direction: 'outbound',
      occurredAt: '2024-05-01T14:30:00.000Z',
      participants: [
        { role: 'caller', address: '+14155550100' },
        { role: 'callee', address: '+442071838750' },
        { role: 'agent', address: 'ana@example.com' },
      ],
      subject: 'Renewal, Q3',
      text: 'Asked for a quote, "urgent"\r\nCall back Friday',
      metadata: { durationSeconds: 312, callStatus: 'completed' },
    });
    expect(rows[1]?.interaction).toMatchObject({ direction: 'inbound', occurredAt: '2024-05-01T14:00:00.000Z', subject: 'Call no-answer' });
    expect(rows[1]?.interaction.text).toBeUndefined();
    for (const r of rows) expect(InteractionSchema.safeParse(r.interaction).success).toBe(true);
    expect(countCsvRecords(csv)).toBe(2);
  });

  it('accepts columns in any order, LF line ends, a BOM and only the required columns', () => {
    const csv = '\uFEFFstarted_at,to,from,direction,call_id\n2024-05-01T10:00:00+01:00,+2,+1,internal,x-9\n';
    const { rows, errors } = parseCallsCsv(csv);
    expect(errors).toEqual([]);
    expect(rows[0]?.interaction).toMatchObject({ sourceId: 'x-9', direction: 'internal', occurredAt: '2024-05-01T09:00:00.000Z' });
  });

  it('reports a missing required column once, naming it', () => {
    const { rows, errors } = parseCallsCsv('call_id,direction,to,started_at\nc-1,inbound,+2,2024-05-01T10:00:00Z\n');
    expect(rows).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.line).toBe(1);
    expect(errors[0]?.message).toBe('header row: missing required column(s) from');
  });

  it('refuses unknown columns with a clear error', () => {
    const { rows, errors } = parseCallsCsv(`${HEADER},customer_ssn\n`);
    expect(rows).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(/unknown column\(s\) "customer_ssn".*allowed columns are call_id/);
  });

  it('reports bad rows with their line numbers, keeps the good ones, never quotes cell values', () => {
    const csv = [
      HEADER,
      'ok-1,inbound,+14155550100,+442071838750,,2024-05-01T10:00:00Z,60,completed,,"multi\nline note"',
      'bad-1,sideways,+14155550111,+442071838750,,2024-05-01T10:00:00Z,,,,',
      'bad-2,inbound,,+442071838750,,last tuesday,-5,,,',
      'ok-2,outbound,+14155550122,+442071838750,,2024-05-01T11:00:00Z,,,,',
      'short,row',
      'bad-3,inbound,+14155550133,+4420,,2024-05-01T10:00:00Z,,,,notes with a stray "zzqx',
      'ok-1,inbound,+14155550100,+442071838750,,2024-05-01T10:00:00Z,60,completed,,',
    ].join('\n');
    const { rows, errors } = parseCallsCsv(csv);
    expect(rows.map((r) => [r.line, r.interaction.sourceId])).toEqual([
      [2, 'ok-1'],
      [6, 'ok-2'],
    ]);
    expect(errors.map((e) => e.line)).toEqual([4, 5, 5, 5, 7, 8, 9]);
    expect(errors.find((e) => e.line === 4)?.message).toBe('direction: expected inbound, outbound or internal');
    expect(errors.filter((e) => e.line === 5).map((e) => e.message.split(':')[0])).toEqual(['from', 'started_at', 'duration_seconds']);
    expect(errors.find((e) => e.line === 7)?.message).toMatch(/expected 10 fields/);
    expect(errors.find((e) => e.line === 9)?.message).toMatch(/call_id: .*line 2/);
    const all = errors.map((e) => e.message).join('\n');
    for (const value of ['sideways', 'last tuesday', '-5', '+14155550111', 'bad-', 'zzqx', 'stray', 'short'])
      expect(all).not.toContain(value);
  });

  it('reports an unterminated quoted field', () => {
    const { rows, errors } = parseCallsCsv(`${HEADER}\nc-1,inbound,+1,+2,,2024-05-01T10:00:00Z,,,,"never closed\nmore`);
    expect(rows).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.line).toBe(2);
    expect(errors[0]?.message).toMatch(/not closed/);
  });

  it('reports an empty file', () => {
    expect(parseCallsCsv('').errors).toHaveLength(1);
    expect(parseCallsCsv('\n\n').errors).toHaveLength(1);
    expect(countCsvRecords('')).toBe(0);
  });

  describe('RFC 4180 edge cases', () => {
    const REQUIRED = 'call_id,direction,from,to,started_at';
    const row = (id: string, extra = ''): string => `${id},inbound,+1,+2,2024-05-01T10:00:00Z${extra}`;

    it('quoted commas, doubled quotes, empty and quote-only quoted fields', () => {
      const csv = `${REQUIRED},subject,notes,status\n${row('q-1', ',"a, b","say ""hi"", then ""bye""",""')}\n${row('q-2', ',"""","""""""",')}\n`;
      const { rows, errors } = parseCallsCsv(csv);
      expect(errors).toEqual([]);
      expect(rows[0]?.interaction).toMatchObject({ subject: 'a, b', text: 'say "hi", then "bye"' });
      expect(rows[0]?.interaction.metadata).toEqual({});
      expect(rows[1]?.interaction).toMatchObject({ subject: '"', text: '"""' });
    });

    it('CRLF, LF and lone CR line ends, mixed in one file, with the line numbers an editor shows', () => {
      const csv = `${REQUIRED}\r\n${row('e-1')}\n${row('e-2')}\r${row('e-3')}\r\nbad,row\n${row('e-4')}`;
      const { rows, errors } = parseCallsCsv(csv);
      expect(rows.map((r) => [r.line, r.interaction.sourceId])).toEqual([
        [2, 'e-1'],
        [3, 'e-2'],
        [4, 'e-3'],
        [6, 'e-4'],
      ]);
      expect(errors).toEqual([{ line: 5, message: 'expected 5 fields as in the header, found 2' }]);
    });

    it('line breaks inside quotes (CRLF, LF, CR) count as lines: later rows keep their true line numbers', () => {
      const csv = [
        `${REQUIRED},notes`,
        row('n-1', ',"one\r\ntwo\nthree\rfour"'),
        row('n-2', ',"a\r\n\r\nb"'),
        'n-3,sideways,+1,+2,2024-05-01T10:00:00Z,',
      ].join('\r\n');
      const { rows, errors } = parseCallsCsv(csv);
      expect(rows.map((r) => r.line)).toEqual([2, 6]);
      expect(rows[0]?.interaction.text).toBe('one\r\ntwo\nthree\rfour');
      expect(rows[1]?.interaction.text).toBe('a\r\n\r\nb');
      expect(errors).toEqual([{ line: 9, message: 'direction: expected inbound, outbound or internal' }]);
    });

    it('a BOM before a quoted header, CRLF, trailing blank lines and no final line end', () => {
      const csv = `\uFEFF"call_id","Direction",from,to,"started_at"\r\n${row('b-1')}\r\n\r\n${row('b-2')}\r\n\r\n\r\n`;
      const { rows, errors } = parseCallsCsv(csv);
      expect(errors).toEqual([]);
      expect(rows.map((r) => [r.line, r.interaction.sourceId])).toEqual([
        [2, 'b-1'],
        [4, 'b-2'],
      ]);
      expect(countCsvRecords(csv)).toBe(2);
      expect(parseCallsCsv(`${REQUIRED}\n${row('b-3')}`).rows.map((r) => r.interaction.sourceId)).toEqual(['b-3']);
    });

    it('malformed quoting costs only its own row: text after a closing quote, a quote inside an unquoted field', () => {
      const csv = [
        `${REQUIRED},notes`,
        row('m-1', ',"closed"then text'),
        row('m-2', ',ok'),
        row('m-3', ',say "hi"'),
        row('m-4', ',ok'),
      ].join('\n');
      const { rows, errors } = parseCallsCsv(csv);
      expect(rows.map((r) => [r.line, r.interaction.sourceId])).toEqual([
        [3, 'm-2'],
        [5, 'm-4'],
      ]);
      expect(errors).toEqual([
        { line: 2, message: 'unexpected text after a closing quote' },
        { line: 4, message: 'a quote inside an unquoted field (quote the whole field and double the quote)' },
      ]);
    });

    it('round-trips any text written as RFC 4180, with any line ends, at the line each record starts on', () => {
      const text = fc.array(fc.constantFrom('a', 'é', ' ', ',', '"', '\r', '\n', '\r\n', 'x y'), { maxLength: 12 }).map((p) => p.join(''));
      const eol = fc.constantFrom('\r\n', '\n', '\r');
      const quote = (s: string): string => (/[",\r\n]/.test(s) || s.trim() !== s ? `"${s.replaceAll('"', '""')}"` : s);
      fc.assert(
        fc.property(
          fc.array(fc.record({ subject: text, notes: text, eol }), { minLength: 1, maxLength: 8 }),
          fc.boolean(),
          eol,
          (records, bom, headerEol) => {
            let csv = `${bom ? '\uFEFF' : ''}${REQUIRED},subject,notes${headerEol}`;
            const expected: { line: number; subject: string; text: string | undefined }[] = [];
            records.forEach((r, idx) => {
              const line = 1 + (csv.match(/\r\n|\r|\n/g) ?? []).length;
              const subject = r.subject.trim() === '' ? 'Call logged' : r.subject.trim();
              expected.push({ line, subject, text: r.notes.trim() === '' ? undefined : r.notes });
              csv += `${row(`p-${idx}`)},${quote(r.subject)},${quote(r.notes)}${idx < records.length - 1 ? r.eol : ''}`;
            });
            const { rows, errors } = parseCallsCsv(csv);
            expect(errors).toEqual([]);
            expect(rows.map((r) => ({ line: r.line, subject: r.interaction.subject, text: r.interaction.text }))).toEqual(expected);
            expect(countCsvRecords(csv)).toBe(records.length);
          },
        ),
        { numRuns: 500 },
      );
    });
  });

  it('is idempotent: re-importing gives the same sourceIds', () => {
    const csv = `${HEADER}\nc-1,inbound,+1,+2,,2024-05-01T10:00:00Z,,,,\n`;
    expect(parseCallsCsv(csv)).toEqual(parseCallsCsv(csv));
  });

  it('never throws on arbitrary text, and everything it returns is a valid interaction', () => {
    const csvish = fc
      .array(fc.constantFrom(',', '"', '\r', '\n', 'a', ' ', 'inbound', '2024-05-01T10:00:00Z', '+1'), { maxLength: 60 })
      .map((parts) => parts.join(''));
    const withHeader = csvish.map((body) => `${HEADER}\n${body}`);
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 }), csvish, withHeader), (text) => {
        const result = parseCallsCsv(text);
        for (const r of result.rows) expect(InteractionSchema.safeParse(r.interaction).success).toBe(true);
        for (const e of result.errors) expect(e.line).toBeGreaterThanOrEqual(1);
        expect(countCsvRecords(text)).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 1000 },
    );
  });
});
