import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  AircallReceiver,
  GenericCallReceiver,
  TwilioReceiver,
  genericCallSignature,
  twilioSignature,
} from '../../connectors/calls/index.ts';
import { InteractionSchema } from '../../src/pipeline/interaction.ts';
import type { WebhookOutcome, WebhookRequest } from '../../src/pipeline/webhook.ts';

const RECEIVED_AT = new Date('2024-05-01T12:00:00.000Z');

function request(over: Partial<WebhookRequest> & { rawBody: Buffer; contentType: string }): WebhookRequest {
  return { url: 'https://hooks.example.com/webhooks/x', method: 'POST', headers: {}, receivedAt: RECEIVED_AT, ...over };
}

function accepted(outcome: WebhookOutcome) {
  if (outcome.kind !== 'accepted') throw new Error(`expected accepted, got ${JSON.stringify(outcome)}`);
  for (const ix of outcome.interactions) expect(InteractionSchema.safeParse(ix).success).toBe(true);
  return outcome;
}

function expectRejected(outcome: WebhookOutcome, status: number, reason: string | RegExp, secrets: readonly string[]): void {
  expect(outcome.kind).toBe('rejected');
  if (outcome.kind !== 'rejected') return;
  expect(outcome.status).toBe(status);
  if (typeof reason === 'string') expect(outcome.reason).toBe(reason);
  else expect(outcome.reason).toMatch(reason);
  for (const s of secrets) if (s.length >= 4) expect(outcome.reason).not.toContain(s);
}

// Twilio: the signature is computed here independently of the receiver's helper.
const AUTH_TOKEN = 'tw-auth-token-0123456789abcdef';
const TW_URL = 'https://hooks.example.com/webhooks/twilio?tenant=acme';

function signTwilio(token: string, url: string, params: Record<string, string>): string {
  const data = Object.keys(params)
    .sort()
    .reduce((acc, k) => acc + k + params[k], url);
  return createHmac('sha1', token).update(data).digest('base64');
}

function twilioForm(
  params: Record<string, string>,
  opts: { url?: string; signature?: string | undefined; body?: string } = {},
): WebhookRequest {
  const url = opts.url ?? TW_URL;
  const signature = 'signature' in opts ? opts.signature : signTwilio(AUTH_TOKEN, url, params);
  return request({
    url,
    contentType: 'application/x-www-form-urlencoded',
    rawBody: Buffer.from(opts.body ?? new URLSearchParams(params).toString()),
    headers: signature === undefined ? {} : { 'x-twilio-signature': signature },
  });
}

const COMPLETED = {
  CallSid: 'CA0123456789abcdef0123456789abcdef',
  AccountSid: 'AC0123456789abcdef0123456789abcdef',
  From: '+14155550100',
  To: '+442071838750',
  CallStatus: 'completed',
  Direction: 'outbound-api',
  CallDuration: '42',
  Timestamp: 'Wed, 01 May 2024 11:58:30 +0000',
  RecordingUrl: 'https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE1',
  ApiVersion: '2010-04-01',
};

