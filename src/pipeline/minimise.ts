/**
 * Data minimisation: the only view of an interaction that leaves the process for a model. Secrets are replaced
 * by `[REDACTED:<rule id>]`, participants are reduced to their email domains, long texts are cut to a head and a
 * tail, and the result is hashed so a decision can name exactly what the model saw.
 */
import { createHash } from 'node:crypto';
import { domainToASCII } from 'node:url';
import { canonicalize } from '../journal/canonical.ts';
import type { ClassifierInput } from './classification.ts';
import type { Interaction } from './interaction.ts';

export interface RedactionRule {
  /** Lower-case kebab-case; it becomes part of the `[REDACTED:<id>]` marker. */
  readonly id: string;
  readonly pattern: RegExp;
  /** optional extra check, e.g. Luhn for card numbers */
  readonly accept?: (match: string) => boolean;
}

export interface MinimiseOptions {
  /** Characters of text kept, truncation marker included (default 8000). */
  readonly maxChars: number;
  /** Applied in this order; each sees the output of the ones before it. */
  readonly rules: readonly RedactionRule[];
}

export interface Minimised {
  readonly input: ClassifierInput;
  /** Only rules that matched, sorted by rule id. */
  readonly redactions: { rule: string; count: number }[];
  /** Characters of the redacted text kept (head + tail) when it was truncated, else null. */
  readonly truncatedTo: number | null;
  /** Hex SHA-256 of the RFC 8785 canonical JSON of `input`. */
  readonly inputHash: string;
}

export const DEFAULT_MAX_CHARS = 8000;

/**
 * Participants' own addresses are always removed from subject and text (quoted headers, signatures, form fields):
 * the input carries domains only. Counted under this id in `redactions`.
 */
export const PARTICIPANT_ADDRESS_RULE_ID = 'participant-address';

export const TRUNCATION_MARKER = '\n[…truncated…]\n';

const RULE_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
const MARKER = /\[REDACTED:[^\]\s]{1,64}\]/g;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Luhn (ISO/IEC 7812) over the digits of `s`, ignoring everything else. */
export function luhnValid(s: string): boolean {
  const digits = s.replace(/\D/g, '');
  if (digits.length === 0) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** ISO 13616 IBAN check: country code, two check digits, mod 97 of the rearranged number equals 1. */
export function ibanValid(s: string): boolean {
  const iban = s.replace(/\s/g, '').toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(iban)) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let rest = 0;
  for (const ch of rearranged) {
    const value = ch >= 'A' ? ch.charCodeAt(0) - 55 : ch.charCodeAt(0) - 48;
    // Letters stand for two digits (A = 10 ... Z = 35).
    rest = value >= 10 ? (rest * 100 + value) % 97 : (rest * 10 + value) % 97;
  }
  return rest === 1;
}

const SECRET_LABEL = String.raw`\b(?:password|passwd|pwd|passcode|passphrase|pass\s?word)\b`;
const SECRET_SEPARATOR = String.raw`\s*(?:[:=]|\bis\b:?|\bwas\b:?)\s*`;
const OTP_WORDS = String.raw`\b(?:otp|one[- ]time (?:pass)?code|one[- ]time password|(?:verification|security|confirmation|login|sign[- ]in|auth(?:entication)?|2fa|mfa|sms) code|(?<!\b(?:error|zip|postal|post|status|area|country|tax|product|discount|promo|coupon|voucher|source|sort|swift|bank|dial(?:ling)?|reference|ref)\s)code)\b`;
const KEY_LABEL = String.raw`\b(?:api[ _-]?key|access[ _-]?key|secret(?:[ _-]?key)?|client[ _-]?secret|(?:access|auth|bearer|api|refresh)?[ _-]?token|bearer|authorization)\b`;

/**
 * The built-in rules, in the order they are applied: the specific shapes (keys, IBANs, cards) before the
 * label-driven ones (passwords, one-time codes), so a card number typed after "password:" is counted as a card.
 */
