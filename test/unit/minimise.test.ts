import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { canonicalize } from '../../src/journal/canonical.ts';
import type { Interaction, Participant } from '../../src/pipeline/interaction.ts';
import {
  DEFAULT_MINIMISE_OPTIONS,
  DEFAULT_REDACTION_RULES,
  TRUNCATION_MARKER,
  minimise,
  redactionRulesFromConfig,
} from '../../src/pipeline/minimise.ts';
import type { MinimiseOptions } from '../../src/pipeline/minimise.ts';

function email(text: string, extra: Partial<Interaction> = {}): Interaction {
  return {
    channel: 'email',
    source: 'gmail',
    sourceId: 'msg-1',
    direction: 'inbound',
    occurredAt: '2026-11-02T09:00:00Z',
    participants: [
      { role: 'from', address: 'dana@bluepeak.example', name: 'Dana Whitfield' },
      { role: 'to', address: 'sales@northwind-analytics.example' },
    ],
    text,
    ...extra,
  };
}

const run = (text: string, options: MinimiseOptions = DEFAULT_MINIMISE_OPTIONS) => minimise(email(text), options);
const textOf = (text: string): string => run(text).input.text;

/** Written independently of the implementation under test. */
function luhn(digits: string): boolean {
  let sum = 0;
  [...digits].reverse().forEach((ch, i) => {
    const d = Number(ch) * (i % 2 === 1 ? 2 : 1);
    sum += d > 9 ? d - 9 : d;
  });
  return sum % 10 === 0;
}

