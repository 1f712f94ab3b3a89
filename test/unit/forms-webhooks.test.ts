import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GenericFormReceiver, HubSpotFormReceiver } from '../../connectors/forms/index.ts';
import { InteractionSchema } from '../../src/pipeline/interaction.ts';
import type { WebhookOutcome, WebhookRequest } from '../../src/pipeline/webhook.ts';

const NOW = new Date('2026-11-27T10:00:00.000Z');
const now = () => NOW;
const NOW_S = String(Math.floor(NOW.getTime() / 1000));
const SECRET = 'whsec_generic-secret-0123456789';
const CLIENT_SECRET = 'hs-client-secret-abcdef-9876';

function request(over: Partial<WebhookRequest> & { rawBody: Buffer }): WebhookRequest {
  return {
    url: 'https://journal.example/webhooks/forms',
    method: 'POST',
    headers: {},
    contentType: 'application/json',
    receivedAt: NOW,
    ...over,
  };
}

// ---------- generic ----------

function signGeneric(body: string | Buffer, ts = NOW_S, secret = SECRET): string {
  return `v1=${createHmac('sha256', secret).update(`${ts}.`).update(body).digest('hex')}`;
}

function genericRequest(body: string, opts: { ts?: string; sig?: string | null; contentType?: string } = {}): WebhookRequest {
  const ts = opts.ts ?? NOW_S;
  const sig = opts.sig === undefined ? signGeneric(body, ts) : opts.sig;
  return request({
    rawBody: Buffer.from(body, 'utf8'),
    contentType: opts.contentType ?? 'application/json',
    headers: { 'x-aj-timestamp': ts, ...(sig === null ? {} : { 'x-aj-signature': sig }) },
  });
}

const submission = {
  submissionId: 'sub_0193',
  form: 'contact-sales',
  submittedAt: '2026-11-27T09:59:30Z',
  email: 'ada@example.com',
  name: 'Ada Lovelace',
  fields: { Message: 'We would like a demo of plan Zebra', Company: 'Acme Widgets', Topics: ['pricing', 'security'] },
  pageUrl: 'https://example.com/contact',
};
const SECRET_VALUES = ['Acme Widgets', 'Zebra', 'ada@example.com', 'Lovelace'];

function expectRejected(outcome: WebhookOutcome, status: number): string {
  expect(outcome.kind).toBe('rejected');
  if (outcome.kind !== 'rejected') throw new Error('unreachable');
  expect(outcome.status).toBe(status);
  return outcome.reason;
}

function expectClean(reason: string, extra: readonly string[] = []): void {
  for (const s of [SECRET, CLIENT_SECRET, ...SECRET_VALUES, ...extra]) expect(reason).not.toContain(s);
}

