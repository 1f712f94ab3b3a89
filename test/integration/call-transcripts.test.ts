/**
 * A transcript belongs on its call's activity (issue 16, finding 8: 12 transcripts made 12 extra call activities).
 * Signed call webhooks of three providers through the real web server, pipeline, workers and batched HubSpot
 * writer, against the stateful HubSpot fake (real @hubspot/api-client): one call activity per call, whatever
 * arrives first; the transcript's section lands in the call's body, and the change is journaled from → to.
 */
import { createHash, createHmac } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { tempDir } from '../helpers/tmp.ts';
import { waitFor } from '../helpers/wait.ts';
import { allEntries, drained, inProcessPipeline, type InProcessPipeline } from '../helpers/pipeline.ts';
import { genericCall, signedRaw, webhookServer } from '../helpers/web.ts';
import { startHubSpotFake, type HubSpotFake, type HubSpotFakeObject } from '../fakes/hubspot.fake.ts';
import type { JournalEntry } from '../../src/journal/entry.ts';
import { redrive } from '../../src/pipeline/redrive.ts';

const TOKEN = 'pat-na1-transcripts-token';
const CALLS_SECRET = 'calls-secret-0123456789abcdef';
const TWILIO_TOKEN = 'twilio-token-0123456789abcdef';
const AIRCALL_TOKEN = 'aircall-token-0123456789abcdef';
const PUBLIC_URL = 'https://hooks.example.test';

let tmp: { dir: string; cleanup: () => void };
let fake: HubSpotFake;
let p: InProcessPipeline;
let web: Awaited<ReturnType<typeof webhookServer>>;
let app: FastifyInstance;

beforeEach(async () => {
  tmp = tempDir('aj-transcripts-');
  fake = await startHubSpotFake({ accessToken: TOKEN });
  const env = {
    HUBSPOT_ACCESS_TOKEN: TOKEN,
    HUBSPOT_BASE_PATH: fake.baseUrl,
    HUBSPOT_BATCH_WINDOW_MS: '100',
    HUBSPOT_DEAL_RULE: 'none',
    CALLS_WEBHOOK_SECRET: CALLS_SECRET,
    TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
    AIRCALL_WEBHOOK_TOKEN: AIRCALL_TOKEN,
    WEBHOOK_PUBLIC_URL: PUBLIC_URL,
  };
  p = await inProcessPipeline(tmp.dir, {}, env);
  web = await webhookServer(p, tmp.dir, env, { rejectionsPerMinute: 100 });
  app = web.app;
});
afterEach(async () => {
  await web.close();
  await p.stop();
  await fake.close();
  tmp.cleanup();
});

const payload = (e: JournalEntry): Record<string, unknown> => e.payload as Record<string, unknown>;
const twilioSig = (url: string, params: Record<string, string>): string =>
  createHmac('sha1', TWILIO_TOKEN)
    .update(
      Object.keys(params)
        .sort()
        .reduce((acc, k) => acc + k + params[k], url),
    )
    .digest('base64');

async function post(url: string, req: { headers: Record<string, string>; payload: string }): Promise<void> {
  const res = await app.inject({ method: 'POST', url, ...req });
  expect(res.statusCode, `${url}: ${res.body}`).toBe(200);
}
const genericCallEvent = (id: string): Promise<void> =>
  post(
    '/webhooks/calls',
    signedRaw(CALLS_SECRET, JSON.stringify(genericCall(id, Date.now(), { subject: `Pricing call ${id}` })), Date.now()),
  );
const genericTranscript = (id: string): Promise<void> =>
  post(
    '/webhooks/calls',
    signedRaw(
      CALLS_SECRET,
      JSON.stringify(
        genericCall(id, Date.now(), {
          id: `evt-${id}-t`,
          event: 'call.transcript',
          transcript: `Customer: we would like a quote for ${id.length * 10} seats and a demo next week.`,
        }),
      ),
      Date.now(),
    ),
  );