const MARKER_START = /\[REDACTED:/g;
const FULL_MARKER = /\[REDACTED:[a-z0-9-]+\]/g;

describe('redaction rules', () => {
  it('redacts Luhn-valid card numbers in every usual layout, and keeps a 16-digit order number that fails Luhn', () => {
    expect(luhn('4111111111111111')).toBe(true);
    expect(luhn('1234567812345678')).toBe(false);
    expect(textOf('Card: 4111 1111 1111 1111, exp 09/29')).toBe('Card: [REDACTED:card-number], exp 09/29');
    expect(textOf('card 4111-1111-1111-1111.')).toBe('card [REDACTED:card-number].');
    expect(textOf('card 4111111111111111')).toBe('card [REDACTED:card-number]');
    expect(textOf('Amex 3782 822463 10005')).toBe('Amex [REDACTED:card-number]');
    expect(textOf('Order number 1234567812345678 shipped')).toBe('Order number 1234567812345678 shipped');
    // A CVV group after the card, or another number before it, does not hide it.
    expect(textOf('4111 1111 1111 1111 123')).toBe('[REDACTED:card-number] 123');
    expect(textOf('ref 12 4111111111111111')).toBe('ref 12 [REDACTED:card-number]');
    // Too long to be a card: a 20-digit reference is left alone.
    expect(textOf('tracking 41111111111111110000')).toBe('tracking 41111111111111110000');
  });

  it('redacts the password value and keeps its label', () => {
    expect(textOf('password: hunter2')).toBe('password: [REDACTED:password]');
    expect(textOf('login with pwd=s3cr3t! please')).toBe('login with pwd=[REDACTED:password] please');
    expect(textOf('The passcode is 7781.')).toBe('The passcode is [REDACTED:password].');
    expect(textOf('Password: "correct horse battery"')).toBe('Password: [REDACTED:password]');
    expect(textOf('my PIN: 4821')).toBe('my PIN: [REDACTED:password]');
    expect(textOf('I clicked the password reset link')).toBe('I clicked the password reset link');
  });

  it('redacts one-time codes near their words, not other numbers', () => {
    expect(textOf('Your code is 123456')).toBe('Your code is [REDACTED:one-time-code]');
    expect(textOf('OTP: 123456')).toBe('OTP: [REDACTED:one-time-code]');
    expect(textOf('verification code 123-456 expires soon')).toBe('verification code [REDACTED:one-time-code] expires soon');
    expect(textOf('482913 is your verification code')).toBe('[REDACTED:one-time-code] is your verification code');
    expect(textOf('Our zip code 94107 and error code 5003 stay')).toBe('Our zip code 94107 and error code 5003 stay');
    expect(textOf('We have 123456 rows')).toBe('We have 123456 rows');
  });

  it('redacts IBANs only when the mod-97 check passes', () => {
    expect(textOf('IBAN GB82 WEST 1234 5698 7654 32, thanks')).toBe('IBAN [REDACTED:iban], thanks');
    expect(textOf('to DE89370400440532013000.')).toBe('to [REDACTED:iban].');
    const broken = run('IBAN GB83 WEST 1234 5698 7654 32');
    expect(broken.redactions.map((r) => r.rule)).not.toContain('iban');
    expect(broken.input.text).toContain('GB83 WEST');
  });

  it('redacts API keys by shape and long secrets after a key label', () => {
    expect(textOf('key sk-proj-Ab3dEf6hIj9kLm2nOp5q works')).toBe('key [REDACTED:api-key] works');
    expect(textOf('AWS AKIAIOSFODNN7EXAMPLE here')).toBe('AWS [REDACTED:api-key] here');
    expect(textOf('api key: 3f9a6c2e71b34d6a9e0f5c7b2a1d8e63')).toBe('api key: [REDACTED:api-key]');
    expect(textOf('token=dGhpcy1pcy1hLXNlY3JldC10b2tlbg1234')).toBe('token=[REDACTED:api-key]');
    expect(textOf('a token of our appreciation')).toBe('a token of our appreciation');
  });

  it('counts each rule, lists only the rules that matched, sorted by id, and never redacts inside a marker', () => {
    const m = run('cards 4111111111111111 and 5555 5555 5555 4444; password: hunter2; password: 4012888888881881');
    expect(m.redactions).toEqual([
      { rule: 'card-number', count: 3 },
      { rule: 'password', count: 1 },
    ]);
    expect(m.input.text).toBe(
      'cards [REDACTED:card-number] and [REDACTED:card-number]; password: [REDACTED:password]; password: [REDACTED:card-number]',
    );
    expect(run('nothing secret here').redactions).toEqual([]);
  });

  it('redacts the subject too', () => {
    const m = minimise(email('body', { subject: 'Card 4111 1111 1111 1111   expired' }), DEFAULT_MINIMISE_OPTIONS);
    expect(m.input.subject).toBe('Card [REDACTED:card-number] expired');
    expect(m.redactions).toEqual([{ rule: 'card-number', count: 1 }]);
  });

  it('picks rules by id from config, in the built-in order, and names the known ids for an unknown one', () => {
    expect(redactionRulesFromConfig('default').map((r) => r.id)).toEqual(DEFAULT_REDACTION_RULES.map((r) => r.id));
    expect(DEFAULT_REDACTION_RULES.map((r) => r.id).sort()).toEqual(['api-key', 'card-number', 'iban', 'one-time-code', 'password']);
    expect(redactionRulesFromConfig(['password', 'card-number', 'password']).map((r) => r.id)).toEqual(['card-number', 'password']);
    expect(redactionRulesFromConfig([])).toEqual([]);
    expect(() => redactionRulesFromConfig(['card-number', 'ssn'])).toThrow(
      /unknown redaction rule "ssn"; known rules: api-key, iban, card-number, password, one-time-code/,
    );
    // Only the enabled rules apply.
    const onlyPasswords = run('password: x 4111111111111111', { maxChars: 8000, rules: redactionRulesFromConfig(['password']) });
    expect(onlyPasswords.input.text).toBe('password: [REDACTED:password] 4111111111111111');
  });

  it('refuses options that make no sense', () => {
    expect(() => run('x', { maxChars: 0, rules: [] })).toThrow(RangeError);
    expect(() => run('x', { maxChars: 100, rules: [{ id: 'Bad Id]', pattern: /x/ }] })).toThrow(/rule id/);
  });
});

describe('truncation', () => {
  it('keeps the head and the tail around a marker and reports how much was kept', () => {
    const body = Array.from({ length: 3000 }, (_, i) => `word${i}`).join(' ');
    const text = `HEAD-START ${body}\n\nBest regards,\nJane Example`;
    const m = run(text, { maxChars: 2000, rules: DEFAULT_REDACTION_RULES });
    const out = m.input.text;
    expect(out.length).toBeLessThanOrEqual(2000);
    expect(out.startsWith('HEAD-START word0')).toBe(true);
    expect(out.endsWith('Best regards,\nJane Example')).toBe(true);
    expect(out).toContain(TRUNCATION_MARKER);
    expect(m.truncatedTo).toBe(out.length - TRUNCATION_MARKER.length);
    const [head, tail] = out.split(TRUNCATION_MARKER) as [string, string];
    expect(tail.length).toBeGreaterThan(100);
    expect(tail.length).toBeLessThanOrEqual(200);
    // Cut at white space: no half words.
    expect(text.startsWith(head)).toBe(true);
    expect(text.endsWith(tail)).toBe(true);
    expect(head).toMatch(/word\d+$/);
    expect(text).toContain(`${head} `);
  });

  it('does not truncate what fits, and reports null', () => {
    const m = run('short', { maxChars: 5, rules: [] });
    expect(m.input.text).toBe('short');
    expect(m.truncatedTo).toBeNull();
  });

  it('never cuts inside a redaction marker, wherever the cut falls', () => {
    const text = 'pay with 4111 1111 1111 1111 '.repeat(200);
    for (let maxChars = 40; maxChars < 400; maxChars += 7) {
      const out = run(text, { maxChars, rules: DEFAULT_REDACTION_RULES }).input.text;
      expect(out.length).toBeLessThanOrEqual(maxChars);
      expect(out.match(MARKER_START)?.length ?? 0).toBe(out.match(FULL_MARKER)?.length ?? 0);
      expect(out).not.toMatch(/REDACTED:[a-z-]*$|^[a-z-]*\]/m);
    }
  });

  it('redacts before truncating, so a secret in the cut-off middle is not counted twice nor leaked at the edges', () => {
    const text = `${'a '.repeat(500)}card 4111 1111 1111 1111 ${'b '.repeat(500)}`;
    const m = run(text, { maxChars: 300, rules: DEFAULT_REDACTION_RULES });
    expect(m.redactions).toEqual([{ rule: 'card-number', count: 1 }]);
    expect(m.input.text).not.toMatch(/\d/);
  });
});

