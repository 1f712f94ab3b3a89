/**
 * The audit UI end to end in real headless Chromium, against the real web server (port 0) over a pipeline that
 * has processed the bundled samples and mirrored them, batched through the crm-batch worker and the real HubSpot
 * client, into the stateful HubSpot fake: sign in, find a decision, open its trace, override it, and see the
 * override in the trace, in the journal and in the CRM fake (the same activity, now with the new category, and
 * still only one); a viewer cannot override; no session, no access; no CSRF token, no state change. With
 * SCREENSHOTS_DIR set (npm run screenshots), the main pages are saved there. Every page is watched for
 * Content-Security-Policy violations (the CSP allows the UI's own inline script and style by hash only): any
 * violation fails the test that caused it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { tempDir } from '../helpers/tmp.ts';
import { runCliSync, type CliResult } from '../helpers/cli.ts';
import { waitFor } from '../helpers/wait.ts';
import { allEntries, drained, inProcessPipeline, testConfig, type InProcessPipeline } from '../helpers/pipeline.ts';
import { createWebServer } from '../../src/web/server.ts';
import { createAuditSurface, type AuditSurface } from '../../src/web/audit-surface.ts';
import { enqueueVia } from '../../jobs/queues.ts';
import { PendingPlans } from '../../jobs/crm-batch/index.ts';
import { startHubSpotFake, type HubSpotFake, type HubSpotFakeObject } from '../fakes/hubspot.fake.ts';
import { silentLogger } from '../../src/config/logger.ts';
import { hashPassword, newApiToken, writeUsersFile } from '../../src/audit/users.ts';
import type { Interaction } from '../../src/pipeline/interaction.ts';
import type { JournalEntry } from '../../src/journal/entry.ts';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
const ALICE = { id: 'alice', password: 'correct horse battery staple' };
const VICTOR = { id: 'victor', password: 'viewer password 12345' };
const SHOTS = process.env.SCREENSHOTS_DIR ? resolve(process.env.SCREENSHOTS_DIR) : null;
const HUBSPOT_TOKEN = 'pat-na1-audit-ui-test-token';
const PORTAL_ID = '424242';
const ACTIVITY_TYPES = ['emails', 'calls', 'notes'] as const;

let tmp: { dir: string; cleanup: () => void };
let p: InProcessPipeline;
let surface: AuditSurface;
let app: FastifyInstance;
let base: string;
let browser: Browser;
let env: Record<string, string>;
let hubspot: HubSpotFake;
const tokens = { alice: newApiToken(), victor: newApiToken() };

const payload = (e: JournalEntry): Record<string, unknown> => e.payload as Record<string, unknown>;

/** CSP violations seen by any page of any context made through newContext, since the last test ended. */
const cspViolations: string[] = [];

