/**
 * The HubSpot mirror: @hubspot/api-client behind our BatchCrmClient port.
 *
 * - Writes are batch upserts with idProperty journal_entry_id (a unique property created at bootstrap), so a
 *   retry, a redelivered job or a crash between HubSpot's write and our journal entry updates the activity
 *   instead of creating a second one.
 * - Matching explains itself: contact by email (batch read with idProperty=email; created only when the
 *   create-contacts rule allows), company by the contact's email domain, deal by a rule (the single open deal
 *   of the contact). Candidates, rule and tie-break go to the journal as a rule.decision per activity.
 * - Associations are v4 batch creates with HubSpot-defined type ids, one call per activity type and target type
 *   for up to 1,000 pairs; the crm-batch jobs gather them across upsert batches (jobs/crm-batch.ts).
 * - Every call is journaled: activity writes once per activity (crm.write / crm.write_failed, under the
 *   interaction's correlation), lookups once per call (under the batch's correlation). A property we change on
 *   an activity that HubSpot already had is a state.changed (from what the journal says HubSpot last got).
 * - Retry policy (the SDK's own is off): 429 TEN_SECONDLY_ROLLING pauses the shared gate and retries;
 *   429 DAILY (or the tracked daily budget running out) journals connector.health and throws DailyLimitError;
 *   5xx and network errors back off and retry, then throw; 207 is handled item by item; a 400 fails only the
 *   items it names (a batch that names none is split until the bad item stands alone).
 */
import { createHash } from 'node:crypto';
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Client } from '@hubspot/api-client';
import type { JournalClient } from '../../src/journal/journal-client.ts';
import type { AppendInput, JournalEntry } from '../../src/journal/entry.ts';
import type { Logger } from '../../src/config/logger.ts';
import { silentLogger } from '../../src/config/logger.ts';
import type { BatchCrmClient, MirrorItemOutcome, MirrorPlan, MirrorResult, MirroredActivity, RequestGate } from '../../src/pipeline/ports.ts';
import { ASSOCIATION_TYPE_IDS } from './association-types.ts';
import { HubSpotCallError, call, createHubSpotClient, dailyBudgetFrom, msUntilDailyReset, type CallRecord, type DailyBudget } from './hubspot.http.ts';

export const ID_PROPERTY = 'journal_entry_id';
const ACTIVITY_TYPES = ['emails', 'calls', 'notes', 'meetings'] as const;
type ObjectType = MirrorPlan['objectType'];


/** Thrown when HubSpot's daily limit is reached (a 429 DAILY, or the tracked budget is down to the reserve). */
export class DailyLimitError extends Error {
  constructor(readonly resetInMs: number) {
    super(`HubSpot's daily API limit is reached; writes resume in ${Math.ceil(resetInMs / 60_000)} min`);
    this.name = 'DailyLimitError';
  }
}

export type CreateContactsRule = 'never' | 'inbound' | 'always';
export type DealRule = 'single-open-deal' | 'none';

export interface HubSpotCrmOptions {
  readonly accessToken: string;
  readonly basePath?: string;
  readonly journal: JournalClient;
  readonly gate?: RequestGate;
  /** When contacts that HubSpot does not have may be created (a rule, journaled with each decision). */
  readonly createContacts?: CreateContactsRule;
  readonly dealRule?: DealRule;
  /** Stop writing when HubSpot says fewer calls than this are left today (default 500). */
  readonly dailyReserve?: number;
  /** Tries for a 5xx / network failure before the batch is handed back to the queue (default 4). */
  readonly serverRetries?: number;
  readonly backoffMs?: number;
  /** How long contact/company/deal lookups are remembered (default 10 min). */
  readonly cacheTtlMs?: number;
  readonly logger?: Logger;
}

interface Cached<T> {
  readonly value: T;
  readonly until: number;
}

