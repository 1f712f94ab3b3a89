/**
 * The audit UI (/audit/...) and its JSON API (/api/v1/...), registered as an encapsulated fastify plugin so that
 * its body parsing and error handling stay apart from the webhook receivers'.
 *
 * Who: a session cookie (signed, HttpOnly, SameSite=Strict, Secure behind https) from the sign-in form, or an API
 * token (Authorization: Bearer). What: the role from the users file (viewer < reviewer < admin, see CAN).
 * Every state-changing request made with the session cookie carries the session's CSRF token.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AuditService } from '../audit/audit-service.ts';
import { allowed, hashPassword, verifyPassword, type Permission, type User, type UserDirectory } from '../audit/users.ts';
import type { LoginThrottle, Session, SessionSigner } from '../audit/session.ts';
import type { VerifyRunner } from '../audit/verify-runner.ts';
import type { JournalClient } from '../journal/journal-client.ts';
import type { Logger } from '../config/logger.ts';
import { silentLogger } from '../config/logger.ts';
import { CATEGORIES } from '../pipeline/classification.ts';
import { OverrideError } from '../pipeline/errors/override.error.ts';
import { ExportError, type ExportScope } from '../audit/export.ts';
import {
  CONTENT_SECURITY_POLICY,
  connectorsPage,
  exportPage,
  integrityPage,
  layout,
  loginPage,
  reviewPage,
  timelinePage,
  traceFinderPage,
  tracePage,
  type PageUser,
} from './audit-pages.ts';
import { openApiDocument } from './openapi.ts';
import { QueueUnavailableError } from '../pipeline/errors/queue-unavailable.error.ts';

export interface AuditRoutesOptions {
  readonly service: AuditService;
  readonly users: UserDirectory;
  readonly sessions: SessionSigner;
  readonly throttle: LoginThrottle;
  readonly verify: VerifyRunner;
  /** Where sign-ins are journaled. */
  readonly journal: JournalClient;
  readonly sessionTtlMs: number;
  /** 'auto': Secure when the request came over https (directly or per X-Forwarded-Proto). */
  readonly secureCookies: 'auto' | 'always' | 'never';
  readonly logger?: Logger;
  /** The password check (default: scrypt's verifyPassword); a parameter so that tests can count its calls. */
  readonly checkPassword?: (password: string, stored: string) => Promise<boolean>;
}

const SESSION_COOKIE = 'aj_session';
const LOGIN_COOKIE = 'aj_login';

