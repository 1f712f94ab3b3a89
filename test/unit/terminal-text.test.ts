import { describe, expect, it } from 'vitest';
import { terminalSafe } from '../../src/cli/terminal-text.ts';

describe('terminalSafe', () => {
  it('writes every control character a terminal acts on as its \\u escape, keeping ordinary text', () => {
    const hostile = 'Quote \u001b]0;pwned\u0007 now\u001b[2J \u009b31m \u202egnp.exe\r\u0000 end';
    const out = terminalSafe(hostile);
    expect(out).toBe('Quote \\u001b]0;pwned\\u0007 now\\u001b[2J \\u009b31m \\u202egnp.exe\\u000d\\u0000 end');
    expect(
      [...out].filter((c) => c.charCodeAt(0) < 0x20 || (c.charCodeAt(0) >= 0x7f && c.charCodeAt(0) <= 0x9f) || c === '\u202e'),
    ).toEqual([]);
    expect(terminalSafe('Grüße, 東京 – ok\tand\nmore')).toBe('Grüße, 東京 – ok\tand\nmore');
  });

  it('escapes newlines and tabs too for a value inside one line', () => {
    expect(terminalSafe('a\nb\tc', { singleLine: true })).toBe('a\\u000ab\\u0009c');
  });

  it('keeps a JSON line valid JSON with the same value', () => {
    const value = { subject: 'x\u007f\u0085\u2028y\u001b' };
    const line = terminalSafe(JSON.stringify(value));
    expect(line).not.toMatch(/[\u007f-\u009f\u2028]/);
    expect(JSON.parse(line)).toEqual(value);
  });
});
