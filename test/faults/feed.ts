/**
 * A continuous feed of signed webhooks (calls and forms), sent the way providers send them: each delivery is
 * signed afresh, and a delivery that fails (connection refused, 5xx, 429) is retried with backoff until it
 * is acknowledged. What the web server acknowledged is what the product has promised to keep.
 *
 * And Gmail messages: mail arriving in a connected inbox (the Gmail fake), new threads from customers and our
 * replies in them. Nobody acknowledges mail; once it is in the mailbox the product has promised to take it in
 * (the worker's scheduled history sync), so every message counts as accepted from the moment it arrives.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { SECRETS } from './cluster.ts';
import type { FakeGmail } from '../fakes/gmail.fake.ts';

export interface Sent {
  readonly provider: 'calls' | 'forms' | 'gmail';
  readonly sourceId: string;
  /** How the product answered the delivery that finally got through. */
  outcome: 'accepted' | 'excluded' | 'pending' | 'refused';
  seq?: number;
  attempts: number;
  /** Statuses of the failed deliveries before it (what a provider would have seen). */
  readonly failures: number[];
}

export interface FeedOptions {
  readonly webUrl: () => string;
  /** Source-side clock skew: occurredAt is moved by up to this much (either way). */
  readonly skewMs: number;
  /** Signature timestamps are moved by up to this much, within the receivers' 5-minute tolerance. */
  readonly signatureSkewSeconds: number;
  readonly retryForMs: number;
  readonly random: () => number;
}

function event(provider: 'calls' | 'forms', id: string, occurredAt: string): Record<string, unknown> {
  return provider === 'calls'
    ? {
        id: `evt-${id}`,
        event: 'call.completed',
        callId: id,
        direction: 'inbound',
        from: '+15555550123',
        to: '+15555550188',
        startedAt: occurredAt,
        durationSeconds: 95,
        subject: 'Pricing call about 40 seats',
      }
    : {
        submissionId: id,
        form: 'contact-sales',
        submittedAt: occurredAt,
        email: `buyer-${id}@acme-corp.example`,
        name: 'Buyer',
        fields: { Message: 'We would like a quote for 40 seats' },
      };
}

/** Delivers one event until acknowledged (or a 4xx, which a provider would not retry). */
export async function deliver(provider: 'calls' | 'forms', sourceId: string, options: FeedOptions): Promise<Sent> {
  const sent: Sent = { provider, sourceId, outcome: 'pending', attempts: 0, failures: [] };
  const skew = Math.round((options.random() * 2 - 1) * options.skewMs);
  const body = JSON.stringify(event(provider, sourceId, new Date(Date.now() - 60_000 + skew).toISOString()));
  const secret = provider === 'calls' ? SECRETS.CALLS_WEBHOOK_SECRET : SECRETS.FORMS_WEBHOOK_SECRET;
  const deadline = Date.now() + options.retryForMs;
  let backoff = 100;
  for (;;) {
    sent.attempts++;
    const ts = Math.floor(Date.now() / 1000) + Math.round((options.random() * 2 - 1) * options.signatureSkewSeconds);
    const signature = createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex');
    let status = 0;
    let answer: { results?: { status: string; seq?: number }[] } = {};
    try {
      const res = await fetch(`${options.webUrl()}/webhooks/${provider}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-aj-timestamp': String(ts), 'x-aj-signature': `v1=${signature}` },
        body,
        signal: AbortSignal.timeout(10_000),
      });
      status = res.status;
      answer = (await res.json().catch(() => ({}))) as typeof answer;
    } catch {
      status = 0; // connection refused or reset: the web server is down
    }
    if (status === 200) {
      const r = answer.results?.[0];
      sent.outcome = r?.status === 'excluded' ? 'excluded' : 'accepted';
      if (typeof r?.seq === 'number') sent.seq = r.seq;
      return sent;
    }
    sent.failures.push(status);
    if (status >= 400 && status < 500 && status !== 429) {
      sent.outcome = 'refused';
      return sent;
    }
    if (Date.now() > deadline) return sent; // still pending: reported by the invariants
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 2_000);
  }
}

export interface MailOptions {
  readonly gmail: FakeGmail;
  /** The connected inbox (its address is in the rules' own domains). */
  readonly mailbox: string;
  /** Source-side clock skew: the Date header and Gmail's internalDate are moved by up to this much. */
  readonly skewMs: number;
  readonly random: () => number;
}

/** One message arriving in the inbox: a new thread from a customer, or (with `replyTo`) our answer in that thread. */
export function deliverMail(
  tag: string,
  options: MailOptions,
  replyTo?: { id: string; messageIdHeader: string; subject: string; from: string },
): Sent & { messageIdHeader: string; subject: string; from: string } {
  const skew = Math.round((options.random() * 2 - 1) * options.skewMs);
  const at = new Date(Date.now() - 60_000 + skew);
  const host = replyTo ? options.mailbox.split('@')[1] : 'acme-corp.example';
  const messageIdHeader = `<${tag}-${randomBytes(4).toString('hex')}@${host}>`;
  const customer = `buyer-${tag}@acme-corp.example`;
  const subject = replyTo ? `Re: ${replyTo.subject}` : `Quote for 40 seats (${tag})`;
  const headers = replyTo
    ? [
        `From: Sales <${options.mailbox}>`,
        `To: ${replyTo.from}`,
        `Subject: ${subject}`,
        `In-Reply-To: ${replyTo.messageIdHeader}`,
        `References: ${replyTo.messageIdHeader}`,
      ]
    : [`From: Buyer <${customer}>`, `To: ${options.mailbox}`, `Subject: ${subject}`];
  const body = replyTo ? 'Thanks, the quote for 40 seats is attached.' : 'Hello, we would like a quote for 40 seats, billed yearly.';
  const raw = Buffer.from(
    `${headers.join('\r\n')}\r\nMessage-ID: ${messageIdHeader}\r\nDate: ${at.toUTCString()}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n`,
  );
  const id = options.gmail.addMessage(options.mailbox, {
    raw,
    internalDate: at.getTime(),
    ...(replyTo ? { threadId: replyTo.id, labelIds: ['SENT'] } : { labelIds: ['INBOX', 'UNREAD'] }),
  });
  return {
    provider: 'gmail',
    sourceId: id,
    outcome: 'accepted',
    attempts: 1,
    failures: [],
    messageIdHeader,
    subject,
    from: replyTo ? options.mailbox : customer,
  };
}
