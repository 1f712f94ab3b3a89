/**
 * Sessions of the audit UI as signed tokens (HMAC-SHA256 under the session secret) with an expiry, carried in an
 * HttpOnly, SameSite=Strict cookie. The role is not in the token: it is read from the users file on every
 * request, so a demoted or removed user loses access at once. Signing out revokes the session id in a
 * RevocationList (the AuthStateStore file in production), so a sign-out survives a restart and holds in every
 * web process that shares the file.
 *
 * CSRF: every state-changing request made with the session cookie must carry a token derived from the session
 * id (HMAC), in the `_csrf` form field or the `x-csrf-token` header. API tokens (Authorization: Bearer) are not
 * sent by browsers on their own, so requests authenticated by them need none.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FailureCounters, RevocationList } from './auth-state.ts';

export interface Session {
  readonly sid: string;
  readonly userId: string;
  /** Expiry, in ms since the epoch. */
  readonly expiresAt: number;
}

export class SessionSigner {
  constructor(
    private readonly secret: Buffer,
    private readonly ttlMs: number,
    private readonly revocations: RevocationList,
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
    if (p.e <= this.now() || this.revocations.isRevoked(p.s)) return null;
    return { sid: p.s, userId: p.u, expiresAt: p.e };
  }

  revoke(session: Session): void {
    this.revocations.revoke(session.sid, session.expiresAt);
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

export interface ThrottleLimits {
  /** Failures per typed user name (whether or not it names a user) before it is locked. */
  readonly maxPerName: number;
  /** Failures per client address, over every name, before the address is locked. */
  readonly maxPerAddress: number;
  /** The counting window, and how long a lock lasts. */
  readonly windowMs: number;
}

export const DEFAULT_THROTTLE: ThrottleLimits = { maxPerName: 5, maxPerAddress: 20, windowMs: 15 * 60_000 };

/**
 * Failed sign-ins, counted by the typed user name (known or not, so a lockout says nothing about which names
 * exist) and by client address (so one client cannot try many names). Either one locked refuses the sign-in.
 * A success clears the name's count only: signing in to one's own account must not reset an address's count.
 */
export class LoginThrottle {
  constructor(
    private readonly counters: FailureCounters,
    readonly limits: ThrottleLimits = DEFAULT_THROTTLE,
  ) {}

  locked(name: string, address: string): boolean {
    return this.counters.lockedUntil(`name/${name}`) > 0 || this.counters.lockedUntil(`address/${address}`) > 0;
  }

  fail(name: string, address: string): void {
    this.counters.recordFailure(`name/${name}`, this.limits.maxPerName, this.limits.windowMs);
    this.counters.recordFailure(`address/${address}`, this.limits.maxPerAddress, this.limits.windowMs);
  }

  succeed(name: string): void {
    this.counters.clearFailures(`name/${name}`);
  }
}