const BUILT_IN_RULES: readonly RedactionRule[] = [
  {
    id: 'api-key',
    // Well-known key shapes anywhere; otherwise a long token-like value right after a key/token/secret label.
    pattern: new RegExp(
      [
        String.raw`\b(?:sk|rk|pk)[-_](?:proj-|live_|test_)?[A-Za-z0-9_-]{16,}`,
        String.raw`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`,
        String.raw`\bgh[pousr]_[A-Za-z0-9]{30,}`,
        String.raw`\bxox[abprs]-[A-Za-z0-9-]{10,}`,
        String.raw`\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`,
        String.raw`(?<=${KEY_LABEL}["']?\s*(?:[:=]|\bis\b:?)?\s*["']?)[A-Za-z0-9+/_.-][A-Za-z0-9+/_.=-]{19,}`,
      ].join('|'),
      'gi',
    ),
    // A label-driven value must look like a secret, not like a long word.
    accept: (m) => /\d/.test(m) || m.length >= 32,
  },
  {
    id: 'iban',
    // Electronic form, or the printed form in groups of four. Upper case only, so following words are not taken in.
    pattern: /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?)(?![A-Za-z0-9])/g,
    accept: ibanValid,
  },
  {
    id: 'card-number',
    // 13-19 digits with optional single spaces or dashes. Lazy, so that a card followed by a CVV or expiry group
    // is found; a rejected candidate is retried from the next position, so a number in front does not hide it.
    pattern: /(?<!\d)\d(?:[ -]?\d){12,18}?(?!\d)/g,
    accept: (m) => {
      const digits = m.replace(/\D/g, '');
      return digits.length >= 13 && digits.length <= 19 && luhnValid(digits);
    },
  },
  {
    id: 'password',
    // The value only: the label stays so the reader knows a password was there. Trailing punctuation is the sentence's.
    pattern: new RegExp(
      String.raw`(?<=${SECRET_LABEL}${SECRET_SEPARATOR})(?:"[^"\n]{1,200}"|'[^'\n]{1,200}'|[^\s"']*[^\s"'.,;:)])|(?<=\bpin(?:\s?code)?${SECRET_SEPARATOR})\d{4,8}(?!\d)`,
      'gi',
    ),
  },
  {
    id: 'one-time-code',
    pattern: new RegExp(
      String.raw`(?<=${OTP_WORDS}[^\d\n]{0,20})(?<!\d|\d[ -])\d{2,4}[ -]?\d{2,4}(?!\d|[ -]\d)|(?<!\d|\d[ -])\d{4,8}(?=\s+is\s+your\s+(?:[a-z-]+\s+){0,3}(?:code|otp|password|pin)\b)`,
      'gi',
    ),
    accept: (m) => {
      const n = m.replace(/\D/g, '').length;
      return n >= 4 && n <= 8;
    },
  },
];

/** Every built-in rule; ids: api-key, iban, card-number, password, one-time-code. */
export const DEFAULT_REDACTION_RULES: readonly RedactionRule[] = BUILT_IN_RULES;

export const DEFAULT_MINIMISE_OPTIONS: MinimiseOptions = { maxChars: DEFAULT_MAX_CHARS, rules: DEFAULT_REDACTION_RULES };

/** Picks built-in rules by id (always in the built-in order, once each); an unknown id throws, naming the known ones. */
export function redactionRulesFromConfig(enabled: readonly string[] | 'default'): RedactionRule[] {
  if (enabled === 'default') return [...DEFAULT_REDACTION_RULES];
  const known = new Set(BUILT_IN_RULES.map((r) => r.id));
  const unknown = enabled.filter((id) => !known.has(id));
  if (unknown.length > 0) {
    throw new Error(
      `unknown redaction rule${unknown.length > 1 ? 's' : ''} ${unknown.map((id) => JSON.stringify(id)).join(', ')}; known rules: ${[...known].join(', ')}`,
    );
  }
  const wanted = new Set(enabled);
  return BUILT_IN_RULES.filter((r) => wanted.has(r.id));
}

