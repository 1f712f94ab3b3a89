/**
 * Reading an audit request: its cookies, its body (JSON or a form, parsed here: the audit plugin takes every body
 * as text), and its query and form fields.
 */
import type { FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { HttpError } from '../../errors/http.error.ts';

/** The request's cookies; one whose value is not valid percent-encoding is left out (as if it were not sent). */
export function cookies(req: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    try {
      out[part.slice(0, i).trim()] = decodeURIComponent(part.slice(i + 1).trim());
    } catch {
      // URIError: malformed percent-encoding. Not ours to have set, so not a session or a sign-in nonce.
    }
  }
  return out;
}

/** The body's fields: a JSON object or a form; nothing sent is no fields. */
export function body(req: FastifyRequest): Record<string, unknown> {
  const raw = typeof req.body === 'string' ? req.body : '';
  const type = String(req.headers['content-type'] ?? '');
  if (raw === '') return {};
  if (type.startsWith('application/json')) {
    try {
      const v = JSON.parse(raw) as unknown;
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      throw new HttpError(400, 'MALFORMED_JSON', 'the body is not valid JSON');
    }
    throw new HttpError(400, 'INVALID_BODY', 'the body must be a JSON object');
  }
  if (type.startsWith('application/x-www-form-urlencoded')) return Object.fromEntries(new URLSearchParams(raw));
  throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send application/json or a form');
}

/** A field's text, trimmed; undefined when it is missing, not text, or blank. */
export const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);

/** The query's fields as a record (fastify's query is untyped). */
export const query = (req: FastifyRequest): Record<string, unknown> => req.query as Record<string, unknown>;

/** The `:id` of a route's path. */
export const idParam = (req: FastifyRequest): string => (req.params as { id: string }).id;

/** Drops empty strings (an unfilled form field) so that they mean "no filter". */
export function present(q: unknown): Record<string, string> {
  return Object.fromEntries(
    Object.entries((q ?? {}) as Record<string, unknown>).filter(([, v]) => typeof v === 'string' && v !== ''),
  ) as Record<string, string>;
}

/** A schema's complaints in one line, each naming the field it is about. */
export function zodMessage(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
}
