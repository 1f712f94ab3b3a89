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

/** 408, 425, 429 and 5xx are temporary (429's Retry-After is kept); every other non-2xx is permanent. */
export function httpRefusal(res: Response, code: string, body: string): NotifyRefusal {
  const retryable = res.status === 408 || res.status === 425 || res.status === 429 || res.status >= 500;
  const after = Number(res.headers.get('retry-after'));
  return new NotifyRefusal(code, retryable, `HTTP ${res.status}: ${body}`, Number.isInteger(after) && after >= 0 ? after : undefined);
}