describe('GenericFormReceiver', () => {
  const receiver = new GenericFormReceiver({ secret: SECRET, now });

  it('accepts a signed JSON submission and normalises it into one valid form Interaction', () => {
    const outcome = receiver.handle(genericRequest(JSON.stringify(submission)));
    expect(outcome.kind).toBe('accepted');
    if (outcome.kind !== 'accepted') return;
    expect(outcome.eventId).toBe('sub_0193');
    expect(outcome.interactions).toHaveLength(1);
    const ix = InteractionSchema.parse(outcome.interactions[0]);
    expect(ix).toEqual({
      channel: 'form',
      source: 'webform',
      sourceId: 'sub_0193',
      direction: 'inbound',
      occurredAt: '2026-11-27T09:59:30.000Z',
      participants: [{ role: 'submitter', address: 'ada@example.com', name: 'Ada Lovelace' }],
      subject: 'Form "contact-sales"',
      text: 'Company: Acme Widgets\nMessage: We would like a demo of plan Zebra\nTopics: pricing, security',
      metadata: { form: 'contact-sales', pageUrl: 'https://example.com/contact' },
    });
  });

  it('gives a replayed submission (new timestamp, same submissionId) the same Interaction', () => {
    const body = JSON.stringify(submission);
    const later = String(Number(NOW_S) + 60);
    const a = receiver.handle(genericRequest(body));
    const b = new GenericFormReceiver({ secret: SECRET, now: () => new Date(NOW.getTime() + 60_000) }).handle(
      genericRequest(body, { ts: later }),
    );
    expect(a.kind === 'accepted' && b.kind === 'accepted' && a.interactions[0]).toEqual(b.kind === 'accepted' && b.interactions[0]);
  });

  it('accepts an x-www-form-urlencoded submission', () => {
    const form = new URLSearchParams([
      ['submissionId', 'sub_9'],
      ['form', 'contact-sales'],
      ['submittedAt', '2026-11-27T09:58:00+01:00'],
      ['email', 'bob@example.com'],
      ['fields[Company]', 'Acme Widgets'],
      ['fields[Topics]', 'pricing'],
      ['fields[Topics]', 'security'],
      ['utm_source', 'ignored'],
    ]).toString();
    const outcome = receiver.handle(genericRequest(form, { contentType: 'application/x-www-form-urlencoded' }));
    expect(outcome.kind).toBe('accepted');
    if (outcome.kind !== 'accepted') return;
    const ix = InteractionSchema.parse(outcome.interactions[0]);
    expect(ix.sourceId).toBe('sub_9');
    expect(ix.occurredAt).toBe('2026-11-27T08:58:00.000Z');
    expect(ix.participants).toEqual([{ role: 'submitter', address: 'bob@example.com' }]);
    expect(ix.text).toBe('Company: Acme Widgets\nTopics: pricing, security');
    expect(ix.metadata).toEqual({ form: 'contact-sales' });
  });

  it('accepts a signature list while a secret is rotated', () => {
    const body = JSON.stringify(submission);
    const sig = `${signGeneric(body, NOW_S, 'old-secret')}, ${signGeneric(body)}`;
    expect(receiver.handle(genericRequest(body, { sig })).kind).toBe('accepted');
  });

  it('refuses missing, wrong-secret and malformed signatures with 401', () => {
    const body = JSON.stringify(submission);
    expect(expectRejected(receiver.handle(genericRequest(body, { sig: null })), 401)).toBe('missing signature');
    const wrong = signGeneric(body, NOW_S, 'another-secret');
    const reason = expectRejected(receiver.handle(genericRequest(body, { sig: wrong })), 401);
    expect(reason).toBe('invalid signature');
    expectClean(reason, [wrong.slice(3)]);
    expectRejected(receiver.handle(genericRequest(body, { sig: signGeneric(body).slice(3) })), 401); // no v1= prefix
    expectRejected(receiver.handle(genericRequest(body, { sig: 'v1=zz' })), 401);
  });

  it('refuses a tampered body with 401', () => {
    const body = JSON.stringify(submission);
    const sig = signGeneric(body);
    const tampered = body.replace('ada@example.com', 'eve@example.com');
    expect(expectRejected(receiver.handle(genericRequest(tampered, { sig })), 401)).toBe('invalid signature');
  });

  it('refuses a signature made for another timestamp with 401', () => {
    const body = JSON.stringify(submission);
    const ts = String(Number(NOW_S) - 10);
    expectRejected(receiver.handle(genericRequest(body, { ts, sig: signGeneric(body, NOW_S) })), 401);
  });

  it('refuses stale and future timestamps beyond the tolerance, even when correctly signed', () => {
    const body = JSON.stringify(submission);
    for (const delta of [-301, 301, -86_400, 86_400]) {
      const ts = String(Number(NOW_S) + delta);
      expect(expectRejected(receiver.handle(genericRequest(body, { ts })), 401)).toBe('stale timestamp');
    }
    for (const delta of [-300, 300])
      expect(receiver.handle(genericRequest(body, { ts: String(Number(NOW_S) + delta) })).kind).toBe('accepted');
    const strict = new GenericFormReceiver({ secret: SECRET, now, toleranceSeconds: 30 });
    expectRejected(strict.handle(genericRequest(body, { ts: String(Number(NOW_S) - 31) })), 401);
    expectRejected(receiver.handle(genericRequest(body, { ts: 'yesterday' })), 401);
  });

  it('refuses schema violations with 422 naming the field, never quoting values or labels', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ ...submission, email: 'not-an-email Acme Widgets' }, 'email'],
      [{ ...submission, submissionId: undefined }, 'submissionId'],
      [{ ...submission, submittedAt: 'Zebra o-clock' }, 'submittedAt'],
      [{ ...submission, fields: { 'Secret Label Zebra': 42 } }, 'fields'],
    ];
    for (const [payload, field] of cases) {
      const reason = expectRejected(receiver.handle(genericRequest(JSON.stringify(payload))), 422);
      expect(reason).toContain(field);
      expectClean(reason, ['Secret Label', '42', 'not-an-email']);
    }
    expectRejected(receiver.handle(genericRequest('{"submissionId": Zebra')), 400);
  });
});

