/**
 * Contract: the real @hubspot/api-client, driven by our HubSpot adapter through the whole mirror flow, against
 * prism serving HubSpot's own OpenAPI specs with request validation on. Zero violations over bootstrap, upserts of
 * emails, calls and notes, contact read and create, company search, deal lookups, v4 associations and drift reads;
 * and a request that breaks the spec is caught (so this test can fail).
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JournalWriter } from '../../src/journal/writer.ts';
import { JournalReader } from '../../src/journal/reader.ts';
import { LocalJournalClient } from '../../src/journal/local-client.ts';
import { HubSpotCrm } from '../../connectors/hubspot/hubspot.crm.ts';
import { createHubSpotClient } from '../../connectors/hubspot/hubspot.http.ts';
import type { MirrorPlan } from '../../src/pipeline/ports.ts';
import { startPrism, type Prism } from '../helpers/prism.ts';
import { tempDir } from '../helpers/tmp.ts';
import { allEntries } from '../helpers/pipeline.ts';

function plan(objectType: MirrorPlan['objectType'], counterparts: string[]): MirrorPlan {
  const entryId = randomUUID();
  const base = { journal_entry_id: entryId, hs_timestamp: '2026-11-20T10:00:00.000Z' };
  const properties =
    objectType === 'emails'
      ? { ...base, hs_email_direction: 'INCOMING_EMAIL', hs_email_subject: 'Pricing', hs_email_text: 'Summary: asks for pricing' }
      : objectType === 'calls'
        ? {
            ...base,
            hs_call_direction: 'INBOUND',
            hs_call_title: 'Call',
            hs_call_body: 'Summary: call',
            hs_call_duration: '65000',
            hs_call_recording_url: 'https://calls.example/rec/1.mp3',
          }
        : { ...base, hs_note_body: 'Form submission: demo\nSummary: wants a demo' };
  return {
    entryId,
    entrySeq: 1,
    correlationId: `contract/${entryId}`,
    decisionEntryId: randomUUID(),
    decisionSeq: 2,
    direction: 'inbound',
    objectType,
    properties,
    counterparts,
    category: 'new_lead',
  };
}

describe('HubSpot adapter against the published specs (prism --errors)', () => {
  let prism: Prism;
  let journal: LocalJournalClient;
  let path: string;
  let cleanup: () => void;

  beforeAll(async () => {
    // Prism answers from the schemas; steer it so that every branch of the flow sends its requests: the property
    // check finds nothing (404), so the property is created (201).
    // Batch upserts answer each input (HubSpot echoes the properties written, idProperty included).
    prism = await startPrism({
      prefer: (method, p) =>
        method === 'GET' && p.startsWith('/crm/v3/properties/')
          ? 'code=404'
          : method === 'POST' && /^\/crm\/v3\/properties\/[a-z]+$/.test(p)
            ? 'code=201'
            : null,
      shape: (method, p, request, response) => {
        if (method !== 'POST' || !p.endsWith('/batch/upsert')) return response;
        const inputs = (request as { inputs: { id: string; idProperty: string; properties: Record<string, string> }[] }).inputs;
        const template = ((response as { results?: unknown[] }).results ?? [])[0] ?? {};
        return {
          ...(response as object),
          results: inputs.map((inp, i) => ({
            ...template,
            id: String(9000 + i),
            new: true,
            properties: { ...inp.properties, [inp.idProperty]: inp.id },
          })),
        };
      },
    });
    const t = tempDir('aj-hs-contract-');
    cleanup = t.cleanup;
    path = join(t.dir, 'journal.sqlite');
    const writer = await JournalWriter.open({ path, keysDir: join(t.dir, 'keys'), checkpointEveryMs: 0 });
    journal = new LocalJournalClient(writer, JournalReader.open(path));
  }, 90_000);

  afterAll(async () => {
    await journal?.close();
    await prism?.close();
    cleanup?.();
  });

  it('sends only requests the specs accept, over the whole mirror flow', async () => {
    const crm = new HubSpotCrm({
      accessToken: 'pat-na1-contract-test-token',
      basePath: prism.baseUrl,
      journal,
      createContacts: 'always',
      dealRule: 'single-open-deal',
    });
    await crm.bootstrap();
    // A known contact (with its company and one open deal) drives associations of every kind; an unknown one
    // drives the contact read and create.
    crm.warm({
      contacts: { 'ana@customer.example': '501' },
      companies: { 'customer.example': ['601'] },
      deals: { '501': { candidates: ['701'], open: ['701'] } },
    });
    const plans = [
      plan('emails', ['ana@customer.example', 'new.person@prospect.example']),
      plan('calls', ['ana@customer.example', '+15550100']),
      plan('notes', ['ana@customer.example']),
    ];
    for (const p of plans) {
      const [outcome] = await crm.mirrorBatch([p], `contract-${p.objectType}`);
      expect(outcome?.status).toBe('mirrored');
    }
    // The gathered path (upserts, then the associations of several batches at once) and a reviewer's association
    // override (a removal by v4 batch archive).
    const later = [plan('emails', ['ana@customer.example']), plan('calls', ['ana@customer.example'])];
    const written = [];
    for (const p of later)
      for (const o of await crm.upsertBatch([p], `contract-later-${p.objectType}`))
        written.push({ plan: p, objectId: o.objectId as string });
    const [first] = written as [{ plan: MirrorPlan; objectId: string }];
    const overridden = {
      ...first,
      plan: {
        ...first.plan,
        associationOverride: {
          entryId: randomUUID(),
          actor: 'user:rita',
          reason: 'another buyer',
          from: { contacts: ['501'], companies: ['601'], deals: ['701'] },
          to: { contacts: ['502'], companies: ['601'], deals: [] },
          remove: { contacts: ['501'], companies: [], deals: ['701'] },
        },
      },
    };
    await crm.associateBatch([overridden, ...written.slice(1)], 'contract-links');
    const drift = await crm.readMirrored('emails', [plans[0]?.entryId as string], ['hs_email_subject']);
    expect(drift).toBeInstanceOf(Map);

    const paths = new Set(crm.calls.map((c) => `${c.method} ${c.path.replace(/\/(emails|calls|notes|meetings)\b/, '/:type')}`));
    for (const expected of [
      'GET /crm/v3/properties/:type/journal_entry_id',
      'POST /crm/v3/properties/:type',
      'POST /crm/v3/objects/:type/batch/upsert',
      'POST /crm/v3/objects/contacts/batch/read',
      'POST /crm/v3/objects/contacts/batch/upsert',
      'POST /crm/v3/objects/companies/search',
      'POST /crm/v4/associations/:type/contacts/batch/create',
      'POST /crm/v4/associations/:type/companies/batch/create',
      'POST /crm/v4/associations/:type/deals/batch/create',
      'POST /crm/v4/associations/:type/contacts/batch/archive',
      'POST /crm/v4/associations/:type/deals/batch/archive',
      'POST /crm/v3/objects/:type/batch/read',
    ])
      expect(paths, `the flow sent ${expected}`).toContain(expected);
    const refused = crm.calls.filter((c) => c.status === 422 || c.status === 400);
    expect(refused, `prism refused: ${JSON.stringify(refused)}\n${prism.violations.join('\n')}`).toEqual([]);
    expect(prism.violations).toEqual([]);

    // Every call is on the record.
    const writes = allEntries(path).filter((e) => e.kind === 'crm.write' || e.kind === 'crm.write_failed');
    const recorded = new Set(writes.map((e) => (e.payload as { providerCorrelationId?: string }).providerCorrelationId));
    for (const c of crm.calls) expect(recorded.has(c.correlationId), `${c.method} ${c.path} journaled`).toBe(true);
  });

  it('catches a request that breaks the spec (an association without types)', async () => {
    const client = createHubSpotClient({ accessToken: 'pat-na1-contract-test-token', basePath: prism.baseUrl });
    const before = prism.violations.length;
    await expect(
      client.crm.associations.v4.batchApi.create('emails', 'contacts', { inputs: [{ _from: { id: '1' }, to: { id: '2' } } as never] }),
    ).rejects.toMatchObject({ code: 422 });
    await new Promise((r) => setTimeout(r, 200));
    expect(prism.violations.length).toBeGreaterThan(before);
  });
});
