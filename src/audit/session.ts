/**
 * Sessions of the audit UI as signed tokens (HMAC-SHA256 under the session secret) with an expiry, carried in an
 * HttpOnly, SameSite=Strict cookie. The role is not in the token: it is read from the users file on every
 * request, so a demoted or removed user loses access at once. Signing out revokes the session id in memory
 * (a restart forgets revocations, but every session still expires).
 *
 * CSRF: every state-changing request made with the session cookie must carry a token derived from the session
 * id (HMAC), in the `_csrf` form field or the `x-csrf-token` header. API tokens (Authorization: Bearer) are not
 * sent by browsers on their own, so requests authenticated by them need none.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export interface Session {
  readonly sid: string;
  readonly userId: string;
  /** Expiry, in ms since the epoch. */
  readonly expiresAt: number;
}

export class SessionSigner {
  private readonly revoked = new Map<string, number>();
  constructor(
    private readonly secret: Buffer,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {
    if (secret.length < 32) throw new RangeError('the session secret must be at least 32 bytes');
  }

  issue(userId: string): { token: string; session: Session } {
    const session: Session = { sid: randomBytes(16).toString('base64url'), userId, expiresAt: this.now() + this.ttlMs };
    const body = Buffer.from(JSON.stringify({ s: session.sid, u: session.userId, e: session.expiresAt })).toString('base64url');
    return { token: `v1.${body}.${this.mac(`session/${body}`)}`, session };
  }

  /** The session a token stands for, or null when it is forged, malformed, expired or revoked. */
  verify(token: string | undefined): Session | null {
    if (!token) return null;
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== 'v1') return null;
    const [, body, mac] = parts as [string, string, string];
    if (!safeEqual(mac, this.mac(`session/${body}`))) return null;
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      return null;
    }
    const p = parsed as { s?: unknown; u?: unknown; e?: unknown };
    if (typeof p.s !== 'string' || typeof p.u !== 'string' || typeof p.e !== 'number') return null;
    if (p.e <= this.now() || this.revoked.has(p.s)) return null;
    return { sid: p.s, userId: p.u, expiresAt: p.e };
  }

  revoke(session: Session): void {
    this.revoked.set(session.sid, session.expiresAt);
    const now = this.now();
    for (const [sid, exp] of this.revoked) if (exp <= now) this.revoked.delete(sid);
  }

  /** The CSRF token bound to a session id (or to a pre-sign-in nonce). */
  csrfFor(id: string): string {
    return this.mac(`csrf/${id}`);
  }

  checkCsrf(id: string, presented: unknown): boolean {
    return typeof presented === 'string' && safeEqual(presented, this.csrfFor(id));
  }

  private mac(text: string): string {
    return createHmac('sha256', this.secret).update(text).digest('base64url');
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Failed sign-ins per user id: after `max` failures within `windowMs`, refuse until the window passes. */
export class LoginThrottle {
  private readonly failures = new Map<string, number[]>();
  constructor(
    private readonly max = 5,
    private readonly windowMs = 15 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  locked(key: string): boolean {
    return this.recent(key).length >= this.max;
  }

  fail(key: string): void {
    this.failures.set(key, [...this.recent(key), this.now()]);
  }

  succeed(key: string): void {
    this.failures.delete(key);
  }

  private recent(key: string): number[] {
    const since = this.now() - this.windowMs;
    return (this.failures.get(key) ?? []).filter((t) => t > since);
  }
}
