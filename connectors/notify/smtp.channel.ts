/**
 * E-mail notifications over SMTP with nodemailer (imported only when SMTP_HOST is set). STARTTLS is required by
 * default (SMTP_TLS=starttls), `implicit` is TLS from the first byte (port 465), `none` a plain local relay.
 * The Message-ID is deterministic per (interaction, rule, channel): a re-send after a crash between the server's
 * 250 and our journal entry carries the same Message-ID, which mail systems use to spot the duplicate.
 */
import type { Transporter } from 'nodemailer';
import type { DeliveryChannel, OutgoingMessage, SendResult } from '../../src/pipeline/notifications.ts';
import { NotifyRefusal, refusalCode } from '../../src/pipeline/errors/notify-refusal.error.ts';

/** SMTP_HOST and the rest (the worker process maps its configuration onto these in jobs/settings.ts). */
export interface SmtpSettings {
  readonly host: string;
  readonly port: number;
  /** starttls: upgrade required (port 587); implicit: TLS from the start (465); none: plain, e.g. a local relay. */
  readonly tls: 'starttls' | 'implicit' | 'none';
  readonly rejectUnauthorized: boolean;
  readonly auth: { readonly user: string; readonly pass: string } | null;
  readonly from: string;
}

/** One pooled transport for every group's e-mail channel. */
export async function smtpTransport(smtp: SmtpSettings): Promise<Transporter> {
  const nodemailer = (await import('nodemailer')).default;
  return nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.tls === 'implicit',
    requireTLS: smtp.tls === 'starttls',
    ignoreTLS: smtp.tls === 'none',
    ...(smtp.auth ? { auth: { user: smtp.auth.user, pass: smtp.auth.pass } } : {}),
    tls: { rejectUnauthorized: smtp.rejectUnauthorized },
    connectionTimeout: 15_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
    // nodemailer's own logger stays off: it would print addresses.
    logger: false,
  });
}

export class SmtpChannel implements DeliveryChannel {
  readonly name = 'email' as const;
  readonly target: { readonly to: readonly string[] };
  constructor(
    private readonly transport: Transporter,
    private readonly from: string,
    to: readonly string[],
  ) {
    this.target = { to };
  }

  async send(m: OutgoingMessage): Promise<SendResult> {
    const domain = /@([^>\s]+)>?\s*$/.exec(this.from)?.[1] ?? 'activity-journal.invalid';
    try {
      const info = (await this.transport.sendMail({
        from: this.from,
        to: [...this.target.to],
        subject: m.subject,
        text: m.text,
        messageId: `<${m.deliveryId}@${domain}>`,
        headers: { 'X-Activity-Journal-Entry': m.entryId, 'X-Activity-Journal-Rule': m.ruleId },
      })) as { response?: string; accepted?: unknown[]; rejected?: unknown[] };
      // Some recipients refused, the others accepted: delivered, with the refused ones named (nodemailer lists
      // them as addresses, or as objects with an address).
      const rejected = (info.rejected ?? [])
        .map((r) => (typeof r === 'string' ? r : (r as { address?: unknown }).address))
        .filter((a): a is string => typeof a === 'string' && a.length > 0);
      return { providerReply: info.response ?? '', ...(rejected.length > 0 ? { rejected } : {}) };
    } catch (err) {
      throw smtpRefusal(err);
    }
  }
}

/** 5xx: permanent (550 no such user, 554 refused); 4xx: temporary (421, 450, 451); no reply: a network error, temporary. */
export function smtpRefusal(err: unknown): NotifyRefusal {
  const e = err as { responseCode?: number; code?: string; response?: string; message?: string };
  const detail = e.response ?? e.message ?? String(err);
  if (typeof e.responseCode === 'number')
    return new NotifyRefusal(String(e.responseCode), e.responseCode < 500, detail, undefined, { cause: err });
  // Missing credentials, an envelope nodemailer refused itself: no retry makes them right.
  const permanent = e.code === 'EAUTH' || e.code === 'EENVELOPE' || e.code === 'EMESSAGE';
  return new NotifyRefusal(refusalCode(e.code ?? 'error'), !permanent, detail, undefined, { cause: err });
}
