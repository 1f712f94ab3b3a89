/**
 * Signing in and out of the audit UI. The sign-in form carries a CSRF token bound to a one-time nonce cookie
 * (there is no session yet to bind it to); every attempt, success or failure, is journaled (audit.login), so
 * no sign-in can happen while the journal is unreachable.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hashPassword, verifyPassword, type User } from '../../audit/users.ts';
import { HttpError } from '../../errors/http.error.ts';
import type { PayloadOf } from '../../journal/kinds.ts';
import { SESSION_COOKIE, type AuditContext } from './context.ts';
import { loginPage } from './pages/login.ts';
import { body, cookies, query, str } from './request.ts';

/** The cookie that holds the sign-in form's nonce (its CSRF token is bound to it). */
const LOGIN_COOKIE = 'aj_login';

/** The sign-in form with a fresh nonce cookie (and its CSRF token), and an error to show if any. */
function loginForm(ctx: AuditContext, req: FastifyRequest, reply: FastifyReply, next: string, error: string | null): FastifyReply {
  const nonce = randomBytes(16).toString('base64url');
  return reply
    .header('set-cookie', ctx.cookie(req, LOGIN_COOKIE, nonce, 1800))
    .type('text/html; charset=utf-8')
    .send(loginPage(ctx.options.sessions.csrfFor(`login/${nonce}`), next, error));
}

/** Journals a sign-in attempt; without the journal, no sign-in happens (503). */
async function journalLogin(ctx: AuditContext, payload: PayloadOf<'audit.login'>, actor: string): Promise<void> {
  try {
    await ctx.options.journal.append({
      kind: 'audit.login',
      source: 'audit-ui',
      actor,
      correlationId: 'audit/logins',
      idempotencyKey: `login/${randomUUID()}`,
      payload,
    });
  } catch (err) {
    ctx.log.error({ err: (err as Error).message }, 'could not journal a sign-in');
    throw new HttpError(503, 'JOURNAL_UNAVAILABLE', 'the journal is not reachable; sign-ins are journaled, so none can happen now');
  }
}

/**
 * A refused attempt, journaled under the user it names; for a name that is nobody's, a wrong password is
 * journaled as 'unknown-user' (a lockout stays 'locked-out'), and the name itself never.
 */
function journalFailure(ctx: AuditContext, user: User | null, reason: 'locked-out' | 'wrong-password'): Promise<void> {
  return journalLogin(
    ctx,
    user
      ? { outcome: 'failure', userId: user.id, reason }
      : { outcome: 'failure', reason: reason === 'locked-out' ? 'locked-out' : 'unknown-user' },
    user ? `user:${user.id}` : 'anonymous',
  );
}

export function registerAuthRoutes(audit: FastifyInstance, ctx: AuditContext): void {
  const { sessions, throttle } = ctx.options;
  const checkPassword = ctx.options.checkPassword ?? verifyPassword;
  // A name that is not a user (or a user without a password) is checked against this hash, made once with
  // the same scrypt parameters, so that it costs the same time as a real user's wrong password.
  const dummyHash = hashPassword(randomBytes(24).toString('base64url'));

  audit.get('/', (_req, reply) => reply.redirect('/audit/timeline', 303));
  audit.get('/audit', (_req, reply) => reply.redirect('/audit/timeline', 303));
  audit.get('/audit/login', (req, reply) => loginForm(ctx, req, reply, str(query(req).next) ?? '/audit/timeline', null));

  audit.post('/audit/login', async (req, reply) => {
    const f = body(req);
    const nonce = cookies(req)[LOGIN_COOKIE];
    if (!nonce || !sessions.checkCsrf(`login/${nonce}`, f._csrf))
      throw new HttpError(403, 'CSRF_MISMATCH', 'the sign-in form expired or its CSRF token is wrong; reload it and try again');
    const username = (str(f.username) ?? '').toLowerCase();
    const password = typeof f.password === 'string' ? f.password : '';
    const next = str(f.next);
    const safeNext = next && next.startsWith('/audit/') && !next.startsWith('//') ? next : '/audit/timeline';
    const retry = (message: string, status: number): FastifyReply => loginForm(ctx, req, reply.code(status), safeNext, message);
    // One path for every name, so that neither the answer nor its time says whether the name exists: the
    // lockout counts the typed name (and the client address), and the password check always runs scrypt.
    const address = req.ip;
    const user = ctx.options.users.get(username);
    if (throttle.locked(username, address)) {
      await journalFailure(ctx, user, 'locked-out');
      return retry('Too many failed attempts; try again in 15 minutes.', 429);
    }
    const matches = await checkPassword(password, user?.passwordHash ?? (await dummyHash));
    if (!user?.passwordHash || !matches) {
      throttle.fail(username, address);
      // An unknown name is not journaled as typed: it may be someone's address or a mistyped password.
      await journalFailure(ctx, user, 'wrong-password');
      return retry('Wrong user name or password.', 401);
    }
    throttle.succeed(username);
    await journalLogin(ctx, { outcome: 'success', userId: user.id, role: user.role, reason: 'signed-in' }, `user:${user.id}`);
    const { token } = sessions.issue(user.id);
    return reply
      .header('set-cookie', [
        ctx.cookie(req, SESSION_COOKIE, token, Math.floor(ctx.options.sessionTtlMs / 1000)),
        ctx.cookie(req, LOGIN_COOKIE, '', 0),
      ])
      .redirect(safeNext, 303);
  });

  audit.post('/audit/logout', (req, reply) => {
    const p = ctx.require(req, 'read', body(req));
    if (p.session) sessions.revoke(p.session);
    return reply.header('set-cookie', ctx.cookie(req, SESSION_COOKIE, '', 0)).redirect('/audit/login', 303);
  });
}