describe('domains and personal data', () => {
  it('lists the distinct lower-cased email domains, sorted; phone numbers give none', () => {
    const participants: Participant[] = [
      { role: 'from', address: 'Dana.Whitfield@BluePeak-Logistics.example', name: 'Dana Whitfield' },
      { role: 'to', address: 'sales@northwind-analytics.example', name: 'Sales' },
      { role: 'cc', address: 'tomas@bluepeak-logistics.example' },
      { role: 'cc', address: 'ops@acme.test' },
      { role: 'caller', address: '+12065550142' },
    ];
    const m = minimise(email('hello', { participants }), DEFAULT_MINIMISE_OPTIONS);
    expect(m.input.domains).toEqual(['acme.test', 'bluepeak-logistics.example', 'northwind-analytics.example']);
  });

  it('puts no participant address or name into the input, even when the text quotes the address', () => {
    const participants: Participant[] = [
      { role: 'from', address: 'priya.raman@harborline.example', name: 'Priya Raman' },
      { role: 'to', address: 'alex.moreno@northwind-analytics.example', name: 'Alex Moreno' },
      { role: 'caller', address: '+12065550142', name: 'Front desk' },
    ];
    const text = 'Thanks!\n\nOn Wed, Alex <ALEX.MORENO@northwind-analytics.example> wrote:\n> call me on +12065550142';
    const m = minimise(email(text, { participants, subject: 'Re: from priya.raman@harborline.example' }), DEFAULT_MINIMISE_OPTIONS);
    const json = JSON.stringify(m.input);
    for (const p of participants) {
      expect(json.toLowerCase()).not.toContain(p.address.toLowerCase());
      expect(json).not.toContain(p.name);
    }
    expect(m.input.text).toBe(
      'Thanks!\n\nOn Wed, Alex <[REDACTED:participant-address]> wrote:\n> call me on [REDACTED:participant-address]',
    );
    expect(m.redactions).toEqual([{ rule: 'participant-address', count: 3 }]);
    expect(Object.keys(m.input).sort()).toEqual(['channel', 'direction', 'domains', 'subject', 'text']);
  });

  it('maps a missing text to "" and a blank subject to null', () => {
    const { text: _text, ...noText } = email('x');
    const m = minimise({ ...noText, subject: '   ' }, DEFAULT_MINIMISE_OPTIONS);
    expect(m.input.text).toBe('');
    expect(m.input.subject).toBeNull();
  });
});

