/**
 * Google Forms responses polled through the real googleapis client against the local fake: consent on our
 * callback, readable answers (question titles from forms.get), the `timestamp >=` filter from the cursor,
 * re-polls that add nothing, a failure mid-batch, 429 back-off, and a revoked grant on the record.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.ts';
import { allEntries, inProcessPipeline, type InProcessPipeline } from '../helpers/pipeline.ts';
import { FORMS_AUTHORIZATION_CODE, startFakeGoogleForms, type FakeGoogleForms } from '../fakes/google-forms.fake.ts';
import { pollForm, stateKey } from '../../connectors/forms/form-poll.ts';
import { GoogleFormsFeed } from '../../connectors/forms/google-forms.feed.ts';
import { formsClient } from '../../connectors/forms/google-forms.oauth.ts';
import { createWebServer } from '../../src/web/server.ts';
import type { JournalEntry } from '../../src/journal/entry.ts';

const FORM = '1FAIpQLSd-demo_form-0001';
let tmp: { dir: string; cleanup: () => void };
let fake: FakeGoogleForms;
let p: InProcessPipeline;

beforeEach(async () => {
  tmp = tempDir('aj-google-forms-');
  fake = await startFakeGoogleForms();
  fake.addForm(FORM, 'Contact sales', [
    { questionId: '1a2b', title: 'Company' },
    { questionId: '3c4d', title: 'What do you need?' },
  ]);
  p = await inProcessPipeline(
    tmp.dir,
    { queues: [] },
    {
      GOOGLE_CLIENT_ID: fake.clientId,
      GOOGLE_CLIENT_SECRET: fake.clientSecret,
      GOOGLE_TOKEN_URL: fake.tokenUrl,
      GOOGLE_FORMS_API_ROOT: fake.rootUrl,
      WEBHOOK_PUBLIC_URL: 'https://hooks.example.test',
    },
  );
});
afterEach(async () => {
  await p.stop();
  await fake.close();
  tmp.cleanup();
});

const kind = (k: string): JournalEntry[] => allEntries(p.path).filter((e) => e.kind === k);
const received = (): string[] => kind('interaction.received').map((e) => (e.payload as { sourceId: string }).sourceId);
const poll = () => p.runtime.forms.poll('google-forms', FORM);

async function connect(): Promise<void> {
  const url = new URL((await p.runtime.forms.googleConsentUrl(FORM)) ?? '');
  expect(url.searchParams.get('scope')).toBe(
    'https://www.googleapis.com/auth/forms.responses.readonly https://www.googleapis.com/auth/forms.body.readonly',
  );
  expect(url.searchParams.get('redirect_uri')).toBe('https://hooks.example.test/oauth/google-forms/callback');
  const app = createWebServer({ checks: [], googleFormsConsent: (code, state) => p.runtime.forms.completeGoogleConsent(code, state) });
  const ok = await app.inject({
    method: 'GET',
    url: `/oauth/google-forms/callback?code=${encodeURIComponent(FORMS_AUTHORIZATION_CODE)}&state=${url.searchParams.get('state') ?? ''}`,
  });
  expect(ok.statusCode).toBe(200);
  const replay = await app.inject({
    method: 'GET',
    url: `/oauth/google-forms/callback?code=${encodeURIComponent(FORMS_AUTHORIZATION_CODE)}&state=${url.searchParams.get('state') ?? ''}`,
  });
  expect(replay.statusCode).toBe(400); // the state is single-use
  await app.close();
}

describe('Google Forms polling', () => {
  it('connects a form, takes its responses in readably and once, and follows the cursor with the timestamp filter', async () => {
    await connect();
    expect(kind('inbox.connected')).toMatchObject([{ source: 'google-forms', payload: { connector: 'google-forms', account: FORM } }]);
    const first = [
      fake.respond(FORM, { '1a2b': 'Acme', '3c4d': 'A demo for 25 seats' }, { email: 'ada@acme.test' }),
      fake.respond(FORM, { '1a2b': 'Globex', '3c4d': ['Pricing', 'Security review'] }),
    ];
    expect(await poll()).toMatchObject({ mode: 'backfill', accepted: 2 });
    const ada = kind('interaction.received').find((e) => (e.payload as { sourceId: string }).sourceId === first[0]?.responseId);
    expect(ada).toMatchObject({
      source: 'google-forms',
      // A form submission: the shipped policy's form channel rule (issue 14: it was sales-2y).
      retentionClass: 'marketing-90d',
      payload: {
        channel: 'form',
        subject: 'Form "Contact sales"',
        participants: [{ role: 'submitter', address: 'ada@acme.test' }],
        text: 'Company: Acme\nWhat do you need?: A demo for 25 seats',
        metadata: { form: 'Contact sales', formId: FORM },
      },
    });
    const cursor = p.runtime.forms.store.get(stateKey('google-forms', FORM)).cursor;
    expect(cursor).toBe(first[1]?.lastSubmittedTime);
    expect(await poll()).toMatchObject({ accepted: 0 });
    const lists = fake.requests.filter((r) => r.path.endsWith('/responses'));
    expect(lists.at(-1)?.query['filter']).toBe(`timestamp >= ${cursor ?? ''}`);
    const late = fake.respond(FORM, { '1a2b': 'Initech', '3c4d': 'Renewal' });
    expect(await poll()).toMatchObject({ accepted: 1 });
    expect(received()).toEqual([first[0]?.responseId, first[1]?.responseId, late.responseId]);
    const advances = kind('connector.cursor_advanced').map((e) => e.payload as { from: string | null; to: string });
    expect(advances).toEqual([
      { connector: 'google-forms', account: FORM, from: null, to: first[1]?.lastSubmittedTime },
      { connector: 'google-forms', account: FORM, from: first[1]?.lastSubmittedTime, to: late.lastSubmittedTime },
    ]);
  });

  it('leaves the cursor behind a failure mid-batch; the retry completes it; 429s are backed off', async () => {
    await connect();
    const responses = Array.from({ length: 12 }, (_, i) => fake.respond(FORM, { '1a2b': `Company ${i}` }));
    const grant = p.runtime.forms.store.grant(FORM);
    const auth = formsClient(
      {
        clientId: fake.clientId,
        clientSecret: fake.clientSecret,
        redirectUrl: 'https://hooks.example.test/oauth/google-forms/callback',
        tokenUrl: fake.tokenUrl,
      },
      grant?.refreshToken ?? '',
      () => undefined,
    );
    const feed = new GoogleFormsFeed({ formId: FORM, auth, rootUrl: fake.rootUrl });
    let calls = 0;
    const failing = pollForm({
      connector: 'google-forms',
      formId: FORM,
      feed,
      journal: p.journal,
      state: p.runtime.forms.store,
      credential: grant?.refreshToken ?? '',
      advanceEvery: 5,
      intake: async (ix) => {
        if (++calls === 8) throw new Error('journal unavailable');
        return p.runtime.pipeline.intake(ix);
      },
    });
    await expect(failing).rejects.toThrow('journal unavailable');
    expect(p.runtime.forms.store.get(stateKey('google-forms', FORM)).cursor).toBe(responses[4]?.lastSubmittedTime);
    fake.rateLimit(2);
    expect(await poll()).toMatchObject({ accepted: 5 });
    expect(fake.requests.filter((r) => r.status === 429)).toHaveLength(2);
    expect(new Set(received())).toEqual(new Set(responses.map((r) => r.responseId)));
    expect(received()).toHaveLength(12);
  });

  it('marks a revoked grant as needing consent with the window on the record, and a new consent resumes', async () => {
    await connect();
    fake.respond(FORM, { '1a2b': 'Acme' });
    await poll();
    fake.revoke();
    const missed = fake.respond(FORM, { '1a2b': 'Globex' });
    expect(await poll()).toMatchObject({ mode: 'needs-consent' });
    const health = kind('connector.health');
    expect(health).toHaveLength(1);
    expect(health[0]).toMatchObject({ source: 'google-forms', payload: { status: 'needs_consent', account: FORM } });
    expect((health[0]?.payload as { windowEnd?: string }).windowEnd).toBeDefined();
    expect(await poll()).toMatchObject({ mode: 'needs-consent' });
    expect(kind('connector.health')).toHaveLength(1);
    await connect();
    expect(await poll()).toMatchObject({ accepted: 1 });
    expect(received()).toContain(missed.responseId);
  });
});
