/**
 * The one door to HubSpot: @hubspot/api-client with its own retries and limiter OFF (we retry by our policy, and
 * the limit is shared by every worker through Redis), every call timed, its status, HubSpot's correlation id and
 * the rate-limit headers kept, and every failure classified (429 by policy, 5xx, 4xx validation).
 * Types of the SDK stay inside connectors/hubspot.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Client } from '@hubspot/api-client';
import { HubSpotCallError } from './errors/hubspot-call.error.ts';

// Loaded on first use (~60 ms and 15 MB): a worker in dry-run mode never builds a HubSpot client.
const require = createRequire(import.meta.url);
let HubSpotClient: typeof Client | null = null;

/** What one API call did, for the record. */
export interface CallRecord {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly path: string;
  readonly status: number;
  readonly durationMs: number;
  /** HubSpot's X-HubSpot-Correlation-Id, or our own request id when the server sent none. */
  readonly correlationId: string;
  /** When the call started (ms since the epoch). */
  readonly startedAt: number;
}

export type FailureKind = 'rate-limit-secondly' | 'rate-limit-daily' | 'server' | 'validation' | 'auth' | 'not-found' | 'network';

/** The daily budget as HubSpot last reported it (X-HubSpot-RateLimit-Daily / -Daily-Remaining). */
export interface DailyBudget {
  readonly limit: number | null;
  readonly remaining: number | null;
  readonly observedAt: string | null;
  /** When the day this budget belongs to ends (HubSpot's daily reset); after it, the budget is unknown again. */
  readonly resetsAt: string | null;
}

export interface HubSpotHttpOptions {
  readonly accessToken: string;
  /** Default https://api.hubapi.com; a local fake or prism in tests. */
  readonly basePath?: string;
  /** Called with every call's record (success or failure) and the headers it returned. */
  readonly onCall?: (record: CallRecord, headers: Readonly<Record<string, string>>) => void;
  /** The clock for a call's start and a Retry-After given as a date (default Date.now). */
  readonly now?: () => number;
}

export interface CallResult<T> {
  readonly data: T;
  readonly record: CallRecord;
}

export function createHubSpotClient(o: HubSpotHttpOptions): Client {
  // numberOfApiCallRetries 0 and no limiterOptions: the SDK then installs neither its RetryDecorator (which retries
  // 429s blindly and ignores Retry-After) nor its per-process Bottleneck limiter.
  HubSpotClient ??= (require('@hubspot/api-client') as { Client: typeof Client }).Client;
  return new HubSpotClient({
    accessToken: o.accessToken,
    numberOfApiCallRetries: 0,
    ...(o.basePath ? { basePath: o.basePath.replace(/\/$/, '') } : {}),
  });
}

function lower(headers: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers && typeof headers === 'object')
    for (const [k, v] of Object.entries(headers as Record<string, unknown>)) if (typeof v === 'string') out[k.toLowerCase()] = v;
  return out;
}

/** How long HubSpot asks us to wait: its Retry-After header (seconds or a date), or null when it sent none. */
function retryAfterHeaderMs(headers: Record<string, string>, now: () => number): number | null {
  const h = headers['retry-after'];
  if (h !== undefined && /^\d+(\.\d+)?$/.test(h.trim())) return Math.round(Number(h) * 1000);
  if (h !== undefined) {
    const at = Date.parse(h);
    if (!Number.isNaN(at)) return Math.max(0, at - now());
  }
  return null;
}

/**
 * How long to wait after a 429 of the rolling window: Retry-After, else the window's length
 * (X-HubSpot-RateLimit-Interval-Milliseconds). Never used for the daily limit: that window is the day.
 */
function secondlyRetryMs(headers: Record<string, string>, now: () => number): number | null {
  const asked = retryAfterHeaderMs(headers, now);
  if (asked !== null) return asked;
  const interval = headers['x-hubspot-ratelimit-interval-milliseconds'];
  if (interval && /^\d+$/.test(interval)) return Number(interval);
  return null;
}

function policyOf(body: unknown): string | null {
  if (body && typeof body === 'object') {
    const b = body as { policyName?: unknown; errors?: unknown; message?: unknown };
    if (typeof b.policyName === 'string') return b.policyName;
    if (typeof b.message === 'string' && /daily/i.test(b.message)) return 'DAILY';
  }
  return null;
}

function describe(body: unknown): string {
  if (body && typeof body === 'object') {
    const b = body as { message?: unknown; category?: unknown; errors?: unknown };
    const parts: string[] = [];
    if (typeof b.category === 'string') parts.push(b.category);
    if (typeof b.message === 'string') parts.push(b.message);
    return parts.join(': ').slice(0, 2000) || 'no error message';
  }
  return typeof body === 'string' ? body.slice(0, 2000) : 'no error message';
}

/**
 * Runs one SDK call (a *WithHttpInfo method) and turns its outcome into a CallRecord, or a classified
 * HubSpotCallError. Never retries.
 */
