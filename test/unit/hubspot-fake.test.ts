/**
 * The HubSpot fake, driven only through the real `@hubspot/api-client` (SDK retries off): upsert idempotency,
 * unique values, 207 partial failures, 429 with both policies and a rolling limit that really trips, 5xx, slow
 * answers, v4 associations and search, with zero spec violations on the happy paths and a bad request caught.
 */
import { Client } from '@hubspot/api-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHubSpotFake } from '../fakes/hubspot.fake.ts';
import type { HubSpotFake } from '../fakes/hubspot.fake.ts';

const TOKEN = 'pat-test-token';

interface Failure {
  readonly code: number;
  readonly body: unknown;
  readonly headers: Record<string, string>;
}

/** The ApiException a typed SDK call throws, as plain data (fails the test if the call succeeds). */
async function failure(call: Promise<unknown>): Promise<Failure> {
  try {
    await call;
  } catch (error) {
    const e = error as { code?: unknown; body?: unknown; headers?: unknown };
    if (typeof e.code !== 'number') throw error;
    return { code: e.code, body: e.body, headers: (e.headers ?? {}) as Record<string, string> };
  }
  throw new Error('expected the call to fail');
}

function clientFor(fake: HubSpotFake, accessToken: string | null = TOKEN): Client {
  return new Client({ ...(accessToken === null ? {} : { accessToken }), basePath: fake.baseUrl, numberOfApiCallRetries: 0 });
}

const HUBSPOT_DEFINED = 'HUBSPOT_DEFINED' as const;

async function bootstrapJournalProperty(client: Client, objectType: string): Promise<void> {
  await client.crm.properties.coreApi.create(objectType, {
    name: 'journal_entry_id',
    label: 'Journal entry id',
    type: 'string' as never,
    fieldType: 'text' as never,
    groupName: `${objectType.replace(/s$/, '')}information`,
    hasUniqueValue: true,
  });
}