interface Principal {
  readonly user: User;
  readonly session: Session | null;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The request's cookies; one whose value is not valid percent-encoding is left out (as if it were not sent). */
function cookies(req: FastifyRequest): Record<string, string> {
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

function body(req: FastifyRequest): Record<string, unknown> {
  const raw = typeof req.body === 'string' ? req.body : '';
  const type = String(req.headers['content-type'] ?? '');
  if (raw === '') return {};
  if (type.startsWith('application/json')) {
    try {
      const v = JSON.parse(raw) as unknown;
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      throw new HttpError(400, 'the body is not valid JSON');
    }
    throw new HttpError(400, 'the body must be a JSON object');
  }
  if (type.startsWith('application/x-www-form-urlencoded')) return Object.fromEntries(new URLSearchParams(raw));
  throw new HttpError(415, 'send application/json or a form');
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);

const TimelineQuerySchema = z.object({
  source: z.string().max(64).optional(),
  channel: z.enum(['email', 'call', 'form']).optional(),
  category: z.enum(CATEGORIES).optional(),
  contact: z.string().max(320).optional(),
  from: z.string().max(40).optional(),
  until: z.string().max(40).optional(),
  before: z.coerce.number().int().nonnegative().optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
});

const DecisionQuerySchema = z.object({
  since: z.string().max(40).optional(),
  category: z.enum(CATEGORIES).optional(),
  maxConfidence: z.coerce.number().min(0).max(1).optional(),
  needsReview: z.enum(['true', 'false']).optional(),
  before: z.coerce.number().int().nonnegative().optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
});

const OverrideBodySchema = z.strictObject({
  action: z.enum(['approve', 'override']),
  category: z.enum(CATEGORIES).optional(),
  reason: z.string().min(1).max(10_000),
});

/** The API also takes association overrides: the HubSpot record ids that replace what the matching rule chose. */
const crmIds = z.array(z.string().regex(/^[0-9]{1,20}$/)).max(100);
const ApiOverrideBodySchema = z.union([
  OverrideBodySchema,
  z.strictObject({
    action: z.literal('associate'),
    associations: z.strictObject({ contacts: crmIds.optional(), companies: crmIds.optional(), deals: crmIds.optional() }),
    reason: z.string().min(1).max(10_000),
  }),
]);

const ExportBodySchema = z.union([
  z.strictObject({ from: z.string().min(1).max(40), until: z.string().min(1).max(40) }),
  z.strictObject({ correlationId: z.string().min(1).max(512) }),
]);

/** Drops empty strings (an unfilled form field) so that they mean "no filter". */
function present(q: unknown): Record<string, string> {
  return Object.fromEntries(
    Object.entries((q ?? {}) as Record<string, unknown>).filter(([, v]) => typeof v === 'string' && v !== ''),
  ) as Record<string, string>;
}

function zodMessage(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
}

export function registerAuditRoutes(app: FastifyInstance, options: AuditRoutesOptions): void {
  const { service, users, sessions, throttle, verify } = options;
  const log = (options.logger ?? silentLogger).child({ component: 'web.audit' });
  const checkPassword = options.checkPassword ?? verifyPassword;
  // A name that is not a user (or a user without a password) is checked against this hash, made once with
  // the same scrypt parameters, so that it costs the same time as a real user's wrong password.
  const dummyHash = hashPassword(randomBytes(24).toString('base64url'));

  void app.register((audit, _opts, registered) => {
    audit.removeAllContentTypeParsers();
    audit.addContentTypeParser('*', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, b, done) => done(null, b));

    audit.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
      const api = req.url.startsWith('/api/');
      const status =
        err instanceof HttpError
          ? err.status
          : err instanceof OverrideError
            ? err.code === 'NOT_FOUND'
              ? 404
              : err.code === 'UNCHANGED'
                ? 409
                : 400
            : err instanceof ExportError
              ? 409
              : err instanceof RangeError
                ? 400
                : (err.statusCode ?? 500);
      if (status >= 500 && !(err instanceof QueueUnavailableError))
        log.error({ url: req.routeOptions.url, err: err.message }, 'audit request failed');
      // The queue being down is said as such (the UI's users are staff): what they did may need doing again.
      const message =
        err instanceof QueueUnavailableError
          ? `the work queue is unavailable (${err.message}); what was recorded stays recorded, try the action again shortly`
          : status >= 500
            ? 'internal error; see the server log'
            : err.message;
      if (err instanceof QueueUnavailableError) void reply.header('retry-after', '5');
      if (api) return reply.code(status).send({ error: message });
      return reply
        .code(status)
        .type('text/html; charset=utf-8')
        .send(
          layout(
            status === 403 ? 'Not allowed' : 'Something went wrong',
            null,
            '',
            `<p class="error" role="alert">${message.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)}</p><p><a href="/audit/timeline">Back to the timeline</a></p>`,
          ),
        );
    });

    audit.addHook('onSend', async (_req, reply, payload) => {
      reply.header('cache-control', 'no-store');
      reply.header('x-content-type-options', 'nosniff');
      reply.header('x-frame-options', 'DENY');
      reply.header('referrer-policy', 'no-referrer');
      reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
      return payload;
    });

    const secure = (req: FastifyRequest): boolean =>
      options.secureCookies === 'always' ||
      (options.secureCookies === 'auto' && (req.protocol === 'https' || req.headers['x-forwarded-proto'] === 'https'));
    const cookie = (req: FastifyRequest, name: string, value: string, maxAgeS: number): string =>
      `${name}=${encodeURIComponent(value)}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${secure(req) ? '; Secure' : ''}`;

    const principal = (req: FastifyRequest): Principal | null => {
      const auth = req.headers.authorization;
      if (auth?.startsWith('Bearer ')) {
        const user = users.byToken(auth.slice(7).trim());
        return user ? { user, session: null } : null;
      }
      const session = sessions.verify(cookies(req)[SESSION_COOKIE]);
      const user = session ? users.get(session.userId) : null;
      return session && user ? { user, session } : null;
    };

    /** The signed-in user allowed to do `what`; for POSTs with a session, the CSRF token must match. */
    const require = (req: FastifyRequest, what: Permission, fields: Record<string, unknown> | null = null): Principal => {
      const p = principal(req);
      if (!p) throw new HttpError(401, 'sign in first (or send an API token: Authorization: Bearer ...)');
      if (!allowed(p.user.role, what)) throw new HttpError(403, `the ${p.user.role} role may not ${what}`);
      if (req.method !== 'GET' && p.session && !sessions.checkCsrf(p.session.sid, req.headers['x-csrf-token'] ?? fields?._csrf)) {
        throw new HttpError(403, 'the CSRF token is missing or wrong; reload the page and try again');
      }
      return p;
    };

    const pageUser = (p: Principal): PageUser => ({
      id: p.user.id,
      role: p.user.role,
      csrf: p.session ? sessions.csrfFor(p.session.sid) : '',
    });

    /** A page: redirects to the sign-in form when there is no session. */
    const page =
      (handler: (req: FastifyRequest, p: Principal) => string) =>
      (req: FastifyRequest, reply: FastifyReply): FastifyReply => {
        const p = principal(req);
        if (!p) return reply.redirect(`/audit/login?next=${encodeURIComponent(req.url)}`, 303);
        if (!allowed(p.user.role, 'read')) throw new HttpError(403, 'not allowed');
        return reply.type('text/html; charset=utf-8').send(handler(req, p));
      };

    const journalLogin = async (payload: Record<string, unknown>, actor: string): Promise<void> => {
      try {
        await options.journal.append({
          kind: 'audit.login',
          source: 'audit-ui',
          actor,
          correlationId: 'audit/logins',
          idempotencyKey: `login/${randomUUID()}`,
          payload,
        });
      } catch (err) {
        log.error({ err: (err as Error).message }, 'could not journal a sign-in');
        throw new HttpError(503, 'the journal is not reachable; sign-ins are journaled, so none can happen now');
      }
    };

    // --- sign-in ---------------------------------------------------------------------------------------------
    audit.get('/', (_req, reply) => reply.redirect('/audit/timeline', 303));
    audit.get('/audit', (_req, reply) => reply.redirect('/audit/timeline', 303));
    audit.get('/audit/login', (req, reply) => {
      const nonce = randomBytes(16).toString('base64url');
      const next = str((req.query as Record<string, unknown>).next) ?? '/audit/timeline';
      return reply
        .header('set-cookie', cookie(req, LOGIN_COOKIE, nonce, 1800))
        .type('text/html; charset=utf-8')
        .send(loginPage(sessions.csrfFor(`login/${nonce}`), next, null));
    });
    audit.post('/audit/login', async (req, reply) => {
      const f = body(req);
      const nonce = cookies(req)[LOGIN_COOKIE];
      if (!nonce || !sessions.checkCsrf(`login/${nonce}`, f._csrf))
        throw new HttpError(403, 'the sign-in form expired or its CSRF token is wrong; reload it and try again');
      const username = (str(f.username) ?? '').toLowerCase();
      const password = typeof f.password === 'string' ? f.password : '';
      const next = str(f.next);
      const safeNext = next && next.startsWith('/audit/') && !next.startsWith('//') ? next : '/audit/timeline';
      const retry = (message: string, status: number): FastifyReply => {
        const fresh = randomBytes(16).toString('base64url');
        return reply
          .code(status)
          .header('set-cookie', cookie(req, LOGIN_COOKIE, fresh, 1800))
          .type('text/html; charset=utf-8')
          .send(loginPage(sessions.csrfFor(`login/${fresh}`), safeNext, message));
      };
      // One path for every name, so that neither the answer nor its time says whether the name exists: the
      // lockout counts the typed name (and the client address), and the password check always runs scrypt.
      const address = req.ip;
      const user = users.get(username);
      if (throttle.locked(username, address)) {
        await journalLogin(
          user ? { outcome: 'failure', userId: user.id, reason: 'locked-out' } : { outcome: 'failure', reason: 'locked-out' },
          user ? `user:${user.id}` : 'anonymous',
        );
        return retry('Too many failed attempts; try again in 15 minutes.', 429);
      }
      const matches = await checkPassword(password, user?.passwordHash ?? (await dummyHash));
      if (!user?.passwordHash || !matches) {
        throttle.fail(username, address);
        // An unknown name is not journaled as typed: it may be someone's address or a mistyped password.
        await journalLogin(
          user ? { outcome: 'failure', userId: user.id, reason: 'wrong-password' } : { outcome: 'failure', reason: 'unknown-user' },
          user ? `user:${user.id}` : 'anonymous',
        );
        return retry('Wrong user name or password.', 401);
      }
      throttle.succeed(username);
      await journalLogin({ outcome: 'success', userId: user.id, role: user.role, reason: 'signed-in' }, `user:${user.id}`);
      const { token } = sessions.issue(user.id);
      return reply
        .header('set-cookie', [
          cookie(req, SESSION_COOKIE, token, Math.floor(options.sessionTtlMs / 1000)),
          cookie(req, LOGIN_COOKIE, '', 0),
        ])
        .redirect(safeNext, 303);
    });
    audit.post('/audit/logout', (req, reply) => {
      const p = require(req, 'read', body(req));
      if (p.session) sessions.revoke(p.session);
      return reply.header('set-cookie', cookie(req, SESSION_COOKIE, '', 0)).redirect('/audit/login', 303);
    });

    // --- pages -----------------------------------------------------------------------------------------------
    audit.get(
      '/audit/timeline',
      page((req, p) => {
        const parsed = TimelineQuerySchema.safeParse(present(req.query));
        const sources = service.connectors().sources.map((s) => s.source);
        if (!parsed.success)
          return timelinePage(pageUser(p), {}, { rows: [], next: null, matches: null }, sources, zodMessage(parsed.error));
        const { before, limit, ...filters } = parsed.data;
        try {
          return timelinePage(pageUser(p), filters, service.timeline({ ...filters, before, limit: limit ?? 50 }), sources, null);
        } catch (err) {
          if (err instanceof RangeError)
            return timelinePage(pageUser(p), filters, { rows: [], next: null, matches: null }, sources, err.message);
          throw err;
        }
      }),
    );
    audit.get(
      '/audit/review',
      page((req, p) => {
        const q = req.query as Record<string, unknown>;
        const before = Number(q.before);
        return reviewPage(
          pageUser(p),
          service.reviewQueue({ before: Number.isSafeInteger(before) ? before : undefined, limit: 50 }),
          allowed(p.user.role, 'override'),
          str(q.notice) ?? null,
        );
      }),
    );
    audit.get(
      '/audit/trace',
      page((req, p) => {
        const q = req.query as Record<string, unknown>;
        const id = str(q.correlationId);
        if (!id) return traceFinderPage(pageUser(p));
        return tracePage(pageUser(p), service.trace(id), allowed(p.user.role, 'override'), str(q.notice) ?? null, str(q.error) ?? null);
      }),
    );
    audit.post('/audit/decisions/:id/override', async (req, reply) => {
      const f = body(req);
      const p = require(req, 'override', f);
      const id = (req.params as { id: string }).id;
      const parsed = OverrideBodySchema.safeParse({
        action: f.action,
        reason: f.reason,
        ...(f.action === 'override' ? { category: f.category } : {}),
      });
      const row = service.decision(id);
      const back = (params: Record<string, string>): string =>
        row
          ? `/audit/trace?${new URLSearchParams({ correlationId: row.correlationId, ...params }).toString()}`
          : `/audit/review?${new URLSearchParams(params).toString()}`;
      if (!parsed.success) return reply.redirect(back({ error: zodMessage(parsed.error) }), 303);
      try {
        const r = await service.override(id, { ...parsed.data, userId: p.user.id, via: 'audit-ui' });
        return reply.redirect(
          back({
            notice: `${parsed.data.action === 'approve' ? 'Approved' : 'Overridden'}: journaled as seq ${r.entry.seq}${r.redriven ? '; the CRM mirror is being updated' : ''}.`,
          }),
          303,
        );
      } catch (err) {
        if (err instanceof OverrideError) return reply.redirect(back({ error: err.message }), 303);
        throw err;
      }
    });
    audit.get(
      '/audit/integrity',
      page((_req, p) => integrityPage(pageUser(p), service.integrity(), allowed(p.user.role, 'verify'), verify.latest())),
    );
    audit.post('/audit/integrity/verify', (req, reply) => {
      require(req, 'verify', body(req));
      verify.start();
      return reply.redirect('/audit/integrity', 303);
    });
    audit.get(
      '/audit/connectors',
      page((_req, p) => connectorsPage(pageUser(p), service.connectors())),
    );
    audit.get(
      '/audit/export',
      page((_req, p) => exportPage(pageUser(p), allowed(p.user.role, 'export'), null)),
    );
    audit.post('/audit/export', async (req, reply) => {
      const f = body(req);
      const p = require(req, 'export', f);
      const { _csrf, ...rest } = f;
      void _csrf;
      return sendExport(reply, p, rest);
    });

    // --- JSON API --------------------------------------------------------------------------------------------
    audit.get('/api/v1/openapi.json', (_req, reply) => reply.send(openApiDocument()));
    audit.get('/api/v1/me', (req, reply) => {
      const p = require(req, 'read');
      return reply.send({
        id: p.user.id,
        role: p.user.role,
        csrfToken: p.session ? sessions.csrfFor(p.session.sid) : null,
        can: { override: allowed(p.user.role, 'override'), export: allowed(p.user.role, 'export'), verify: allowed(p.user.role, 'verify') },
      });
    });
    audit.get('/api/v1/interactions', (req, reply) => {
      require(req, 'read');
      const parsed = TimelineQuerySchema.safeParse(present(req.query));
      if (!parsed.success) throw new HttpError(400, zodMessage(parsed.error));
      return reply.send(service.timeline(parsed.data));
    });
    audit.get('/api/v1/decisions', (req, reply) => {
      require(req, 'read');
      const parsed = DecisionQuerySchema.safeParse(present(req.query));
      if (!parsed.success) throw new HttpError(400, zodMessage(parsed.error));
      const q = parsed.data;
      const query = {
        from: q.since,
        category: q.category,
        maxConfidence: q.maxConfidence,
        before: q.before,
        limit: q.limit,
        decided: true,
      };
      return reply.send(q.needsReview === 'true' ? service.reviewQueue(query) : service.timeline(query));
    });
    audit.get('/api/v1/decisions/:id', (req, reply) => {
      require(req, 'read');
      const row = service.decision((req.params as { id: string }).id);
      if (!row) throw new HttpError(404, 'no such decision');
      return reply.send(row);
    });
    audit.post('/api/v1/decisions/:id/override', async (req, reply) => {
      const f = body(req);
      const p = require(req, 'override', f);
      const parsed = ApiOverrideBodySchema.safeParse(f);
      if (!parsed.success) throw new HttpError(400, zodMessage(parsed.error));
      const r = await service.override((req.params as { id: string }).id, { ...parsed.data, userId: p.user.id, via: 'api' });
      return reply.code(201).send({
        entry: { seq: r.entry.seq, id: r.entry.id, kind: r.entry.kind, payload: r.entry.payload, actor: r.entry.actor },
        redriven: r.redriven,
      });
    });
    audit.get('/api/v1/trace', (req, reply) => {
      require(req, 'read');
      const id = str((req.query as Record<string, unknown>).correlationId);
      if (!id) throw new HttpError(400, 'correlationId is required');
      return reply.send(service.trace(id));
    });
    audit.get('/api/v1/integrity', (req, reply) => {
      require(req, 'read');
      return reply.send(service.integrity());
    });
    audit.post('/api/v1/integrity/verify', (req, reply) => {
      require(req, 'verify', body(req));
      return reply.code(202).send(verify.start());
    });
    audit.get('/api/v1/integrity/verify/:id', (req, reply) => {
      require(req, 'read');
      const run = verify.get((req.params as { id: string }).id);
      if (!run) throw new HttpError(404, 'no such verification run');
      return reply.send(run);
    });
    audit.get('/api/v1/connectors', (req, reply) => {
      require(req, 'read');
      return reply.send(service.connectors());
    });
    audit.post('/api/v1/exports', async (req, reply) => {
      const f = body(req);
      const p = require(req, 'export', f);
      return sendExport(reply, p, f);
    });

    async function sendExport(reply: FastifyReply, p: Principal, fields: Record<string, unknown>): Promise<FastifyReply> {
      const parsed = ExportBodySchema.safeParse(fields);
      if (!parsed.success) throw new HttpError(400, `give from and until (dates), or a correlationId: ${zodMessage(parsed.error)}`);
      const d = parsed.data;
      const day = (s: string): string => (/^\d{4}-\d{2}-\d{2}$/.test(s) ? `${s}T00:00:00Z` : s);
      const scope: ExportScope =
        'correlationId' in d
          ? { kind: 'correlation', correlationId: d.correlationId }
          : { kind: 'range', from: day(d.from), until: day(d.until) };
      if (scope.kind === 'range' && (Number.isNaN(Date.parse(scope.from)) || Number.isNaN(Date.parse(scope.until))))
        throw new HttpError(400, 'from and until must be dates (YYYY-MM-DD) or RFC 3339 times');
      const lines: string[] = [];
      await service.export(scope, `user:${p.user.id}`, (line) => void lines.push(line));
      const name = `activity-journal-export-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`;
      return reply
        .type('application/x-ndjson; charset=utf-8')
        .header('content-disposition', `attachment; filename="${name}"`)
        .send(lines.join('\n') + '\n');
    }
    registered();
  });
}