describe('TwilioReceiver', () => {
  const receiver = new TwilioReceiver({ authToken: AUTH_TOKEN });
  const secrets = [AUTH_TOKEN, signTwilio(AUTH_TOKEN, TW_URL, COMPLETED), ...Object.values(COMPLETED)];

  it("matches the example published in Twilio's request validation docs", () => {
    const params = { CallSid: 'CA1234567890ABCDE', Caller: '+12349013030', Digits: '1234', From: '+12349013030', To: '+18005551212' };
    expect(twilioSignature('12345', 'https://mycompany.com/myapp.php?foo=1&bar=2', params)).toBe('0/KCTR6DLpKmkAf8muzZqo1nDgQ=');
  });

  it('accepts a signed completed call and maps it', () => {
    const out = accepted(receiver.handle(twilioForm(COMPLETED)));
    expect(out.eventId).toBe(`twilio/call/${COMPLETED.CallSid}/completed`);
    expect(out.interactions).toEqual([
      {
        channel: 'call',
        source: 'twilio',
        sourceId: COMPLETED.CallSid,
        threadId: COMPLETED.CallSid,
        direction: 'outbound',
        occurredAt: '2024-05-01T11:58:30.000Z',
        participants: [
          { role: 'caller', address: '+14155550100' },
          { role: 'callee', address: '+442071838750' },
        ],
        subject: 'Call completed (42 s)',
        metadata: { callStatus: 'completed', durationSeconds: 42, recordingUrl: COMPLETED.RecordingUrl, accountSid: COMPLETED.AccountSid },
      },
    ]);
  });

  it('records busy/no-answer/failed/canceled calls, inbound direction, falls back to receivedAt, drops non-https recordings', () => {
    for (const status of ['busy', 'no-answer', 'failed', 'canceled']) {
      const { Timestamp: _t, CallDuration: _d, ...rest } = COMPLETED;
      const params = { ...rest, CallStatus: status, Direction: 'inbound', RecordingUrl: 'http://insecure.example.com/r' };
      const [ix] = accepted(receiver.handle(twilioForm(params))).interactions;
      expect(ix?.direction).toBe('inbound');
      expect(ix?.subject).toBe(`Call ${status}`);
      expect(ix?.occurredAt).toBe(RECEIVED_AT.toISOString());
      expect(ix?.metadata).toEqual({ callStatus: status, accountSid: COMPLETED.AccountSid });
    }
  });

  it('ignores non-terminal statuses', () => {
    for (const status of ['queued', 'initiated', 'ringing', 'in-progress']) {
      const out = receiver.handle(twilioForm({ ...COMPLETED, CallStatus: status }));
      expect(out.kind).toBe('ignored');
    }
  });

  it('rejects missing, wrong and tampered signatures with 401', () => {
    expectRejected(receiver.handle(twilioForm(COMPLETED, { signature: undefined })), 401, 'missing signature', secrets);
    expectRejected(
      receiver.handle(twilioForm(COMPLETED, { signature: signTwilio('other-token', TW_URL, COMPLETED) })),
      401,
      'signature mismatch',
      secrets,
    );
    const tamperedBody = new URLSearchParams({ ...COMPLETED, CallDuration: '4200' }).toString();
    expectRejected(receiver.handle(twilioForm(COMPLETED, { body: tamperedBody })), 401, 'signature mismatch', secrets);
    const signedForOtherUrl = signTwilio(AUTH_TOKEN, 'https://hooks.example.com/webhooks/twilio?tenant=evil', COMPLETED);
    expectRejected(receiver.handle(twilioForm(COMPLETED, { signature: signedForOtherUrl })), 401, 'signature mismatch', secrets);
  });

  it('rejects a signed body with missing params with 422 naming the param', () => {
    const { From: _from, ...noFrom } = COMPLETED;
    expectRejected(receiver.handle(twilioForm(noFrom)), 422, 'missing param From', secrets);
    const { CallSid: _sid, ...noSid } = COMPLETED;
    expectRejected(receiver.handle(twilioForm(noSid)), 422, 'missing param CallSid', secrets);
    expectRejected(receiver.handle(twilioForm({ ...COMPLETED, CallDuration: 'forty' })), 422, /CallDuration/, [...secrets, 'forty']);
    expectRejected(receiver.handle(twilioForm({ ...COMPLETED, Timestamp: 'yesterday-ish' })), 422, /Timestamp/, [
      ...secrets,
      'yesterday-ish',
    ]);
  });

  describe('JSON transcript callback', () => {
    const TRANSCRIPT = {
      account_sid: COMPLETED.AccountSid,
      service_sid: 'GA0123456789abcdef0123456789abcdef',
      transcript_sid: 'GT0123456789abcdef0123456789abcdef',
      customer_key: COMPLETED.CallSid,
      event_type: 'voice_intelligence_transcript_available',
    };
    function twilioJson(payload: unknown, opts: { hashOf?: string; signUrl?: string; body?: string } = {}): WebhookRequest {
      const body = opts.body ?? JSON.stringify(payload);
      const hash = createHash('sha256')
        .update(opts.hashOf ?? body)
        .digest('hex');
      const url = `https://hooks.example.com/webhooks/twilio?bodySHA256=${hash}`;
      return request({
        url,
        contentType: 'application/json',
        rawBody: Buffer.from(body),
        headers: { 'x-twilio-signature': signTwilio(AUTH_TOKEN, opts.signUrl ?? url, {}) },
      });
    }

    it('accepts a signed transcript that joins its call', () => {
      const out = accepted(receiver.handle(twilioJson(TRANSCRIPT)));
      const [ix] = out.interactions;
      expect(ix).toMatchObject({
        channel: 'call',
        source: 'twilio',
        sourceId: `${COMPLETED.CallSid}/transcript/${TRANSCRIPT.transcript_sid}`,
        threadId: COMPLETED.CallSid,
        occurredAt: RECEIVED_AT.toISOString(),
        metadata: { transcriptSid: TRANSCRIPT.transcript_sid, serviceSid: TRANSCRIPT.service_sid },
      });
      expect(ix?.text).toBeUndefined();
      const [call] = accepted(receiver.handle(twilioForm(COMPLETED))).interactions;
      expect(ix?.threadId).toBe(call?.threadId);
    });

    it('uses the text when the payload carries it', () => {
      const [ix] = accepted(receiver.handle(twilioJson({ ...TRANSCRIPT, text: 'Hello, this is Ana.' }))).interactions;
      expect(ix?.text).toBe('Hello, this is Ana.');
    });

    it('rejects a wrong bodySHA256, a tampered body and a signature for another URL', () => {
      const s = [...secrets, ...Object.values(TRANSCRIPT)];
      expectRejected(receiver.handle(twilioJson(TRANSCRIPT, { hashOf: '{"other":1}' })), 401, 'body hash mismatch', s);
      const good = twilioJson(TRANSCRIPT);
      const tampered = { ...good, rawBody: Buffer.from(JSON.stringify({ ...TRANSCRIPT, customer_key: 'CAevil' })) };
      expectRejected(receiver.handle(tampered), 401, 'body hash mismatch', s);
      expectRejected(receiver.handle(twilioJson(TRANSCRIPT, { signUrl: 'https://hooks.example.com/other' })), 401, 'signature mismatch', s);
      expectRejected(receiver.handle({ ...good, url: 'https://hooks.example.com/webhooks/twilio' }), 401, 'missing bodySHA256', s);
      expectRejected(receiver.handle({ ...good, headers: {} }), 401, 'missing signature', s);
    });

    it('rejects malformed or incomplete signed JSON with 422', () => {
      expectRejected(receiver.handle(twilioJson(null, { body: '{not json' })), 422, 'malformed JSON body', secrets);
      const { transcript_sid: _t, ...noSid } = TRANSCRIPT;
      expectRejected(receiver.handle(twilioJson(noSid)), 422, 'missing field transcript_sid', secrets);
      const { customer_key: _k, ...noCall } = TRANSCRIPT;
      expectRejected(receiver.handle(twilioJson(noCall)), 422, /call_sid/, secrets);
    });
  });
});