/** A browser context whose pages report every CSP violation (the DOM event, and Chromium's console message). */
async function newContext(options: Parameters<Browser['newContext']>[0] = {}): Promise<BrowserContext> {
  const context = await browser.newContext(options);
  await context.exposeBinding('__ajCspViolation', (_source, text: string) => void cspViolations.push(text));
  // Runs in every page before its own scripts (init scripts are not subject to the page's CSP).
  await context.addInitScript({
    content:
      "document.addEventListener('securitypolicyviolation', (e) => { void window.__ajCspViolation(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' on ' + location.pathname); });",
  });
  context.on('console', (m) => {
    if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  return context;
}

async function signIn(context: BrowserContext, who: { id: string; password: string }): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${base}/audit/timeline`);
  // No session: the page sends us to the sign-in form.
  expect(new URL(page.url()).pathname).toBe('/audit/login');
  await page.getByLabel('User name').fill(who.id);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/audit\/timeline/);
  return page;
}

async function shot(page: Page, name: string): Promise<void> {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
}

/** Waits until every plan handed to the batching mirror has been written to HubSpot (or failed) and the queues are idle. */
async function mirrored(timeoutMs = 40_000): Promise<void> {
  const pending = new PendingPlans(p.runtime.redis, p.prefix);
  const until = Date.now() + timeoutMs;
  const left = (): number => Math.max(1_000, until - Date.now());
  await waitFor(
    async () => {
      await drained(p.prefix, left());
      return pending.outstanding();
    },
    { what: 'the HubSpot mirror to write every plan (the value: plans outstanding)', until: (outstanding) => outstanding === 0, timeoutMs },
  );
  await drained(p.prefix, left());
}

/** Every activity in the HubSpot fake that carries this journal entry id (a copy: later writes do not change it). */
function activitiesOf(entryId: string): { type: string; object: HubSpotFakeObject }[] {
  return ACTIVITY_TYPES.flatMap((type) =>
    hubspot
      .objects(type)
      .filter((o) => o.properties['journal_entry_id'] === entryId)
      .map((o) => ({ type, object: structuredClone(o) })),
  );
}

const cli = (args: string[]): CliResult => runCliSync(args, { env: { ...process.env, ...env, LOG_LEVEL: 'silent' } });

beforeAll(async () => {
  tmp = tempDir('aj-audit-ui-');
  hubspot = await startHubSpotFake({ accessToken: HUBSPOT_TOKEN });
  env = {
    AUDIT_USERS_PATH: join(tmp.dir, 'users.json'),
    AUDIT_SESSION_SECRET: 'x'.repeat(40),
    AUDIT_INDEX_PATH: join(tmp.dir, 'index', 'audit-index.sqlite'),
    // The real HubSpot mirror (adapter, crm-batch worker, pending store, limiter) against the stateful fake.
    HUBSPOT_ACCESS_TOKEN: HUBSPOT_TOKEN,
    HUBSPOT_BASE_PATH: hubspot.baseUrl,
    HUBSPOT_BATCH_WINDOW_MS: '100',
    HUBSPOT_DEAL_RULE: 'none',
    HUBSPOT_PORTAL_ID: PORTAL_ID,
  };
  writeUsersFile(env.AUDIT_USERS_PATH as string, {
    users: [
      {
        id: ALICE.id,
        role: 'reviewer',
        passwordHash: await hashPassword(ALICE.password),
        apiTokens: [{ id: 't-1', sha256: tokens.alice.sha256, createdAt: new Date().toISOString() }],
      },
      {
        id: VICTOR.id,
        role: 'viewer',
        passwordHash: await hashPassword(VICTOR.password),
        apiTokens: [{ id: 't-2', sha256: tokens.victor.sha256, createdAt: new Date().toISOString() }],
      },
    ],
  });
  p = await inProcessPipeline(tmp.dir, {}, env);
  const samples = (JSON.parse(readFileSync('samples/demo-interactions.json', 'utf8')) as { interactions: Interaction[] }).interactions;
  expect(p.runtime.hubspot, 'the pipeline mirrors to HubSpot, not the dry run').not.toBeNull();
  for (const ix of samples.slice(0, 14)) await p.runtime.pipeline.intake(ix);
  await mirrored();
  expect(ACTIVITY_TYPES.reduce((n, t) => n + hubspot.objects(t).length, 0)).toBeGreaterThan(0);
  await p.writer.checkpoint();
  const config = testConfig(tmp.dir, env);
  surface = createAuditSurface(config, {
    journal: p.journal,
    enqueue: enqueueVia(p.runtime.queues),
    connectors: () => ({
      inboxes: [
        {
          connector: 'gmail',
          account: 'sales@northwind-analytics.example',
          status: 'needs_consent',
          lastSyncAt: '2026-11-27T08:00:00.000Z',
          cursor: '81234',
          connectedAt: '2026-11-20T10:00:00.000Z',
        },
      ],
      webhooks: ['calls', 'forms'],
      gmailConfigured: true,
    }),
    logger: silentLogger,
    env: { ...process.env, ...env },
  });
  app = createWebServer({ checks: [], audit: surface.routes });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
});

afterEach(() => {
  const seen = cspViolations.splice(0);
  expect(seen, 'Content-Security-Policy violations').toEqual([]);
});

afterAll(async () => {
  await browser?.close();
  await app?.close();
  surface?.close();
  await p?.stop();
  await hubspot?.close();
  tmp?.cleanup();
});

describe('the audit UI in a real browser', () => {
  it('refuses requests without a session: pages redirect to the sign-in form, the API answers 401', async () => {
    const pageRes = await fetch(`${base}/audit/trace?correlationId=x`, { redirect: 'manual' });
    expect(pageRes.status).toBe(303);
    expect(pageRes.headers.get('location')).toMatch(/^\/audit\/login\?next=/);
    const api = await fetch(`${base}/api/v1/interactions`);
    expect(api.status).toBe(401);
    const forged = await fetch(`${base}/api/v1/interactions`, {
      headers: { cookie: 'aj_session=v1.eyJzIjoiYSIsInUiOiJhbGljZSIsImUiOjk5OTk5OTk5OTk5OTl9.forged' },
    });
    expect(forged.status).toBe(401);
    const badToken = await fetch(`${base}/api/v1/interactions`, { headers: { authorization: 'Bearer ajt_not-a-real-token' } });
    expect(badToken.status).toBe(401);
  });

  it('a reviewer signs in, finds a decision, opens its trace and overrides it; the override shows in the trace, the journal and the HubSpot fake', async () => {
    const context = await newContext({ userAgent: 'aj-e2e' });
    const page = await signIn(context, ALICE);
    await shot(page, 'timeline');
    // The session cookie is HttpOnly and SameSite=Strict.
    const cookie = (await context.cookies()).find((c) => c.name === 'aj_session');
    expect(cookie?.httpOnly).toBe(true);
    expect(cookie?.sameSite).toBe('Strict');

    // The first page says how many match (all 14 sample interactions).
    expect(await page.locator('#matches').textContent()).toBe('14 interactions match');
    // Find the decision: filter the timeline by the sender (a contact) and open the trace.
    await page.getByLabel('Contact (email or phone)').fill('dana.whitfield@bluepeak-logistics.example');
    await page.getByRole('button', { name: 'Filter' }).click();
    const rows = page.locator('tbody tr');
    await expect.poll(() => rows.count()).toBe(1);
    expect(await page.locator('#matches').textContent()).toBe('1 interaction match');
    await expect.poll(() => rows.first().textContent()).toContain('Pricing for 40 analyst seats');
    await rows
      .first()
      .getByRole('link', { name: /Trace of seq/ })
      .click();
    await page.waitForURL(/\/audit\/trace/);
    const steps = page.locator('ol.trace > li');
    await expect.poll(() => page.locator('ol.trace > li.ai-decision').count()).toBe(1);
    const aiText = (await page.locator('ol.trace > li.ai-decision').textContent()) ?? '';
    expect(aiText).toContain('prompt version');
    expect(aiText).toContain('classify-interaction@v1');
    expect(aiText).toContain('proof ok');
    // The mirror wrote one activity (a batch upsert through the real client) and the trace links to it.
    const upserts = page.locator('ol.trace > li.crm-write', { hasText: '/batch/upsert' });
    expect(await upserts.count()).toBe(1);
    const received = allEntries(p.path).find(
      (e) => e.kind === 'interaction.received' && payload(e).subject === 'Pricing for 40 analyst seats',
    ) as JournalEntry;
    const [original, ...others] = activitiesOf(received.id);
    expect(others).toEqual([]);
    expect(original?.type).toBe('emails');
    const activity = original?.object as HubSpotFakeObject;
    expect(activity.properties['hs_email_text']).toMatch(/^Category: new_lead \(confidence/m);
    expect(await upserts.first().getByRole('link', { name: activity.id }).getAttribute('href')).toBe(
      `https://app.hubspot.com/contacts/${PORTAL_ID}/record/0-49/${activity.id}`,
    );
    const activitiesBefore = ACTIVITY_TYPES.reduce((n, t) => n + hubspot.objects(t).length, 0);
    // Every step up to the checkpoint proves its inclusion.
    const badges = await steps.locator('.badge').allTextContents();
    expect(badges.length).toBeGreaterThan(3);
    expect(badges.every((b) => b === 'proof ok')).toBe(true);
    expect(aiText.replace(/\s+/g, '')).toContain('categorynew_lead');
    await shot(page, 'trace');

    await page.getByLabel('New category').selectOption('sales_conversation');
    await page.getByLabel('Reason').fill('An existing opportunity: the account is already in a sales conversation.');
    await page.getByRole('button', { name: 'Override' }).click();
    await page.waitForURL(/notice=/);
    expect(await page.getByRole('status').textContent()).toMatch(/Overridden: journaled as seq \d+; the CRM mirror is being updated/);
    const overrideStep = page.locator('ol.trace > li.override');
    expect(await overrideStep.count()).toBe(1);
    expect(await overrideStep.textContent()).toContain('"new_lead" → "sales_conversation"');
    expect(await overrideStep.textContent()).toContain('alice');

    // In the journal: a new human.override naming the decision, the new outcome, the reason and the user.
    await mirrored();
    const entries = allEntries(p.path);
    const override = entries.find((e) => e.kind === 'human.override') as JournalEntry;
    const decision = entries.find((e) => e.id === payload(override).supersedes) as JournalEntry;
    expect(decision.kind).toBe('ai.decision');
    expect(override.actor).toBe('user:alice');
    expect(override.causationId).toBe(decision.id);
    expect(payload(override)).toMatchObject({
      field: 'category',
      from: 'new_lead',
      to: 'sales_conversation',
      reason: 'An existing opportunity: the account is already in a sales conversation.',
    });
    // The decision entry itself is untouched (nothing edited): still the model's category.
    expect((payload(decision).output as { category: string }).category).toBe('new_lead');
    expect(payload(decision).inputEntryId).toBe(received.id);

    // In the HubSpot fake: the same activity (found by its journal_entry_id) now carries the reviewer's category,
    // and it is still the only activity for this interaction: the re-drive updated it, it did not add one.
    const [updated, ...duplicates] = activitiesOf(received.id);
    expect(duplicates).toEqual([]);
    expect(updated?.object.id).toBe(activity.id);
    const text = updated?.object.properties['hs_email_text'] ?? '';
    expect(text).toContain(`Category: sales_conversation (set by a reviewer, override ${override.id}; the model said new_lead`);
    expect(text).not.toMatch(/^Category: new_lead/m);
    expect(ACTIVITY_TYPES.reduce((n, t) => n + hubspot.objects(t).length, 0)).toBe(activitiesBefore);
    // The journal holds both upserts of that activity, the second one caused by the re-driven mirror, and the
    // changed property as state.changed from → to.
    const upsertWrites = entries.filter(
      (e) => e.kind === 'crm.write' && e.correlationId === decision.correlationId && String(payload(e).path).endsWith('/batch/upsert'),
    );
    expect(upsertWrites).toHaveLength(2);
    expect(
      upsertWrites.every(
        (e) =>
          payload(e).entryId === received.id && (payload(e).objectIds as string[])[0] === activity.id && payload(e).dryRun === undefined,
      ),
    ).toBe(true);
    const rewrite = upsertWrites[1] as JournalEntry;
    expect(rewrite.seq).toBeGreaterThan(override.seq);
    expect((payload(rewrite).properties as Record<string, string>)['hs_email_text']).toBe(text);
    const changed = entries.filter(
      (e) => e.kind === 'state.changed' && e.correlationId === decision.correlationId && payload(e).field === 'hs_email_text',
    );
    expect(changed.map((e) => [payload(e).entity, payload(e).to])).toEqual([[`hubspot/emails/${activity.id}`, text]]);

    // And the trace shows the override and the new CRM write with the overridden category, linked to the same record.
    await page.reload();
    expect(await page.locator('ol.trace > li.override').count()).toBe(1);
    const crm = await upserts.allTextContents();
    expect(crm).toHaveLength(2);
    expect(crm[0]).toContain('new_lead');
    expect(crm[1]).toContain('sales_conversation');
    expect(crm[1]).toContain(`seq ${rewrite.seq} `);
    expect(await upserts.nth(1).getByRole('link', { name: activity.id }).getAttribute('href')).toBe(
      `https://app.hubspot.com/contacts/${PORTAL_ID}/record/0-49/${activity.id}`,
    );
    await shot(page, 'trace-overridden');

    // The other pages render for the reviewer.
    await page.getByRole('link', { name: 'Review queue' }).click();
    await page.waitForURL(/\/audit\/review/);
    expect(await page.locator('h1').textContent()).toBe('Review queue');
    await shot(page, 'review');
    await page.getByRole('link', { name: 'Connectors' }).click();
    expect(await page.locator('main').textContent()).toContain('needs consent');
    await shot(page, 'connectors');
    await page.getByRole('link', { name: 'Integrity' }).click();
    await page.getByRole('button', { name: 'Verify now' }).click();
    await expect.poll(() => page.locator('#verify-status').textContent(), { timeout: 60_000 }).toMatch(/^ok: \d+ entries intact/);
    await shot(page, 'integrity');
    await context.close();
  });

  it('a reviewer approves a decision from the review queue: it leaves the queue and the approval is journaled', async () => {
    const context = await newContext();
    const page = await signIn(context, ALICE);
    await page.goto(`${base}/audit/review`);
    const before = await page.locator('tbody tr').count();
    expect(before).toBeGreaterThan(0);
    const first = page.locator('tbody tr').first();
    await first.getByLabel('Reason').fill('Checked: the billing category is right.');
    await first.getByRole('button', { name: 'Approve' }).click();
    await page.waitForURL(/notice=/);
    await page.goto(`${base}/audit/review`);
    expect(await page.locator('tbody tr').count()).toBe(before - 1);
    const approvals = allEntries(p.path).filter((e) => e.kind === 'human.override' && payload(e).field === 'review');
    expect(approvals).toHaveLength(1);
    expect(payload(approvals[0] as JournalEntry)).toMatchObject({
      from: 'pending',
      to: 'approved',
      reason: 'Checked: the billing category is right.',
    });
    await context.close();
  });

  it("a viewer sees traces but has no override form, and the API answers 403 to a viewer's override", async () => {
    const context = await newContext();
    const page = await signIn(context, VICTOR);
    await page
      .locator('tbody tr')
      .first()
      .getByRole('link', { name: /Trace of seq/ })
      .click();
    await page.waitForURL(/\/audit\/trace/);
    expect(await page.locator('ol.trace > li').count()).toBeGreaterThan(2);
    expect(await page.getByRole('button', { name: 'Override' }).count()).toBe(0);
    const decisions = (await (
      await fetch(`${base}/api/v1/decisions?limit=1`, { headers: { authorization: `Bearer ${tokens.victor.token}` } })
    ).json()) as { rows: { decisionId: string }[] };
    const id = decisions.rows[0]?.decisionId as string;
    const overridesBefore = allEntries(p.path).filter((e) => e.kind === 'human.override').length;
    const viaToken = await fetch(`${base}/api/v1/decisions/${id}/override`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.victor.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'override', category: 'spam', reason: 'no' }),
    });
    expect(viaToken.status).toBe(403);
    // With the viewer's own session and CSRF token too.
    const session = (await context.cookies()).find((c) => c.name === 'aj_session') as { value: string };
    const me = (await (await fetch(`${base}/api/v1/me`, { headers: { cookie: `aj_session=${session.value}` } })).json()) as {
      role: string;
      csrfToken: string;
    };
    expect(me.role).toBe('viewer');
    const viaSession = await fetch(`${base}/api/v1/decisions/${id}/override`, {
      method: 'POST',
      headers: { cookie: `aj_session=${session.value}`, 'x-csrf-token': me.csrfToken, 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'override', category: 'spam', reason: 'no' }),
    });
    expect(viaSession.status).toBe(403);
    expect(allEntries(p.path).filter((e) => e.kind === 'human.override')).toHaveLength(overridesBefore);
    await context.close();
  });

  it('refuses a state change made with the session cookie but without the CSRF token (403, nothing journaled)', async () => {
    const context = await newContext();
    await signIn(context, ALICE);
    const session = (await context.cookies()).find((c) => c.name === 'aj_session') as { value: string };
    const headers = { cookie: `aj_session=${session.value}`, 'content-type': 'application/json' };
    const list = (await (await fetch(`${base}/api/v1/decisions?limit=1`, { headers })).json()) as { rows: { decisionId: string }[] };
    const id = list.rows[0]?.decisionId as string;
    const before = allEntries(p.path).filter((e) => e.kind === 'human.override').length;
    const body = JSON.stringify({ action: 'override', category: 'spam', reason: 'csrf' });
    expect((await fetch(`${base}/api/v1/decisions/${id}/override`, { method: 'POST', headers, body })).status).toBe(403);
    expect(
      (await fetch(`${base}/api/v1/decisions/${id}/override`, { method: 'POST', headers: { ...headers, 'x-csrf-token': 'wrong' }, body }))
        .status,
    ).toBe(403);
    // The same form post without its hidden field.
    expect(
      (
        await fetch(`${base}/audit/decisions/${id}/override`, {
          method: 'POST',
          headers: { cookie: `aj_session=${session.value}`, 'content-type': 'application/x-www-form-urlencoded' },
          body: 'action=override&category=spam&reason=csrf',
          redirect: 'manual',
        })
      ).status,
    ).toBe(403);
    expect(allEntries(p.path).filter((e) => e.kind === 'human.override')).toHaveLength(before);
    // With the token it goes through.
    const me = (await (await fetch(`${base}/api/v1/me`, { headers })).json()) as { csrfToken: string };
    const ok = await fetch(`${base}/api/v1/decisions/${id}/override`, {
      method: 'POST',
      headers: { ...headers, 'x-csrf-token': me.csrfToken },
      body,
    });
    expect(ok.status).toBe(201);
    await context.close();
  });

  it('takes an association override through the API: bad ids refused with 400 and nothing journaled, good ones journaled and the mirror re-driven', async () => {
    const headers = { authorization: `Bearer ${tokens.alice.token}`, 'content-type': 'application/json' };
    const list = (await (await fetch(`${base}/api/v1/decisions?limit=3`, { headers })).json()) as { rows: { decisionId: string }[] };
    const id = list.rows[2]?.decisionId as string;
    const before = allEntries(p.path).filter((e) => e.kind === 'human.override').length;
    const post = (body: unknown): Promise<Response> =>
      fetch(`${base}/api/v1/decisions/${id}/override`, { method: 'POST', headers, body: JSON.stringify(body) });
    for (const bad of [
      { action: 'associate', associations: { contacts: ['not-an-id'] }, reason: 'x' },
      { action: 'associate', associations: { people: ['1'] }, reason: 'x' },
      { action: 'associate', reason: 'x' },
      { action: 'associate', associations: {}, reason: 'x' },
    ]) {
      const res = await post(bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
    }
    expect(allEntries(p.path).filter((e) => e.kind === 'human.override')).toHaveLength(before);
    const ok = await post({
      action: 'associate',
      associations: { contacts: ['4242'], deals: [] },
      reason: 'The buyer is our other contact.',
    });
    expect(ok.status).toBe(201);
    const result = (await ok.json()) as {
      entry: { payload: { field: string; to: { contacts: string[]; deals: string[] } } };
      redriven: boolean;
    };
    expect(result.redriven).toBe(true);
    expect(result.entry.payload.field).toBe('associations');
    expect(result.entry.payload.to).toMatchObject({ contacts: ['4242'], deals: [] });
    expect(allEntries(p.path).filter((e) => e.kind === 'human.override')).toHaveLength(before + 1);
  });

  it('journals sign-ins (success and failure) without the password or the typed name, and exports with proofs that verify-export checks offline', async () => {
    const res = await fetch(`${base}/audit/login`);
    const nonce = /aj_login=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1] as string;
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await res.text())?.[1] as string;
    const wrong = await fetch(`${base}/audit/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: `aj_login=${nonce}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: csrf, username: 'alice', password: 'hunter2-wrong-password' }).toString(),
    });
    expect(wrong.status).toBe(401);
    const unknown = await fetch(`${base}/audit/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: `aj_login=${nonce}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: csrf, username: 'mallory@evil.example', password: 'whatever-password' }).toString(),
    });
    expect(unknown.status).toBe(401);
    const noCsrf = await fetch(`${base}/audit/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'alice', password: ALICE.password }).toString(),
    });
    expect(noCsrf.status).toBe(403);
    const logins = allEntries(p.path).filter((e) => e.kind === 'audit.login');
    expect(logins.filter((e) => payload(e).outcome === 'success').length).toBeGreaterThanOrEqual(3);
    expect(
      logins
        .filter((e) => payload(e).outcome === 'failure')
        .map((e) => payload(e).reason)
        .sort(),
    ).toEqual(['unknown-user', 'wrong-password']);
    const text = JSON.stringify(logins);
    for (const secret of ['hunter2', ALICE.password, 'mallory', 'evil.example']) expect(text).not.toContain(secret);

    // Export one correlation through the API with an API token, then check it offline with the CLI.
    const entries = allEntries(p.path);
    const override = entries.find((e) => e.kind === 'human.override' && payload(e).field === 'category') as JournalEntry;
    await p.writer.checkpoint();
    const exp = await fetch(`${base}/api/v1/exports`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.alice.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ correlationId: override.correlationId }),
    });
    expect(exp.status).toBe(200);
    const body = await exp.text();
    const lines = body.trim().split('\n');
    const header = JSON.parse(lines[0] as string) as { format: string; entries: number; verifierKey: string };
    expect(header.format).toBe('activity-journal/export/v1');
    expect(header.entries).toBe(lines.length - 1);
    expect(lines.slice(1).map((l) => (JSON.parse(l) as { header: { kind: string } }).header.kind)).toContain('human.override');
    const file = join(tmp.dir, 'export.jsonl');
    writeFileSync(file, body);
    const good = cli(['verify-export', file, '--public-key', header.verifierKey]);
    expect(good.stdout).toMatch(/^ok: \d+ entr\(ies\)/);
    expect(good.status).toBe(0);
    // A changed payload (the override's reason) fails the check.
    const tamperedLines = lines.map((l) => {
      const b = JSON.parse(l) as { header?: { kind: string }; payload?: { reason?: string } };
      if (b.header?.kind !== 'human.override' || !b.payload) return l;
      b.payload.reason = 'edited after the fact';
      return JSON.stringify(b);
    });
    writeFileSync(file, tamperedLines.join('\n') + '\n');
    const tampered = cli(['verify-export', file]);
    expect(tampered.status).toBe(1);
    expect(tampered.stdout).toContain('payload does not match');
    writeFileSync(file, 'hello\n');
    expect(cli(['verify-export', file]).status).toBe(2);
    // The export itself is on the record, without the correlation id in the clear.
    const exported = allEntries(p.path).filter((e) => e.kind === 'audit.exported');
    expect(exported).toHaveLength(1);
    expect((exported[0] as JournalEntry).actor).toBe('user:alice');
    expect(payload(exported[0] as JournalEntry)).toMatchObject({ scope: 'correlation', entries: header.entries });
    expect(JSON.stringify(exported)).not.toContain(override.correlationId);
    // A viewer may not export.
    const viewer = await fetch(`${base}/api/v1/exports`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.victor.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ correlationId: override.correlationId }),
    });
    expect(viewer.status).toBe(403);
    // The export page, for the screenshots.
    if (SHOTS) {
      const context = await newContext();
      const page = await signIn(context, ALICE);
      await page.getByRole('link', { name: 'Export' }).click();
      await shot(page, 'export');
      await context.close();
    }
  }, 300_000);

  it('serves an OpenAPI document that names every API path', async () => {
    const doc = (await (await fetch(`${base}/api/v1/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/interactions',
        '/api/v1/decisions',
        '/api/v1/decisions/{id}/override',
        '/api/v1/trace',
        '/api/v1/integrity',
        '/api/v1/exports',
      ]),
    );
  });
});