function twilioCall(sid: string): Promise<void> {
  const params = {
    CallSid: sid,
    AccountSid: 'ACtest',
    From: '+15555550177',
    To: '+15555550100',
    CallStatus: 'completed',
    Direction: 'inbound',
    CallDuration: '42',
  };
  return post('/webhooks/twilio', {
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-twilio-signature': twilioSig(`${PUBLIC_URL}/webhooks/twilio`, params),
    },
    payload: new URLSearchParams(params).toString(),
  });
}
function twilioTranscript(sid: string): Promise<void> {
  // Conversational Intelligence only references the transcript: metadata.transcriptSid, no text.
  const body = JSON.stringify({
    account_sid: 'ACtest',
    service_sid: 'GAtest',
    transcript_sid: 'GT0001',
    customer_key: sid,
    event_type: 'voice_intelligence_transcript_available',
  });
  const url = `/webhooks/twilio?bodySHA256=${createHash('sha256').update(body).digest('hex')}`;
  return post(url, {
    headers: { 'content-type': 'application/json', 'x-twilio-signature': twilioSig(`${PUBLIC_URL}${url}`, {}) },
    payload: body,
  });
}
const t0 = Math.floor(Date.now() / 1000) - 600;
const aircallCall = (id: number): Promise<void> =>
  post('/webhooks/aircall', {
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({
      resource: 'call',
      event: 'call.ended',
      timestamp: t0 + 240,
      token: AIRCALL_TOKEN,
      data: {
        id,
        direction: 'inbound',
        status: 'done',
        started_at: t0,
        ended_at: t0 + 200,
        duration: 200,
        raw_digits: '+1 415-555-0142',
        number: { id: 1, digits: '+1 415-555-0100', name: 'Sales' },
      },
    }),
  });
const aircallTranscript = (id: number): Promise<void> =>
  post('/webhooks/aircall', {
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({
      resource: 'transcription',
      event: 'transcription.created',
      timestamp: t0 + 260,
      token: AIRCALL_TOKEN,
      data: {
        id: id + 1,
        call_id: id,
        call_created_at: t0,
        type: 'call',
        content: {
          language: 'en-US',
          utterances: [
            { start_time: 0, end_time: 2, text: 'Hello, sales.', participant_type: 'internal' },
            { start_time: 2, end_time: 5, text: 'Our invoice shows a duplicate charge, please refund it.', participant_type: 'external' },
          ],
        },
      },
    }),
  });

/** The interaction journaled for `sourceId` of `source` (waits for it: a webhook's 200 means it is committed). */
function received(source: string, sourceId: string): JournalEntry {
  const e = allEntries(p.path).find((x) => x.kind === 'interaction.received' && x.source === source && payload(x).sourceId === sourceId);
  if (!e) throw new Error(`${source}/${sourceId} is not in the journal`);
  return e;
}
const activityOf = (entryId: string): HubSpotFakeObject | undefined =>
  fake.objects('calls').find((o) => o.properties['journal_entry_id'] === entryId);
const until = (what: string, ok: () => boolean, timeoutMs = 60_000): Promise<true> =>
  waitFor(() => ok(), {
    what,
    timeoutMs,
    intervalMs: 50,
    detail: () => `calls in HubSpot: ${JSON.stringify(fake.objects('calls').map((o) => o.properties['journal_entry_id']))}`,
  });