describe('input hash', () => {
  it('is the SHA-256 of the canonical input, stable for the same input and different after a one-character change', () => {
    const ix = email('Hello, please send pricing for 40 seats. Card 4111 1111 1111 1111.', { subject: 'Pricing' });
    const a = minimise(ix, DEFAULT_MINIMISE_OPTIONS);
    const b = minimise(structuredClone(ix), { maxChars: 8000, rules: redactionRulesFromConfig('default') });
    expect(a.inputHash).toMatch(/^[0-9a-f]{64}$/);
    expect(a.inputHash).toBe(b.inputHash);
    expect(a.inputHash).toBe(createHash('sha256').update(canonicalize(a.input)).digest('hex'));
    expect(minimise({ ...ix, text: ix.text!.replace('40', '41') }, DEFAULT_MINIMISE_OPTIONS).inputHash).not.toBe(a.inputHash);
    expect(minimise({ ...ix, subject: 'pricing' }, DEFAULT_MINIMISE_OPTIONS).inputHash).not.toBe(a.inputHash);
    // Participant order does not matter: domains are sorted.
    const reordered = minimise({ ...ix, participants: [...ix.participants].reverse() }, DEFAULT_MINIMISE_OPTIONS);
    expect(reordered.inputHash).toBe(a.inputHash);
  });
});

describe('properties', () => {
  // Any UTF-16 code unit, lone surrogates included, plus the characters the rules care about.
  const unit = fc.oneof(
    fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
    fc.constantFrom('0', '1', '4', '9', ' ', '-', ':', '=', '[', ']', '\n', '@', '.'),
    fc.constantFrom('password: ', 'code is ', 'OTP ', 'token=', 'IBAN GB82 WEST 1234 5698 7654 32', '[REDACTED:iban]', 'sk-'),
  );
  const anyText = fc.string({ unit, maxLength: 600 });

  it('never throws and never exceeds maxChars', () => {
    fc.assert(
      fc.property(anyText, fc.option(anyText, { nil: undefined }), fc.integer({ min: 1, max: 700 }), (text, subject, maxChars) => {
        const m = minimise(email(text, subject === undefined ? {} : { subject }), { maxChars, rules: DEFAULT_REDACTION_RULES });
        expect(m.input.text.length).toBeLessThanOrEqual(maxChars);
        expect(m.truncatedTo === null || m.truncatedTo <= maxChars).toBe(true);
        expect(m.inputHash).toMatch(/^[0-9a-f]{64}$/);
      }),
      { numRuns: 500 },
    );
  });

  const luhnCard = fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 15, maxLength: 15 }).map((ds) => {
    const payload = ds.join('');
    for (let check = 0; check <= 9; check++) if (luhn(payload + check)) return payload + check;
    throw new Error('unreachable');
  });
  const fragment = fc.oneof(
    luhnCard,
    luhnCard.map((c) => c.replace(/(\d{4})(?=\d)/g, '$1 ')),
    luhnCard.map((c) => c.replace(/(\d{4})(?=\d)/g, '$1-')),
    fc.stringMatching(/^\d{1,20}$/),
    fc.constantFrom(' ', '-', '\n', 'x', 'card ', ' 123', 'password: ', 'code is '),
    fc.string({ maxLength: 8 }),
  );

  it('lets no Luhn-valid 16-digit run survive, truncated or not', () => {
    fc.assert(
      fc.property(fc.array(fragment, { maxLength: 30 }), fc.constantFrom(8000, 300, 120, 64), (parts, maxChars) => {
        const out = minimise(email(parts.join('')), { maxChars, rules: DEFAULT_REDACTION_RULES }).input.text;
        for (const run of out.match(/\d+/g) ?? []) {
          if (run.length === 16) expect(luhn(run), `${run} survived in ${JSON.stringify(out)}`).toBe(false);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
