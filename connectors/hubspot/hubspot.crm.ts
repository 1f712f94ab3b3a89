/**
 * The HubSpot mirror: @hubspot/api-client behind our BatchCrmClient port.
 *
 * - Writes are batch upserts with idProperty journal_entry_id (a unique property created at bootstrap), so a
 *   retry, a redelivered job or a crash between HubSpot's write and our journal entry updates the activity
 *   instead of creating a second one.
 * - Matching explains itself: contact by email (batch read with idProperty=email; created only when the
 *   create-contacts rule allows), company by the contact's email domain, deal by a rule (the single open deal
 *   of the contact). Candidates, rule and tie-break go to the journal as a rule.decision per activity. The
 *   rules themselves are pure (matching.ts); this file looks the records up.
 * - Associations are v4 batch creates with HubSpot-defined type ids, one call per activity type and target type
 *   for up to 1,000 pairs; the crm-batch jobs gather them across upsert batches (jobs/crm-batch/).
 * - Every call is journaled: activity writes once per activity (crm.write / crm.write_failed, under the
 *   interaction's correlation), lookups once per call (under the batch's correlation). A property we change on
 *   an activity that HubSpot already had is a state.changed (from what the journal says HubSpot last got).
 * - Retry policy (the SDK's own is off, call-policy.ts): 429 TEN_SECONDLY_ROLLING pauses the shared gate and
 *   retries; 429 DAILY (or the tracked daily budget running out, daily-budget.ts) journals connector.health and
 *   throws the pipeline's RateLimitError (limit `daily`); 5xx and network errors back off and retry, then throw;
 *   207 is handled item by item; a 400 fails only the items it names (a batch that names none is split until
 *   the bad item stands alone).
 * - Time comes from the injected clock (`now`, default Date.now): budgets, caches, the search index delay and the
 *   record's times; waiting is real time.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@hubspot/api-client';
import type { JournalClient } from '../../src/journal/journal-client.ts';
import type { AppendInput, JournalEntry } from '../../src/journal/entry.ts';
import { filterKind } from '../../src/journal/entry-payload.ts';
import type { PayloadOf } from '../../src/journal/kinds.ts';
import type { Logger } from '../../src/config/logger.ts';
import { silentLogger } from '../../src/config/logger.ts';
import {
  ACTIVITY_WRITE_PATH,
  type BatchCrmClient,
  type MirrorItemOutcome,
  type MirrorPlan,
  type MirrorResult,
  type MirroredActivity,
  type RequestGate,
} from '../../src/pipeline/ports.ts';
import { ASSOCIATION_TYPE_IDS } from './association-types.ts';
import { HUBSPOT_DEFINED, IN_OPERATOR, STRING_PROPERTY_TYPE, TEXT_FIELD_TYPE } from './sdk-enums.ts';
import { HubSpotCallError } from './errors/hubspot-call.error.ts';
import { createHubSpotClient, type CallRecord, type DailyBudget } from './hubspot.http.ts';
import { CallPolicy } from './call-policy.ts';
import { DailyBudgetGuard } from './daily-budget.ts';
import { callEntry, itemEntry, type CallDetails } from './journal-entries.ts';
import {
  contactIdsOf,
  contactsToCreate,
  domainsToLookUp,
  emailsToLookUp,
  matchDecision,
  matchPlan,
  type CreateContactsRule,
  type DealRule,
  type KnownRecords,
  type Match,
  type MatchRules,
} from './matching.ts';

export const ID_PROPERTY = 'journal_entry_id';
/** The object types the mirror writes (meetings are never written, so never set up). */
const WRITTEN_TYPES = ['emails', 'calls', 'notes'] as const;
type ObjectType = MirrorPlan['objectType'];
/** How a type's writes are kept to one object per journal entry (see doSetup). */
export type Scheme = 'unique-upsert' | 'search-before-create' | 'unavailable';
interface TypeSetup {
  readonly scheme: Scheme;
  readonly reason: string;
  readonly at: number;
}
/** Our own property group, made only when HubSpot lists none for the type. */
const OWN_GROUP = 'activity_journal';
const UNAVAILABLE_RETRY_MS = 10 * 60_000;
/**
 * HubSpot's search API: 4 requests per second per token, 200 results per page, 10,000 results per query. Searches
 * are spaced 275 ms apart, not 250: HubSpot counts arrivals, and a request that leaves on time can arrive late while
 * the next one is not delayed; 4 gaps of 250 ms left no margin at all (a loaded machine got a fifth search into
 * one second, refused with 429).
 */
const SEARCH_MIN_GAP_MS = 275;
const SEARCH_PAGE = 200;
const SEARCH_MAX_RESULTS = 10_000;
/** Values per IN filter we send (our bound; a query has one filter group of one filter, well inside HubSpot's 5 groups and 25 filters). */
const SEARCH_IN_VALUES = 100;

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
  /** The account's time zone (IANA): HubSpot's daily limit resets at midnight there (default UTC). */
  readonly timeZone?: string;
  /**
   * How long HubSpot's search index may lag a write (default 15 s): under search-before-create, an entry whose
   * create was decided less than this ago is searched for only once the time has passed.
   */
  readonly searchIndexDelayMs?: number;
  readonly logger?: Logger;
  /** The clock (ms since the epoch; default Date.now): budgets, caches, windows and the record's times. */
  readonly now?: () => number;
}

/** What HubSpot last got for an entry, by the journal: the properties, and the object's id. */
interface Written {
  readonly properties: NonNullable<PayloadOf<'crm.write'>['properties']>;
  readonly objectId: string | null;
}

const LOST_ANSWER_NOTE = 'an earlier attempt created this activity and its answer was lost (no successful write of it was on the record)';
const FOUND_BY_SEARCH_NOTE = 'found by a search on journal_entry_id: an earlier attempt created it and its answer was lost';

