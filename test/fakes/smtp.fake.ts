/**
 * A real SMTP listener for tests (the smtp-server package) on 127.0.0.1 and a free port: STARTTLS with
 * smtp-server's own self-signed certificate, AUTH PLAIN/LOGIN against one user, and every accepted message
 * recorded (envelope, Message-ID, raw text). Refusals are scripted: `refuseNext` answers the next RCPT TO or
 * DATA with a code (550 no such user, 421/451 try later), then goes back to accepting.
 */
import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';

export interface ReceivedMail {
  readonly from: string;
  readonly to: readonly string[];
  readonly messageId: string | null;
  readonly subject: string | null;
  readonly raw: string;
  readonly secure: boolean;
  readonly user: string | null;
}

export type Refusal = { readonly at: 'rcpt' | 'data'; readonly code: number; readonly message?: string };

export interface SmtpFake {
  readonly port: number;
  readonly received: ReceivedMail[];
  /** Every RCPT TO and DATA the server answered, with its code (250 when accepted). */
  readonly answers: { at: 'rcpt' | 'data'; code: number }[];
  refuseNext(...refusals: Refusal[]): void;
  close(): Promise<void>;
}

function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

export async function startSmtpFake(options: { user: string; pass: string }): Promise<SmtpFake> {
  const received: ReceivedMail[] = [];
  const answers: { at: 'rcpt' | 'data'; code: number }[] = [];
  const queue: Refusal[] = [];
  const take = (at: 'rcpt' | 'data'): Refusal | undefined => {
    const i = queue.findIndex((r) => r.at === at);
    return i >= 0 ? queue.splice(i, 1)[0] : undefined;
  };
  const server = new SMTPServer({
    authMethods: ['PLAIN', 'LOGIN'],
    // AUTH only after STARTTLS (smtp-server's default): the client must upgrade first.
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === options.user && auth.password === options.pass) callback(null, { user: auth.username });
      else callback(smtpError(535, '5.7.8 authentication failed'));
    },
    onRcptTo(address, _session, callback) {
      const r = take('rcpt');
      answers.push({ at: 'rcpt', code: r?.code ?? 250 });
      if (r)
        callback(
          smtpError(
            r.code,
            r.message ?? (r.code >= 500 ? `5.1.1 <${address.address}>: Recipient address rejected: user unknown` : '4.3.0 try again later'),
          ),
        );
      else callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const r = take('data');
        answers.push({ at: 'data', code: r?.code ?? 250 });
        if (r) return callback(smtpError(r.code, r.message ?? (r.code >= 500 ? '5.7.1 message refused' : '4.3.0 try again later')));
        const raw = Buffer.concat(chunks).toString('utf8');
        const header = (name: string): string | null => new RegExp(`^${name}:\\s*(.+)$`, 'im').exec(raw)?.[1]?.trim() ?? null;
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((a) => a.address),
          messageId: header('Message-ID'),
          subject: header('Subject'),
          raw,
          secure: session.secure,
          user: typeof session.user === 'string' ? session.user : null,
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  server.on('error', () => undefined);
  const port = (server as unknown as { server: { address(): AddressInfo } }).server.address().port;
  return {
    port,
    received,
    answers,
    refuseNext: (...r) => queue.push(...r),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
