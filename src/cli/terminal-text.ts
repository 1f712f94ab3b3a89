/**
 * What the command line prints goes through one function first: journal content (a Gmail subject, a form field, a
 * webhook's text) is written by people outside the system, and a terminal obeys control characters. An ESC or
 * BEL in a subject could retitle the window, clear the screen, rewrite earlier lines or, on some terminals, do
 * worse (OSC 52 writes the clipboard). So every control character is printed as its `\uXXXX` escape instead.
 *
 * The escape is the JSON one, so applying this to a JSON line keeps it valid JSON with the same value (a raw
 * control character can only stand inside a JSON string, where `\uXXXX` means that same character).
 */

// C0 controls but tab and newline, DEL, C1 controls (0x9B is CSI on 8-bit terminals), and the Unicode format
// characters that reorder or hide text (bidi overrides and isolates, line and paragraph separators).
// eslint-disable-next-line no-control-regex -- matching control characters is this module's purpose
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex -- as above
const UNSAFE_IN_LINE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const escape = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/**
 * `text` with every character a terminal would act on written as `\uXXXX`. Newlines and tabs stay unless
 * `singleLine` (for a value inside one line, where a newline would forge a line of output).
 */
export function terminalSafe(text: string, options: { singleLine?: boolean } = {}): string {
  return text.replace(options.singleLine === true ? UNSAFE_IN_LINE : UNSAFE, escape);
}
