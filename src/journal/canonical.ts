/**
 * RFC 8785 JSON Canonicalization Scheme (JCS): the one byte string every hash in the journal is computed over.
 *
 * - objects: members sorted by their names as UTF-16 code-unit sequences, no white space;
 * - strings: ECMAScript JSON.stringify escaping (\b \t \n \f \r \" \\, other controls as \u00xx), everything
 *   else literal UTF-8; lone surrogates are refused (I-JSON, RFC 7493);
 * - numbers: ECMAScript Number-to-string (the shortest round-tripping form), -0 as 0; NaN and Infinity refused;
 * - members whose value is `undefined` are omitted (as JSON.stringify does), other non-JSON values are refused.
 */
import { CanonicalEncodingError } from './errors/canonical-encoding.error.ts';

/** Returns the RFC 8785 canonical text of a JSON value; throws CanonicalEncodingError for values JSON cannot hold. */
export function canonicalize(value: unknown): string {
  return encode(value, '$', 0);
}

/** The canonical text as UTF-8 bytes. */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalize(value), 'utf8');
}

/** The deepest nesting the journal accepts anywhere in an entry. */
export const MAX_JSON_DEPTH = 256;
const MAX_DEPTH = MAX_JSON_DEPTH;

/**
 * The path of the first place `value` nests deeper than `max`, or null. Iterative, so a hostile document nested
 * 10,000 deep is refused with a 4xx before any recursive code (schema checks, sealing, encoding) can overflow the stack.
 */
export function nestingTooDeep(value: unknown, max: number = MAX_JSON_DEPTH): string | null {
  const stack: { v: unknown; depth: number; path: string }[] = [{ v: value, depth: 0, path: '$' }];
  while (stack.length > 0) {
    const { v, depth, path } = stack.pop() as { v: unknown; depth: number; path: string };
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= max) return path;
    if (Array.isArray(v)) for (let i = 0; i < v.length; i++) stack.push({ v: v[i], depth: depth + 1, path: `${path}[${i}]` });
    else for (const k of Object.keys(v)) stack.push({ v: (v as Record<string, unknown>)[k], depth: depth + 1, path: `${path}.${k}` });
  }
  return null;
}

function encode(value: unknown, path: string, depth: number): string {
  if (depth > MAX_DEPTH) throw new CanonicalEncodingError(`nesting deeper than ${MAX_DEPTH} at ${path}`);
  switch (typeof value) {
    case 'string':
      return encodeString(value, path);
    case 'number':
      if (!Number.isFinite(value)) throw new CanonicalEncodingError(`${String(value)} is not a JSON number (at ${path})`);
      // JSON.stringify applies ECMAScript's Number::toString, which is exactly what RFC 8785 §3.2.2.3 requires.
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          const item: unknown = value[i];
          if (item === undefined) throw new CanonicalEncodingError(`undefined is not a JSON value (at ${path}[${i}])`);
          out += encode(item, `${path}[${i}]`, depth + 1);
        }
        return out + ']';
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new CanonicalEncodingError(`only plain objects can be encoded (at ${path})`);
      }
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).sort();
      let out = '{';
      let first = true;
      for (const key of keys) {
        const member = record[key];
        if (member === undefined) continue;
        if (!first) out += ',';
        first = false;
        out += encodeString(key, path) + ':' + encode(member, `${path}.${key}`, depth + 1);
      }
      return out + '}';
    }
    default:
      throw new CanonicalEncodingError(`${typeof value} is not a JSON value (at ${path})`);
  }
}

function encodeString(s: string, path: string): string {
  if (!s.isWellFormed()) throw new CanonicalEncodingError(`string with a lone surrogate (at ${path})`);
  return JSON.stringify(s);
}
