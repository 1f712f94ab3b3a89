/**
 * What every audit room shares: the options, and who is asking. Who: a session cookie (signed, HttpOnly,
 * SameSite=Strict, Secure behind https) from the sign-in form, or an API token (Authorization: Bearer). What: the
 * role from the users file (viewer < reviewer < admin, see CAN). Every state-changing request made with the
 * session cookie carries the session's CSRF token.
 */
import type { FastifyRequest } from 'fastify';
import type { AuditService } from '../../audit/audit-service.ts';
import { allowed, type Permission, type User, type UserDirectory } from '../../audit/users.ts';
import type { LoginThrottle, Session, SessionSigner } from '../../audit/session.ts';
import type { VerifyRunner } from '../../audit/verify-runner.ts';
import type { JournalClient } from '../../journal/journal-client.ts';
import { silentLogger, type Logger } from '../../config/logger.ts';
import { HttpError } from '../../errors/http.error.ts';
import type { PageUser } from './pages.ts';
import { cookies } from './request.ts';

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

/** The cookie that holds a signed-in session's token. */
export const SESSION_COOKIE = 'aj_session';

/** Who is asking: the user, and their session when they came with the cookie (null with an API token). */
export interface Principal {
  readonly user: User;
  readonly session: Session | null;
}

export interface AuditContext {
  readonly options: AuditRoutesOptions;
  readonly log: Logger;
  /** The signed-in user (by API token or session cookie), or null. */
  principal(req: FastifyRequest): Principal | null;
  /** The signed-in user allowed to do `what`; for POSTs with a session, the CSRF token must match. */
  require(req: FastifyRequest, what: Permission, fields?: Record<string, unknown> | null): Principal;
  /** What a page shows of the principal: name, role, and the CSRF token its forms carry. */
  pageUser(p: Principal): PageUser;
  /** A Set-Cookie value: HttpOnly, SameSite=Strict, Secure when the request came over https (per secureCookies). */
  cookie(req: FastifyRequest, name: string, value: string, maxAgeS: number): string;
}

export function createAuditContext(options: AuditRoutesOptions): AuditContext {
  const { users, sessions } = options;
  const secure = (req: FastifyRequest): boolean =>
    options.secureCookies === 'always' ||
    (options.secureCookies === 'auto' && (req.protocol === 'https' || req.headers['x-forwarded-proto'] === 'https'));

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

  return {
    options,
    log: (options.logger ?? silentLogger).child({ component: 'web.audit' }),
    principal,
    require(req, what, fields = null) {
      const p = principal(req);
      if (!p) throw new HttpError(401, 'UNAUTHORIZED', 'sign in first (or send an API token: Authorization: Bearer ...)');
      if (!allowed(p.user.role, what)) throw new HttpError(403, 'FORBIDDEN', `the ${p.user.role} role may not ${what}`);
      if (req.method !== 'GET' && p.session && !sessions.checkCsrf(p.session.sid, req.headers['x-csrf-token'] ?? fields?._csrf)) {
        throw new HttpError(403, 'CSRF_MISMATCH', 'the CSRF token is missing or wrong; reload the page and try again');
      }
      return p;
    },
    pageUser: (p) => ({ id: p.user.id, role: p.user.role, csrf: p.session ? sessions.csrfFor(p.session.sid) : '' }),
    cookie: (req, name, value, maxAgeS) =>
      `${name}=${encodeURIComponent(value)}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${secure(req) ? '; Secure' : ''}`,
  };
}