export async function call<T>(
  options: Pick<HubSpotHttpOptions, 'onCall' | 'now'>,
  method: CallRecord['method'],
  path: string,
  run: () => Promise<{ httpStatusCode: number; headers: unknown; data: T }>,
): Promise<CallResult<T>> {
  const now = options.now ?? Date.now;
  const started = performance.now();
  const startedAt = now();
  const ownId = randomUUID();
  try {
    const res = await run();
    const headers = lower(res.headers);
    const record: CallRecord = {
      method,
      path,
      status: res.httpStatusCode,
      durationMs: Math.round(performance.now() - started),
      correlationId: headers['x-hubspot-correlation-id'] ?? ownId,
      startedAt,
    };
    options.onCall?.(record, headers);
    return { data: res.data, record };
  } catch (err) {
    const e = err as { code?: unknown; body?: unknown; headers?: unknown; name?: string; message?: string };
    const status = typeof e.code === 'number' && e.code >= 100 && e.code <= 999 ? e.code : 0;
    const headers = lower(e.headers);
    const record: CallRecord = {
      method,
      path,
      status,
      durationMs: Math.round(performance.now() - started),
      correlationId: headers['x-hubspot-correlation-id'] ?? ownId,
      startedAt,
    };
    options.onCall?.(record, headers);
    const body = e.body;
    if (status === 0)
      throw new HubSpotCallError('network', record, `HubSpot did not answer ${method} ${path}: ${e.name ?? 'Error'}`, null, null);
    if (status === 429) {
      const policy = policyOf(body);
      const daily = policy === 'DAILY';
      // A daily 429 waits for Retry-After when HubSpot sends one, else (null) for the daily reset: the interval
      // header names the ten-second window, not the time to midnight.
      throw new HubSpotCallError(
        daily ? 'rate-limit-daily' : 'rate-limit-secondly',
        record,
        `HubSpot rate limit ${policy ?? 'TEN_SECONDLY_ROLLING'} on ${method} ${path}`,
        daily ? retryAfterHeaderMs(headers, now) : secondlyRetryMs(headers, now),
        body,
      );
    }
    if (status >= 500)
      throw new HubSpotCallError('server', record, `HubSpot answered ${status} to ${method} ${path}: ${describe(body)}`, null, body);
    if (status === 401 || status === 403)
      throw new HubSpotCallError('auth', record, `HubSpot refused the token (${status}) for ${method} ${path}`, null, body);
    if (status === 404) throw new HubSpotCallError('not-found', record, `HubSpot has no ${path} (404)`, null, body);
    throw new HubSpotCallError('validation', record, `HubSpot refused ${method} ${path} (${status}): ${describe(body)}`, null, body);
  }
}

/** Reads the daily budget from a call's headers (both names HubSpot uses); the day ends at midnight in `timeZone`. */
export function dailyBudgetFrom(headers: Readonly<Record<string, string>>, observedAt: string, timeZone = 'UTC'): DailyBudget | null {
  const limit = headers['x-hubspot-ratelimit-daily'];
  const remaining = headers['x-hubspot-ratelimit-daily-remaining'];
  if (limit === undefined && remaining === undefined) return null;
  const n = (v: string | undefined): number | null => (v !== undefined && /^\d+$/.test(v.trim()) ? Number(v) : null);
  return { limit: n(limit), remaining: n(remaining), observedAt, resetsAt: nextMidnight(new Date(observedAt), timeZone).toISOString() };
}

/** True when `zone` is an IANA time zone this runtime knows (e.g. America/New_York, Europe/Berlin, UTC). */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** The zone's offset from UTC at `at`, in minutes (east positive). */
function offsetMinutes(at: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  }).formatToParts(new Date(at));
  const get = (t: string): number => Number(parts.find((p) => p.type === t)?.value ?? '0');
  const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return Math.round((asUtc - Math.floor(at / 1000) * 1000) / 60_000);
}

/**
 * The next midnight in `timeZone` after `now`: when HubSpot's daily limit resets (it counts the day in the
 * account's time zone). Daylight-saving changes are taken into account; a zone whose midnight is skipped that day
 * resets at its first minute.
 */
export function nextMidnight(now: Date, timeZone = 'UTC'): Date {
  const t = now.getTime();
  const local = new Date(t + offsetMinutes(t, timeZone) * 60_000);
  const midnightLocal = Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate() + 1);
  // Convert the local wall-clock midnight back to an instant with the offset in force then (twice: DST edges).
  let guess = midnightLocal - offsetMinutes(t, timeZone) * 60_000;
  guess = midnightLocal - offsetMinutes(guess, timeZone) * 60_000;
  return new Date(guess > t ? guess : t + 1000);
}

/** Milliseconds until HubSpot's daily limit resets: midnight in the account's time zone (UTC unless told). */
export function msUntilDailyReset(now: Date, timeZone = 'UTC'): number {
  return Math.max(1000, nextMidnight(now, timeZone).getTime() - now.getTime());
}
