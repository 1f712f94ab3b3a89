/**
 * HubSpot form submissions polled through the real @hubspot/api-client against the local fake: pages, the
 * stable id, re-polls that add nothing, a failure mid-batch that leaves the cursor behind it, 429 / 5xx
 * back-off, a refused token on the record, and the repeating job that polls on its own.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.ts';
import { pollUntil } from '../helpers/wait.ts';
import { allEntries, inProcessPipeline, type InProcessPipeline } from '../helpers/pipeline.ts';
import { startFakeHubSpotForms, type FakeHubSpotForms } from '../fakes/hubspot-forms.fake.ts';
import { pollForm, stateKey } from '../../connectors/forms/form-poll.ts';
import { HubSpotFormsFeed, hubSpotSubmissionId } from '../../connectors/forms/hubspot-submissions.feed.ts';
import { FormPollTransientError } from '../../connectors/forms/errors/form-poll-transient.error.ts';
import type { JournalEntry } from '../../src/journal/entry.ts';

const GUID = '5b3c1d2e-0000-4000-8000-00000000c0de';
let tmp: { dir: string; cleanup: () => void };
let fake: FakeHubSpotForms;
let p: InProcessPipeline;

async function start(workers: boolean): Promise<void> {
  p = await inProcessPipeline(tmp.dir, workers ? {} : { queues: [] }, {
    HUBSPOT_ACCESS_TOKEN: fake.accessToken,
    HUBSPOT_BASE_PATH: fake.basePath,
    HUBSPOT_FORMS_POLL: `${GUID}=contact-sales`,
    FORMS_POLL_EVERY_SECONDS: '3600',
  });
}

beforeEach(async () => {
  tmp = tempDir('aj-hubspot-poll-');
  fake = await startFakeHubSpotForms();
});
afterEach(async () => {
  await p.stop();
  await fake.close();
  tmp.cleanup();
});

const kind = (k: string): JournalEntry[] => allEntries(p.path).filter((e) => e.kind === k);
const received = (): string[] => kind('interaction.received').map((e) => (e.payload as { sourceId: string }).sourceId);
const poll = () => p.runtime.forms.poll('hubspot-forms', GUID);

describe('HubSpot form submissions polling', () => {
  it('takes every page in once, as readable form interactions, with the cursor advances on the record; a re-poll adds nothing', async () => {
    await start(false);
    const subs = Array.from({ length: 119 }, (_, i) => fake.submit(GUID, { email: `lead${i}@customer.test` }));
    subs.push(
      fake.submit(
        GUID,
        {
          email: 'nocid@customer.test',
          values: [
            { name: 'email', value: 'nocid@customer.test' },
            { name: 'firstname', value: 'Ada' },
            { name: 'message', value: 'Demo please' },
            { name: 'hs_context', value: '{}' },
          ],
        },
        { withoutConversionId: true },
      ),
    );
    const first = await poll();
    expect(first).toMatchObject({ mode: 'backfill', seen: 120, accepted: 120, duplicates: 0 });
    expect(fake.requests.filter((r) => r.status === 200).map((r) => r.query['limit'])).toEqual(['50', '50', '50']);
    const ids = subs.map((s) => hubSpotSubmissionId(GUID, s));
    expect(new Set(received())).toEqual(new Set(ids));
    expect(ids.at(-1)).toMatch(/^h[0-9a-f]{40}$/); // no conversionId: the documented hash
    const nocid = kind('interaction.received').find((e) => (e.payload as { sourceId: string }).sourceId === ids.at(-1));
    expect(nocid).toMatchObject({
      source: 'hubspot-forms',
      // A form submission: the shipped policy's form channel rule (issue 14: it was sales-2y).
      retentionClass: 'marketing-90d',
      payload: {
        channel: 'form',
        direction: 'inbound',
        subject: 'Form "contact-sales"',
        participants: [{ role: 'submitter', address: 'nocid@customer.test', name: 'Ada' }],
        text: 'email: nocid@customer.test\nfirstname: Ada\nmessage: Demo please',
        metadata: { form: 'contact-sales', formGuid: GUID, pageUrl: 'https://www.example.com/contact' },
      },
    });
    const advances = kind('connector.cursor_advanced').map((e) => e.payload as { from: string | null; to: string });
    expect(advances.map((a) => a.to)).toEqual([subs[49], subs[99], subs[119]].map((s) => String(s?.submittedAt)));
    expect(advances[0]?.from).toBeNull();
    for (let i = 1; i < advances.length; i++) expect(advances[i]?.from).toBe(advances[i - 1]?.to);

    const again = await poll();
    expect(again).toMatchObject({ mode: 'incremental', accepted: 0 });
    expect(received()).toHaveLength(120);
    expect(kind('connector.cursor_advanced')).toHaveLength(3);
    const late = [fake.submit(GUID, { email: 'late1@customer.test' }), fake.submit(GUID, { email: 'late2@customer.test' })];
    expect(await poll()).toMatchObject({ accepted: 2 });
    expect(received()).toHaveLength(122);
    expect(p.runtime.forms.store.get(stateKey('hubspot-forms', GUID)).cursor).toBe(String(late[1]?.submittedAt));
  });

  it('leaves the cursor behind a failure mid-batch, and the retry completes the batch without duplicates', async () => {
    await start(false);
    const subs = Array.from({ length: 120 }, (_, i) => fake.submit(GUID, { email: `lead${i}@customer.test` }));
    const state = p.runtime.forms.store;
    const feed = new HubSpotFormsFeed({
      accessToken: fake.accessToken,
      basePath: fake.basePath,
      formGuid: GUID,
      formName: 'contact-sales',
    });
    let calls = 0;
    const intake = p.runtime.pipeline.intake.bind(p.runtime.pipeline);
    const failing = pollForm({
      connector: 'hubspot-forms',
      formId: GUID,
      feed,
      journal: p.journal,
      state,
      credential: fake.accessToken,
      intake: async (ix) => {
        if (++calls === 70) throw new Error('journal unavailable');
        return intake(ix);
      },
    });
    await expect(failing).rejects.toThrow('journal unavailable');
    expect(state.get(stateKey('hubspot-forms', GUID)).cursor).toBe(String(subs[49]?.submittedAt)); // behind #70
    expect(received()).toHaveLength(69);
    const retry = await poll();
    expect(retry).toMatchObject({ accepted: 51 }); // #70..#120; #50 at the cursor is listed again and recognised
    expect(received()).toHaveLength(120);
    expect(new Set(received()).size).toBe(120);
    expect(state.get(stateKey('hubspot-forms', GUID)).cursor).toBe(String(subs[119]?.submittedAt));
  });

  it('recognises submissions already on the record even when the form was renamed since', async () => {
    await start(false);
    fake.submit(GUID, { email: 'a@customer.test' });
    await poll();
    // Same submissions, read with another form name: no idempotency conflict, nothing new.
    const feed = new HubSpotFormsFeed({ accessToken: fake.accessToken, basePath: fake.basePath, formGuid: GUID, formName: 'renamed' });
    const r = await pollForm({
      connector: 'hubspot-forms',
      formId: GUID,
      feed,
      journal: p.journal,
      state: p.runtime.forms.store,
      credential: fake.accessToken,
      intake: (ix) => p.runtime.pipeline.intake(ix),
      accounted: (s, id) => p.runtime.pipeline.accounted(s, id),
    });
    expect(r).toMatchObject({ seen: 1, duplicates: 1, accepted: 0 });
  });

  it('backs off on 429 and 5xx, and gives the job back to BullMQ when HubSpot stays down', async () => {
    await start(false);
    fake.submit(GUID, { email: 'a@customer.test' });
    fake.rateLimit(2, 0);
    expect(await poll()).toMatchObject({ accepted: 1 });
    expect(fake.requests.map((r) => r.status)).toEqual([429, 429, 200]);
    fake.submit(GUID, { email: 'b@customer.test' });
    fake.serverError(10, 503);
    const before = p.runtime.forms.store.get(stateKey('hubspot-forms', GUID)).cursor;
    await expect(poll()).rejects.toBeInstanceOf(FormPollTransientError);
    expect(p.runtime.forms.store.get(stateKey('hubspot-forms', GUID)).cursor).toBe(before);
    fake.serverError(0);
    expect(await poll()).toMatchObject({ accepted: 1 });
    expect(received()).toHaveLength(2);
  });

  it('journals a refused token as needs_consent with the window affected, once, and stops polling', async () => {
    await start(false);
    fake.submit(GUID, { email: 'a@customer.test' });
    await poll();
    fake.revoke();
    fake.submit(GUID, { email: 'b@customer.test' });
    expect(await poll()).toMatchObject({ mode: 'needs-consent' });
    expect(p.runtime.forms.store.get(stateKey('hubspot-forms', GUID)).status).toBe('needs_consent');
    const health = kind('connector.health');
    expect(health).toHaveLength(1);
    expect(health[0]).toMatchObject({
      source: 'hubspot-forms',
      payload: { connector: 'hubspot-forms', account: GUID, status: 'needs_consent' },
    });
    expect((health[0]?.payload as { windowStart?: string }).windowStart).toBeDefined();
    const calls = fake.requests.length;
    expect(await poll()).toMatchObject({ mode: 'needs-consent' });
    expect(fake.requests.length).toBe(calls); // parked: HubSpot is not asked again with the refused token
    expect(kind('connector.health')).toHaveLength(1);
  });

  it('polls on its own: the repeating job takes the submissions in through the whole pipeline', async () => {
    const subs = [fake.submit(GUID, { email: 'a@customer.test' }), fake.submit(GUID, { email: 'b@customer.test' })];
    await start(true);
    await pollUntil(() => kind('ai.decision').length >= 2, { timeoutMs: 60_000, intervalMs: 200 });
    expect(new Set(received())).toEqual(new Set(subs.map((s) => s.conversionId)));
    expect(kind('ai.decision')).toHaveLength(2);
  });
});
