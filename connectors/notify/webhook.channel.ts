/**
 * A signed generic webhook: POST application/json to the URL the rules name by variable, with
 *   X-AJ-Timestamp:  Unix seconds
 *   X-AJ-Signature:  v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
 *   Idempotency-Key: the delivery id, the same on every attempt (drop a duplicate by it)
 * 2xx is delivered; 408, 425, 429 and 5xx are retried; any other status fails the job at once. README
 * ("Notifications") shows how a receiver verifies.
 */
import { createHmac } from 'node:crypto';
import type { DeliveryChannel, OutgoingMessage, SendResult } from '../../src/pipeline/notifications.ts';
import { NotifyRefusal, refusalCode } from '../../src/pipeline/errors/notify-refusal.error.ts';
import { httpRefusal, readShort } from './http.ts';

export const SIGNATURE_HEADER = 'x-aj-signature';
export const TIMESTAMP_HEADER = 'x-aj-timestamp';

/** The signature of a body sent at `timestamp` (Unix seconds): what a receiver recomputes and compares. */
export function notificationSignature(secret: string, timestamp: string, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export class WebhookChannel implements DeliveryChannel {
  readonly name = 'webhook' as const;
  readonly target: { readonly targetEnv: string };
  constructor(
    private readonly url: string,
    private readonly secret: string,
    urlEnv: string,
    private readonly now: () => number = Date.now,
  ) {
    this.target = { targetEnv: urlEnv };
  }

  async send(m: OutgoingMessage, signal?: AbortSignal): Promise<SendResult> {
    const body = JSON.stringify({
      type: 'notification',
      deliveryId: m.deliveryId,
      entryId: m.entryId,
      correlationId: m.correlationId,
      ruleId: m.ruleId,
      ruleVersion: m.ruleVersion,
      recipient: m.group,
      category: m.category,
      urgency: m.urgency,
      subject: m.subject,
      summary: m.summary,
      traceUrl: m.traceUrl,
    });
    const timestamp = String(Math.floor(this.now() / 1000));
    let res: Response;
    try {
      res = await fetch(this.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [TIMESTAMP_HEADER]: timestamp,
          [SIGNATURE_HEADER]: notificationSignature(this.secret, timestamp, body),
          'idempotency-key': m.deliveryId,
        },
        body,
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
    const answer = await readShort(res);
    if (res.status >= 200 && res.status < 300) return { providerReply: `HTTP ${res.status}` };
    throw httpRefusal(res, String(res.status), answer);
  }
}