// Aircall
const AIRCALL_TOKEN = 'aircall-webhook-token-45d2f1';
const CALL_ENDED = {
  resource: 'call',
  event: 'call.ended',
  timestamp: 1714564800,
  token: AIRCALL_TOKEN,
  data: {
    id: 812345,
    direction: 'inbound',
    status: 'done',
    started_at: 1714564500,
    ended_at: 1714564740,
    duration: 240,
    raw_digits: '+33 6 12 34 56 78',
    number: { id: 1, digits: '+1 415-555-0199', name: 'Sales' },
    user: { id: 7, name: 'Ana Agent', email: 'ana@example.com' },
  },
};
const TRANSCRIPTION = {
  resource: 'transcription',
  event: 'transcription.created',
  timestamp: 1714564900,
  token: AIRCALL_TOKEN,
  data: {
    id: 99,
    call_id: 812345,
    call_created_at: 1714564500,
    type: 'call',
    content: {
      language: 'en-US',
      utterances: [
        { start_time: 0.5, end_time: 2, text: 'Hello, Acme sales.', participant_type: 'internal', user_id: 7 },
        { start_time: 2.1, end_time: 5, text: 'Hi, I want a quote.', participant_type: 'external', phone_number: '+33612345678' },
      ],
    },
  },
};

function aircallReq(payload: unknown, body?: string): WebhookRequest {
  return request({ contentType: 'application/json', rawBody: Buffer.from(body ?? JSON.stringify(payload)) });
}

