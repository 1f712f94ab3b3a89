/** What the HTTP channels share: reading a short answer and telling temporary refusals from permanent ones. */
import { NotifyRefusal } from '../../src/pipeline/errors/notify-refusal.error.ts';

/** The first 2,000 characters of a response body ('' when it cannot be read). */
export async function readShort(res: Response): Promise<string> {
  try {
    return (await res.text()).slice(0, 2000);
  } catch {
    return '';
  }
}

/** 408, 425, 429 and 5xx are temporary (a Retry-After is kept, and followed); every other non-2xx is permanent. */
export function httpRefusal(res: Response, code: string, body: string, now = Date.now()): NotifyRefusal {
  const retryable = res.status === 408 || res.status === 425 || res.status === 429 || res.status >= 500;
  return new NotifyRefusal(code, retryable, `HTTP ${res.status}: ${body}`, retryAfterSeconds(res.headers.get('retry-after'), now));
}

/** Retry-After as RFC 9110 gives it: delay-seconds, or an HTTP-date (then the seconds from now, at least 0). */
export function retryAfterSeconds(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d{1,10}$/.test(v)) return Number(v);
  const at = Date.parse(v);
  return Number.isFinite(at) && /[a-z]/i.test(v) ? Math.max(0, Math.ceil((at - now) / 1000)) : undefined;
}