// ---------- HubSpot ----------

const HS_URL = 'https://journal.example/webhooks/hubspot-forms?portal=62515&tag=a%3Ab';

/** Independent of the receiver: HubSpot's v3 recipe written out from its documentation. */
function signHubSpot(method: string, uri: string, body: string, ts: string, secret = CLIENT_SECRET): string {
  return createHmac('sha256', secret).update(`${method}${uri}${body}${ts}`, 'utf8').digest('base64');
}

function hubspotRequest(body: string, opts: { ts?: string; sig?: string | null; method?: string; url?: string } = {}): WebhookRequest {
  const ts = opts.ts ?? String(NOW.getTime());
  // The URI HubSpot signs has %3A decoded to ':' (its table); %3D etc. would stay encoded.
  const sig = opts.sig === undefined ? signHubSpot('POST', HS_URL.replace('%3A', ':'), body, ts) : opts.sig;
  return request({
    url: opts.url ?? HS_URL,
    method: opts.method ?? 'POST',
    rawBody: Buffer.from(body, 'utf8'),
    headers: { 'x-hubspot-request-timestamp': ts, ...(sig === null ? {} : { 'x-hubspot-signature-v3': sig }) },
  });
}

const contactRecord = {
  vid: 1501,
  'canonical-vid': 1501,
  'portal-id': 62515,
  'is-contact': true,
  properties: {
    email: { value: 'ada@example.com', versions: [] },
    firstname: { value: 'Ada' },
    lastname: { value: 'Lovelace' },
    company: { value: 'Acme Widgets' },
    message: { value: 'Plan Zebra please' },
    lastmodifieddate: { value: '1795780800000' },
    hs_analytics_source: { value: 'ORGANIC_SEARCH' },
  },
  'form-submissions': [
    { 'conversion-id': 'older-conv', timestamp: 1795772000000, 'form-id': 'f-old', title: 'Newsletter', 'portal-id': 62515 },
    {
      'conversion-id': '2e137f47-conv',
      timestamp: 1795773540000,
      'form-id': 'a1b2c3-guid',
      title: 'Contact Sales',
      'page-url': 'https://example.com/contact',
      'portal-id': 62515,
    },
  ],
};