describe('AircallReceiver', () => {
  const receiver = new AircallReceiver({ webhookToken: AIRCALL_TOKEN });
  const secrets = [AIRCALL_TOKEN, '+33 6 12 34 56 78', 'ana@example.com'];

  it('accepts call.ended with the right token', () => {
    const out = accepted(receiver.handle(aircallReq(CALL_ENDED)));
    expect(out.interactions).toEqual([
      {
        channel: 'call',
        source: 'aircall',
        sourceId: '812345',
        threadId: '812345',
        direction: 'inbound',
        occurredAt: new Date(1714564740 * 1000).toISOString(),
        participants: [
          { role: 'caller', address: '+33 6 12 34 56 78' },
          { role: 'callee', address: '+1 415-555-0199' },
          { role: 'agent', address: 'ana@example.com', name: 'Ana Agent' },
        ],
        subject: 'Call done (240 s)',
        metadata: { durationSeconds: 240, callStatus: 'done' },
      },
    ]);
  });

  it('accepts transcription.created joining its call, with speaker labels', () => {
    const [ix] = accepted(receiver.handle(aircallReq(TRANSCRIPTION))).interactions;
    expect(ix).toMatchObject({ sourceId: '812345/transcript/99', threadId: '812345', channel: 'call' });
    expect(ix?.text).toBe('Agent: Hello, Acme sales.\nCustomer: Hi, I want a quote.');
    const [call] = accepted(receiver.handle(aircallReq(CALL_ENDED))).interactions;
    expect(ix?.threadId).toBe(call?.threadId);
  });

  it('ignores other events', () => {
    expect(receiver.handle(aircallReq({ ...CALL_ENDED, event: 'call.created' })).kind).toBe('ignored');
  });

  it('rejects a wrong, missing or tampered token with 401', () => {
    expectRejected(receiver.handle(aircallReq({ ...CALL_ENDED, token: 'wrong-token-value' })), 401, 'token mismatch', [
      ...secrets,
      'wrong-token-value',
    ]);
    expectRejected(receiver.handle(aircallReq({ ...CALL_ENDED, token: `${AIRCALL_TOKEN}x` })), 401, 'token mismatch', secrets);
    const { token: _t, ...noToken } = CALL_ENDED;
    expectRejected(receiver.handle(aircallReq(noToken)), 401, 'missing token', secrets);
    expectRejected(receiver.handle(aircallReq(null, '{garbage')), 401, 'missing token', secrets);
  });

  it('rejects a verified but malformed call with 422 naming the field', () => {
    expectRejected(
      receiver.handle(aircallReq({ ...CALL_ENDED, data: { ...CALL_ENDED.data, direction: 'sideways' } })),
      422,
      /data\.direction/,
      [...secrets, 'sideways'],
    );
    expectRejected(
      receiver.handle(aircallReq({ ...TRANSCRIPTION, data: { ...TRANSCRIPTION.data, call_id: undefined } })),
      422,
      /data\.call_id/,
      secrets,
    );
  });
});

// Generic
const SECRET = 'generic-secret-9f8e7d6c5b4a';
const NOW = new Date('2024-05-01T12:00:00.000Z');
const NOW_S = Math.floor(NOW.getTime() / 1000);
const COMPLETED_EVENT = {
  id: 'evt_1',
  event: 'call.completed',
  callId: 'call-777',
  direction: 'outbound',
  from: '+14155550100',
  to: '+442071838750',
  agent: 'bob@example.com',
  startedAt: '2024-05-01T11:50:00Z',
  durationSeconds: 95,
};
const TRANSCRIPT_EVENT = { ...COMPLETED_EVENT, id: 'evt_2', event: 'call.transcript', transcript: 'Bob: hi\nClient: hello' };

function genericReq(
  payload: unknown,
  opts: { ts?: number; body?: string; sign?: (ts: string, body: string) => string | undefined } = {},
): WebhookRequest {
  const body = opts.body ?? JSON.stringify(payload);
  const ts = String(opts.ts ?? NOW_S);
  const sig = opts.sign ? opts.sign(ts, body) : `v1=${createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex')}`;
  return request({
    contentType: 'application/json',
    rawBody: Buffer.from(body),
    headers: { 'x-aj-timestamp': ts, ...(sig === undefined ? {} : { 'x-aj-signature': sig }) },
  });
}