/** Returns what a classifier may see of `ix`. Deterministic: the same interaction and options give the same inputHash. */
export function minimise(ix: Interaction, options: MinimiseOptions): Minimised {
  if (!Number.isInteger(options.maxChars) || options.maxChars < 1)
    throw new RangeError(`maxChars must be a positive integer, got ${options.maxChars}`);
  for (const rule of options.rules) {
    if (!RULE_ID.test(rule.id)) throw new RangeError(`redaction rule id ${JSON.stringify(rule.id)} must match ${RULE_ID.source}`);
  }

  const counts = new Map<string, number>();
  const participantRule = participantAddressRule(ix);
  const clean = (s: string): string => {
    let out = wellFormed(s).replace(/\r\n?/g, '\n');
    if (participantRule !== null) out = applyRule(out, participantRule, counts);
    for (const rule of options.rules) out = applyRule(out, rule, counts);
    return out;
  };

  const subject = ix.subject === undefined ? null : clean(ix.subject.replace(/\s+/g, ' ').trim());
  const { text, truncatedTo } = truncate(clean(ix.text ?? ''), options.maxChars);

  const input: ClassifierInput = {
    channel: ix.channel,
    direction: ix.direction,
    subject: subject === null || subject === '' ? null : subject,
    text,
    domains: participantDomains(ix),
  };
  const redactions = [...counts].filter(([, count]) => count > 0).map(([rule, count]) => ({ rule, count }));
  redactions.sort((a, b) => (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0));
  const inputHash = createHash('sha256').update(canonicalize(input), 'utf8').digest('hex');
  return { input, redactions, truncatedTo, inputHash };
}

/** The distinct lower-cased (IDNA ASCII) domains of the participants' email addresses, sorted. */
function participantDomains(ix: Interaction): string[] {
  const domains = new Set<string>();
  for (const p of ix.participants) {
    const at = p.address.lastIndexOf('@');
    if (at < 1) continue;
    const domain = domainToASCII(
      p.address
        .slice(at + 1)
        .trim()
        .replace(/[>.]+$/, '')
        .toLowerCase(),
    );
    if (domain !== '') domains.add(domain);
  }
  return [...domains].sort();
}

function participantAddressRule(ix: Interaction): RedactionRule | null {
  const addresses = [...new Set(ix.participants.map((p) => wellFormed(p.address.trim())).filter((a) => a.length >= 3))];
  if (addresses.length === 0) return null;
  // Longest first, so an address is never half-replaced by a shorter one it contains.
  addresses.sort((a, b) => b.length - a.length || (a < b ? -1 : 1));
  const alternatives = addresses.map((a) => a.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|');
  return { id: PARTICIPANT_ADDRESS_RULE_ID, pattern: new RegExp(`(?<![\\w.+-])(?:${alternatives})(?![\\w-])`, 'gi') };
}

/** Replaces every accepted match that does not overlap an existing marker; a rejected match is retried one position later. */
function applyRule(text: string, rule: RedactionRule, counts: Map<string, number>): string {
  const markers = [...text.matchAll(MARKER)].map((m) => [m.index, m.index + m[0].length] as const);
  const flags = rule.pattern.flags.replace(/[gy]/g, '') + 'g';
  const re = new RegExp(rule.pattern.source, flags);
  let out = '';
  let last = 0;
  let count = 0;
  let markerIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const start = m.index;
    const end = start + m[0].length;
    while (markerIndex < markers.length && markers[markerIndex]![1] <= start) markerIndex++;
    const marker = markers[markerIndex];
    const overlapsMarker = marker !== undefined && marker[0] < end;
    if (m[0].length === 0 || overlapsMarker || (rule.accept !== undefined && !rule.accept(m[0]))) {
      re.lastIndex = start + 1;
      continue;
    }
    out += text.slice(last, start) + `[REDACTED:${rule.id}]`;
    last = end;
    count++;
  }
  if (count === 0) return text;
  counts.set(rule.id, (counts.get(rule.id) ?? 0) + count);
  return out + text.slice(last);
}