describe('HubSpotFormReceiver', () => {
  const receiver = new HubSpotFormReceiver({ clientSecret: CLIENT_SECRET, now });

  it('accepts a valid v3 request with the contact-record payload', () => {
    const outcome = receiver.handle(hubspotRequest(JSON.stringify(contactRecord)));
    expect(outcome.kind).toBe('accepted');
    if (outcome.kind !== 'accepted') return;
    expect(outcome.eventId).toBe('2e137f47-conv');
    const ix = InteractionSchema.parse(outcome.interactions[0]);
    expect(ix).toEqual({
      channel: 'form',
      source: 'hubspot-forms',
      sourceId: '2e137f47-conv',
      direction: 'inbound',
      occurredAt: new Date(1795773540000).toISOString(),
      participants: [{ role: 'submitter', address: 'ada@example.com', name: 'Ada Lovelace' }],
      subject: 'Form "Contact Sales"',
      text: 'company: Acme Widgets\nemail: ada@example.com\nfirstname: Ada\nlastname: Lovelace\nmessage: Plan Zebra please',
      metadata: { form: 'Contact Sales', pageUrl: 'https://example.com/contact' },
    });
  });

  it('accepts the flat-properties shape and uses hs_form_submission_id', () => {
    const flat = {
      email: 'bob@example.com',
      firstname: 'Bob',
      hs_form_submission_id: 'sub-77',
      form_name: 'contact-sales',
      phone: '+15551234567',
    };
    const outcome = receiver.handle(hubspotRequest(JSON.stringify(flat)));
    expect(outcome.kind).toBe('accepted');
    if (outcome.kind !== 'accepted') return;
    const ix = InteractionSchema.parse(outcome.interactions[0]);
    expect(ix.sourceId).toBe('sub-77');
    expect(ix.metadata).toEqual({ form: 'contact-sales' });
    expect(ix.participants).toEqual([{ role: 'submitter', address: 'bob@example.com', name: 'Bob' }]);
    expect(ix.occurredAt).toBe(NOW.toISOString());
    expect(ix.text).toBe('email: bob@example.com\nfirstname: Bob\nphone: +15551234567');
  });

  it('falls back to portal-id:vid:timestamp when no submission id is sent', () => {
    const payload = {
      vid: 7,
      'portal-id': 62515,
      properties: { email: { value: 'c@example.com' }, recent_conversion_date: { value: '1795773540000' } },
    };
    const outcome = receiver.handle(hubspotRequest(JSON.stringify(payload)));
    expect(outcome.kind === 'accepted' && outcome.interactions[0]?.sourceId).toBe('62515:7:1795773540000');
    const noId = { properties: { email: { value: 'c@example.com' } } };
    expectRejected(receiver.handle(hubspotRequest(JSON.stringify(noId))), 422);
  });

  it('refuses a contact without email with 422', () => {
    const { email: _email, ...properties } = contactRecord.properties;
    const reason = expectRejected(receiver.handle(hubspotRequest(JSON.stringify({ ...contactRecord, properties }))), 422);
    expect(reason).toContain('email');
    expectClean(reason);
  });

  it('refuses stale and far-future timestamps with 401, even when correctly signed', () => {
    const body = JSON.stringify(contactRecord);
    for (const delta of [-300_001, 300_001]) {
      const ts = String(NOW.getTime() + delta);
      expect(expectRejected(receiver.handle(hubspotRequest(body, { ts })), 401)).toBe('stale timestamp');
    }
    expect(receiver.handle(hubspotRequest(body, { ts: String(NOW.getTime() - 299_000) })).kind).toBe('accepted');
    expectRejected(receiver.handle(hubspotRequest(body, { ts: String(Math.floor(NOW.getTime() / 1000)) })), 401); // seconds, not ms
  });

  it('refuses a signature over another method or URL with 401', () => {
    const body = JSON.stringify(contactRecord);
    expect(expectRejected(receiver.handle(hubspotRequest(body, { method: 'PUT' })), 401)).toBe('invalid signature');
    expectRejected(
      receiver.handle(hubspotRequest(body, { url: 'https://journal.example/webhooks/hubspot-forms?portal=62516&tag=a%3Ab' })),
      401,
    );
    expectRejected(
      receiver.handle(hubspotRequest(body, { url: 'http://journal.example/webhooks/hubspot-forms?portal=62515&tag=a%3Ab' })),
      401,
    );
  });

  it("decodes only the characters in HubSpot's table when building the signed URI", () => {
    const body = JSON.stringify(contactRecord);
    const ts = String(NOW.getTime());
    const url = 'https://journal.example/webhooks/hubspot-forms?next=%2Fa%2Fb%3Fx%3D1&q=a%20b%26c&at=%40me%21';
    const signedUri = 'https://journal.example/webhooks/hubspot-forms?next=/a/b?x%3D1&q=a%20b%26c&at=@me!';
    expect(receiver.handle(hubspotRequest(body, { url, sig: signHubSpot('POST', signedUri, body, ts) })).kind).toBe('accepted');
    // Signed over the fully decoded or the raw URI: not what HubSpot signs.
    expectRejected(receiver.handle(hubspotRequest(body, { url, sig: signHubSpot('POST', decodeURIComponent(url), body, ts) })), 401);
    expectRejected(receiver.handle(hubspotRequest(body, { url, sig: signHubSpot('POST', url, body, ts) })), 401);
  });

  it('refuses missing, wrong and tampered signatures with 401 and clean reasons', () => {
    const body = JSON.stringify(contactRecord);
    expect(expectRejected(receiver.handle(hubspotRequest(body, { sig: null })), 401)).toBe('missing signature');
    const wrong = signHubSpot('POST', HS_URL.replace('%3A', ':'), body, String(NOW.getTime()), 'other-secret');
    const reason = expectRejected(receiver.handle(hubspotRequest(body, { sig: wrong })), 401);
    expectClean(reason, [wrong]);
    const sig = signHubSpot('POST', HS_URL.replace('%3A', ':'), body, String(NOW.getTime()));
    const tampered = body.replace('Plan Zebra please', 'Plan Yak please!');
    expectRejected(receiver.handle(hubspotRequest(tampered, { sig })), 401);
  });
});

