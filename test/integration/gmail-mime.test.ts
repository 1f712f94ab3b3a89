/**
 * Every message of the shared MIME corpus goes through the real googleapis client (rootUrl → local fake, a real
 * OAuth2Client refreshing against the fake's /token), GmailSource and parseRawMessage.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { google } from 'googleapis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GmailSource } from '../../connectors/gmail/gmail.source.ts';
import { MAX_TEXT_CHARS, parseRawMessage } from '../../connectors/gmail/mime.ts';
import { InteractionSchema } from '../../src/pipeline/interaction.ts';
import type { Interaction } from '../../src/pipeline/interaction.ts';
import { startFakeGmail } from '../fakes/gmail.fake.ts';
import type { FakeGmail } from '../fakes/gmail.fake.ts';

const CORPUS = resolve(import.meta.dirname, '../../../shared/specs/mime-corpus');
const MAILBOX = 'sales@ourco.test';

interface Expectation {
  subject?: string | RegExp;
  participant?: string;
  attachments?: number;
  report?: string;
  check?: (ix: Interaction, raw: Buffer) => void;
}

const EXPECTED: Record<string, Expectation> = {
  'mailparser-base64encodedroot.eml': {
    participant: 'test@example.com',
    attachments: 1,
    check: (ix) => expect(ix.attachments?.[0]).toMatchObject({ filename: 'screenshot.png', mimeType: 'image/png', sizeBytes: 425 }),
  },
  'mailparser-decoderended.eml': {
    subject: 'Fwd: fotos',
    participant: 'wwer@iiieww.net',
    attachments: 1,
    check: (ix) => {
      expect(ix.attachments?.[0]?.mimeType).toBe('message/rfc822');
      expect(ix.text).toContain('forwarded message attached');
    },
  },
  'mailparser-delivery-status.eml': {
    subject: 'Delivery Status Notification (Failure)',
    participant: 'mailer-daemon@amazonses.com',
    report: 'delivery-status',
    check: (ix) => expect(ix.attachments?.map((a) => a.mimeType)).toEqual(['message/delivery-status', 'message/rfc822']),
  },
  'mailparser-htmllargecallstack.eml': {
    subject: 'Kill the HTML parser',
    participant: 'test@example.com',
    check: (ix) => {
      expect(ix.text?.length ?? 0).toBeGreaterThan(100_000);
      expect(ix.text).toContain('||Alerts||');
    },
  },
  'mailparser-large_text.eml': {
    subject: /^\[Bug 381598\]/,
    participant: 'brian@ubuntu.com',
    check: (ix) => {
      // The body is ~1.16 M characters: kept up to the limit, then marked.
      expect(ix.text?.startsWith('Exception during installation:')).toBe(true);
      expect(ix.text?.length).toBeGreaterThan(MAX_TEXT_CHARS);
      expect(ix.text).toMatch(/\[truncated: \d+ characters omitted\]$/);
      expect(ix.metadata?.['textTruncated']).toBe(true);
    },
  },
  'mailparser-mixed.eml': {
    attachments: 0,
    check: (ix) => {
      expect(ix.text).toContain('scanned for Viruses');
      expect(ix.text).toContain('Good Morning;');
    },
  },
  'mailparser-nested.eml': {
    participant: 'u@example.com',
    attachments: 0,
    check: (ix) => expect(ix.text).toContain('Dear Sir'),
  },
  'mailparser-nodemailer.eml': {
    subject: /^Nodemailer is unicode friendly ✔/,
    participant: 'andris+123@kreata.ee',
    attachments: 4,
    check: (ix) => {
      expect(ix.attachments?.map((a) => a.filename).filter(Boolean)).toEqual(['image.png', 'nyan cat ✔.gif', 'notes.txt']);
      expect(ix.participants.find((p) => p.role === 'from')).toEqual({ role: 'from', address: 'andris@kreata.ee', name: 'Andris Kreata' });
    },
  },
  'mailparser-spam.eml': {
    subject: /^123\.042 Euro pro Jahr/,
    participant: 'leon.struck@web.de',
    check: (ix) => {
      expect(ix.text).toContain('Freundliche Grüße');
      expect(ix.text).not.toMatch(/<[a-z]+[ >]/i);
    },
  },
  'postal-mime-arf.eml': {
    subject: 'FW: Earn money',
    participant: 'abuse@example.net',
    report: 'feedback',
    check: (ix) => expect(ix.attachments?.map((a) => a.mimeType)).toEqual(['message/feedback-report', 'message/rfc822']),
  },
  'postal-mime-bounce.eml': {
    subject: 'Undelivered Mail Returned to Sender',
    participant: 'mailer-daemon@messagingengine.com',
    report: 'delivery-status',
  },
  'postal-mime-calendar-event.eml': {
    subject: /^Invitation: Test event ⏰/,
    participant: 'andris@postalsys.com',
    check: (ix) => {
      const types = ix.attachments?.map((a) => a.mimeType) ?? [];
      expect(types).toContain('text/calendar');
      expect(ix.attachments?.find((a) => a.filename === 'invite.ics')).toBeDefined();
    },
  },
  'postal-mime-mimetorture.eml': {
    subject: "Ryan Finnie's MIME Torture Test v1.0",
    participant: 'rfinnie@domain.dom',
    check: (ix) => {
      const forwarded = ix.attachments?.filter((a) => a.mimeType === 'message/rfc822') ?? [];
      expect(forwarded.length).toBeGreaterThanOrEqual(5);
      expect(ix.threadId).toBeDefined();
    },
  },
};

const files = readdirSync(CORPUS)
  .filter((f) => f.endsWith('.eml'))
  .sort();

describe('Gmail MIME corpus through googleapis and GmailSource', () => {
  let fake: FakeGmail;
  let source: GmailSource;

  beforeAll(async () => {
    fake = await startFakeGmail({ mailbox: MAILBOX });
    const auth = new google.auth.OAuth2({
      clientId: fake.clientId,
      clientSecret: fake.clientSecret,
      endpoints: { oauth2TokenUrl: fake.tokenUrl },
    });
    auth.setCredentials({ refresh_token: fake.refreshToken });
    source = new GmailSource({ mailbox: MAILBOX, auth, rootUrl: fake.rootUrl });
  });
  afterAll(async () => {
    await fake.close();
  });

  it('has a corpus worth testing', () => {
    expect(files.length).toBeGreaterThan(10);
  });

  it.each(files)('%s', async (file) => {
    const raw = readFileSync(resolve(CORPUS, file));
    const internalDate = Date.UTC(2024, 0, 2, 3, 4, 5);
    const id = fake.addMessage(MAILBOX, { raw, labelIds: ['INBOX'], internalDate });
    const ix = await source.fetch(id);
    expect(ix).not.toBeNull();
    if (ix === null) return;

    expect(InteractionSchema.safeParse(ix).success).toBe(true);
    expect(ix).toMatchObject({
      channel: 'email',
      source: 'gmail',
      sourceId: id,
      threadId: id,
      occurredAt: new Date(internalDate).toISOString(),
    });
    expect(ix.metadata).toMatchObject({ mailbox: MAILBOX, labelIds: ['INBOX'] });
    // Attachments are metadata only.
    for (const a of ix.attachments ?? []) {
      expect(Object.keys(a).sort()).toEqual(expect.arrayContaining(['mimeType', 'sizeBytes']));
      expect(a.contentHash).toMatch(/^[0-9a-f]{64}$/);
    }
    if ((ix.text?.length ?? 0) <= MAX_TEXT_CHARS) expect(ix.metadata?.['textTruncated']).toBeUndefined();

    const want = EXPECTED[file];
    if (want === undefined) return;
    if (want.subject instanceof RegExp) expect(ix.subject).toMatch(want.subject);
    else if (want.subject !== undefined) expect(ix.subject).toBe(want.subject);
    if (want.participant !== undefined) expect(ix.participants.map((p) => p.address)).toContain(want.participant);
    if (want.attachments !== undefined) expect(ix.attachments?.length ?? 0).toBe(want.attachments);
    expect(ix.metadata?.['report']).toBe(want.report);
    want.check?.(ix, raw);
  });

  it('has a spot check for every corpus file', () => {
    expect(files.filter((f) => EXPECTED[f] === undefined)).toEqual([]);
  });

  it('went through the fake: a token refresh, then one raw get per file', () => {
    expect(fake.requests.filter((r) => r.path === '/token' && r.status === 200).length).toBeGreaterThanOrEqual(1);
    const gets = fake.requests.filter((r) => /^\/gmail\/v1\/users\/me\/messages\/[^/]+$/.test(r.path));
    expect(gets.length).toBe(files.length);
    expect(gets.every((r) => r.status === 200 && r.query['format'] === 'raw')).toBe(true);
  });
});

describe('parseRawMessage edge cases', () => {
  const ctx = { messageId: 'm-1', mailbox: MAILBOX };

  it('records parts it cannot decode instead of dropping them', async () => {
    const raw = Buffer.from(
      [
        'From: A <a@customer.test>',
        'To: sales@ourco.test',
        'Subject: odd parts',
        'Content-Type: multipart/mixed; boundary="b1"',
        '',
        '--b1',
        'Content-Type: text/plain; charset=utf-8',
        '',
        'hello',
        '--b1',
        'Content-Type: application/octet-stream; name="x.bin"',
        'Content-Transfer-Encoding: x-uuencode',
        '',
        'begin 644 x.bin',
        'end',
        '--b1',
        'Content-Type: text/plain; charset=x-no-such-charset',
        'Content-Disposition: attachment; filename="weird.txt"',
        '',
        'bytes',
        '--b1--',
        '',
      ].join('\r\n'),
    );
    const ix = await parseRawMessage(raw, ctx);
    expect(ix.metadata?.['undecodableParts']).toMatchObject({ count: 2, mimeTypes: ['application/octet-stream', 'text/plain'] });
    expect(ix.text).toContain('hello');
  });

  it('decodes non-UTF-8 charsets and encoded words', async () => {
    const raw = Buffer.concat([
      Buffer.from(
        'From: =?ISO-8859-1?Q?J=F6rg?= <Jorg@Customer.TEST>\r\nTo: sales@ourco.test\r\nSubject: =?ISO-8859-1?Q?Gr=FC=DFe?=\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n',
      ),
      Buffer.from([0x53, 0xfc, 0xdf, 0x0d, 0x0a]),
    ]);
    const ix = await parseRawMessage(raw, ctx);
    expect(ix.subject).toBe('Grüße');
    expect(ix.text?.trim()).toBe('Süß');
    expect(ix.participants[0]).toEqual({ role: 'from', address: 'jorg@customer.test', name: 'Jörg' });
  });

  it('skips and counts malformed addresses, and threads by References without a Gmail thread id', async () => {
    const raw = Buffer.from(
      'From: someone@ourco.test\r\nTo: not-an-address, b@ourco.test\r\nCc: "Broken" <@@>\r\nSubject: re\r\n' +
        'Message-ID: <c@ourco.test>\r\nIn-Reply-To: <b@ourco.test>\r\nReferences: <a@ourco.test> <b@ourco.test>\r\n\r\nhi\r\n',
    );
    const ix = await parseRawMessage(raw, ctx);
    expect(ix.participants.map((p) => p.address)).toEqual(['someone@ourco.test', 'b@ourco.test']);
    expect(ix.metadata).toMatchObject({ malformedAddresses: 2, messageIdHeader: '<c@ourco.test>', inReplyTo: '<b@ourco.test>' });
    expect(ix.threadId).toBe('<a@ourco.test>');
    expect(ix.direction).toBe('internal');
  });

  it('converts deep HTML without recursion and strips scripts and styles', async () => {
    const depth = 200_000;
    const html = '<style>p{}</style><script>alert(1)</script>' + '<div>'.repeat(depth) + 'deep &amp; fine&#33;' + '</div>'.repeat(depth);
    const raw = Buffer.from(`From: a@customer.test\r\nContent-Type: text/html\r\n\r\n${html}\r\n`);
    const ix = await parseRawMessage(raw, ctx);
    expect(ix.text).toBe('deep & fine!');
  });
});