interface Match {
  readonly contacts: string[];
  readonly companies: string[];
  readonly deals: string[];
  readonly evaluated: Record<string, unknown>;
  readonly reasons: string[];
}

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class HubSpotCrm implements BatchCrmClient {
  readonly dryRun = false;
  private readonly client: Client;
  private readonly log: Logger;
  private readonly contactCache = new Map<string, Cached<string | null>>();
  private readonly companyCache = new Map<string, Cached<string[]>>();
  private readonly dealCache = new Map<string, Cached<{ candidates: string[]; open: string[] }>>();
  private budget: DailyBudget = { limit: null, remaining: null, observedAt: null, resetsAt: null };
  private bootstrapped: Promise<void> | null = null;
  private readonly gateOfCall = new AsyncLocalStorage<RequestGate>();
  /** Calls made by this client (for the bench and tests): method, path, status. */
  readonly calls: CallRecord[] = [];

  constructor(private readonly o: HubSpotCrmOptions) {
    this.log = (o.logger ?? silentLogger).child({ component: 'connectors.hubspot' });
    this.client = createHubSpotClient({ accessToken: o.accessToken, ...(o.basePath ? { basePath: o.basePath } : {}) });
  }

  /**
   * Tells the matcher ids learned elsewhere (a CRM webhook, an import, a test): contacts by email, companies by
   * domain, a contact's deals with which of them are open. Remembered like a lookup.
   */
  warm(known: { contacts?: Record<string, string>; companies?: Record<string, string[]>; deals?: Record<string, { candidates: string[]; open: string[] }> }): void {
    for (const [email, id] of Object.entries(known.contacts ?? {})) this.remember(this.contactCache, email.toLowerCase(), id);
    for (const [domain, ids] of Object.entries(known.companies ?? {})) this.remember(this.companyCache, domain.toLowerCase(), ids);
    for (const [contactId, deals] of Object.entries(known.deals ?? {})) this.remember(this.dealCache, contactId, deals);
  }

  dailyBudget(): DailyBudget {
    return this.budget;
  }

  // ---------------------------------------------------------------- bootstrap

  bootstrap(): Promise<void> {
    this.bootstrapped ??= this.doBootstrap().catch((err: unknown) => {
      this.bootstrapped = null;
      throw err;
    });
    return this.bootstrapped;
  }

  private async doBootstrap(): Promise<void> {
    const correlationId = 'crm/bootstrap';
    for (const type of ACTIVITY_TYPES) {
      const path = `/crm/v3/properties/${type}/${ID_PROPERTY}`;
      try {
        const got = await this.send('GET', path, () => this.client.crm.properties.coreApi.getByNameWithHttpInfo(type, ID_PROPERTY));
        await this.journalCall(correlationId, got.record, { purpose: 'bootstrap-check', objectType: type });
        if (!got.data.hasUniqueValue) throw new Error(`the HubSpot property ${type}.${ID_PROPERTY} exists without hasUniqueValue; delete it or make it unique, or idempotent writes are impossible`);
        continue;
      } catch (err) {
        if (!(err instanceof HubSpotCallError) || err.kind !== 'not-found') throw err;
        await this.journalCall(correlationId, err.record, { purpose: 'bootstrap-check', objectType: type });
      }
      const createPath = `/crm/v3/properties/${type}`;
      const created = await this.send('POST', createPath, () =>
        this.client.crm.properties.coreApi.createWithHttpInfo(type, {
          name: ID_PROPERTY,
          label: 'Journal entry id',
          description: 'The activity-journal entry this activity mirrors (unique: makes every write idempotent).',
          groupName: type === 'emails' ? 'email' : type === 'calls' ? 'call' : type === 'notes' ? 'note' : 'meeting',
          type: 'string' as never,
          fieldType: 'text' as never,
          hasUniqueValue: true,
          formField: false,
        }),
      );
      await this.journalCall(correlationId, created.record, { purpose: 'bootstrap-create', objectType: type, properties: { name: ID_PROPERTY, hasUniqueValue: true } });
      await this.o.journal.append({
        kind: 'state.changed',
        source: 'hubspot',
        actor: 'crm:hubspot',
        correlationId,
        idempotencyKey: `crm/bootstrap/${type}/${ID_PROPERTY}/${created.record.correlationId}`,
        payload: { entity: `hubspot/properties/${type}/${ID_PROPERTY}`, field: 'exists', from: false, to: true },
      });
    }
  }

  // ---------------------------------------------------------------- writes

  async mirror(plan: MirrorPlan): Promise<MirrorResult> {
    const [outcome] = await this.mirrorBatch([plan], `single-${plan.entryId}`);
    if (!outcome || outcome.status !== 'mirrored') throw new Error(`HubSpot did not take entry ${plan.entryId}: ${outcome?.reason ?? 'no outcome'}`);
    return { objectId: outcome.objectId, dryRun: false };
  }

  /** Writes the plans and their associations in one go (drift repair, single mirrors); `gate` paces the calls. */
  mirrorBatch(plans: readonly MirrorPlan[], batchId: string, gate?: RequestGate): Promise<MirrorItemOutcome[]> {
    return this.paced(gate, async () => {
      const outcomes = await this.writeBatch(plans);
      const written = plans.flatMap((p) => {
        const o = outcomes.find((x) => x.entryId === p.entryId);
        return o?.status === 'mirrored' && o.objectId ? [{ plan: p, objectId: o.objectId }] : [];
      });
      const refused = await this.associateWritten(written, batchId);
      return outcomes.map((o) => {
        const why = refused.get(o.entryId);
        return why === undefined ? o : { ...o, reason: why };
      });
    });
  }

  /** Only the batch upserts: each plan's outcome. The associations follow later, gathered across batches. */
  upsertBatch(plans: readonly MirrorPlan[], _batchId: string, gate?: RequestGate): Promise<MirrorItemOutcome[]> {
    return this.paced(gate, () => this.writeBatch(plans));
  }

  /**
   * Matches and associates activities already written (up to any number: lookups go 100 at a time, association
   * creates 1,000 pairs per call, one call per activity type and target type). Throws on a retryable failure
   * (re-running is safe: creating an existing association changes nothing); a refused association is journaled
   * and does not undo the activity.
   */
  async associateBatch(items: readonly { plan: MirrorPlan; objectId: string }[], batchId: string, gate?: RequestGate): Promise<void> {
    await this.paced(gate, () => this.associateWritten(items, batchId));
  }

  private paced<T>(gate: RequestGate | undefined, run: () => Promise<T>): Promise<T> {
    return gate ? this.gateOfCall.run(gate, run) : run();
  }

  private async writeBatch(plans: readonly MirrorPlan[]): Promise<MirrorItemOutcome[]> {
    if (plans.length === 0) return [];
    await this.bootstrap();
    this.checkBudget(plans.length);
    const outcomes = new Map<string, MirrorItemOutcome>();
    const byType = new Map<ObjectType, MirrorPlan[]>();
    for (const p of plans) byType.set(p.objectType, [...(byType.get(p.objectType) ?? []), p]);
    for (const [type, group] of byType) await this.upsert(type, group, outcomes);
    return plans.map((p) => outcomes.get(p.entryId) ?? { entryId: p.entryId, status: 'failed', objectId: null, reason: 'no outcome', retryable: true });
  }

  /** Matches and associates; returns the entries whose associations HubSpot refused, with the reason. */
  private async associateWritten(items: readonly { plan: MirrorPlan; objectId: string }[], batchId: string): Promise<Map<string, string>> {
    const refused = new Map<string, string>();
    if (items.length === 0) return refused;
    await this.bootstrap();
    this.checkBudget(items.length);
    const matches = await this.match(items.map((i) => i.plan), batchId);
    const byType = new Map<ObjectType, { plan: MirrorPlan; objectId: string }[]>();
    for (const i of items) byType.set(i.plan.objectType, [...(byType.get(i.plan.objectType) ?? []), i]);
    for (const [type, group] of byType) {
      await this.associate(type, group, matches, refused);
      await this.dissociate(type, group.filter((i) => i.plan.associationOverride), refused);
    }
    return refused;
  }

  /**
   * Removes the associations a reviewer's override took away (v4 batch archive, one call per target type), then
   * journals each activity's changed association set as state.changed (from → to).
   */
  private async dissociate(type: ObjectType, items: readonly { plan: MirrorPlan; objectId: string }[], refused: Map<string, string>): Promise<void> {
    if (items.length === 0) return;
    for (const to of ['contacts', 'companies', 'deals'] as const) {
      const withRemovals = items.filter((i) => (i.plan.associationOverride?.remove[to].length ?? 0) > 0);
      for (let i = 0; i < withRemovals.length; i += 100) {
        const slice = withRemovals.slice(i, i + 100);
        const path = `/crm/v4/associations/${type}/${to}/batch/archive`;
        const removed = (x: { plan: MirrorPlan }): { objectType: string; id: string }[] => (x.plan.associationOverride?.remove[to] ?? []).map((id) => ({ objectType: to, id }));
        try {
          const res = await this.send('POST', path, () => this.client.crm.associations.v4.batchApi.archiveWithHttpInfo(type, to, { inputs: slice.map((x) => ({ _from: { id: x.objectId }, to: (x.plan.associationOverride?.remove[to] ?? []).map((id) => ({ id })) })) }));
          await this.o.journal.appendBatch(slice.map((x) => this.itemEntry('crm.write', x.plan, res.record, `dissociate-${to}`, { objectType: type, objectIds: [x.objectId], removedAssociations: removed(x), batchSize: slice.length, override: x.plan.associationOverride?.entryId })));
        } catch (err) {
          if (!(err instanceof HubSpotCallError)) throw err;
          await this.o.journal.appendBatch(slice.map((x) => this.itemEntry('crm.write_failed', x.plan, err.record, `dissociate-${to}`, { objectType: type, objectIds: [x.objectId], removedAssociations: removed(x), batchSize: slice.length, error: err.message, retryable: err.retryable })));
          if (err.retryable) throw err;
          for (const x of slice) refused.set(x.plan.entryId, err.message);
        }
      }
    }
    const changes: AppendInput[] = [];
    for (const { plan, objectId } of items) {
      const o = plan.associationOverride;
      if (!o || refused.has(plan.entryId)) continue;
      for (const to of ['contacts', 'companies', 'deals'] as const) {
        const from = [...o.from[to]].sort();
        const now = [...o.to[to]].sort();
        if (from.join() === now.join()) continue;
        changes.push({ kind: 'state.changed', source: 'hubspot', actor: 'crm:hubspot', correlationId: plan.correlationId, causationId: o.entryId, idempotencyKey: `crm/${plan.entryId}/state/associations.${to}/${o.entryId}`, payload: { entity: `hubspot/${type}/${objectId}`, field: `associations.${to}`, from: from as never, to: now as never } });
      }
    }
    await this.o.journal.appendBatch(changes);
  }

  /** Upserts one type's plans; records each item's outcome; returns the written ones with their object ids. */
  private async upsert(type: ObjectType, plans: readonly MirrorPlan[], outcomes: Map<string, MirrorItemOutcome>): Promise<void> {
    const previous = new Map<string, Record<string, unknown>>();
    for (const p of plans) {
      const last = await this.lastWritten(p);
      if (last) previous.set(p.entryId, last);
    }
    const path = `/crm/v3/objects/${type}/batch/upsert`;
    const queue: MirrorPlan[][] = [[...plans]];
    while (queue.length > 0) {
      const chunk = queue.shift() as MirrorPlan[];
      const inputs = chunk.map((p) => ({ idProperty: ID_PROPERTY, id: p.entryId, objectWriteTraceId: p.entryId, properties: { ...p.properties } }));
      let res;
      try {
        res = await this.send('POST', path, () => this.batchApi(type).upsertWithHttpInfo({ inputs }));
      } catch (err) {
        if (!(err instanceof HubSpotCallError) || err.kind !== 'validation') {
          if (err instanceof HubSpotCallError) await this.journalItems(chunk, err.record, 'upsert', { objectType: type, idProperty: ID_PROPERTY }, err.message, err.retryable);
          throw err;
        }
        // 400 for the whole batch: fail the items HubSpot names; split a batch that names none.
        const named = chunk.filter((p) => JSON.stringify(err.body ?? '').includes(p.entryId));
        const blamed = named.length > 0 ? named : chunk.length === 1 ? chunk : [];
        if (blamed.length > 0) {
          await this.journalItems(blamed, err.record, 'upsert', { objectType: type, idProperty: ID_PROPERTY }, err.message, false);
          for (const p of blamed) outcomes.set(p.entryId, { entryId: p.entryId, status: 'failed', objectId: null, reason: err.message, retryable: false });
          const rest = chunk.filter((p) => !blamed.includes(p));
          if (rest.length > 0) queue.push(rest);
        } else {
          const half = Math.ceil(chunk.length / 2);
          queue.push(chunk.slice(0, half), chunk.slice(half));
        }
        continue;
      }
      const results = (res.data.results ?? []) as { id: string; objectWriteTraceId?: string; properties?: Record<string, string | null>; _new?: boolean }[];
      const byEntry = new Map<string, { id: string; created: boolean }>();
      const mine = new Set(chunk.map((p) => p.entryId));
      for (const r of results) {
        const key = [r.properties?.[ID_PROPERTY], r.objectWriteTraceId].find((k) => k !== undefined && k !== null && mine.has(k));
        if (key) byEntry.set(key, { id: r.id, created: r._new === true });
      }
      // HubSpot echoes journal_entry_id on every result; a server that echoes neither it nor the trace id but
      // answers every input (a schema-generated mock) is read in input order.
      if (byEntry.size === 0 && res.record.status === 200 && results.length === chunk.length) chunk.forEach((p, i) => byEntry.set(p.entryId, { id: (results[i] as { id: string }).id, created: (results[i] as { _new?: boolean })._new === true }));
      const errors = ((res.data as { errors?: unknown[] }).errors ?? []) as { message?: string; category?: string; status?: string; context?: Record<string, unknown> }[];
      const journalInputs: AppendInput[] = [];
      for (const p of chunk) {
        const hit = byEntry.get(p.entryId);
        if (hit) {
          outcomes.set(p.entryId, { entryId: p.entryId, status: 'mirrored', objectId: hit.id });
          journalInputs.push(this.itemEntry('crm.write', p, res.record, 'upsert', { objectType: type, idProperty: ID_PROPERTY, objectIds: [hit.id], properties: { ...p.properties }, batchSize: chunk.length, created: hit.created }));
          const before = previous.get(p.entryId);
          if (before) {
            for (const [field, to] of Object.entries(p.properties)) {
              const from = before[field] ?? null;
              if (from !== to) journalInputs.push({ kind: 'state.changed', source: 'hubspot', actor: 'crm:hubspot', correlationId: p.correlationId, causationId: p.decisionEntryId, idempotencyKey: `crm/${p.entryId}/state/${field}/${res.record.correlationId}`, payload: { entity: `hubspot/${type}/${hit.id}`, field, from: from as never, to } });
            }
          }
        } else {
          const e = errors.find((x) => JSON.stringify(x.context ?? {}).includes(p.entryId) || (x.message ?? '').includes(p.entryId)) ?? (errors.length === 1 ? errors[0] : undefined);
          const reason = e ? `${e.category ?? 'ERROR'}: ${e.message ?? 'no message'}`.slice(0, 2000) : `HubSpot answered ${res.record.status} without this item`;
          const retryable = e ? /RATE_LIMIT|INTERNAL|TIMEOUT|UNAVAILABLE/i.test(`${e.category ?? ''} ${e.status ?? ''}`) : true;
          outcomes.set(p.entryId, { entryId: p.entryId, status: 'failed', objectId: null, reason, retryable });
          journalInputs.push(this.itemEntry('crm.write_failed', p, res.record, 'upsert', { objectType: type, idProperty: ID_PROPERTY, properties: { ...p.properties }, batchSize: chunk.length, error: reason, retryable }));
        }
      }
      await this.o.journal.appendBatch(journalInputs);
    }
  }

  /** The properties the journal says HubSpot last got for this entry (its newest successful upsert), if any. */
  private async lastWritten(plan: MirrorPlan): Promise<Record<string, unknown> | null> {
    const chain: JournalEntry[] = await this.o.journal.byCorrelation(plan.correlationId);
    for (let i = chain.length - 1; i >= 0; i--) {
      const e = chain[i] as JournalEntry;
      const p = e.payload as { entryId?: string; path?: string; properties?: Record<string, unknown>; dryRun?: boolean };
      if (e.kind === 'crm.write' && p.entryId === plan.entryId && p.dryRun !== true && p.path?.endsWith('/batch/upsert') && p.properties) return p.properties;
    }
    return null;
  }

  private async associate(type: ObjectType, written: readonly { plan: MirrorPlan; objectId: string }[], matches: Map<string, Match>, refused: Map<string, string>): Promise<void> {
    for (const to of ['contacts', 'companies', 'deals'] as const) {
      const typeId = ASSOCIATION_TYPE_IDS[type][to];
      const pairs = written.flatMap((w) => (matches.get(w.plan.entryId)?.[to] ?? []).map((id) => ({ w, id })));
      for (let i = 0; i < pairs.length; i += 1000) {
        const slice = pairs.slice(i, i + 1000);
        const path = `/crm/v4/associations/${type}/${to}/batch/create`;
        const inputs = slice.map((x) => ({ _from: { id: x.w.objectId }, to: { id: x.id }, types: [{ associationCategory: 'HUBSPOT_DEFINED' as never, associationTypeId: typeId }] }));
        const perItem = new Map<MirrorPlan, { w: { plan: MirrorPlan; objectId: string }; ids: string[] }>();
        for (const x of slice) {
          const cur = perItem.get(x.w.plan) ?? { w: x.w, ids: [] };
          cur.ids.push(x.id);
          perItem.set(x.w.plan, cur);
        }
        const assocOf = (ids: string[]): { objectType: string; id: string; typeId: number }[] => ids.slice(0, 100).map((id) => ({ objectType: to, id, typeId }));
        try {
          const res = await this.send('POST', path, () => this.client.crm.associations.v4.batchApi.createWithHttpInfo(type, to, { inputs: inputs }));
          const errors = ((res.data as { errors?: unknown[] }).errors ?? []) as { message?: string; category?: string; context?: Record<string, unknown> }[];
          const entries: AppendInput[] = [];
          for (const { w, ids } of perItem.values()) {
            const e = errors.find((x) => JSON.stringify(x.context ?? {}).includes(w.objectId));
            if (e) {
              const reason = `association to ${to} failed: ${e.category ?? 'ERROR'}: ${e.message ?? ''}`.slice(0, 2000);
              entries.push(this.itemEntry('crm.write_failed', w.plan, res.record, 'associate', { objectType: type, objectIds: [w.objectId], associations: assocOf(ids), batchSize: slice.length, error: reason, retryable: false }));
            } else {
              entries.push(this.itemEntry('crm.write', w.plan, res.record, `associate-${to}`, { objectType: type, objectIds: [w.objectId], associations: assocOf(ids), batchSize: slice.length }));
            }
          }
          await this.o.journal.appendBatch(entries);
        } catch (err) {
          if (!(err instanceof HubSpotCallError)) throw err;
          const entries = [...perItem.values()].map(({ w, ids }) => this.itemEntry('crm.write_failed', w.plan, err.record, `associate-${to}`, { objectType: type, objectIds: [w.objectId], associations: assocOf(ids), batchSize: slice.length, error: err.message, retryable: err.retryable }));
          await this.o.journal.appendBatch(entries);
          if (err.retryable) throw err;
          // A refused association does not undo the activity: the activity stays mirrored, the failure is on the record.
          for (const { w } of perItem.values()) refused.set(w.plan.entryId, err.message);
        }
      }
    }
  }

  // ---------------------------------------------------------------- matching

  private async match(plans: readonly MirrorPlan[], batchId: string): Promise<Map<string, Match>> {
    const correlationId = `crm/batch/${batchId}`;
    const createRule = this.o.createContacts ?? 'never';
    const dealRule = this.o.dealRule ?? 'single-open-deal';
    // A reviewer's association override names its targets: nothing to look up for those plans.
    const emails = [...new Set(plans.filter((p) => !p.associationOverride).flatMap((p) => p.counterparts.filter((c) => c.includes('@'))))];
    await this.lookupContacts(emails, correlationId);

    const creatable = new Set(plans.filter((p) => !p.associationOverride && (createRule === 'always' || (createRule === 'inbound' && p.direction === 'inbound'))).flatMap((p) => p.counterparts.filter((c) => c.includes('@'))));
    const toCreate = emails.filter((e) => this.cached(this.contactCache, e) === null && creatable.has(e));
    if (toCreate.length > 0) await this.createContacts(toCreate, correlationId);

    const domains = [...new Set(emails.filter((e) => this.cached(this.contactCache, e)).map((e) => e.slice(e.lastIndexOf('@') + 1)))];
    await this.lookupCompanies(domains, correlationId);
    const contactIds = [...new Set(emails.map((e) => this.cached(this.contactCache, e)).filter((x): x is string => typeof x === 'string'))];
    if (dealRule === 'single-open-deal') await this.lookupDeals(contactIds, correlationId);

    const out = new Map<string, Match>();
    const decisions: AppendInput[] = [];
    for (const p of plans) {
      const o = p.associationOverride;
      if (o) {
        const m: Match = {
          contacts: [...o.to.contacts],
          companies: [...o.to.companies],
          deals: [...o.to.deals],
          reasons: [`association override ${o.entryId} by ${o.actor}: ${o.reason}`],
          evaluated: { override: o.entryId, from: o.from, remove: o.remove, createContacts: createRule, dealRule },
        };
        out.set(p.entryId, m);
        decisions.push({
          kind: 'rule.decision',
          source: 'hubspot',
          actor: 'crm:hubspot',
          correlationId: p.correlationId,
          causationId: o.entryId,
          idempotencyKey: `crm-match/${p.entryId}/override/${o.entryId}`,
          payload: { ruleId: 'crm-match', ruleVersion: 'human.override', inputEntryId: p.entryId, evaluated: { ...m.evaluated, contacts: m.contacts, companies: m.companies, deals: m.deals } as never, outcome: `contacts:${m.contacts.length} companies:${m.companies.length} deals:${m.deals.length}`, reason: m.reasons.join('; ').slice(0, 10_000) },
        });
        continue;
      }
      const reasons: string[] = [];
      const contacts: string[] = [];
      const companies = new Set<string>();
      const dealCandidates = new Set<string>();
      const openDeals = new Set<string>();
      const companyCandidates: string[] = [];
      let unmatched = 0;
      let phones = 0;
      for (const c of p.counterparts) {
        if (!c.includes('@')) {
          phones++;
          continue;
        }
        const id = this.cached(this.contactCache, c);
        if (!id) {
          unmatched++;
          continue;
        }
        contacts.push(id);
        const domain = c.slice(c.lastIndexOf('@') + 1);
        const found = this.cached(this.companyCache, domain) ?? [];
        companyCandidates.push(...found);
        // Tie-break: several companies with one domain → the oldest record (lowest id).
        const pick = [...found].sort((a, b) => Number(a) - Number(b) || a.localeCompare(b))[0];
        if (pick) companies.add(pick);
        if (found.length > 1) reasons.push(`${found.length} companies share the contact's domain: the oldest (lowest id) wins`);
        const deals = this.cached(this.dealCache, id);
        for (const d of deals?.candidates ?? []) dealCandidates.add(d);
        for (const d of deals?.open ?? []) openDeals.add(d);
      }
      if (phones > 0) reasons.push(`${phones} phone number(s) not matched (contacts are matched by email)`);
      if (unmatched > 0) reasons.push(`${unmatched} address(es) without a HubSpot contact; create-contacts rule is "${createRule}"${createRule === 'inbound' ? ` and the interaction is ${p.direction}` : ''}`);
      const deals = dealRule === 'single-open-deal' && openDeals.size === 1 ? [...openDeals] : [];
      if (dealRule === 'single-open-deal') reasons.push(openDeals.size === 1 ? 'the contacts have exactly one open deal: associated' : `the contacts have ${openDeals.size} open deals: no deal associated (the rule needs exactly one)`);
      const m: Match = {
        contacts: [...new Set(contacts)],
        companies: [...companies],
        deals,
        reasons,
        evaluated: { counterparts: p.counterparts.length, contactCandidates: [...new Set(contacts)], companyCandidates: [...new Set(companyCandidates)], dealCandidates: [...dealCandidates], openDeals: [...openDeals], createContacts: createRule, dealRule },
      };
      out.set(p.entryId, m);
      const outcome = `contacts:${m.contacts.length} companies:${m.companies.length} deals:${m.deals.length}`;
      const digest = sha(JSON.stringify([m.contacts, m.companies, m.deals, m.evaluated]));
      decisions.push({
        kind: 'rule.decision',
        source: 'hubspot',
        actor: 'crm:hubspot',
        correlationId: p.correlationId,
        causationId: p.decisionEntryId,
        idempotencyKey: `crm-match/${p.entryId}/${digest.slice(0, 32)}`,
        payload: { ruleId: 'crm-match', ruleVersion: `hubspot-match@1;create=${createRule};deal=${dealRule}`, inputEntryId: p.entryId, evaluated: { ...m.evaluated, contacts: m.contacts, companies: m.companies, deals: m.deals } as never, outcome, reason: (reasons.join('; ') || 'every counterpart matched').slice(0, 10_000) },
      });
    }
    await this.o.journal.appendBatch(decisions);
    return out;
  }

  private cached<T>(map: Map<string, Cached<T>>, key: string): T | undefined {
    const hit = map.get(key);
    if (!hit) return undefined;
    if (hit.until < Date.now()) {
      map.delete(key);
      return undefined;
    }
    return hit.value;
  }

  private remember<T>(map: Map<string, Cached<T>>, key: string, value: T): void {
    map.set(key, { value, until: Date.now() + (this.o.cacheTtlMs ?? 600_000) });
  }

  private async lookupContacts(emails: readonly string[], correlationId: string): Promise<void> {
    const missing = emails.filter((e) => this.cached(this.contactCache, e) === undefined);
    for (let i = 0; i < missing.length; i += 100) {
      const slice = missing.slice(i, i + 100);
      const path = '/crm/v3/objects/contacts/batch/read';
      const res = await this.send('POST', path, () => this.client.crm.contacts.batchApi.readWithHttpInfo({ idProperty: 'email', inputs: slice.map((id) => ({ id })), properties: ['email'], propertiesWithHistory: [] }));
      const found = new Map<string, string>();
      for (const r of (res.data.results ?? []) as { id: string; properties?: Record<string, string | null> }[]) {
        const email = r.properties?.['email']?.toLowerCase();
        if (email) found.set(email, r.id);
      }
      for (const e of slice) this.remember(this.contactCache, e, found.get(e) ?? null);
      await this.journalCall(correlationId, res.record, { purpose: 'contact-lookup', objectType: 'contacts', idProperty: 'email', objectIds: [...found.values()], batchSize: slice.length });
    }
  }

  private async createContacts(emails: readonly string[], correlationId: string): Promise<void> {
    for (let i = 0; i < emails.length; i += 100) {
      const slice = emails.slice(i, i + 100);
      const path = '/crm/v3/objects/contacts/batch/upsert';
      try {
        const res = await this.send('POST', path, () => this.client.crm.contacts.batchApi.upsertWithHttpInfo({ inputs: slice.map((email) => ({ idProperty: 'email', id: email, properties: { email } })) }));
        const ids: string[] = [];
        for (const r of (res.data.results ?? []) as { id: string; properties?: Record<string, string | null> }[]) {
          const email = r.properties?.['email']?.toLowerCase();
          if (email) this.remember(this.contactCache, email, r.id);
          ids.push(r.id);
        }
        await this.journalCall(correlationId, res.record, { purpose: 'contact-create', objectType: 'contacts', idProperty: 'email', objectIds: ids, batchSize: slice.length });
      } catch (err) {
        if (!(err instanceof HubSpotCallError) || err.retryable) throw err;
        await this.journalCall(correlationId, err.record, { purpose: 'contact-create', objectType: 'contacts', idProperty: 'email', batchSize: slice.length }, err.message);
      }
    }
  }

  private async lookupCompanies(domains: readonly string[], correlationId: string): Promise<void> {
    const missing = domains.filter((d) => this.cached(this.companyCache, d) === undefined);
    for (let i = 0; i < missing.length; i += 100) {
      const slice = missing.slice(i, i + 100);
      const path = '/crm/v3/objects/companies/search';
      const res = await this.send('POST', path, () =>
        this.client.crm.companies.searchApi.doSearchWithHttpInfo({ filterGroups: [{ filters: [{ propertyName: 'domain', operator: 'IN' as never, values: slice }] }], properties: ['domain'], limit: 200, sorts: [], after: '0' }),
      );
      const found = new Map<string, string[]>();
      for (const r of (res.data.results ?? []) as { id: string; properties?: Record<string, string | null> }[]) {
        const d = r.properties?.['domain']?.toLowerCase();
        if (d) found.set(d, [...(found.get(d) ?? []), r.id]);
      }
      for (const d of slice) this.remember(this.companyCache, d, found.get(d) ?? []);
      await this.journalCall(correlationId, res.record, { purpose: 'company-search', objectType: 'companies', objectIds: [...found.values()].flat().slice(0, 1000), batchSize: slice.length });
    }
  }

  private async lookupDeals(contactIds: readonly string[], correlationId: string): Promise<void> {
    const missing = contactIds.filter((c) => this.cached(this.dealCache, c) === undefined);
    for (let i = 0; i < missing.length; i += 100) {
      const slice = missing.slice(i, i + 100);
      const path = '/crm/v4/associations/contacts/deals/batch/read';
      const res = await this.send('POST', path, () => this.client.crm.associations.v4.batchApi.getPageWithHttpInfo('contacts', 'deals', { inputs: slice.map((id) => ({ id })) }));
      const byContact = new Map<string, string[]>();
      for (const r of (res.data.results ?? []) as { _from?: { id: string }; to?: { toObjectId: string | number }[] }[]) {
        if (r._from) byContact.set(String(r._from.id), (r.to ?? []).map((t) => String(t.toObjectId)));
      }
      await this.journalCall(correlationId, res.record, { purpose: 'deal-lookup', objectType: 'deals', objectIds: [...byContact.values()].flat().slice(0, 1000), batchSize: slice.length });
      const dealIds = [...new Set([...byContact.values()].flat())];
      const open = new Set<string>();
      for (let j = 0; j < dealIds.length; j += 100) {
        const ds = dealIds.slice(j, j + 100);
        // Deals by their object type id (0-3): the path HubSpot's published deals spec describes.
        const dpath = '/crm/v3/objects/0-3/batch/read';
        const dres = await this.send('POST', dpath, () => this.client.crm.objects.batchApi.readWithHttpInfo('0-3', { inputs: ds.map((id) => ({ id })), properties: ['hs_is_closed', 'dealstage'], propertiesWithHistory: [] }));
        for (const d of (dres.data.results ?? []) as { id: string; properties?: Record<string, string | null> }[]) if (d.properties?.['hs_is_closed'] !== 'true') open.add(d.id);
        await this.journalCall(correlationId, dres.record, { purpose: 'deal-read', objectType: 'deals', objectIds: ds, batchSize: ds.length });
      }
      for (const c of slice) {
        const candidates = byContact.get(c) ?? [];
        this.remember(this.dealCache, c, { candidates, open: candidates.filter((d) => open.has(d)) });
      }
    }
  }

  // ---------------------------------------------------------------- reads (drift)

  async readMirrored(objectType: ObjectType, entryIds: readonly string[], properties: readonly string[]): Promise<Map<string, MirroredActivity>> {
    const out = new Map<string, MirroredActivity>();
    for (let i = 0; i < entryIds.length; i += 100) {
      const slice = entryIds.slice(i, i + 100);
      const path = `/crm/v3/objects/${objectType}/batch/read`;
      const res = await this.send('POST', path, () => this.batchApi(objectType).readWithHttpInfo({ idProperty: ID_PROPERTY, inputs: slice.map((id) => ({ id })), properties: [...new Set([ID_PROPERTY, ...properties])], propertiesWithHistory: [] }));
      for (const r of (res.data.results ?? []) as { id: string; properties?: Record<string, string | null> }[]) {
        const key = r.properties?.[ID_PROPERTY];
        if (key) out.set(key, { objectId: r.id, properties: r.properties ?? {} });
      }
      await this.journalCall('crm/drift', res.record, { purpose: 'drift-read', objectType, idProperty: ID_PROPERTY, objectIds: [...out.values()].map((a) => a.objectId).slice(-slice.length), batchSize: slice.length });
    }
    return out;
  }

  // ---------------------------------------------------------------- plumbing

  private batchApi(type: ObjectType): Client['crm']['objects']['emails']['batchApi'] {
    const objects = this.client.crm.objects;
    return (type === 'emails' ? objects.emails.batchApi : type === 'calls' ? objects.calls.batchApi : objects.notes.batchApi) as Client['crm']['objects']['emails']['batchApi'];
  }

  /** One call under our policy: through the shared gate; 429 secondly → pause everyone and retry; 5xx → back off. */
  private async send<T>(method: CallRecord['method'], path: string, run: () => Promise<{ httpStatusCode: number; headers: unknown; data: T }>): Promise<{ data: T; record: CallRecord }> {
    const retries = this.o.serverRetries ?? 4;
    let serverFailures = 0;
    let rateLimited = 0;
    const gate = this.gateOfCall.getStore() ?? this.o.gate;
    for (;;) {
      await gate?.acquire();
      try {
        return await call({ onCall: (r, h) => this.observe(r, h) }, method, path, run);
      } catch (err) {
        if (!(err instanceof HubSpotCallError)) throw err;
        if (err.kind === 'rate-limit-secondly' && rateLimited < 20) {
          rateLimited++;
          const wait = err.retryAfterMs ?? 1000;
          this.log.warn({ path, waitMs: wait, correlationId: err.record.correlationId }, 'HubSpot TEN_SECONDLY_ROLLING limit: pausing the queue, then retrying');
          await this.journalCall('crm/rate-limit', err.record, { purpose: 'rate-limited' }, err.message, true);
          if (gate) await gate.pause(wait);
          else await sleep(wait);
          continue;
        }
        if (err.kind === 'rate-limit-daily') {
          await this.journalCall('crm/rate-limit', err.record, { purpose: 'rate-limited' }, err.message, true);
          throw await this.dailyLimit(err.retryAfterMs ?? msUntilDailyReset(new Date()), 'HubSpot answered 429 DAILY');
        }
        if ((err.kind === 'server' || err.kind === 'network') && serverFailures + 1 < retries) {
          serverFailures++;
          const wait = (this.o.backoffMs ?? 500) * 2 ** (serverFailures - 1) * (0.75 + Math.random() / 2);
          this.log.warn({ path, status: err.record.status, attempt: serverFailures, waitMs: Math.round(wait) }, 'HubSpot server error: backing off');
          await this.journalCall('crm/server-errors', err.record, { purpose: 'server-error' }, err.message, true);
          await sleep(wait);
          continue;
        }
        throw err;
      }
    }
  }

  private observe(record: CallRecord, headers: Readonly<Record<string, string>>): void {
    this.calls.push(record);
    const b = dailyBudgetFrom(headers, new Date().toISOString());
    if (b) this.budget = b;
  }

  private checkBudget(items: number): void {
    const reserve = this.o.dailyReserve ?? 500;
    const resetsAt = this.budget.resetsAt === null ? null : Date.parse(this.budget.resetsAt);
    // A budget of a day that has ended says nothing about today: the next answer's headers will tell.
    if (resetsAt !== null && resetsAt <= Date.now()) {
      this.budget = { limit: this.budget.limit, remaining: null, observedAt: this.budget.observedAt, resetsAt: null };
      return;
    }
    if (this.budget.remaining !== null && this.budget.remaining < reserve + Math.ceil(items / 100) * 6) {
      throw new DailyLimitError(resetsAt !== null ? Math.max(1000, resetsAt - Date.now()) : msUntilDailyReset(new Date()));
    }
  }

  private async dailyLimit(resetInMs: number, why: string): Promise<DailyLimitError> {
    const day = new Date().toISOString().slice(0, 10);
    const until = new Date(Date.now() + resetInMs).toISOString();
    await this.o.journal.append({
      kind: 'connector.health',
      source: 'hubspot',
      actor: 'crm:hubspot',
      correlationId: 'crm/health',
      // One record per pause: a second daily limit on the same day is another event, not a conflicting copy.
      idempotencyKey: `crm/health/daily/${day}/${until}`,
      payload: { connector: 'hubspot', status: 'degraded', reason: `${why}: writes pause until the daily reset (${until})`, windowStart: new Date().toISOString(), windowEnd: until },
    });
    // Spent until HubSpot's reset (Retry-After when it says, else midnight): then the budget is unknown again.
    this.budget = { ...this.budget, remaining: 0, resetsAt: until };
    return new DailyLimitError(resetInMs);
  }

  /** One journal entry per activity for one call. */
  private itemEntry(kind: 'crm.write' | 'crm.write_failed', plan: MirrorPlan, record: CallRecord, op: string, extra: Record<string, unknown>): AppendInput {
    return {
      kind,
      source: 'hubspot',
      actor: 'crm:hubspot',
      correlationId: plan.correlationId,
      causationId: plan.decisionEntryId,
      idempotencyKey: `crm/${plan.entryId}/${op}/${record.correlationId}`,
      payload: { system: 'hubspot', method: record.method, path: record.path, status: record.status, durationMs: record.durationMs, providerCorrelationId: record.correlationId, entryId: plan.entryId, ...extra },
    };
  }

  private async journalItems(plans: readonly MirrorPlan[], record: CallRecord, op: string, extra: Record<string, unknown>, error: string, retryable: boolean): Promise<void> {
    await this.o.journal.appendBatch(plans.map((p) => this.itemEntry('crm.write_failed', p, record, op, { ...extra, properties: { ...p.properties }, batchSize: plans.length, error: error.slice(0, 2000), retryable })));
  }

  /** One journal entry for a call that is not an activity write (lookups, bootstrap, reads, refused attempts). */
  private async journalCall(correlationId: string, record: CallRecord, extra: Record<string, unknown>, error?: string, retryable = false): Promise<void> {
    const failed = error !== undefined || record.status >= 400 || record.status === 0;
    await this.o.journal.append({
      kind: failed ? 'crm.write_failed' : 'crm.write',
      source: 'hubspot',
      actor: 'crm:hubspot',
      correlationId,
      idempotencyKey: `crm/call/${record.correlationId}`,
      payload: {
        system: 'hubspot',
        method: record.method,
        path: record.path,
        status: record.status,
        durationMs: record.durationMs,
        providerCorrelationId: record.correlationId,
        ...extra,
        ...(failed ? { error: (error ?? `HTTP ${record.status}`).slice(0, 2000), retryable } : {}),
      },
    });
  }
}