// ---------- never throws ----------

describe('receivers never throw', () => {
  const generic = new GenericFormReceiver({ secret: SECRET, now });
  const hubspot = new HubSpotFormReceiver({ clientSecret: CLIENT_SECRET, now });
  const kinds = new Set(['accepted', 'ignored', 'rejected']);

  const check = (outcome: WebhookOutcome): void => {
    expect(kinds.has(outcome.kind)).toBe(true);
    if (outcome.kind === 'accepted') for (const ix of outcome.interactions) InteractionSchema.parse(ix);
    if (outcome.kind === 'rejected') expectClean(outcome.reason);
  };

  const headerValue = fc.oneof(fc.string(), fc.constant(NOW_S), fc.constant(String(NOW.getTime())), fc.constant(undefined));
  const headers = fc
    .record({
      'x-aj-timestamp': headerValue,
      'x-aj-signature': headerValue,
      'x-hubspot-request-timestamp': headerValue,
      'x-hubspot-signature-v3': headerValue,
    })
    .chain((known) => fc.dictionary(fc.string(), fc.option(fc.string(), { nil: undefined })).map((extra) => ({ ...extra, ...known })));
  const body = fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    fc.json().map((j) => Buffer.from(j)),
  );
  const contentType = fc.constantFrom('application/json', 'application/x-www-form-urlencoded', 'text/plain');

  it('on arbitrary bodies and headers', () => {
    fc.assert(
      fc.property(body, headers, contentType, fc.string(), fc.webUrl(), (rawBody, hs, ct, method, url) => {
        const req = request({ rawBody, headers: hs, contentType: ct, method, url });
        check(generic.handle(req));
        check(hubspot.handle(req));
      }),
      { numRuns: 300 },
    );
  });

  it('on arbitrary but correctly signed bodies (so parsing and normalising are exercised)', () => {
    const anyJson = fc.oneof(
      fc.jsonValue(),
      fc.record({ ...Object.fromEntries(Object.keys(submission).map((k) => [k, fc.jsonValue()])) }, { requiredKeys: [] }),
      fc.record(
        {
          email: fc.oneof(fc.emailAddress(), fc.jsonValue()),
          properties: fc.dictionary(fc.string(), fc.jsonValue()),
          'form-submissions': fc.jsonValue(),
        },
        { requiredKeys: [] },
      ),
    );
    fc.assert(
      fc.property(anyJson, (value) => {
        const text = JSON.stringify(value) ?? 'null';
        const g = generic.handle(genericRequest(text));
        check(g);
        expect(g.kind === 'rejected' ? g.status : 0).not.toBe(401);
        const h = hubspot.handle(hubspotRequest(text));
        check(h);
        expect(h.kind === 'rejected' ? h.status : 0).not.toBe(401);
      }),
      { numRuns: 300 },
    );
  });
});