/**
 * Keeps the head and, when there is room, the last tenth as a tail (signatures and sign-offs), joined by the
 * truncation marker; the result is at most `maxChars` long. Cuts never fall inside a redaction marker, a run of
 * digits or a surrogate pair, and prefer white space nearby.
 */
function truncate(text: string, maxChars: number): { text: string; truncatedTo: number | null } {
  if (text.length <= maxChars) return { text, truncatedTo: null };
  const withTail = maxChars >= 64;
  const tailBudget = withTail ? Math.floor(maxChars / 10) : 0;
  const headBudget = withTail ? maxChars - TRUNCATION_MARKER.length - tailBudget : maxChars;
  const markers = [...text.matchAll(MARKER)].map((m) => [m.index, m.index + m[0].length] as const);

  const head = text.slice(0, cutBackward(text, headBudget, markers)).trimEnd();
  if (!withTail) return { text: head, truncatedTo: head.length };
  const tailStart = Math.max(cutForward(text, text.length - tailBudget, markers), head.length);
  const tail = text.slice(tailStart).trimStart();
  return { text: head + TRUNCATION_MARKER + tail, truncatedTo: head.length + tail.length };
}

const NEAR_WHITESPACE = 32;

function isDigit(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c >= 48 && c <= 57;
}

function isSpace(s: string, i: number): boolean {
  return /\s/.test(s.charAt(i));
}

/** Moves a cut left until it is safe: the head is text.slice(0, cut). */
function cutBackward(text: string, at: number, markers: readonly (readonly [number, number])[]): number {
  let cut = at;
  if (cut > 0 && cut < text.length && !isSpace(text, cut - 1) && !isSpace(text, cut)) {
    for (let i = cut - 1; i >= Math.max(0, cut - NEAR_WHITESPACE); i--) {
      if (isSpace(text, i)) {
        cut = i;
        break;
      }
    }
  }
  for (;;) {
    const before = cut;
    const inside = markers.find(([s, e]) => s < cut && cut < e);
    if (inside !== undefined) cut = inside[0];
    while (cut > 0 && isDigit(text, cut - 1) && isDigit(text, cut)) cut--;
    if (cut > 0 && isHighSurrogate(text, cut - 1) && isLowSurrogate(text, cut)) cut--;
    if (cut === before) return cut;
  }
}

/** Moves a cut right until it is safe: the tail is text.slice(cut). */
function cutForward(text: string, at: number, markers: readonly (readonly [number, number])[]): number {
  let cut = at;
  if (cut > 0 && cut < text.length && !isSpace(text, cut - 1) && !isSpace(text, cut)) {
    for (let i = cut; i < Math.min(text.length, cut + NEAR_WHITESPACE); i++) {
      if (isSpace(text, i)) {
        cut = i + 1;
        break;
      }
    }
  }
  for (;;) {
    const before = cut;
    const inside = markers.find(([s, e]) => s < cut && cut < e);
    if (inside !== undefined) cut = inside[1];
    while (cut > 0 && cut < text.length && isDigit(text, cut - 1) && isDigit(text, cut)) cut++;
    if (cut > 0 && cut < text.length && isHighSurrogate(text, cut - 1) && isLowSurrogate(text, cut)) cut++;
    if (cut === before) return cut;
  }
}

function isHighSurrogate(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c >= 0xd800 && c <= 0xdbff;
}

function isLowSurrogate(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c >= 0xdc00 && c <= 0xdfff;
}

/** Lone surrogates cannot be encoded (RFC 8785 refuses them); they become U+FFFD as in String#toWellFormed. */
function wellFormed(s: string): string {
  return s.replace(LONE_SURROGATE, '\uFFFD');
}
