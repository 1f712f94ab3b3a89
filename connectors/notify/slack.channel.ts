/**
 * Slack incoming webhooks: POST {"text": …} as JSON to the webhook URL (a secret, from the variable the rules
 * name). Slack answers 200 with the body `ok`; refusals are a status and a short string in the body:
 * 400 invalid_payload / user_not_found, 403 action_prohibited, 404 channel_not_found (or no_service for a revoked
 * webhook), 410 channel_is_archived: permanent, the job fails at once with that reason. 429 (with Retry-After)
 * and 5xx (rollup_error) are temporary: retried with backoff. Slack keys nothing by an idempotency header, so a
 * crash between Slack's 200 and our journal entry can show one duplicate message.
 */
import type { DeliveryChannel, OutgoingMessage, SendResult } from '../../src/pipeline/notifications.ts';
import { NotifyRefusal, refusalCode } from '../../src/pipeline/errors/notify-refusal.error.ts';
import { httpRefusal, readShort } from './http.ts';

export class SlackChannel implements DeliveryChannel {
  readonly name = 'slack' as const;
  readonly target: { readonly targetEnv: string };
  constructor(
    private readonly url: string,
    urlEnv: string,
  ) {
    this.target = { targetEnv: urlEnv };
  }

  async send(m: OutgoingMessage, signal?: AbortSignal): Promise<SendResult> {
    const text = `*${m.subject}*\n${m.summary}\n<${m.traceUrl}|Trace in the audit UI>`;
    let res: Response;
    try {
      res = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text }),
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      throw new NotifyRefusal(
        refusalCode((err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name),
        true,
        (err as Error).message,
        undefined,
        { cause: err },
      );
    }
    const body = await readShort(res);
    if (res.status === 200) return { providerReply: body };
    // Slack's body is a short error string (channel_not_found); anything else is named by the status alone.
    const code = /^[a-z_]{1,64}$/.test(body.trim()) ? `${res.status}-${body.trim()}` : String(res.status);
    throw httpRefusal(res, code, body);
  }
}