describe('a call and its transcripts in HubSpot', () => {
  it("one call activity per call: each transcript updates its call's activity, on the record from → to", { timeout: 180_000 }, async () => {
    // Each call is in HubSpot before its transcript arrives (so the transcript changes an activity HubSpot has).
    type Pair = { source: string; call: string; transcript: string; sendCall: () => Promise<void>; sendTranscript: () => Promise<void> };
    const pairs: Pair[] = [
      ...['CA1001', 'CA1002', 'CA1003', 'CA1004', 'CA1005'].map((id) => ({
        source: 'calls',
        call: id,
        transcript: `${id}/transcript/evt-${id}-t`,
        sendCall: () => genericCallEvent(id),
        sendTranscript: () => genericTranscript(id),
      })),
      {
        source: 'twilio',
        call: 'CA00000000000000000000000000000042',
        transcript: 'CA00000000000000000000000000000042/transcript/GT0001',
        sendCall: () => twilioCall('CA00000000000000000000000000000042'),
        sendTranscript: () => twilioTranscript('CA00000000000000000000000000000042'),
      },
      {
        source: 'aircall',
        call: '7001',
        transcript: '7001/transcript/7002',
        sendCall: () => aircallCall(7001),
        sendTranscript: () => aircallTranscript(7001),
      },
    ];
    for (const pair of pairs) {
      await pair.sendCall();
      const call = received(pair.source, pair.call);
      await until(`the activity of ${pair.source}/${pair.call}`, () => activityOf(call.id) !== undefined);
      await pair.sendTranscript();
    }
    // And one transcript that arrives before its call: it is the activity's anchor, the call joins it.
    await genericTranscript('CA1006');
    const early = received('calls', 'CA1006/transcript/evt-CA1006-t');
    await until('the activity of the early transcript', () => activityOf(early.id) !== undefined);
    await genericCallEvent('CA1006');
    const late = received('calls', 'CA1006');

    const expected = [
      ...pairs.map((x) => ({ anchor: received(x.source, x.call), other: received(x.source, x.transcript), heading: 'Transcript' })),
      { anchor: early, other: late, heading: 'Call' },
    ];
    await until("every transcript on its call's activity", () =>
      expected.every((x) =>
        (activityOf(x.anchor.id)?.properties['hs_call_body'] ?? '').includes(`${x.heading} (journal entry ${x.other.id}):`),
      ),
    );
    await drained(p.prefix);

    const entries = allEntries(p.path);
    expect(entries.filter((e) => e.kind === 'interaction.received')).toHaveLength(2 * expected.length);
    // Exactly one call activity per call, carrying its anchor's entry id; none for the others.
    const calls = fake.objects('calls');
    expect(calls).toHaveLength(expected.length);
    expect(new Set(calls.map((o) => o.properties['journal_entry_id']))).toEqual(new Set(expected.map((x) => x.anchor.id)));
    for (const x of expected) {
      const body = activityOf(x.anchor.id)?.properties['hs_call_body'] ?? '';
      expect(body, x.anchor.correlationId).toMatch(
        new RegExp(
          `^Summary: [^\\n]+\\nCategory: [^\\n]+\\n(Next steps: [^\\n]+\\n)?Journal entry: ${x.anchor.id}\\n\\n${x.heading} \\(journal entry ${x.other.id}\\):\\nSummary: [^\\n]+\\nCategory: `,
        ),
      );
      expect(x.other.correlationId).toBe(x.anchor.correlationId);
      const chain = entries.filter((e) => e.correlationId === x.anchor.correlationId);
      // Every activity write of the correlation is of the anchor's activity; the last one holds both interactions.
      const upserts = chain.filter((e) => e.kind === 'crm.write' && String(payload(e).path).endsWith('/batch/upsert'));
      expect(new Set(upserts.map((e) => payload(e).entryId))).toEqual(new Set([x.anchor.id]));
      expect((payload(upserts.at(-1) as JournalEntry).members as { entryId: string }[]).map((m) => m.entryId)).toEqual([
        x.anchor.id,
        x.other.id,
      ]);
      // The body's change is on the record: from the anchor's alone to the anchor's with the other's section.
      const changed = chain.filter((e) => e.kind === 'state.changed' && payload(e).field === 'hs_call_body');
      expect(changed, x.anchor.correlationId).toHaveLength(1);
      const change = payload(changed[0] as JournalEntry);
      expect(change.entity).toBe(`hubspot/calls/${activityOf(x.anchor.id)?.id}`);
      expect(String(change.from)).toMatch(new RegExp(`Journal entry: ${x.anchor.id}$`));
      expect(String(change.from)).not.toContain('(journal entry');
      expect(change.to).toBe(activityOf(x.anchor.id)?.properties['hs_call_body']);
    }
    // The call that came late gave its activity its own title (the transcript's was "Call transcript").
    expect(activityOf(early.id)?.properties['hs_call_title']).toBe('Pricing call CA1006');
    expect(entries.filter((e) => e.kind === 'job.failed')).toEqual([]);
    expect(fake.violations).toEqual([]);
    // The re-drive finds every call and transcript finished (written and matched on its call's activity).
    const requeued: unknown[] = [];
    const report = await redrive({
      journal: p.journal,
      enqueue: (queue, data) => (requeued.push({ queue, data }), Promise.resolve()),
      fromSeq: 1,
      graceMs: 0,
    });
    expect(requeued).toEqual([]);
    expect(report.redriven).toBe(0);
  });
});