describe('GenericCallReceiver', () => {
  let clock = NOW;
  const receiver = new GenericCallReceiver({ secret: SECRET, now: () => clock });
  const secrets = [SECRET, '+14155550100', 'bob@example.com', 'Bob: hi'];

  it('accepts a signed call.completed and a transcript joining it', () => {
    clock = NOW;
    const req = genericReq(COMPLETED_EVENT);
    expect(req.headers['x-aj-signature']).toBe(genericCallSignature(SECRET, NOW_S, req.rawBody));
    const [call] = accepted(receiver.handle(req)).interactions;
    expect(call).toEqual({
      channel: 'call',
      source: 'calls',
      sourceId: 'call-777',
      threadId: 'call-777',
      direction: 'outbound',
      occurredAt: '2024-05-01T11:50:00Z',
      participants: [
        { role: 'caller', address: '+14155550100' },
        { role: 'callee', address: '+442071838750' },
        { role: 'agent', address: 'bob@example.com' },
      ],
      subject: 'Call completed (95 s)',
      metadata: { eventId: 'evt_1', durationSeconds: 95 },
    });
    const [tr] = accepted(receiver.handle(genericReq(TRANSCRIPT_EVENT))).interactions;
    expect(tr).toMatchObject({ sourceId: 'call-777/transcript/evt_2', threadId: call?.threadId, text: TRANSCRIPT_EVENT.transcript });
  });

  it('accepts one matching signature among several (rotation)', () => {
    clock = NOW;
    const sign = (ts: string, body: string) =>
      `v1=${'0'.repeat(64)}, v1=${createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex')}`;
    expect(receiver.handle(genericReq(COMPLETED_EVENT, { sign })).kind).toBe('accepted');
  });

  it('rejects bad, missing and tampered signatures', () => {
    clock = NOW;
    const wrong = (ts: string, body: string) => `v1=${createHmac('sha256', 'not-the-secret').update(`${ts}.${body}`).digest('hex')}`;
    expectRejected(receiver.handle(genericReq(COMPLETED_EVENT, { sign: wrong })), 401, 'signature mismatch', secrets);
    expectRejected(receiver.handle(genericReq(COMPLETED_EVENT, { sign: () => undefined })), 401, 'missing signature', secrets);
    const good = genericReq(COMPLETED_EVENT);
    const tampered = { ...good, rawBody: Buffer.from(JSON.stringify({ ...COMPLETED_EVENT, durationSeconds: 9999 })) };
    expectRejected(receiver.handle(tampered), 401, 'signature mismatch', secrets);
    // The timestamp is signed: moving it (still inside the window) breaks the signature.
    expectRejected(
      receiver.handle({ ...good, headers: { ...good.headers, 'x-aj-timestamp': String(NOW_S - 10) } }),
      401,
      'signature mismatch',
      secrets,
    );
  });

  it('rejects stale and future timestamps, and a valid request replayed after the tolerance', () => {
    clock = NOW;
    expectRejected(receiver.handle(genericReq(COMPLETED_EVENT, { ts: NOW_S - 301 })), 401, 'stale timestamp', secrets);
    expectRejected(receiver.handle(genericReq(COMPLETED_EVENT, { ts: NOW_S + 301 })), 401, 'stale timestamp', secrets);
    expect(receiver.handle(genericReq(COMPLETED_EVENT, { ts: NOW_S - 299 })).kind).toBe('accepted');
    const captured = genericReq(COMPLETED_EVENT);
    expect(receiver.handle(captured).kind).toBe('accepted');
    clock = new Date(NOW.getTime() + 301_000);
    expectRejected(receiver.handle(captured), 401, 'stale timestamp', secrets);
    clock = NOW;
  });

  it('honours a custom tolerance', () => {
    const strict = new GenericCallReceiver({ secret: SECRET, toleranceSeconds: 5, now: () => NOW });
    expectRejected(strict.handle(genericReq(COMPLETED_EVENT, { ts: NOW_S - 6 })), 401, 'stale timestamp', secrets);
  });

  it('rejects schema violations with 422 naming the field, never the value', () => {
    clock = NOW;
    expectRejected(receiver.handle(genericReq({ ...COMPLETED_EVENT, direction: 'upwards' })), 422, 'invalid field direction', [
      ...secrets,
      'upwards',
    ]);
    const { callId: _c, ...noCall } = COMPLETED_EVENT;
    expectRejected(receiver.handle(genericReq(noCall)), 422, 'invalid field callId', secrets);
    expectRejected(receiver.handle(genericReq({ ...COMPLETED_EVENT, extra: 'x' })), 422, 'unknown field extra', secrets);
    const { transcript: _t, ...noText } = TRANSCRIPT_EVENT;
    expectRejected(receiver.handle(genericReq(noText)), 422, /transcript/, secrets);
    expectRejected(receiver.handle(genericReq(null, { body: '{"id":' })), 422, 'malformed JSON body', secrets);
  });
});