describe('HubSpot fake', () => {
  let fake: HubSpotFake;
  let client: Client;

  beforeEach(async () => {
    fake = await startHubSpotFake({ accessToken: TOKEN });
    client = clientFor(fake);
  });
  afterEach(async () => {
    await fake.close();
  });

  it('upserts by journal_entry_id: twice the same id gives one object, the second answer says new: false', async () => {
    await bootstrapJournalProperty(client, 'emails');
    const input = {
      id: 'je-1',
      idProperty: 'journal_entry_id',
      properties: {
        hs_timestamp: '2026-11-27T10:00:00.000Z',
        hs_email_direction: 'INCOMING_EMAIL',
        hs_email_subject: 'Pricing',
        hs_email_text: 'hello',
      },
    };
    const first = await client.crm.objects.emails.batchApi.upsert({ inputs: [input] });
    const second = await client.crm.objects.emails.batchApi.upsert({
      inputs: [{ ...input, properties: { ...input.properties, hs_email_subject: 'Pricing (edited)' } }],
    });

    expect(first.results).toHaveLength(1);
    expect(first.results[0]?._new).toBe(true);
    expect(second.results[0]?._new).toBe(false);
    expect(second.results[0]?.id).toBe(first.results[0]?.id);
    const stored = fake.objects('emails');
    expect(stored).toHaveLength(1);
    expect(stored[0]?.properties).toMatchObject({ journal_entry_id: 'je-1', hs_email_subject: 'Pricing (edited)' });

    const byJournalId = await client.crm.objects.emails.basicApi.getById(
      'je-1',
      ['hs_email_subject', 'journal_entry_id'],
      undefined,
      undefined,
      false,
      'journal_entry_id',
    );
    expect(byJournalId.id).toBe(first.results[0]?.id);
    expect(byJournalId.properties).toMatchObject({ hs_email_subject: 'Pricing (edited)', journal_entry_id: 'je-1' });
    const read = await client.crm.objects.emails.batchApi.read({
      idProperty: 'journal_entry_id',
      inputs: [{ id: 'je-1' }],
      properties: ['journal_entry_id'],
      propertiesWithHistory: [],
    });
    expect(read.results.map((r) => r.id)).toEqual([first.results[0]?.id]);
    expect(fake.violations).toEqual([]);
  });

  it('creates a property once (409 the second time, 404 for a missing one) and enforces hasUniqueValue', async () => {
    await bootstrapJournalProperty(client, 'calls');
    const again = await failure(bootstrapJournalProperty(client, 'calls'));
    expect(again.code).toBe(409);
    const missing = await failure(client.crm.properties.coreApi.getByName('notes', 'journal_entry_id'));
    expect(missing.code).toBe(404);
    const got = await client.crm.properties.coreApi.getByName('calls', 'journal_entry_id');
    expect(got.hasUniqueValue).toBe(true);
    expect(fake.propertyDefinitions('calls').find((p) => p.name === 'journal_entry_id')).toMatchObject({
      hasUniqueValue: true,
      type: 'string',
    });

    const props = {
      journal_entry_id: 'je-7',
      hs_call_direction: 'OUTBOUND',
      hs_call_duration: '65000',
      hs_timestamp: '2026-11-27T10:00:00.000Z',
    };
    await client.crm.objects.calls.basicApi.create({ properties: props, associations: [] });
    const duplicate = await failure(client.crm.objects.calls.basicApi.create({ properties: props, associations: [] }));
    expect(duplicate.code).toBe(409);

    const batch = await client.crm.objects.calls.batchApi.create({
      inputs: [
        { properties: { ...props, journal_entry_id: 'je-8' }, associations: [] },
        { properties: props, associations: [] },
      ],
    });
    expect(batch.results).toHaveLength(1);
    expect('errors' in batch && Array.isArray(batch.errors) ? batch.errors.length : 0).toBe(1);
    expect(
      fake
        .objects('calls')
        .map((c) => c.properties['journal_entry_id'])
        .sort(),
    ).toEqual(['je-7', 'je-8']);
    expect(fake.violations).toEqual([]);
  });

  it('answers 207 with item errors for a bad enum value and for an injected invalid property, keeping the good items', async () => {
    await bootstrapJournalProperty(client, 'emails');
    const good = { id: 'je-a', idProperty: 'journal_entry_id', properties: { hs_email_direction: 'EMAIL', hs_timestamp: '1764237600000' } };
    const badEnum = {
      id: 'je-b',
      idProperty: 'journal_entry_id',
      properties: { hs_email_direction: 'SIDEWAYS', hs_timestamp: '1764237600000' },
    };
    const partial = await client.crm.objects.emails.batchApi.upsertWithHttpInfo({ inputs: [good, badEnum] });
    expect(partial.httpStatusCode).toBe(207);
    const body = partial.data as {
      results: Array<{ properties: Record<string, string> }>;
      errors?: Array<{ category: string; message: string }>;
    };
    expect(body.results.map((r) => r.properties['journal_entry_id'])).toEqual(['je-a']);
    expect(body.errors?.[0]?.category).toBe('VALIDATION_ERROR');
    expect(body.errors?.[0]?.message).toContain('hs_email_direction');

    fake.inject({ kind: 'invalid', property: 'hs_email_subject' }, { pathPrefix: '/crm/v3/objects/emails' });
    const injected = await client.crm.objects.emails.batchApi.upsertWithHttpInfo({
      inputs: [
        { id: 'je-c', idProperty: 'journal_entry_id', properties: { hs_email_subject: 'x', hs_email_direction: 'EMAIL' } },
        { id: 'je-d', idProperty: 'journal_entry_id', properties: { hs_email_direction: 'FORWARDED_EMAIL' } },
      ],
    });
    expect(injected.httpStatusCode).toBe(207);
    expect(
      fake
        .objects('emails')
        .map((o) => o.properties['journal_entry_id'])
        .sort(),
    ).toEqual(['je-a', 'je-d']);

    // The fault was for one request only: the same item now goes through.
    const retried = await client.crm.objects.emails.batchApi.upsertWithHttpInfo({
      inputs: [{ id: 'je-c', idProperty: 'journal_entry_id', properties: { hs_email_subject: 'x', hs_email_direction: 'EMAIL' } }],
    });
    expect(retried.httpStatusCode).toBe(200);
    const callDirection = await failure(
      client.crm.objects.calls.basicApi.create({ properties: { hs_call_direction: 'UPWARDS' }, associations: [] }),
    );
    expect(callDirection.code).toBe(400);
    expect(fake.violations).toEqual([]);
  });

  it('sends rate-limit headers and HubSpot 429 bodies for injected TEN_SECONDLY_ROLLING and DAILY faults', async () => {
    const ok = await client.crm.contacts.basicApi.getPageWithHttpInfo(10);
    expect(ok.headers['x-hubspot-ratelimit-max']).toBe('100');
    expect(ok.headers['x-hubspot-ratelimit-remaining']).toBe('99');
    expect(ok.headers['x-hubspot-ratelimit-interval-milliseconds']).toBe('10000');
    expect(ok.headers['x-hubspot-ratelimit-daily']).toBe('250000');
    expect(ok.headers['x-hubspot-ratelimit-daily-remaining']).toBe('249999');
    expect(ok.headers['x-hubspot-correlation-id']).toMatch(/^[0-9a-f-]{36}$/);

    fake.inject({ kind: '429', policy: 'TEN_SECONDLY_ROLLING', retryAfterSeconds: 3 });
    const secondly = await client.apiRequest({ method: 'GET', path: '/crm/v3/objects/contacts' });
    expect(secondly.status).toBe(429);
    expect(secondly.headers.get('retry-after')).toBe('3');
    const secondlyBody = (await secondly.json()) as Record<string, unknown>;
    expect(secondlyBody).toMatchObject({
      status: 'error',
      errorType: 'RATE_LIMIT',
      policyName: 'TEN_SECONDLY_ROLLING',
      correlationId: secondly.headers.get('x-hubspot-correlation-id'),
    });
    expect(typeof secondlyBody['message']).toBe('string');

    fake.inject({ kind: '429', policy: 'DAILY', count: 2 }, { method: 'POST', pathPrefix: '/crm/v3/objects/emails' });
    const daily = await failure(client.crm.objects.emails.batchApi.upsert({ inputs: [] }));
    expect(daily.code).toBe(429);
    expect(daily.headers['retry-after']).toBeUndefined();
    const dailyRaw = await client.apiRequest({ method: 'POST', path: '/crm/v3/objects/emails/batch/upsert', body: { inputs: [] } });
    expect(await dailyRaw.json()).toMatchObject({ errorType: 'RATE_LIMIT', policyName: 'DAILY' });
    // A GET did not match the fault's method and the fault is used up.
    expect((await client.apiRequest({ method: 'GET', path: '/crm/v3/objects/contacts' })).status).toBe(200);
    expect((await client.apiRequest({ method: 'POST', path: '/crm/v3/objects/emails/batch/upsert', body: { inputs: [] } })).status).toBe(
      200,
    );
    expect(fake.requests.map((r) => r.status)).toEqual([200, 429, 429, 429, 200, 200]);
    expect(fake.violations).toEqual([]);
  });

  it('really enforces the rolling ten-second limit and the daily limit', async () => {
    const limited = await startHubSpotFake({ accessToken: TOKEN, tenSecondlyLimit: 5, dailyLimit: 1000 });
    try {
      const c = clientFor(limited);
      const statuses: number[] = [];
      for (let i = 0; i < 7; i += 1) statuses.push((await c.apiRequest({ method: 'GET', path: '/crm/v3/objects/deals' })).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
      const refused = await c.apiRequest({ method: 'GET', path: '/crm/v3/objects/deals' });
      expect(await refused.json()).toMatchObject({ policyName: 'TEN_SECONDLY_ROLLING', errorType: 'RATE_LIMIT' });
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(refused.headers.get('x-hubspot-ratelimit-remaining')).toBe('0');
    } finally {
      await limited.close();
    }
    const daily = await startHubSpotFake({ accessToken: TOKEN, dailyLimit: 2 });
    try {
      const c = clientFor(daily);
      const statuses: number[] = [];
      for (let i = 0; i < 3; i += 1) statuses.push((await c.apiRequest({ method: 'GET', path: '/crm/v3/objects/notes' })).status);
      expect(statuses).toEqual([200, 200, 429]);
      const refused = await c.apiRequest({ method: 'GET', path: '/crm/v3/objects/notes' });
      expect(await refused.json()).toMatchObject({ policyName: 'DAILY' });
    } finally {
      await daily.close();
    }
  });

  it('injects 5xx and slow answers for the next matching requests only', async () => {
    fake.inject({ kind: '5xx', status: 503, count: 2 }, { pathPrefix: '/crm/v3/objects/notes' });
    expect((await failure(client.crm.objects.notes.basicApi.getPage())).code).toBe(503);
    expect((await client.crm.contacts.basicApi.getPage()).results).toEqual([]);
    expect((await failure(client.crm.objects.notes.basicApi.getPage())).code).toBe(503);
    expect((await client.crm.objects.notes.basicApi.getPage()).results).toEqual([]);

    fake.inject({ kind: 'slow', ms: 150 });
    await client.crm.objects.notes.basicApi.create({
      properties: { hs_note_body: 'slow one', hs_timestamp: '2026-11-27T10:00:00Z' },
      associations: [],
    });
    expect(fake.requests.at(-1)?.ms).toBeGreaterThanOrEqual(140);
    expect(fake.objects('notes')).toHaveLength(1);
    expect(fake.violations).toEqual([]);
  });

  it('stores v4 associations with HUBSPOT_DEFINED type ids and reads them back from both sides', async () => {
    const contactId = fake.seed('contacts', { email: 'ada@example.com', firstname: 'Ada' });
    const companyId = fake.seed('companies', { domain: 'example.com', name: 'Example' });
    const dealId = fake.seed('deals', { dealname: 'Renewal', dealstage: 'appointmentscheduled' });
    const email = await client.crm.objects.emails.basicApi.create({
      properties: { hs_email_direction: 'EMAIL', hs_timestamp: '2026-11-27T10:00:00Z' },
      associations: [],
    });

    const created = await client.crm.associations.v4.batchApi.create('emails', 'contacts', {
      inputs: [
        {
          _from: { id: email.id },
          to: { id: contactId },
          types: [{ associationCategory: HUBSPOT_DEFINED as never, associationTypeId: 198 }],
        },
      ],
    });
    expect(created.results).toHaveLength(1);
    await client.crm.associations.v4.batchApi.create('emails', 'companies', {
      inputs: [
        {
          _from: { id: email.id },
          to: { id: companyId },
          types: [{ associationCategory: HUBSPOT_DEFINED as never, associationTypeId: 186 }],
        },
      ],
    });
    await client.crm.associations.v4.basicApi.create('emails', email.id, 'deals', dealId, [
      { associationCategory: HUBSPOT_DEFINED as never, associationTypeId: 210 },
    ]);
    // Writing the same association again does not duplicate it.
    await client.crm.associations.v4.batchApi.create('emails', 'contacts', {
      inputs: [
        {
          _from: { id: email.id },
          to: { id: contactId },
          types: [{ associationCategory: HUBSPOT_DEFINED as never, associationTypeId: 198 }],
        },
      ],
    });

    expect(fake.associations()).toEqual([
      { fromType: 'emails', fromId: email.id, toType: 'contacts', toId: contactId, typeId: 198, category: 'HUBSPOT_DEFINED' },
      { fromType: 'emails', fromId: email.id, toType: 'companies', toId: companyId, typeId: 186, category: 'HUBSPOT_DEFINED' },
      { fromType: 'emails', fromId: email.id, toType: 'deals', toId: dealId, typeId: 210, category: 'HUBSPOT_DEFINED' },
    ]);
    const page = await client.crm.associations.v4.basicApi.getPage('emails', email.id, 'contacts');
    expect(page.results.map((r) => [r.toObjectId, r.associationTypes.map((t) => t.typeId)])).toEqual([[contactId, [198]]]);
    const reverse = await client.crm.associations.v4.batchApi.getPage('contacts', 'emails', { inputs: [{ id: contactId }] });
    expect(reverse.results[0]?.to.map((t) => [t.toObjectId, t.associationTypes.map((a) => a.typeId)])).toEqual([[email.id, [197]]]);

    const unknown = await client.crm.associations.v4.batchApi.create('emails', 'contacts', {
      inputs: [
        {
          _from: { id: email.id },
          to: { id: '999999' },
          types: [{ associationCategory: HUBSPOT_DEFINED as never, associationTypeId: 198 }],
        },
      ],
    });
    expect('errors' in unknown && Array.isArray(unknown.errors) ? unknown.errors.length : 0).toBe(1);
    const wrongType = await client.crm.associations.v4.batchApi.create('calls', 'contacts', {
      inputs: [
        {
          _from: { id: email.id },
          to: { id: contactId },
          types: [{ associationCategory: HUBSPOT_DEFINED as never, associationTypeId: 198 }],
        },
      ],
    });
    expect(wrongType.results).toHaveLength(0);
    expect(fake.associations()).toHaveLength(3);
    expect(fake.violations).toEqual([]);
  });

  it('searches with EQ and IN filters and pages with limit/after', async () => {
    const ids = ['a', 'b', 'c', 'd'].map((name) => fake.seed('contacts', { email: `${name}@example.com`, firstname: name.toUpperCase() }));
    const eq = await client.crm.contacts.searchApi.doSearch({
      filterGroups: [{ filters: [{ propertyName: 'email', operator: 'EQ' as never, value: 'B@example.com' }] }],
      properties: ['email', 'firstname'],
      limit: 10,
    });
    expect(eq.total).toBe(1);
    expect(eq.results[0]?.id).toBe(ids[1]);
    expect(eq.results[0]?.properties['firstname']).toBe('B');

    const inFirst = await client.crm.contacts.searchApi.doSearch({
      filterGroups: [
        { filters: [{ propertyName: 'email', operator: 'IN' as never, values: ['a@example.com', 'c@example.com', 'd@example.com'] }] },
      ],
      limit: 2,
    });
    expect(inFirst.total).toBe(3);
    expect(inFirst.results.map((r) => r.id)).toEqual([ids[0], ids[2]]);
    const after = inFirst.paging?.next?.after;
    expect(after).toBeDefined();
    const inSecond = await client.crm.contacts.searchApi.doSearch({
      filterGroups: [
        { filters: [{ propertyName: 'email', operator: 'IN' as never, values: ['a@example.com', 'c@example.com', 'd@example.com'] }] },
      ],
      limit: 2,
      after: after ?? '',
    });
    expect(inSecond.results.map((r) => r.id)).toEqual([ids[3]]);
    expect(inSecond.paging).toBeUndefined();

    const contact = await client.crm.contacts.basicApi.getById('c@example.com', ['firstname'], undefined, undefined, false, 'email');
    expect(contact.id).toBe(ids[2]);
    const dup = await failure(client.crm.contacts.basicApi.create({ properties: { email: 'c@example.com' }, associations: [] }));
    expect(dup.code).toBe(409);
    expect(fake.violations).toEqual([]);
  });

  it('refuses and records a request the spec refuses (an association input without types), and a missing token', async () => {
    const contactId = fake.seed('contacts', { email: 'x@example.com' });
    const note = await client.crm.objects.notes.basicApi.create({
      properties: { hs_note_body: 'n', hs_timestamp: '2026-11-27T10:00:00Z' },
      associations: [],
    });
    expect(fake.violations).toEqual([]);
    const bad = await client.apiRequest({
      method: 'POST',
      path: '/crm/v4/associations/notes/contacts/batch/create',
      body: { inputs: [{ from: { id: note.id }, to: { id: contactId } }] },
    });
    expect(bad.status).toBe(422);
    expect(
      fake.violations.some(
        (v) => v.includes('request POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/create') && v.includes('types'),
      ),
    ).toBe(true);
    expect(fake.associations()).toEqual([]);

    const anonymous = clientFor(fake, null);
    const unauthorised = await failure(anonymous.crm.objects.notes.basicApi.getPage());
    expect(unauthorised.code).toBe(401);
    expect((await failure(clientFor(fake, 'pat-wrong-token').crm.objects.notes.basicApi.getPage())).code).toBe(401);
    expect(fake.requests.at(-1)?.status).toBe(401);
  });
});
