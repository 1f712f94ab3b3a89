/**
 * Parsers of option values shared by several commands. Each throws a UsageError (exit 2) saying what is expected.
 */
import { parseVerifierKey, type Verifier } from '../journal/keys.ts';
import { UsageError } from './usage-error.ts';

/** For a repeatable option: each occurrence is added to the list (commander's argParser). */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** A day (YYYY-MM-DD) as the start of that day in UTC; anything else (an RFC 3339 time) as given. */
export function dayOrTime(text: string): string {
  return /^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text;
}

/** A journal seq or other count: a whole number >= 0. */
export function wholeNumber(text: string, name: string): number {
  if (!/^\d{1,15}$/.test(text)) throw new UsageError(`${name} must be a whole number >= 0, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** The journal key given with `--public-key` (a UsageError when it is not one), or null when none was. */
export function pinnedKey(publicKey: string | undefined): Verifier | null {
  if (!publicKey) return null;
  try {
    return parseVerifierKey(publicKey);
  } catch (err) {
    throw new UsageError(`--public-key: ${(err as Error).message}`);
  }
}