interface Cached<T> {
  readonly value: T;
  readonly until: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class HubSpotCrm implements BatchCrmClient {
  readonly dryRun = false;
  private readonly client: Client;
  private readonly log: Logger;
  private readonly contactCache = new Map<string, Cached<string | null>>();
  private readonly companyCache = new Map<string, Cached<string[]>>();
  private readonly dealCache = new Map<string, Cached<{ candidates: string[]; open: string[] }>>();
  private readonly budget: DailyBudgetGuard;
  private readonly policy: CallPolicy;
  private readonly now: () => number;
  private readonly setups = new Map<ObjectType, Promise<TypeSetup>>();
  private readonly decided = new Map<ObjectType, TypeSetup>();
  /** Tells this process's setup entries from another's (each process decides once per type). */
  private readonly runId = randomUUID();
  private searchTurn: Promise<void> = Promise.resolve();
  private lastSearchAt = 0;
  /** Calls made by this client (for the bench and tests): method, path, status. */
  readonly calls: CallRecord[] = [];

  private readonly timeZone: string;

  constructor(private readonly o: HubSpotCrmOptions) {
    this.timeZone = o.timeZone ?? 'UTC';
    this.now = o.now ?? Date.now;
    this.log = (o.logger ?? silentLogger).child({ component: 'connectors.hubspot' });
    this.client = createHubSpotClient({ accessToken: o.accessToken, ...(o.basePath ? { basePath: o.basePath } : {}) });
    this.budget = new DailyBudgetGuard({ reserve: o.dailyReserve ?? 500, timeZone: this.timeZone, now: this.now });
    this.policy = new CallPolicy({
      journal: o.journal,
      log: this.log,
      budget: this.budget,
      gate: o.gate,
      serverRetries: o.serverRetries ?? 4,
      backoffMs: o.backoffMs ?? 500,
      now: this.now,
      onCall: (record) => this.calls.push(record),
    });
  }

  /**
   * Tells the matcher ids learned elsewhere (a CRM webhook, an import, a test): contacts by email, companies by
   * domain, a contact's deals with which of them are open. Remembered like a lookup.
   */
  warm(known: {
    contacts?: Record<string, string>;
    companies?: Record<string, string[]>;
    deals?: Record<string, { candidates: string[]; open: string[] }>;
  }): void {
    for (const [email, id] of Object.entries(known.contacts ?? {})) this.remember(this.contactCache, email.toLowerCase(), id);
    for (const [domain, ids] of Object.entries(known.companies ?? {})) this.remember(this.companyCache, domain.toLowerCase(), ids);
    for (const [contactId, deals] of Object.entries(known.deals ?? {})) this.remember(this.dealCache, contactId, deals);
  }

  dailyBudget(): DailyBudget {
    return this.budget.current();
  }

  // ---------------------------------------------------------------- bootstrap

  /** Sets up every object type the mirror writes (each on its own: a refusal on one does not hold up the others). */
  async bootstrap(): Promise<void> {
    for (const type of WRITTEN_TYPES) await this.setupOf(type);
  }

  /** How writes of this type are made idempotent (decided once per process and type, journaled). */
  schemeOf(type: ObjectType): Scheme | null {
    return this.decided.get(type)?.scheme ?? null;
  }

  private setupOf(type: ObjectType): Promise<TypeSetup> {
    const known = this.setups.get(type);
    const setup = this.decided.get(type);
    // A type HubSpot would not let us set up is asked again after a while (a permission may have been granted).
    if (known && !(setup?.scheme === 'unavailable' && setup.at + UNAVAILABLE_RETRY_MS < this.now())) return known;
    const run = this.doSetup(type).then(
      (s) => {
        this.decided.set(type, s);
        return s;
      },
      (err: unknown) => {
        this.setups.delete(type);
        throw err;
      },
    );
    this.setups.set(type, run);
    return run;
  }

  /**
   * Decides, for one object type, how writes are made idempotent, and journals the decision:
   * - `unique-upsert`: journal_entry_id is a property with unique values (found, or created with hasUniqueValue),
   *   and every write is a batch upsert by it;
   * - `search-before-create`: HubSpot refused a unique property on this type (it documents unique properties for
   *   contacts, companies, deals, tickets and custom objects), so journal_entry_id is an ordinary property and a
   *   write updates the object id the journal recorded, else the object a search by journal_entry_id finds, and
   *   creates only when neither exists;
   * - `unavailable`: not even an ordinary property could be created; writes of this type fail with the reason.
   * Every call is journaled, the refused ones too.
   */
  private async doSetup(type: ObjectType): Promise<TypeSetup> {
    const correlationId = 'crm/bootstrap';
    const evaluated: Record<string, string | number | boolean | null> = { objectType: type, property: ID_PROPERTY };
    const attempt = async <T>(
      purpose: string,
      method: CallRecord['method'],
      path: string,
      run: () => Promise<{ httpStatusCode: number; headers: unknown; data: T }>,
      extra: CallDetails = {},
    ): Promise<{ data: T } | HubSpotCallError> => {
      try {
        const got = await this.send(method, path, run);
        await this.journalCall(correlationId, got.record, { purpose, objectType: type, ...extra });
        evaluated[purpose] = got.record.status;
        return got;
      } catch (err) {
        if (!(err instanceof HubSpotCallError)) throw err;
        await this.journalCall(correlationId, err.record, { purpose, objectType: type, ...extra }, err.message, err.retryable);
        evaluated[purpose] = err.record.status;
        // Retryable (429, 5xx, network) or a refused token: the setup is tried again by the next write.
        if (err.retryable || err.kind === 'auth') throw err;
        return err;
      }
    };

    const got = await attempt('bootstrap-check', 'GET', `/crm/v3/properties/${type}/${ID_PROPERTY}`, () =>
      this.client.crm.properties.coreApi.getByNameWithHttpInfo(type, ID_PROPERTY),
    );
    if (!(got instanceof HubSpotCallError)) {
      evaluated['exists'] = true;
      evaluated['hasUniqueValue'] = got.data.hasUniqueValue === true;
      if (got.data.hasUniqueValue)
        return this.decide(
          type,
          'unique-upsert',
          evaluated,
          `${type}.${ID_PROPERTY} exists with unique values: writes are batch upserts by it`,
        );
      return this.decide(
        type,
        'search-before-create',
        evaluated,
        `${type}.${ID_PROPERTY} exists without unique values (HubSpot cannot make an existing property unique): writes update the object the journal recorded or a search by ${ID_PROPERTY} finds, and create only when there is none`,
      );
    }
    if (got.kind !== 'not-found')
      return this.decide(type, 'unavailable', evaluated, `HubSpot refused to show the property ${type}.${ID_PROPERTY}: ${got.message}`);
    evaluated['exists'] = false;

    const groupName = await this.groupFor(type, attempt, evaluated);
    const definition = (unique: boolean) => ({
      name: ID_PROPERTY,
      label: 'Journal entry id',
      description: 'The activity-journal entry this activity mirrors (one activity per entry).',
      groupName,
      type: STRING_PROPERTY_TYPE,
      fieldType: TEXT_FIELD_TYPE,
      hasUniqueValue: unique,
      formField: false,
    });
    const createPath = `/crm/v3/properties/${type}`;
    const unique = await attempt(
      'bootstrap-create',
      'POST',
      createPath,
      () => this.client.crm.properties.coreApi.createWithHttpInfo(type, definition(true)),
      { properties: { name: ID_PROPERTY, hasUniqueValue: true, groupName } },
    );
    if (!(unique instanceof HubSpotCallError)) {
      await this.created(type, correlationId, true);
      return this.decide(
        type,
        'unique-upsert',
        evaluated,
        `created ${type}.${ID_PROPERTY} with unique values: writes are batch upserts by it`,
      );
    }
    // Created meanwhile by another worker: read what it made.
    if (unique.record.status === 409) {
      this.setups.delete(type);
      return this.doSetup(type);
    }
    evaluated['uniqueRefused'] = unique.message.slice(0, 500);
    const plain = await attempt(
      'bootstrap-create',
      'POST',
      createPath,
      () => this.client.crm.properties.coreApi.createWithHttpInfo(type, definition(false)),
      { properties: { name: ID_PROPERTY, hasUniqueValue: false, groupName } },
    );
    if (plain instanceof HubSpotCallError) {
      return this.decide(
        type,
        'unavailable',
        evaluated,
        `HubSpot refused the property ${type}.${ID_PROPERTY} with unique values (${unique.message}) and without (${plain.message}): ${type} cannot be mirrored`,
      );
    }
    await this.created(type, correlationId, false);
    return this.decide(
      type,
      'search-before-create',
      evaluated,
      `HubSpot refused a unique ${type}.${ID_PROPERTY} (${unique.message}); created it without unique values: writes update the object the journal recorded or a search by ${ID_PROPERTY} finds, and create only when there is none`,
    );
  }

  /**
   * The property group the new property goes in: the type's default information group when HubSpot lists it
   * (e.g. emailinformation), else the first group listed, else one we create.
   */
  private async groupFor(
    type: ObjectType,
    attempt: <T>(
      purpose: string,
      method: CallRecord['method'],
      path: string,
      run: () => Promise<{ httpStatusCode: number; headers: unknown; data: T }>,
      extra?: CallDetails,
    ) => Promise<{ data: T } | HubSpotCallError>,
    evaluated: Record<string, string | number | boolean | null>,
  ): Promise<string> {
    const listed = await attempt('bootstrap-groups', 'GET', `/crm/v3/properties/${type}/groups`, () =>
      this.client.crm.properties.groupsApi.getAllWithHttpInfo(type),
    );
    const names =
      listed instanceof HubSpotCallError
        ? []
        : ((listed.data.results ?? []) as { name: string; archived?: boolean }[]).filter((g) => g.archived !== true).map((g) => g.name);
    const preferred = `${type.replace(/s$/, '')}information`;
    const chosen = names.includes(preferred) ? preferred : names.includes(OWN_GROUP) ? OWN_GROUP : (names[0] ?? null);
    if (chosen !== null) {
      evaluated['groupName'] = chosen;
      return chosen;
    }
    await attempt('bootstrap-group-create', 'POST', `/crm/v3/properties/${type}/groups`, () =>
      this.client.crm.properties.groupsApi.createWithHttpInfo(type, { name: OWN_GROUP, label: 'Activity journal', displayOrder: -1 }),
    );
    evaluated['groupName'] = OWN_GROUP;
    return OWN_GROUP;
  }

  private async created(type: ObjectType, correlationId: string, unique: boolean): Promise<void> {
    await this.o.journal.append({
      kind: 'state.changed',
      source: 'hubspot',
      actor: 'crm:hubspot',
      correlationId,
      idempotencyKey: `crm/bootstrap/${type}/${ID_PROPERTY}/${unique ? 'unique' : 'plain'}/${this.runId}`,
      payload: { entity: `hubspot/properties/${type}/${ID_PROPERTY}`, field: 'exists', from: false, to: true },
    });
  }

  /** Journals the scheme chosen for a type (rule.decision), and a connector.health when it is not the unique upsert. */
  private async decide(
    type: ObjectType,
    scheme: Scheme,
    evaluated: Record<string, string | number | boolean | null>,
    reason: string,
  ): Promise<TypeSetup> {
    const correlationId = 'crm/bootstrap';
    const entries: AppendInput[] = [
      {
        kind: 'rule.decision',
        source: 'hubspot',
        actor: 'crm:hubspot',
        correlationId,
        idempotencyKey: `crm/idempotency/${type}/${this.runId}`,
        payload: {
          ruleId: 'crm-idempotency',
          ruleVersion: 'hubspot-idempotency@1',
          evaluated: { ...evaluated },
          outcome: scheme,
          reason: reason.slice(0, 10_000),
        },
      },
    ];
    if (scheme !== 'unique-upsert') {
      entries.push({
        kind: 'connector.health',
        source: 'hubspot',
        actor: 'crm:hubspot',
        correlationId: 'crm/health',
        idempotencyKey: `crm/health/idempotency/${type}/${this.runId}`,
        payload: {
          connector: 'hubspot',
          status: scheme === 'unavailable' ? 'failing' : 'degraded',
          reason: `${type}: ${reason}`.slice(0, 10_000),
          windowStart: new Date(this.now()).toISOString(),
        },
      });
    }
    await this.o.journal.appendBatch(entries);
    if (scheme !== 'unique-upsert')
      this.log.warn({ objectType: type, scheme }, 'HubSpot did not accept a unique journal_entry_id property on this object type');
    return { scheme, reason, at: this.now() };
  }

  // ---------------------------------------------------------------- writes

  async mirror(plan: MirrorPlan): Promise<MirrorResult> {
    const [outcome] = await this.mirrorBatch([plan], `single-${plan.entryId}`);
    if (!outcome || outcome.status !== 'mirrored')
      throw new Error(`HubSpot did not take entry ${plan.entryId}: ${outcome?.reason ?? 'no outcome'}`);
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
    return this.policy.paced(gate, run);
  }

  private async writeBatch(plans: readonly MirrorPlan[]): Promise<MirrorItemOutcome[]> {
    if (plans.length === 0) return [];
    this.budget.check(plans.length);
    const outcomes = new Map<string, MirrorItemOutcome>();
    const byType = new Map<ObjectType, MirrorPlan[]>();
    for (const p of plans) byType.set(p.objectType, [...(byType.get(p.objectType) ?? []), p]);
    for (const [type, group] of byType) await this.upsert(type, group, outcomes);
    return plans.map(
      (p) => outcomes.get(p.entryId) ?? { entryId: p.entryId, status: 'failed', objectId: null, reason: 'no outcome', retryable: true },
    );
  }

  /** Matches and associates; returns the entries whose associations HubSpot refused, with the reason. */
  private async associateWritten(items: readonly { plan: MirrorPlan; objectId: string }[], batchId: string): Promise<Map<string, string>> {
    const refused = new Map<string, string>();
    if (items.length === 0) return refused;
    this.budget.check(items.length);
    const matches = await this.match(
      items.map((i) => i.plan),
      batchId,
    );
    const byType = new Map<ObjectType, { plan: MirrorPlan; objectId: string }[]>();
    for (const i of items) byType.set(i.plan.objectType, [...(byType.get(i.plan.objectType) ?? []), i]);
    for (const [type, group] of byType) {
      await this.associate(type, group, matches, refused);
      await this.dissociate(
        type,
        group.filter((i) => i.plan.associationOverride),
        refused,
      );
    }
    return refused;
  }

  /**
   * Removes the associations a reviewer's override took away (v4 batch archive, one call per target type), then
   * journals each activity's changed association set as state.changed (from → to).
   */
  private async dissociate(
    type: ObjectType,
    items: readonly { plan: MirrorPlan; objectId: string }[],
    refused: Map<string, string>,
  ): Promise<void> {
    if (items.length === 0) return;
    for (const to of ['contacts', 'companies', 'deals'] as const) {
      const withRemovals = items.filter((i) => (i.plan.associationOverride?.remove[to].length ?? 0) > 0);
      for (let i = 0; i < withRemovals.length; i += 100) {
        const slice = withRemovals.slice(i, i + 100);
        const path = `/crm/v4/associations/${type}/${to}/batch/archive`;
        const removed = (x: { plan: MirrorPlan }): { objectType: string; id: string }[] =>
          (x.plan.associationOverride?.remove[to] ?? []).map((id) => ({ objectType: to, id }));
        try {
          const res = await this.send('POST', path, () =>
            this.client.crm.associations.v4.batchApi.archiveWithHttpInfo(type, to, {
              inputs: slice.map((x) => ({
                _from: { id: x.objectId },
                to: (x.plan.associationOverride?.remove[to] ?? []).map((id) => ({ id })),
              })),
            }),
          );
          await this.o.journal.appendBatch(
            slice.map((x) =>
              itemEntry('crm.write', x.plan, res.record, `dissociate-${to}`, {
                objectType: type,
                objectIds: [x.objectId],
                removedAssociations: removed(x),
                batchSize: slice.length,
                override: x.plan.associationOverride?.entryId,
              }),
            ),
          );
        } catch (err) {
          if (!(err instanceof HubSpotCallError)) throw err;
          await this.o.journal.appendBatch(
            slice.map((x) =>
              itemEntry('crm.write_failed', x.plan, err.record, `dissociate-${to}`, {
                objectType: type,
                objectIds: [x.objectId],
                removedAssociations: removed(x),
                batchSize: slice.length,
                error: err.message,
                retryable: err.retryable,
              }),
            ),
          );
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
        changes.push({
          kind: 'state.changed',
          source: 'hubspot',
          actor: 'crm:hubspot',
          correlationId: plan.correlationId,
          causationId: o.entryId,
          idempotencyKey: `crm/${plan.entryId}/state/associations.${to}/${o.entryId}`,
          payload: { entity: `hubspot/${type}/${objectId}`, field: `associations.${to}`, from, to: now },
        });
      }
    }
    await this.o.journal.appendBatch(changes);
  }

  /** Writes one type's plans by the type's scheme; records each item's outcome. */
  private async upsert(type: ObjectType, plans: readonly MirrorPlan[], outcomes: Map<string, MirrorItemOutcome>): Promise<void> {
    const setup = await this.setupOf(type);
    const previous = new Map<string, Written>();
    for (const p of plans) {
      const last = await this.lastWritten(p);
      if (last) previous.set(p.entryId, last);
    }
    if (setup.scheme === 'unavailable') {
      const record: CallRecord = {
        method: 'POST',
        path: `/crm/v3/objects/${type}`,
        status: 0,
        durationMs: 0,
        correlationId: `not-sent/${type}/${this.runId}`,
        startedAt: this.now(),
      };
      const reason = `not sent: ${setup.reason}`.slice(0, 2000);
      await this.o.journal.appendBatch(
        plans.map((p) =>
          itemEntry('crm.write_failed', p, record, 'unavailable', {
            objectType: type,
            properties: { ...p.properties },
            batchSize: plans.length,
            error: reason,
            retryable: false,
          }),
        ),
      );
      for (const p of plans) outcomes.set(p.entryId, { entryId: p.entryId, status: 'failed', objectId: null, reason, retryable: false });
      return;
    }
    if (setup.scheme === 'unique-upsert') {
      await this.batchWrite(type, 'upsert', plans, previous, outcomes, (chunk) => {
        const inputs = chunk.map((p) => ({
          idProperty: ID_PROPERTY,
          id: p.entryId,
          objectWriteTraceId: p.entryId,
          properties: { ...p.properties },
        }));
        return this.send('POST', `/crm/v3/objects/${type}/batch/upsert`, () => this.batchApi(type).upsertWithHttpInfo({ inputs }));
      });
      return;
    }
    await this.writeBySearch(type, plans, previous, outcomes);
  }

  /**
   * The scheme for a type without a unique id property. An entry whose object id the journal recorded is updated
   * by that id. Any other is searched for by journal_entry_id first, so an object created by an attempt whose
   * answer was lost (a timeout, a killed worker) is found and updated instead of created twice. HubSpot's search
   * index lags its writes by a few seconds: when the journal holds an earlier decision to create the entry that is
   * younger than `searchIndexDelayMs`, the search waits until it is older before it trusts "not found". Each create
   * is journaled beforehand as a rule.decision (what the search found, the rule), which is what tells a later
   * attempt that a create may have happened.
   */
  private async writeBySearch(
    type: ObjectType,
    plans: readonly MirrorPlan[],
    previous: Map<string, Written>,
    outcomes: Map<string, MirrorItemOutcome>,
  ): Promise<void> {
    const known = new Map<string, string>();
    for (const p of plans) {
      const id = previous.get(p.entryId)?.objectId;
      if (id) known.set(p.entryId, id);
    }
    let unknown = plans.filter((p) => !known.has(p.entryId));
    const found = new Map<string, string>();
    const earlier = new Map<string, number>();
    if (unknown.length > 0) {
      for (const p of unknown) {
        const at = await this.earlierCreateDecision(p);
        if (at !== null) earlier.set(p.entryId, at);
      }
      // Wait out the index lag of any earlier create decision before a search may say "not there".
      const delay = this.o.searchIndexDelayMs ?? 15_000;
      const youngest = Math.max(0, ...earlier.values());
      const wait = youngest + delay - this.now();
      if (earlier.size > 0 && wait > 0) await sleep(wait);
      for (const [entryId, objectId] of await this.searchByEntryIds(
        type,
        unknown.map((p) => p.entryId),
        [ID_PROPERTY],
        `crm/search/${type}`,
      ))
        found.set(entryId, objectId.objectId);
      unknown = unknown.filter((p) => !found.has(p.entryId));
    }
    const lost = (p: MirrorPlan): string | undefined =>
      found.has(p.entryId) ? (earlier.has(p.entryId) ? LOST_ANSWER_NOTE : FOUND_BY_SEARCH_NOTE) : undefined;
    const updates = plans.filter((p) => known.has(p.entryId) || found.has(p.entryId));
    const objectIdOf = (p: MirrorPlan): string => (known.get(p.entryId) ?? found.get(p.entryId)) as string;
    if (updates.length > 0) {
      await this.batchWrite(
        type,
        'update',
        updates,
        previous,
        outcomes,
        (chunk) => {
          const inputs = chunk.map((p) => ({ id: objectIdOf(p), objectWriteTraceId: p.entryId, properties: { ...p.properties } }));
          return this.send('POST', `/crm/v3/objects/${type}/batch/update`, () => this.batchApi(type).updateWithHttpInfo({ inputs }));
        },
        (p) => ({ objectId: objectIdOf(p), note: lost(p) }),
      );
    }
    if (unknown.length === 0) return;
    await this.o.journal.appendBatch(
      unknown.map((p) => ({
        kind: 'rule.decision' as const,
        source: 'hubspot',
        actor: 'crm:hubspot',
        correlationId: p.correlationId,
        causationId: p.decisionEntryId,
        idempotencyKey: `crm-create/${p.entryId}/${this.now()}`,
        payload: {
          ruleId: 'crm-create',
          ruleVersion: 'hubspot-search-before-create@1',
          inputEntryId: p.entryId,
          evaluated: {
            objectType: type,
            idProperty: ID_PROPERTY,
            recordedObjectId: null,
            searchMatches: 0,
            earlierCreateDecision: earlier.has(p.entryId) ? new Date(earlier.get(p.entryId) as number).toISOString() : null,
          },
          outcome: 'create',
          reason: earlier.has(p.entryId)
            ? `an earlier attempt decided to create it and left no write on the record; a search by ${ID_PROPERTY} after the index delay found nothing, so that attempt did not reach HubSpot`
            : `no object id on the record and a search by ${ID_PROPERTY} found none`,
        },
      })),
    );
    await this.batchWrite(type, 'create', unknown, previous, outcomes, (chunk) => {
      const inputs = chunk.map((p) => ({ objectWriteTraceId: p.entryId, properties: { ...p.properties }, associations: [] }));
      return this.send('POST', `/crm/v3/objects/${type}/batch/create`, () => this.batchApi(type).createWithHttpInfo({ inputs }), false);
    });
  }

  /** When the journal says an earlier attempt decided to create this entry's object (ms), or null. */
  private async earlierCreateDecision(plan: MirrorPlan): Promise<number | null> {
    const chain: JournalEntry[] = await this.o.journal.byCorrelation(plan.correlationId);
    const decided = filterKind(chain, 'rule.decision', (e) => e.payload.ruleId === 'crm-create' && e.payload.inputEntryId === plan.entryId);
    const newest = decided.at(-1);
    return newest ? Date.parse(newest.recordedAt) : null;
  }

  /**
   * The objects of a type carrying these journal entry ids, by a search on journal_entry_id: IN filters of up to
   * 100 values, 200 results a page, every page followed, at most 4 searches a second from this process.
   */
  private async searchByEntryIds(
    type: ObjectType,
    entryIds: readonly string[],
    properties: readonly string[],
    correlationId: string,
  ): Promise<Map<string, MirroredActivity>> {
    const out = new Map<string, MirroredActivity>();
    for (let i = 0; i < entryIds.length; i += SEARCH_IN_VALUES) {
      const slice = entryIds.slice(i, i + SEARCH_IN_VALUES);
      const results = await this.searchAll(
        type,
        slice,
        ID_PROPERTY,
        [...new Set([ID_PROPERTY, ...properties])],
        correlationId,
        'entry-search',
      );
      // Sorted by id: when duplicates exist (made before this scheme), the oldest object is the activity.
      for (const r of results.sort((a, b) => Number(a.id) - Number(b.id))) {
        const key = r.properties?.[ID_PROPERTY];
        if (key && !out.has(key)) out.set(key, { objectId: r.id, properties: r.properties ?? {} });
      }
    }
    return out;
  }

  /** Every result of one IN search, page by page (journaled once per page). */
  private async searchAll(
    type: 'emails' | 'calls' | 'notes' | 'companies',
    values: readonly string[],
    propertyName: string,
    properties: readonly string[],
    correlationId: string,
    purpose: string,
  ): Promise<{ id: string; properties?: Record<string, string | null> }[]> {
    const path = `/crm/v3/objects/${type}/search`;
    const api = type === 'companies' ? this.client.crm.companies.searchApi : this.client.crm.objects.searchApi;
    const out: { id: string; properties?: Record<string, string | null> }[] = [];
    let after: string | undefined = '0';
    while (after !== undefined) {
      const request = {
        filterGroups: [{ filters: [{ propertyName, operator: IN_OPERATOR, values: [...values] }] }],
        properties: [...properties],
        limit: SEARCH_PAGE,
        sorts: [],
        after,
      };
      await this.searchSlot();
      const res: { data: { total?: number; results?: unknown[]; paging?: { next?: { after?: string } } }; record: CallRecord } =
        type === 'companies'
          ? await this.send('POST', path, () => this.client.crm.companies.searchApi.doSearchWithHttpInfo(request))
          : await this.send('POST', path, () => (api as Client['crm']['objects']['searchApi']).doSearchWithHttpInfo(type, request));
      const page = (res.data.results ?? []) as { id: string; properties?: Record<string, string | null> }[];
      out.push(...page);
      await this.journalCall(correlationId, res.record, {
        purpose,
        objectType: type,
        objectIds: page.map((r) => r.id).slice(0, 1000),
        batchSize: values.length,
      });
      const next = res.data.paging?.next?.after;
      // HubSpot serves at most 10,000 results of one query: a query that matches more is split by its caller.
      after = next !== undefined && next !== '' && Number(next) < SEARCH_MAX_RESULTS ? next : undefined;
      if (after === undefined && next !== undefined && values.length > 1) {
        const half = Math.ceil(values.length / 2);
        out.length = 0;
        out.push(
          ...(await this.searchAll(type, values.slice(0, half), propertyName, properties, correlationId, purpose)),
          ...(await this.searchAll(type, values.slice(half), propertyName, properties, correlationId, purpose)),
        );
      }
    }
    return out;
  }

  /** Spaces this process's searches SEARCH_MIN_GAP_MS apart (HubSpot allows 4 search requests a second). */
  private searchSlot(): Promise<void> {
    const turn = this.searchTurn.then(async () => {
      const wait = this.lastSearchAt + SEARCH_MIN_GAP_MS - this.now();
      if (wait > 0) await sleep(wait);
      this.lastSearchAt = this.now();
    });
    this.searchTurn = turn.catch(() => undefined);
    return turn;
  }

  /**
   * One batch write (upsert, update or create) of up to 100 plans, with HubSpot's refusals handled: a 400 for the
   * whole batch fails the items it names (a batch that names none is split until the bad item stands alone); a
   * 207 is read item by item. Every item gets its crm.write or crm.write_failed; a property that changes on an
   * activity HubSpot already had is a state.changed (from what the journal says HubSpot last got).
   */
  private async batchWrite(
    type: ObjectType,
    op: 'upsert' | 'update' | 'create',
    plans: readonly MirrorPlan[],
    previous: Map<string, Written>,
    outcomes: Map<string, MirrorItemOutcome>,
    write: (chunk: MirrorPlan[]) => Promise<{ data: unknown; record: CallRecord }>,
    known: (p: MirrorPlan) => { objectId: string; note: string | undefined } = () => ({ objectId: '', note: undefined }),
  ): Promise<void> {
    const byKey = op === 'upsert' ? { idProperty: ID_PROPERTY } : {};
    const queue: MirrorPlan[][] = [[...plans]];
    while (queue.length > 0) {
      const chunk = queue.shift() as MirrorPlan[];
      let res;
      try {
        res = await write(chunk);
      } catch (err) {
        if (!(err instanceof HubSpotCallError) || err.kind !== 'validation') {
          if (err instanceof HubSpotCallError)
            await this.journalItems(chunk, err.record, op, { objectType: type, ...byKey }, err.message, err.retryable);
          throw err;
        }
        const named = chunk.filter(
          (p) =>
            JSON.stringify(err.body ?? '').includes(p.entryId) ||
            (op === 'update' && JSON.stringify(err.body ?? '').includes(`"${known(p).objectId}"`)),
        );
        const blamed = named.length > 0 ? named : chunk.length === 1 ? chunk : [];
        if (blamed.length > 0) {
          await this.journalItems(blamed, err.record, op, { objectType: type, ...byKey }, err.message, false);
          for (const p of blamed)
            outcomes.set(p.entryId, { entryId: p.entryId, status: 'failed', objectId: null, reason: err.message, retryable: false });
          const rest = chunk.filter((p) => !blamed.includes(p));
          if (rest.length > 0) queue.push(rest);
        } else {
          const half = Math.ceil(chunk.length / 2);
          queue.push(chunk.slice(0, half), chunk.slice(half));
        }
        continue;
      }
      const data = res.data as { results?: unknown[]; errors?: unknown[] };
      const results = (data.results ?? []) as {
        id: string;
        objectWriteTraceId?: string;
        properties?: Record<string, string | null>;
        _new?: boolean;
      }[];
      const byEntry = new Map<string, { id: string; created: boolean }>();
      const mine = new Set(chunk.map((p) => p.entryId));
      const byObject = new Map(op === 'update' ? chunk.map((p) => [known(p).objectId, p.entryId]) : []);
      for (const r of results) {
        const key = [r.properties?.[ID_PROPERTY], r.objectWriteTraceId, byObject.get(r.id)].find(
          (k) => k !== undefined && k !== null && mine.has(k),
        );
        if (key) byEntry.set(key, { id: r.id, created: op === 'create' || r._new === true });
      }
      // HubSpot echoes journal_entry_id on every result; a server that echoes neither it nor the trace id but
      // answers every input (a schema-generated mock) is read in input order.
      if (byEntry.size === 0 && res.record.status === 200 && results.length === chunk.length)
        chunk.forEach((p, i) =>
          byEntry.set(p.entryId, {
            id: (results[i] as { id: string }).id,
            created: op === 'create' || (results[i] as { _new?: boolean })._new === true,
          }),
        );
      const errors = (data.errors ?? []) as { message?: string; category?: string; status?: string; context?: Record<string, unknown> }[];
      const journalInputs: AppendInput[] = [];
      for (const p of chunk) {
        const hit = byEntry.get(p.entryId);
        if (hit) {
          outcomes.set(p.entryId, { entryId: p.entryId, status: 'mirrored', objectId: hit.id });
          const before = previous.get(p.entryId);
          // An upsert that found the object although no write of it is on the record: an earlier attempt made it
          // and its answer never reached the journal (a timeout, a killed worker). Said, so the count adds up.
          const note = op === 'update' ? known(p).note : !hit.created && !before ? LOST_ANSWER_NOTE : undefined;
          journalInputs.push(
            itemEntry('crm.write', p, res.record, op, {
              objectType: type,
              ...byKey,
              objectIds: [hit.id],
              properties: { ...p.properties },
              batchSize: chunk.length,
              created: hit.created,
              ...(note ? { note } : {}),
            }),
          );
          if (before) {
            for (const [field, to] of Object.entries(p.properties)) {
              const from = before.properties[field] ?? null;
              if (from !== to)
                journalInputs.push({
                  kind: 'state.changed',
                  source: 'hubspot',
                  actor: 'crm:hubspot',
                  correlationId: p.correlationId,
                  causationId: p.decisionEntryId,
                  idempotencyKey: `crm/${p.entryId}/state/${field}/${res.record.correlationId}`,
                  payload: { entity: `hubspot/${type}/${hit.id}`, field, from, to },
                });
            }
          }
        } else {
          const e =
            errors.find((x) => JSON.stringify(x.context ?? {}).includes(p.entryId) || (x.message ?? '').includes(p.entryId)) ??
            (errors.length === 1 ? errors[0] : undefined);
          const reason = e
            ? `${e.category ?? 'ERROR'}: ${e.message ?? 'no message'}`.slice(0, 2000)
            : `HubSpot answered ${res.record.status} without this item`;
          const retryable = e ? /RATE_LIMIT|INTERNAL|TIMEOUT|UNAVAILABLE/i.test(`${e.category ?? ''} ${e.status ?? ''}`) : true;
          outcomes.set(p.entryId, { entryId: p.entryId, status: 'failed', objectId: null, reason, retryable });
          journalInputs.push(
            itemEntry('crm.write_failed', p, res.record, op, {
              objectType: type,
              ...byKey,
              properties: { ...p.properties },
              batchSize: chunk.length,
              error: reason,
              retryable,
            }),
          );
        }
      }
      await this.o.journal.appendBatch(journalInputs);
    }
  }

  /** What the journal says HubSpot last got for this entry (its newest successful activity write), if anything. */
  private async lastWritten(plan: MirrorPlan): Promise<Written | null> {
    const chain: JournalEntry[] = await this.o.journal.byCorrelation(plan.correlationId);
    const writes = filterKind(chain, 'crm.write');
    for (let i = writes.length - 1; i >= 0; i--) {
      const p = writes[i]?.payload;
      if (p && p.entryId === plan.entryId && p.dryRun !== true && ACTIVITY_WRITE_PATH.test(p.path ?? '') && p.properties)
        return { properties: p.properties, objectId: p.objectIds?.[0] ?? null };
    }
    return null;
  }

  private async associate(
    type: ObjectType,
    written: readonly { plan: MirrorPlan; objectId: string }[],
    matches: Map<string, Match>,
    refused: Map<string, string>,
  ): Promise<void> {
    for (const to of ['contacts', 'companies', 'deals'] as const) {
      const typeId = ASSOCIATION_TYPE_IDS[type][to];
      const pairs = written.flatMap((w) => (matches.get(w.plan.entryId)?.[to] ?? []).map((id) => ({ w, id })));
      for (let i = 0; i < pairs.length; i += 1000) {
        const slice = pairs.slice(i, i + 1000);
        const path = `/crm/v4/associations/${type}/${to}/batch/create`;
        const inputs = slice.map((x) => ({
          _from: { id: x.w.objectId },
          to: { id: x.id },
          types: [{ associationCategory: HUBSPOT_DEFINED, associationTypeId: typeId }],
        }));
        const perItem = new Map<MirrorPlan, { w: { plan: MirrorPlan; objectId: string }; ids: string[] }>();
        for (const x of slice) {
          const cur = perItem.get(x.w.plan) ?? { w: x.w, ids: [] };
          cur.ids.push(x.id);
          perItem.set(x.w.plan, cur);
        }
        const assocOf = (ids: string[]): { objectType: string; id: string; typeId: number }[] =>
          ids.slice(0, 100).map((id) => ({ objectType: to, id, typeId }));
        try {
          const res = await this.send('POST', path, () =>
            this.client.crm.associations.v4.batchApi.createWithHttpInfo(type, to, { inputs: inputs }),
          );
          const errors = ((res.data as { errors?: unknown[] }).errors ?? []) as {
            message?: string;
            category?: string;
            context?: Record<string, unknown>;
          }[];
          const entries: AppendInput[] = [];
          for (const { w, ids } of perItem.values()) {
            const e = errors.find((x) => JSON.stringify(x.context ?? {}).includes(w.objectId));
            if (e) {
              const reason = `association to ${to} failed: ${e.category ?? 'ERROR'}: ${e.message ?? ''}`.slice(0, 2000);
              entries.push(
                itemEntry('crm.write_failed', w.plan, res.record, 'associate', {
                  objectType: type,
                  objectIds: [w.objectId],
                  associations: assocOf(ids),
                  batchSize: slice.length,
                  error: reason,
                  retryable: false,
                }),
              );
            } else {
              entries.push(
                itemEntry('crm.write', w.plan, res.record, `associate-${to}`, {
                  objectType: type,
                  objectIds: [w.objectId],
                  associations: assocOf(ids),
                  batchSize: slice.length,
                }),
              );
            }
          }
          await this.o.journal.appendBatch(entries);
        } catch (err) {
          if (!(err instanceof HubSpotCallError)) throw err;
          const entries = [...perItem.values()].map(({ w, ids }) =>
            itemEntry('crm.write_failed', w.plan, err.record, `associate-${to}`, {
              objectType: type,
              objectIds: [w.objectId],
              associations: assocOf(ids),
              batchSize: slice.length,
              error: err.message,
              retryable: err.retryable,
            }),
          );
          await this.o.journal.appendBatch(entries);
          if (err.retryable) throw err;
          // A refused association does not undo the activity: the activity stays mirrored, the failure is on the record.
          for (const { w } of perItem.values()) refused.set(w.plan.entryId, err.message);
        }
      }
    }
  }

  // ---------------------------------------------------------------- matching

  /**
   * Looks up what the matching rules need (contacts by email, the contacts to create, companies by domain, deals
   * under the deal rule), then applies the rules (matching.ts) and journals each plan's decision.
   */
  private async match(plans: readonly MirrorPlan[], batchId: string): Promise<Map<string, Match>> {
    const correlationId = `crm/batch/${batchId}`;
    const rules: MatchRules = { createContacts: this.o.createContacts ?? 'never', dealRule: this.o.dealRule ?? 'single-open-deal' };
    const known: KnownRecords = {
      contactOf: (email) => this.cached(this.contactCache, email),
      companiesOf: (domain) => this.cached(this.companyCache, domain),
      dealsOf: (contactId) => this.cached(this.dealCache, contactId),
    };
    // A reviewer's association override names its targets: nothing to look up for those plans.
    const emails = emailsToLookUp(plans);
    await this.lookupContacts(emails, correlationId);
    const toCreate = contactsToCreate(plans, emails, rules.createContacts, known);
    if (toCreate.length > 0) await this.createContacts(toCreate, correlationId);
    await this.lookupCompanies(domainsToLookUp(emails, known), correlationId);
    if (rules.dealRule === 'single-open-deal') await this.lookupDeals(contactIdsOf(emails, known), correlationId);

    const out = new Map<string, Match>();
    const decisions: AppendInput[] = [];
    for (const p of plans) {
      const m = matchPlan(p, known, rules);
      out.set(p.entryId, m);
      decisions.push(matchDecision(p, m, rules));
    }
    await this.o.journal.appendBatch(decisions);
    return out;
  }

  private cached<T>(map: Map<string, Cached<T>>, key: string): T | undefined {
    const hit = map.get(key);
    if (!hit) return undefined;
    if (hit.until < this.now()) {
      map.delete(key);
      return undefined;
    }
    return hit.value;
  }

  private remember<T>(map: Map<string, Cached<T>>, key: string, value: T): void {
    map.set(key, { value, until: this.now() + (this.o.cacheTtlMs ?? 600_000) });
  }

  private async lookupContacts(emails: readonly string[], correlationId: string): Promise<void> {
    const missing = emails.filter((e) => this.cached(this.contactCache, e) === undefined);
    for (let i = 0; i < missing.length; i += 100) {
      const slice = missing.slice(i, i + 100);
      const path = '/crm/v3/objects/contacts/batch/read';
      const res = await this.send('POST', path, () =>
        this.client.crm.contacts.batchApi.readWithHttpInfo({
          idProperty: 'email',
          inputs: slice.map((id) => ({ id })),
          properties: ['email'],
          propertiesWithHistory: [],
        }),
      );
      const found = new Map<string, string>();
      for (const r of (res.data.results ?? []) as { id: string; properties?: Record<string, string | null> }[]) {
        const email = r.properties?.['email']?.toLowerCase();
        if (email) found.set(email, r.id);
      }
      for (const e of slice) this.remember(this.contactCache, e, found.get(e) ?? null);
      await this.journalCall(correlationId, res.record, {
        purpose: 'contact-lookup',
        objectType: 'contacts',
        idProperty: 'email',
        objectIds: [...found.values()],
        batchSize: slice.length,
      });
    }
  }

  private async createContacts(emails: readonly string[], correlationId: string): Promise<void> {
    for (let i = 0; i < emails.length; i += 100) {
      const slice = emails.slice(i, i + 100);
      const path = '/crm/v3/objects/contacts/batch/upsert';
      try {
        const res = await this.send('POST', path, () =>
          this.client.crm.contacts.batchApi.upsertWithHttpInfo({
            inputs: slice.map((email) => ({ idProperty: 'email', id: email, properties: { email } })),
          }),
        );
        const ids: string[] = [];
        for (const r of (res.data.results ?? []) as { id: string; properties?: Record<string, string | null> }[]) {
          const email = r.properties?.['email']?.toLowerCase();
          if (email) this.remember(this.contactCache, email, r.id);
          ids.push(r.id);
        }
        await this.journalCall(correlationId, res.record, {
          purpose: 'contact-create',
          objectType: 'contacts',
          idProperty: 'email',
          objectIds: ids,
          batchSize: slice.length,
        });
      } catch (err) {
        if (!(err instanceof HubSpotCallError) || err.retryable) throw err;
        await this.journalCall(
          correlationId,
          err.record,
          { purpose: 'contact-create', objectType: 'contacts', idProperty: 'email', batchSize: slice.length },
          err.message,
        );
      }
    }
  }

  /** Companies by domain: IN searches of up to 100 domains, every page of 200 followed (a domain may have several). */
  private async lookupCompanies(domains: readonly string[], correlationId: string): Promise<void> {
    const missing = domains.filter((d) => this.cached(this.companyCache, d) === undefined);
    for (let i = 0; i < missing.length; i += SEARCH_IN_VALUES) {
      const slice = missing.slice(i, i + SEARCH_IN_VALUES);
      const found = new Map<string, string[]>();
      for (const r of await this.searchAll('companies', slice, 'domain', ['domain'], correlationId, 'company-search')) {
        const d = r.properties?.['domain']?.toLowerCase();
        if (d && !(found.get(d) ?? []).includes(r.id)) found.set(d, [...(found.get(d) ?? []), r.id]);
      }
      for (const d of slice) this.remember(this.companyCache, d, found.get(d) ?? []);
    }
  }

  private async lookupDeals(contactIds: readonly string[], correlationId: string): Promise<void> {
    const missing = contactIds.filter((c) => this.cached(this.dealCache, c) === undefined);
    for (let i = 0; i < missing.length; i += 100) {
      const slice = missing.slice(i, i + 100);
      const path = '/crm/v4/associations/contacts/deals/batch/read';
      const res = await this.send('POST', path, () =>
        this.client.crm.associations.v4.batchApi.getPageWithHttpInfo('contacts', 'deals', { inputs: slice.map((id) => ({ id })) }),
      );
      const byContact = new Map<string, string[]>();
      for (const r of (res.data.results ?? []) as { _from?: { id: string }; to?: { toObjectId: string | number }[] }[]) {
        if (r._from)
          byContact.set(
            String(r._from.id),
            (r.to ?? []).map((t) => String(t.toObjectId)),
          );
      }
      await this.journalCall(correlationId, res.record, {
        purpose: 'deal-lookup',
        objectType: 'deals',
        objectIds: [...byContact.values()].flat().slice(0, 1000),
        batchSize: slice.length,
      });
      const dealIds = [...new Set([...byContact.values()].flat())];
      const open = new Set<string>();
      for (let j = 0; j < dealIds.length; j += 100) {
        const ds = dealIds.slice(j, j + 100);
        // Deals by their object type id (0-3): the path HubSpot's published deals spec describes.
        const dpath = '/crm/v3/objects/0-3/batch/read';
        const dres = await this.send('POST', dpath, () =>
          this.client.crm.objects.batchApi.readWithHttpInfo('0-3', {
            inputs: ds.map((id) => ({ id })),
            properties: ['hs_is_closed', 'dealstage'],
            propertiesWithHistory: [],
          }),
        );
        for (const d of (dres.data.results ?? []) as { id: string; properties?: Record<string, string | null> }[])
          if (d.properties?.['hs_is_closed'] !== 'true') open.add(d.id);
        await this.journalCall(correlationId, dres.record, {
          purpose: 'deal-read',
          objectType: 'deals',
          objectIds: ds,
          batchSize: ds.length,
        });
      }
      for (const c of slice) {
        const candidates = byContact.get(c) ?? [];
        this.remember(this.dealCache, c, { candidates, open: candidates.filter((d) => open.has(d)) });
      }
    }
  }

  // ---------------------------------------------------------------- reads (drift)

  async readMirrored(
    objectType: ObjectType,
    entryIds: readonly string[],
    properties: readonly string[],
  ): Promise<Map<string, MirroredActivity>> {
    const setup = await this.setupOf(objectType);
    // Without a unique property HubSpot reads nothing by journal_entry_id: those types are found by search.
    if (setup.scheme !== 'unique-upsert') return this.searchByEntryIds(objectType, entryIds, properties, 'crm/drift');
    const out = new Map<string, MirroredActivity>();
    for (let i = 0; i < entryIds.length; i += 100) {
      const slice = entryIds.slice(i, i + 100);
      const path = `/crm/v3/objects/${objectType}/batch/read`;
      const res = await this.send('POST', path, () =>
        this.batchApi(objectType).readWithHttpInfo({
          idProperty: ID_PROPERTY,
          inputs: slice.map((id) => ({ id })),
          properties: [...new Set([ID_PROPERTY, ...properties])],
          propertiesWithHistory: [],
        }),
      );
      for (const r of (res.data.results ?? []) as { id: string; properties?: Record<string, string | null> }[]) {
        const key = r.properties?.[ID_PROPERTY];
        if (key) out.set(key, { objectId: r.id, properties: r.properties ?? {} });
      }
      await this.journalCall('crm/drift', res.record, {
        purpose: 'drift-read',
        objectType,
        idProperty: ID_PROPERTY,
        objectIds: [...out.values()].map((a) => a.objectId).slice(-slice.length),
        batchSize: slice.length,
      });
    }
    return out;
  }

  // ---------------------------------------------------------------- plumbing

  private batchApi(type: ObjectType): Client['crm']['objects']['emails']['batchApi'] {
    const objects = this.client.crm.objects;
    return (
      type === 'emails' ? objects.emails.batchApi : type === 'calls' ? objects.calls.batchApi : objects.notes.batchApi
    ) as Client['crm']['objects']['emails']['batchApi'];
  }

  private send<T>(
    method: CallRecord['method'],
    path: string,
    run: () => Promise<{ httpStatusCode: number; headers: unknown; data: T }>,
    idempotent = true,
  ): Promise<{ data: T; record: CallRecord }> {
    return this.policy.send(method, path, run, idempotent);
  }

  private async journalItems(
    plans: readonly MirrorPlan[],
    record: CallRecord,
    op: string,
    extra: CallDetails,
    error: string,
    retryable: boolean,
  ): Promise<void> {
    await this.o.journal.appendBatch(
      plans.map((p) =>
        itemEntry('crm.write_failed', p, record, op, {
          ...extra,
          properties: { ...p.properties },
          batchSize: plans.length,
          error: error.slice(0, 2000),
          retryable,
        }),
      ),
    );
  }

  /** One journal entry for a call that is not an activity write (lookups, bootstrap, reads, refused attempts). */
  private async journalCall(
    correlationId: string,
    record: CallRecord,
    extra: CallDetails,
    error?: string,
    retryable = false,
  ): Promise<void> {
    await this.o.journal.append(callEntry(correlationId, record, extra, error, retryable));
  }
}
