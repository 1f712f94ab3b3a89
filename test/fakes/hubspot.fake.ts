/**
 * A stateful HubSpot fake for tests and benchmarks: CRM v3 objects (emails, calls, notes, meetings, contacts,
 * companies, deals), v3 properties and v4 associations on 127.0.0.1, driven through the real `@hubspot/api-client`
 * (`basePath: fake.baseUrl`). It keeps what is written, enforces `hasUniqueValue` properties, upserts by
 * `idProperty`, answers partial batch failures with 207, enforces the rolling ten-second and the daily limit with
 * HubSpot's headers and 429 bodies, and takes injected faults (429, 5xx, slowness, invalid items). Every request and
 * response body is checked against `../shared/specs/hubspot/merged.json`; problems land in `violations`.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkRequest, checkResponse, findRoute, OBJECT_TYPE_IDS } from './hubspot-spec.ts';
import type { SpecRoute } from './hubspot-spec.ts';

export interface HubSpotFakeOptions {
  /** The bearer token the fake accepts; any non-empty bearer token when unset. */
  accessToken?: string;
  /** More requests than this in a rolling 10 s get 429 TEN_SECONDLY_ROLLING (default 100). */
  tenSecondlyLimit?: number;
  /** More requests than this since start (or `reset()`) get 429 DAILY (default 250000). */
  dailyLimit?: number;
  /** Accept writes of properties that have no definition (real HubSpot refuses them; default false). */
  allowUnknownProperties?: boolean;
  /**
   * Object types on which a property with `hasUniqueValue: true` is refused (400 VALIDATION_ERROR), as HubSpot
   * may do: it documents unique properties for contacts, companies, deals, tickets and custom objects only.
   */
  refuseUniqueOn?: readonly ObjectType[];
  /** How long a written object stays invisible to search (HubSpot's index lags its writes; default 0). */
  searchIndexDelayMs?: number;
  /** Search requests allowed per second across all object types (HubSpot: 4; default 4). */
  searchPerSecond?: number;
}

export type HubSpotFault =
  | { kind: '429'; policy: 'TEN_SECONDLY_ROLLING' | 'DAILY'; count?: number; retryAfterSeconds?: number }
  | { kind: '5xx'; status?: 500 | 502 | 503 | 504; count?: number }
  | { kind: 'slow'; ms: number; count?: number }
  /** The request is carried out, then the connection is cut before the answer: a lost answer. */
  | { kind: 'lost'; count?: number }
  /** Items carrying that property fail validation (an error item and 207 in batches, 400 on single writes). */
  | { kind: 'invalid'; property: string; count?: number };

export interface HubSpotFakeObject {
  id: string;
  properties: Record<string, string>;
  createdAt: string;
  updatedAt: string;
}

export interface HubSpotFakeAssociation {
  fromType: string;
  fromId: string;
  toType: string;
  toId: string;
  typeId: number;
  category: string;
}

export interface HubSpotFakePropertyDefinition {
  name: string;
  hasUniqueValue: boolean;
  type: string;
  fieldType: string;
  /** Allowed values of an enumeration; empty for other types. */
  options: string[];
}

export interface HubSpotFakeRequest {
  /** When the request arrived (ms since the epoch). */
  at: number;
  method: string;
  path: string;
  status: number;
  correlationId: string;
  ms: number;
}

export interface HubSpotFake {
  /** e.g. http://127.0.0.1:PORT (give it to the client as `basePath`). */
  baseUrl: string;
  close(): Promise<void>;
  /** Applied to the next `count` (default 1) requests that match (method, path prefix); faults queue in order. */
  inject(fault: HubSpotFault, match?: { method?: string; pathPrefix?: string }): void;
  /** How many injected requests of this kind are still to come (a fault is taken when its request arrives). */
  faultsLeft(kind: HubSpotFault['kind']): number;
  /** The stored objects of a type (`emails`, `0-49`, ...), oldest first. */
  objects(type: string): HubSpotFakeObject[];
  /** Stored associations, in the direction they were written. */
  associations(): HubSpotFakeAssociation[];
  propertyDefinitions(type: string): HubSpotFakePropertyDefinition[];
  /** Stores an object directly (no request, no rate limit); returns its id. */
  seed(type: 'contacts' | 'companies' | 'deals', properties: Record<string, string>): string;
  requests: HubSpotFakeRequest[];
  /** Spec violations of requests and responses, as `request|response METHOD template [status]: problem`. */
  violations: string[];
  /** Forgets objects, associations, custom properties, requests, violations, faults and rate-limit counters. */
  reset(): void;
}

// ---------------------------------------------------------------------------------------------------------------
// Catalogue

export const OBJECT_TYPES = ['emails', 'calls', 'notes', 'meetings', 'contacts', 'companies', 'deals'] as const;
export type ObjectType = (typeof OBJECT_TYPES)[number];

const SINGULAR: Readonly<Record<ObjectType, string>> = {
  emails: 'email',
  calls: 'call',
  notes: 'note',
  meetings: 'meeting',
  contacts: 'contact',
  companies: 'company',
  deals: 'deal',
};

/** HUBSPOT_DEFINED association type ids, from → to, as HubSpot's v4 association type table lists them. */
export const HUBSPOT_DEFINED_TYPES: ReadonlyArray<{
  from: ObjectType;
  to: ObjectType;
  typeId: number;
  inverse: number;
  primary?: boolean;
}> = [
  { from: 'emails', to: 'contacts', typeId: 198, inverse: 197 },
  { from: 'emails', to: 'companies', typeId: 186, inverse: 185 },
  { from: 'emails', to: 'deals', typeId: 210, inverse: 209 },
  { from: 'calls', to: 'contacts', typeId: 194, inverse: 193 },
  { from: 'calls', to: 'companies', typeId: 182, inverse: 181 },
  { from: 'calls', to: 'deals', typeId: 206, inverse: 205 },
  { from: 'notes', to: 'contacts', typeId: 202, inverse: 201 },
  { from: 'notes', to: 'companies', typeId: 190, inverse: 189 },
  { from: 'notes', to: 'deals', typeId: 214, inverse: 213 },
  { from: 'meetings', to: 'contacts', typeId: 200, inverse: 199 },
  { from: 'meetings', to: 'companies', typeId: 188, inverse: 187 },
  { from: 'meetings', to: 'deals', typeId: 212, inverse: 211 },
  { from: 'contacts', to: 'companies', typeId: 279, inverse: 280 },
  { from: 'contacts', to: 'companies', typeId: 1, inverse: 2, primary: true },
  { from: 'deals', to: 'contacts', typeId: 3, inverse: 4 },
  { from: 'deals', to: 'companies', typeId: 341, inverse: 342 },
  { from: 'deals', to: 'companies', typeId: 5, inverse: 6, primary: true },
];

/** The HUBSPOT_DEFINED type ids valid from → to (the table read both ways). */
function definedTypeIds(from: ObjectType, to: ObjectType): number[] {
  const ids: number[] = [];
  for (const t of HUBSPOT_DEFINED_TYPES) {
    if (t.from === from && t.to === to) ids.push(t.typeId);
    if (t.to === from && t.from === to) ids.push(t.inverse);
  }
  return ids;
}

/** The type id of the same association read from the other side (user-defined labels keep their id). */
function inverseTypeId(from: ObjectType, to: ObjectType, typeId: number, category: string): number {
  if (category !== 'HUBSPOT_DEFINED') return typeId;
  for (const t of HUBSPOT_DEFINED_TYPES) {
    if (t.from === from && t.to === to && t.typeId === typeId) return t.inverse;
    if (t.to === from && t.from === to && t.inverse === typeId) return t.typeId;
  }
  return typeId;
}

function defaultTypeId(from: ObjectType, to: ObjectType): number | undefined {
  const plain = HUBSPOT_DEFINED_TYPES.find(
    (t) => t.primary !== true && ((t.from === from && t.to === to) || (t.from === to && t.to === from)),
  );
  if (!plain) return undefined;
  return plain.from === from ? plain.typeId : plain.inverse;
}

interface PropertyDefinition {
  name: string;
  label: string;
  type: string;
  fieldType: string;
  groupName: string;
  description: string;
  hasUniqueValue: boolean;
  options: Array<{ label: string; value: string; hidden: boolean; displayOrder?: number; description?: string }>;
  hubspotDefined: boolean;
  createdAt: string;
  updatedAt: string;
}

const text = (name: string) => ({ name, type: 'string', fieldType: 'text' });
const area = (name: string) => ({ name, type: 'string', fieldType: 'textarea' });
const html = (name: string) => ({ name, type: 'string', fieldType: 'html' });
const num = (name: string) => ({ name, type: 'number', fieldType: 'number' });
const when = (name: string) => ({ name, type: 'datetime', fieldType: 'date' });
const pick = (name: string, values: string[]) => ({ name, type: 'enumeration', fieldType: 'select', values });

type BuiltIn = { name: string; type: string; fieldType: string; values?: string[]; unique?: boolean };

const COMMON: BuiltIn[] = [text('hs_object_id'), when('hs_createdate'), when('hs_lastmodifieddate'), text('hubspot_owner_id')];
const ACTIVITY: BuiltIn[] = [when('hs_timestamp'), text('hs_activity_type'), text('hs_attachment_ids')];

/** The default properties of each type that an adapter may write (writes to anything else are refused). */
const BUILT_IN: Readonly<Record<ObjectType, BuiltIn[]>> = {
  emails: [
    ...COMMON,
    ...ACTIVITY,
    pick('hs_email_direction', ['EMAIL', 'INCOMING_EMAIL', 'FORWARDED_EMAIL']),
    pick('hs_email_status', ['BOUNCED', 'FAILED', 'SCHEDULED', 'SENDING', 'SENT']),
    text('hs_email_subject'),
    area('hs_email_text'),
    html('hs_email_html'),
    area('hs_email_headers'),
    text('hs_email_sender_email'),
    text('hs_email_sender_firstname'),
    text('hs_email_sender_lastname'),
    text('hs_email_to_email'),
    text('hs_email_to_firstname'),
    text('hs_email_to_lastname'),
    text('hs_email_thread_id'),
  ],
  calls: [
    ...COMMON,
    ...ACTIVITY,
    pick('hs_call_direction', ['INBOUND', 'OUTBOUND']),
    pick('hs_call_status', [
      'BUSY',
      'CALLING_CRM_USER',
      'CANCELED',
      'COMPLETED',
      'CONNECTING',
      'FAILED',
      'IN_PROGRESS',
      'NO_ANSWER',
      'QUEUED',
      'RINGING',
    ]),
    text('hs_call_title'),
    html('hs_call_body'),
    num('hs_call_duration'),
    text('hs_call_from_number'),
    text('hs_call_to_number'),
    text('hs_call_recording_url'),
    text('hs_call_disposition'),
    text('hs_call_callee_object_id'),
    text('hs_call_callee_object_type'),
  ],
  notes: [...COMMON, ...ACTIVITY, html('hs_note_body')],
  meetings: [
    ...COMMON,
    ...ACTIVITY,
    text('hs_meeting_title'),
    html('hs_meeting_body'),
    area('hs_internal_meeting_notes'),
    text('hs_meeting_external_url'),
    text('hs_meeting_location'),
    when('hs_meeting_start_time'),
    when('hs_meeting_end_time'),
    pick('hs_meeting_outcome', ['SCHEDULED', 'COMPLETED', 'RESCHEDULED', 'NO_SHOW', 'CANCELED']),
  ],
  contacts: [
    ...COMMON,
    // Contacts cannot share an email address: HubSpot answers 409 "Contact already exists" and upserts by it.
    { ...text('email'), unique: true },
    text('firstname'),
    text('lastname'),
    text('phone'),
    text('mobilephone'),
    text('company'),
    text('jobtitle'),
    text('website'),
    pick('lifecyclestage', [
      'subscriber',
      'lead',
      'marketingqualifiedlead',
      'salesqualifiedlead',
      'opportunity',
      'customer',
      'evangelist',
      'other',
    ]),
    when('lastmodifieddate'),
    when('createdate'),
  ],
  companies: [
    ...COMMON,
    text('name'),
    text('domain'),
    text('website'),
    text('phone'),
    text('industry'),
    text('city'),
    text('country'),
    when('createdate'),
  ],
  deals: [
    ...COMMON,
    text('dealname'),
    num('amount'),
    text('dealstage'),
    text('pipeline'),
    when('closedate'),
    when('createdate'),
    { name: 'hs_is_closed', type: 'bool', fieldType: 'booleancheckbox', values: ['true', 'false'] },
  ],
};

/** What a GET or a search returns when the request names no properties. */
const DEFAULT_RETURNED: Readonly<Record<ObjectType, string[]>> = {
  emails: ['hs_createdate', 'hs_lastmodifieddate', 'hs_object_id'],
  calls: ['hs_createdate', 'hs_lastmodifieddate', 'hs_object_id'],
  notes: ['hs_createdate', 'hs_lastmodifieddate', 'hs_object_id'],
  meetings: ['hs_createdate', 'hs_lastmodifieddate', 'hs_object_id'],
  contacts: ['createdate', 'email', 'firstname', 'hs_object_id', 'lastmodifieddate', 'lastname'],
  companies: ['createdate', 'domain', 'hs_lastmodifieddate', 'hs_object_id', 'name'],
  deals: ['amount', 'closedate', 'createdate', 'dealname', 'dealstage', 'hs_lastmodifieddate', 'hs_object_id', 'pipeline'],
};

/** Properties HubSpot keeps itself: a write to them is refused as read-only. */
const READ_ONLY = new Set(['hs_object_id', 'hs_createdate', 'hs_lastmodifieddate', 'createdate', 'lastmodifieddate']);

function toObjectType(raw: string): ObjectType | null {
  const lower = raw.toLowerCase();
  if ((OBJECT_TYPES as readonly string[]).includes(lower)) return lower as ObjectType;
  const byId = Object.entries(OBJECT_TYPE_IDS).find(([, id]) => id === lower)?.[0];
  if (byId && (OBJECT_TYPES as readonly string[]).includes(byId)) return byId as ObjectType;
  const plural = OBJECT_TYPES.find((t) => SINGULAR[t] === lower);
  return plural ?? null;
}

// ---------------------------------------------------------------------------------------------------------------
// Errors, HubSpot style

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly category: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

interface ItemError {
  /** The 207 item status (`error`) and category. */
  readonly category: string;
  readonly message: string;
  readonly context: Record<string, string[]>;
  readonly errors: Array<{ message: string; code?: string; in?: string }>;
  /** The status a single-object request answers with for this problem. */
  readonly httpStatus: number;
}

function standardError(e: ItemError) {
  return { status: 'error', category: e.category, message: e.message, context: e.context, errors: e.errors, links: {} };
}

function propertyError(problems: Array<{ name: string; message: string; code: string }>): ItemError {
  const detail = problems.map((p) => ({ isValid: false, message: p.message, error: p.code, name: p.name }));
  return {
    category: 'VALIDATION_ERROR',
    message: `Property values were not valid: ${JSON.stringify(detail)}`,
    context: { propertyName: problems.map((p) => p.name) },
    errors: problems.map((p) => ({ message: p.message, code: p.code, in: p.name })),
    httpStatus: 400,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Server

interface StoredObject {
  id: string;
  properties: Record<string, string>;
  createdAt: string;
  updatedAt: string;
}

interface PendingFault {
  fault: HubSpotFault;
  match: { method?: string; pathPrefix?: string };
  remaining: number;
}

interface Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  /** Skip response validation: HubSpot's 429 body is not the spec's `Error` shape. */
  unchecked?: boolean;
}

interface Context {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly body: unknown;
  readonly correlationId: string;
  /** Properties that the `invalid` fault of this request refuses. */
  readonly invalidProperties: ReadonlySet<string>;
}

const TEN_SECONDS_MS = 10_000;
const MAX_BATCH = 100;

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A scalar as a string (numbers and booleans spelled out); anything else is `fallback`. */
function str(value: unknown, fallback = ''): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return fallback;
}

/** The `id` of a `{ id }` reference. */
function idOf(ref: unknown): string {
  return isRecord(ref) ? str(ref['id']) : '';
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function stringProps(value: unknown): Record<string, string> {
  if (!isRecord(value)) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === null || v === undefined) continue;
    out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  return out;
}

function listParam(query: URLSearchParams, name: string): string[] {
  return query
    .getAll(name)
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

/** Starts the fake on 127.0.0.1 (a free port). */
export async function startHubSpotFake(opts: HubSpotFakeOptions = {}): Promise<HubSpotFake> {
  const tenSecondlyLimit = opts.tenSecondlyLimit ?? 100;
  const dailyLimit = opts.dailyLimit ?? 250_000;
  const allowUnknown = opts.allowUnknownProperties ?? false;
  const refuseUniqueOn = new Set<string>(opts.refuseUniqueOn ?? []);
  const searchIndexDelayMs = opts.searchIndexDelayMs ?? 0;
  const searchPerSecond = opts.searchPerSecond ?? 4;
  let searchWindow: number[] = [];
  let customGroups = new Map<ObjectType, Set<string>>();

  let nextId = 1001;
  let objects = new Map<ObjectType, Map<string, StoredObject>>();
  let properties = new Map<ObjectType, Map<string, PropertyDefinition>>();
  let links: HubSpotFakeAssociation[] = [];
  let faults: PendingFault[] = [];
  let window: number[] = [];
  let dailyUsed = 0;
  const requests: HubSpotFakeRequest[] = [];
  const violations: string[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const now = () => new Date().toISOString();

  const initState = () => {
    nextId = 1001;
    objects = new Map(OBJECT_TYPES.map((t) => [t, new Map<string, StoredObject>()]));
    properties = new Map(
      OBJECT_TYPES.map((t) => {
        const at = '2020-01-01T00:00:00.000Z';
        const defs = new Map<string, PropertyDefinition>();
        for (const p of BUILT_IN[t]) {
          defs.set(p.name, {
            name: p.name,
            label: p.name,
            type: p.type,
            fieldType: p.fieldType,
            groupName: `${SINGULAR[t]}information`,
            description: '',
            hasUniqueValue: p.unique === true,
            options: (p.values ?? []).map((value, i) => ({ label: value, value, hidden: false, displayOrder: i })),
            hubspotDefined: true,
            createdAt: at,
            updatedAt: at,
          });
        }
        return [t, defs];
      }),
    );
    links = [];
    faults = [];
    window = [];
    searchWindow = [];
    customGroups = new Map();
    dailyUsed = 0;
  };
  initState();

  const store = (type: ObjectType) => objects.get(type) ?? new Map<string, StoredObject>();
  const defs = (type: ObjectType) => properties.get(type) ?? new Map<string, PropertyDefinition>();

  const typeOf = (raw: string): ObjectType => {
    const type = toObjectType(raw);
    if (!type) throw new HttpError(400, 'VALIDATION_ERROR', `Unable to infer object type from: ${raw}`);
    return type;
  };

  /** The type's property groups: HubSpot's default information group (e.g. emailinformation), then any created. */
  const groupsOf = (type: ObjectType): string[] => [`${SINGULAR[type]}information`, ...(customGroups.get(type) ?? [])];

  const isUnique = (type: ObjectType, name: string) => defs(type).get(name)?.hasUniqueValue === true;

  const findBy = (type: ObjectType, name: string, value: string): StoredObject | undefined => {
    for (const o of store(type).values()) if (o.properties[name] === value) return o;
    return undefined;
  };

  /** The object an id (or unique property value with `idProperty`) names. */
  const lookup = (type: ObjectType, id: string, idProperty: string | null): StoredObject | undefined => {
    if (idProperty === null || idProperty === '' || idProperty === 'hs_object_id') return store(type).get(id);
    if (!isUnique(type, idProperty)) {
      throw new HttpError(
        400,
        'VALIDATION_ERROR',
        `Unable to perform update/upsert by non-unique ${OBJECT_TYPE_IDS[type] ?? type} property ${idProperty}`,
      );
    }
    return findBy(type, idProperty, id);
  };

  /**
   * Checks the properties one write sets: defined, writable, enumerations within their options, numbers numeric,
   * injected `invalid` properties refused, unique values not held by another object (nor an earlier item of the
   * same batch, `claimed`).
   */
  const checkProperties = (
    ctx: Context,
    type: ObjectType,
    props: Record<string, string>,
    selfId: string | null,
    claimed: Map<string, string>,
  ): ItemError | null => {
    const problems: Array<{ name: string; message: string; code: string }> = [];
    for (const [name, value] of Object.entries(props)) {
      const def = defs(type).get(name);
      if (ctx.invalidProperties.has(name)) {
        problems.push({ name, message: `${value} was not a valid value for ${name}`, code: 'INVALID_PROPERTY_VALUE' });
        continue;
      }
      if (!def) {
        if (!allowUnknown) problems.push({ name, message: `Property "${name}" does not exist`, code: 'PROPERTY_DOESNT_EXIST' });
        continue;
      }
      if (READ_ONLY.has(name)) {
        problems.push({ name, message: `"${name}" is a read only property; its value cannot be set.`, code: 'READ_ONLY_VALUE' });
        continue;
      }
      if (value === '') continue; // clearing a value is always allowed
      if (def.type === 'enumeration' || def.type === 'bool') {
        const allowed = def.options.map((o) => o.value);
        const values = def.fieldType === 'checkbox' ? value.split(';') : [value];
        const bad = values.find((v) => !allowed.includes(v));
        if (bad !== undefined) {
          problems.push({
            name,
            message: `${bad} was not one of the allowed options: ${JSON.stringify(def.options.map((o) => ({ label: o.label, value: o.value })))}`,
            code: 'INVALID_OPTION',
          });
        }
      } else if (def.type === 'number' && !/^-?\d+(\.\d+)?$/.test(value)) {
        problems.push({ name, message: `${value} was not a valid number.`, code: 'INVALID_INTEGER' });
      } else if ((def.type === 'datetime' || def.type === 'date') && !/^\d+$/.test(value) && Number.isNaN(Date.parse(value))) {
        problems.push({ name, message: `${value} was not a valid long or ISO 8601 date.`, code: 'INVALID_DATE' });
      }
    }
    if (problems.length > 0) return propertyError(problems);
    for (const [name, value] of Object.entries(props)) {
      if (!isUnique(type, name) || value === '') continue;
      const holder = findBy(type, name, value);
      const claimedBy = claimed.get(`${name}\u0000${value}`);
      const existingId =
        holder && holder.id !== selfId ? holder.id : claimedBy !== undefined && claimedBy !== selfId ? claimedBy : undefined;
      if (existingId !== undefined) {
        return {
          category: 'CONFLICT',
          message: `A ${SINGULAR[type]} with ${name} "${value}" already exists. Existing ID: ${existingId}`,
          context: { id: [existingId], propertyName: [name] },
          errors: [{ message: `${name} must be unique`, code: 'CONFLICT', in: name }],
          httpStatus: 409,
        };
      }
    }
    return null;
  };

  const claim = (claimed: Map<string, string>, type: ObjectType, props: Record<string, string>, id: string) => {
    for (const [name, value] of Object.entries(props)) if (isUnique(type, name) && value !== '') claimed.set(`${name}\u0000${value}`, id);
  };

  const create = (type: ObjectType, props: Record<string, string>): StoredObject => {
    const id = String(nextId++);
    const at = now();
    const createdKey = type === 'contacts' || type === 'companies' || type === 'deals' ? 'createdate' : 'hs_createdate';
    const object: StoredObject = {
      id,
      properties: {
        ...props,
        hs_object_id: id,
        [createdKey]: at,
        hs_createdate: at,
        hs_lastmodifieddate: at,
        ...(type === 'contacts' ? { lastmodifieddate: at } : {}),
      },
      createdAt: at,
      updatedAt: at,
    };
    store(type).set(id, object);
    return object;
  };

  const update = (type: ObjectType, object: StoredObject, props: Record<string, string>): StoredObject => {
    const at = now();
    Object.assign(object.properties, props, { hs_lastmodifieddate: at }, type === 'contacts' ? { lastmodifieddate: at } : {});
    object.updatedAt = at;
    return object;
  };

  /** The object as the API shows it: all its properties after a write, the asked-for (or default) ones on reads. */
  const present = (type: ObjectType, object: StoredObject, wanted: string[] | null) => {
    const names = wanted === null ? null : new Set([...(wanted.length > 0 ? wanted : DEFAULT_RETURNED[type]), 'hs_object_id']);
    const shown: Record<string, string> = {};
    for (const [k, v] of Object.entries(object.properties)) if (names === null || names.has(k)) shown[k] = v;
    return { id: object.id, properties: shown, createdAt: object.createdAt, updatedAt: object.updatedAt, archived: false };
  };

  const batchEnvelope = (startedAt: string) => ({ status: 'COMPLETE', startedAt, completedAt: now() });

  const batchAnswer = (okStatus: number, startedAt: string, results: unknown[], errors: ItemError[], ids: string[][]): Answer => {
    const envelope = { ...batchEnvelope(startedAt), results };
    if (errors.length === 0) return { status: okStatus, body: envelope };
    return {
      status: 207,
      body: {
        ...envelope,
        numErrors: errors.length,
        errors: errors.map((e, i) => ({
          ...standardError(e),
          context: { ...e.context, ...(ids[i] && ids[i].length > 0 ? { ids: ids[i] } : {}) },
        })),
      },
    };
  };

  const inputsOf = (body: unknown): Record<string, unknown>[] => {
    const inputs = isRecord(body) ? asArray(body['inputs']) : [];
    if (inputs.length > MAX_BATCH) throw new HttpError(400, 'VALIDATION_ERROR', `inputs: size must be between 0 and ${MAX_BATCH}`);
    return inputs.filter(isRecord);
  };

  const refuseDuplicateIds = (inputs: Record<string, unknown>[]) => {
    const seen = new Set<string>();
    const dupes = new Set<string>();
    for (const input of inputs) {
      const id = str(input['id'], '');
      if (seen.has(id)) dupes.add(id);
      seen.add(id);
    }
    if (dupes.size > 0)
      throw new HttpError(400, 'VALIDATION_ERROR', `Duplicate IDs found in batch input: [${[...dupes].join(', ')}]. IDs must be unique`);
  };

  // --- associations

  const objectExists = (type: ObjectType, id: string) => store(type).has(id);

  const checkAssociationTypes = (from: ObjectType, to: ObjectType, types: unknown[]): string | null => {
    if (types.length === 0) return 'At least one association type is required';
    for (const t of types) {
      if (!isRecord(t)) return 'Invalid association type';
      const category = str(t['associationCategory'], '');
      const typeId = Number(t['associationTypeId']);
      if (category === 'HUBSPOT_DEFINED' && !definedTypeIds(from, to).includes(typeId)) {
        return `${typeId} is not a valid HUBSPOT_DEFINED association type id between ${from} and ${to}`;
      }
      if (!['HUBSPOT_DEFINED', 'USER_DEFINED', 'INTEGRATOR_DEFINED', 'WORK'].includes(category))
        return `Unknown association category ${category}`;
    }
    return null;
  };

  const associate = (from: ObjectType, fromId: string, to: ObjectType, toId: string, types: unknown[]) => {
    for (const t of types.filter(isRecord)) {
      const typeId = Number(t['associationTypeId']);
      const category = String(t['associationCategory']);
      const exists = links.some(
        (l) =>
          (l.fromType === from &&
            l.fromId === fromId &&
            l.toType === to &&
            l.toId === toId &&
            l.typeId === typeId &&
            l.category === category) ||
          (l.fromType === to &&
            l.fromId === toId &&
            l.toType === from &&
            l.toId === fromId &&
            l.category === category &&
            l.typeId === inverseTypeId(from, to, typeId, category)),
      );
      if (!exists) links.push({ fromType: from, fromId, toType: to, toId, typeId, category });
    }
  };

  /** Associations of one object towards a type, grouped by the object at the other end, read from `from`'s side. */
  const associationsOf = (from: ObjectType, fromId: string, to: ObjectType): Map<string, Array<{ category: string; typeId: number }>> => {
    const grouped = new Map<string, Array<{ category: string; typeId: number }>>();
    const add = (toId: string, category: string, typeId: number) => {
      const list = grouped.get(toId) ?? [];
      if (!list.some((x) => x.typeId === typeId && x.category === category)) list.push({ category, typeId });
      grouped.set(toId, list);
    };
    for (const l of links) {
      if (l.fromType === from && l.fromId === fromId && l.toType === to) add(l.toId, l.category, l.typeId);
      if (l.toType === from && l.toId === fromId && l.fromType === to)
        add(l.fromId, l.category, inverseTypeId(to, from, l.typeId, l.category));
    }
    return grouped;
  };

  const unlink = (from: ObjectType, fromId: string, to: ObjectType, toId: string) => {
    links = links.filter(
      (l) =>
        !(
          (l.fromType === from && l.fromId === fromId && l.toType === to && l.toId === toId) ||
          (l.fromType === to && l.fromId === toId && l.toType === from && l.toId === fromId)
        ),
    );
  };

  const withLabels = (from: ObjectType, to: ObjectType, list: Array<{ category: string; typeId: number }>) =>
    list.map((x) => ({
      category: x.category,
      typeId: x.typeId,
      fromObjectTypeId: OBJECT_TYPE_IDS[from] ?? from,
      toObjectTypeId: OBJECT_TYPE_IDS[to] ?? to,
    }));

  const pairResult = (from: ObjectType, fromId: string, to: ObjectType, toId: string) => ({
    fromObjectTypeId: OBJECT_TYPE_IDS[from] ?? from,
    fromObjectId: fromId,
    toObjectTypeId: OBJECT_TYPE_IDS[to] ?? to,
    toObjectId: toId,
    labels: [] as string[],
  });

  // --- search

  const matches = (object: StoredObject, filter: Record<string, unknown>): boolean => {
    const name = str(filter['propertyName'], '');
    const actual = name === 'hs_object_id' ? object.id : object.properties[name];
    const value = filter['value'] === undefined ? undefined : str(filter['value']);
    const values = asArray(filter['values']).map(String);
    const same = (a: string | undefined, b: string | undefined) =>
      a !== undefined && b !== undefined && a.toLowerCase() === b.toLowerCase();
    const numeric = (a: string | undefined, b: string | undefined, cmp: (x: number, y: number) => boolean) =>
      a !== undefined &&
      b !== undefined &&
      cmp(Number.isNaN(Number(a)) ? Date.parse(a) : Number(a), Number.isNaN(Number(b)) ? Date.parse(b) : Number(b));
    switch (filter['operator']) {
      case 'EQ':
        return same(actual, value);
      case 'NEQ':
        return !same(actual, value);
      case 'IN':
        return values.some((v) => same(actual, v));
      case 'NOT_IN':
        return !values.some((v) => same(actual, v));
      case 'HAS_PROPERTY':
        return actual !== undefined && actual !== '';
      case 'NOT_HAS_PROPERTY':
        return actual === undefined || actual === '';
      case 'GT':
        return numeric(actual, value, (x, y) => x > y);
      case 'GTE':
        return numeric(actual, value, (x, y) => x >= y);
      case 'LT':
        return numeric(actual, value, (x, y) => x < y);
      case 'LTE':
        return numeric(actual, value, (x, y) => x <= y);
      case 'BETWEEN':
        return numeric(actual, value, (x, y) => x >= y) && numeric(actual, String(filter['highValue']), (x, y) => x <= y);
      case 'CONTAINS_TOKEN':
        return actual !== undefined && value !== undefined && actual.toLowerCase().includes(value.replace(/\*/g, '').toLowerCase());
      case 'NOT_CONTAINS_TOKEN':
        return !(actual !== undefined && value !== undefined && actual.toLowerCase().includes(value.replace(/\*/g, '').toLowerCase()));
      default:
        return false;
    }
  };

  // --- routes

  type Handler = (ctx: Context, params: string[]) => Answer;
  const routes: Array<{ method: string; pattern: RegExp; handler: Handler }> = [];
  const route = (method: string, pattern: string, handler: Handler) => {
    routes.push({ method, pattern: new RegExp(`^${pattern.replace(/:([a-z]+)/gi, '([^/]+)')}$`), handler });
  };

  const propertyJson = (d: PropertyDefinition) => ({
    name: d.name,
    label: d.label,
    type: d.type,
    fieldType: d.fieldType,
    groupName: d.groupName,
    description: d.description,
    options: d.options,
    hasUniqueValue: d.hasUniqueValue,
    hidden: false,
    formField: false,
    displayOrder: -1,
    calculated: false,
    externalOptions: false,
    hubspotDefined: d.hubspotDefined,
    archived: false,
    createdAt: d.createdAt,
    updatedAt: d.updatedAt,
    modificationMetadata: { archivable: !d.hubspotDefined, readOnlyDefinition: d.hubspotDefined, readOnlyValue: READ_ONLY.has(d.name) },
  });

  route('GET', '/crm/v3/properties/:type', (_ctx, [rawType = '']) => ({
    status: 200,
    body: { results: [...defs(typeOf(rawType)).values()].map(propertyJson) },
  }));

  route('POST', '/crm/v3/properties/:type', (ctx, [rawType = '']) => {
    const type = typeOf(rawType);
    const body = isRecord(ctx.body) ? ctx.body : {};
    const name = str(body['name'], '');
    if (defs(type).has(name)) throw new HttpError(409, 'OBJECT_ALREADY_EXISTS', `Property named '${name}' already exists.`);
    if (body['hasUniqueValue'] === true && refuseUniqueOn.has(type)) {
      throw new HttpError(
        400,
        'VALIDATION_ERROR',
        `Property ${name} cannot have unique values: unique value properties are not supported for object type ${OBJECT_TYPE_IDS[type] ?? type}`,
      );
    }
    const group = str(body['groupName'], '');
    if (!groupsOf(type).includes(group)) throw new HttpError(400, 'VALIDATION_ERROR', `Property group ${group} does not exist`);
    const at = now();
    const def: PropertyDefinition = {
      name,
      label: str(body['label'], name),
      type: str(body['type'], 'string'),
      fieldType: str(body['fieldType'], 'text'),
      groupName: str(body['groupName'], `${SINGULAR[type]}information`),
      description: str(body['description'], ''),
      hasUniqueValue: body['hasUniqueValue'] === true,
      options: asArray(body['options'])
        .filter(isRecord)
        .map((o) => ({
          label: str(o['label'], ''),
          value: str(o['value'], ''),
          hidden: o['hidden'] === true,
          ...(typeof o['displayOrder'] === 'number' ? { displayOrder: o['displayOrder'] } : {}),
        })),
      hubspotDefined: false,
      createdAt: at,
      updatedAt: at,
    };
    defs(type).set(name, def);
    return { status: 201, body: propertyJson(def) };
  });

  route('GET', '/crm/v3/properties/:type/groups', (_ctx, [rawType = '']) => {
    const type = typeOf(rawType);
    return { status: 200, body: { results: groupsOf(type).map((name, i) => ({ name, label: name, displayOrder: i, archived: false })) } };
  });

  route('POST', '/crm/v3/properties/:type/groups', (ctx, [rawType = '']) => {
    const type = typeOf(rawType);
    const body = isRecord(ctx.body) ? ctx.body : {};
    const name = str(body['name'], '');
    if (groupsOf(type).includes(name)) throw new HttpError(409, 'OBJECT_ALREADY_EXISTS', `Property group ${name} already exists.`);
    customGroups.set(type, new Set([...(customGroups.get(type) ?? []), name]));
    return {
      status: 201,
      body: {
        name,
        label: str(body['label'], name),
        displayOrder: typeof body['displayOrder'] === 'number' ? body['displayOrder'] : -1,
        archived: false,
      },
    };
  });

  route('GET', '/crm/v3/properties/:type/:name', (_ctx, [rawType = '', name = '']) => {
    const def = defs(typeOf(rawType)).get(name);
    if (!def) throw new HttpError(404, 'OBJECT_NOT_FOUND', `Property ${name} does not exist`);
    return { status: 200, body: propertyJson(def) };
  });

  /** Associations given inline on a single create (`associations: [{ to, types }]`). */
  const inlineAssociations = (
    type: ObjectType,
    body: Record<string, unknown>,
  ): Array<{ to: ObjectType; toId: string; types: unknown[] }> => {
    const out: Array<{ to: ObjectType; toId: string; types: unknown[] }> = [];
    for (const a of asArray(body['associations']).filter(isRecord)) {
      const toId = idOf(a['to']);
      const types = asArray(a['types']);
      const candidates = OBJECT_TYPES.filter((t) => objectExists(t, toId));
      const first = types.find(isRecord);
      const to = candidates.find(
        (t) =>
          first === undefined ||
          definedTypeIds(type, t).includes(Number(first['associationTypeId'])) ||
          first['associationCategory'] !== 'HUBSPOT_DEFINED',
      );
      if (!to)
        throw new HttpError(
          400,
          'VALIDATION_ERROR',
          `Could not create associations: object ${toId} does not exist or the association type does not apply`,
        );
      const problem = checkAssociationTypes(type, to, types);
      if (problem) throw new HttpError(400, 'VALIDATION_ERROR', problem);
      out.push({ to, toId, types });
    }
    return out;
  };

  const itemFailure = (e: ItemError): never => {
    throw new HttpError(e.httpStatus, e.category, e.message, { errors: e.errors, context: e.context });
  };

  route('POST', '/crm/v3/objects/:type', (ctx, [rawType = '']) => {
    const type = typeOf(rawType);
    const body = isRecord(ctx.body) ? ctx.body : {};
    const props = stringProps(body['properties']);
    const problem = checkProperties(ctx, type, props, null, new Map());
    if (problem) itemFailure(problem);
    const planned = inlineAssociations(type, body);
    const object = create(type, props);
    for (const a of planned) associate(type, object.id, a.to, a.toId, a.types);
    return { status: 201, body: present(type, object, null) };
  });

  route('GET', '/crm/v3/objects/:type', (ctx, [rawType = '']) => {
    const type = typeOf(rawType);
    const limit = Math.min(Number(ctx.query.get('limit') ?? 10) || 10, 100);
    const after = Number(ctx.query.get('after') ?? 0) || 0;
    const all = [...store(type).values()];
    const page = all.slice(after, after + limit);
    const wanted = listParam(ctx.query, 'properties');
    const next = after + limit < all.length ? String(after + limit) : null;
    return {
      status: 200,
      body: {
        results: page.map((o) => present(type, o, wanted)),
        ...(next ? { paging: { next: { after: next, link: `?after=${next}` } } } : {}),
      },
    };
  });

  const notFound = (type: ObjectType, id: string) =>
    new HttpError(404, 'OBJECT_NOT_FOUND', `Object not found.  objectId are usually numeric.`, { context: { id: [id], type: [type] } });

  route('GET', '/crm/v3/objects/:type/:id', (ctx, [rawType = '', rawId = '']) => {
    const type = typeOf(rawType);
    const id = decodeURIComponent(rawId);
    const object = lookup(type, id, ctx.query.get('idProperty'));
    if (!object) throw notFound(type, id);
    const shown = present(type, object, listParam(ctx.query, 'properties'));
    const assocTypes = listParam(ctx.query, 'associations')
      .map(toObjectType)
      .filter((t): t is ObjectType => t !== null);
    if (assocTypes.length === 0) return { status: 200, body: shown };
    const associations: Record<string, unknown> = {};
    for (const to of assocTypes) {
      const results = [...associationsOf(type, object.id, to).entries()].flatMap(([toId, list]) =>
        list.map((x) => ({ id: toId, type: x.category === 'HUBSPOT_DEFINED' ? `${SINGULAR[type]}_to_${SINGULAR[to]}` : String(x.typeId) })),
      );
      if (results.length > 0) associations[to] = { results };
    }
    return { status: 200, body: { ...shown, associations } };
  });

  route('PATCH', '/crm/v3/objects/:type/:id', (ctx, [rawType = '', rawId = '']) => {
    const type = typeOf(rawType);
    const id = decodeURIComponent(rawId);
    const object = lookup(type, id, ctx.query.get('idProperty'));
    if (!object) throw notFound(type, id);
    const props = stringProps(isRecord(ctx.body) ? ctx.body['properties'] : undefined);
    const problem = checkProperties(ctx, type, props, object.id, new Map());
    if (problem) itemFailure(problem);
    return { status: 200, body: present(type, update(type, object, props), null) };
  });

  route('POST', '/crm/v3/objects/:type/batch/create', (ctx, [rawType = '']) => {
    const type = typeOf(rawType);
    const startedAt = now();
    const inputs = inputsOf(ctx.body);
    const claimed = new Map<string, string>();
    const results: unknown[] = [];
    const errors: ItemError[] = [];
    const errorIds: string[][] = [];
    const planned: Array<{ props: Record<string, string>; index: number }> = [];
    inputs.forEach((input, index) => {
      const props = stringProps(input['properties']);
      const problem = checkProperties(ctx, type, props, null, claimed);
      if (problem) {
        errors.push(problem);
        errorIds.push([]);
        return;
      }
      claim(claimed, type, props, `#${index}`);
      planned.push({ props, index });
    });
    for (const p of planned) {
      const object = create(type, p.props);
      const input = inputs[p.index] ?? {};
      for (const a of asArray(input['associations']).filter(isRecord)) {
        const toId = idOf(a['to']);
        const to = OBJECT_TYPES.find((t) => objectExists(t, toId) && checkAssociationTypes(type, t, asArray(a['types'])) === null);
        if (to) associate(type, object.id, to, toId, asArray(a['types']));
      }
      results.push(present(type, object, null));
    }
    return batchAnswer(201, startedAt, results, errors, errorIds);
  });

  route('POST', '/crm/v3/objects/:type/batch/read', (ctx, [rawType = '']) => {
    const type = typeOf(rawType);
    const startedAt = now();
    const body = isRecord(ctx.body) ? ctx.body : {};
    const inputs = inputsOf(ctx.body);
    const idProperty = typeof body['idProperty'] === 'string' ? body['idProperty'] : null;
    const wanted = asArray(body['properties']).map(String);
    const results: unknown[] = [];
    const missing: string[] = [];
    for (const input of inputs) {
      const id = str(input['id'], '');
      const object = lookup(type, id, idProperty);
      if (object) results.push(present(type, object, wanted));
      else missing.push(id);
    }
    const errors: ItemError[] =
      missing.length === 0
        ? []
        : [
            {
              category: 'OBJECT_NOT_FOUND',
              message: `Could not get some ${type} objects, they may be deleted or not exist. Check that ids are valid.`,
              context: { ids: missing },
              errors: [],
              httpStatus: 404,
            },
          ];
    return batchAnswer(200, startedAt, results, errors, [missing]);
  });

  route('POST', '/crm/v3/objects/:type/batch/update', (ctx, [rawType = '']) => {
    const type = typeOf(rawType);
    const startedAt = now();
    const inputs = inputsOf(ctx.body);
    refuseDuplicateIds(inputs);
    const claimed = new Map<string, string>();
    const results: unknown[] = [];
    const errors: ItemError[] = [];
    const errorIds: string[][] = [];
    const planned: Array<{ object: StoredObject; props: Record<string, string> }> = [];
    for (const input of inputs) {
      const id = str(input['id'], '');
      const object = lookup(type, id, typeof input['idProperty'] === 'string' ? input['idProperty'] : null);
      if (!object) {
        errors.push({ category: 'OBJECT_NOT_FOUND', message: `Object ${id} not found`, context: {}, errors: [], httpStatus: 404 });
        errorIds.push([id]);
        continue;
      }
      const props = stringProps(input['properties']);
      const problem = checkProperties(ctx, type, props, object.id, claimed);
      if (problem) {
        errors.push(problem);
        errorIds.push([id]);
        continue;
      }
      claim(claimed, type, props, object.id);
      planned.push({ object, props });
    }
    for (const p of planned) results.push(present(type, update(type, p.object, p.props), null));
    return batchAnswer(200, startedAt, results, errors, errorIds);
  });

  route('POST', '/crm/v3/objects/:type/batch/upsert', (ctx, [rawType = '']) => {
    const type = typeOf(rawType);
    const startedAt = now();
    const inputs = inputsOf(ctx.body);
    refuseDuplicateIds(inputs);
    const claimed = new Map<string, string>();
    const results: unknown[] = [];
    const errors: ItemError[] = [];
    const errorIds: string[][] = [];
    const planned: Array<{ object: StoredObject | null; props: Record<string, string> }> = [];
    for (const input of inputs) {
      const id = str(input['id'], '');
      const idProperty = typeof input['idProperty'] === 'string' && input['idProperty'] !== '' ? input['idProperty'] : null;
      if (idProperty === null) {
        // Without idProperty the id is a record id: update it if it exists, there is nothing to create by.
        const object = store(type).get(id);
        if (!object) {
          errors.push({
            category: 'OBJECT_NOT_FOUND',
            message: `Object ${id} not found and no idProperty to create it by`,
            context: {},
            errors: [],
            httpStatus: 404,
          });
          errorIds.push([id]);
          continue;
        }
        const props = stringProps(input['properties']);
        const problem = checkProperties(ctx, type, props, object.id, claimed);
        if (problem) {
          errors.push(problem);
          errorIds.push([id]);
          continue;
        }
        planned.push({ object, props });
        continue;
      }
      const existing = lookup(type, id, idProperty) ?? null;
      const given = stringProps(input['properties']);
      if (given[idProperty] !== undefined && given[idProperty] !== id) {
        errors.push(
          propertyError([
            {
              name: idProperty,
              message: `${idProperty} in properties (${given[idProperty]}) differs from the input id (${id})`,
              code: 'INVALID_PROPERTY_VALUE',
            },
          ]),
        );
        errorIds.push([id]);
        continue;
      }
      const props = existing ? given : { ...given, [idProperty]: id };
      const problem = checkProperties(ctx, type, props, existing?.id ?? `#${id}`, claimed);
      if (problem) {
        errors.push(problem);
        errorIds.push([id]);
        continue;
      }
      claim(claimed, type, props, existing?.id ?? `#${id}`);
      planned.push({ object: existing, props });
    }
    for (const p of planned) {
      const created = p.object === null;
      const object = p.object ? update(type, p.object, p.props) : create(type, p.props);
      results.push({ ...present(type, object, null), new: created });
    }
    return batchAnswer(200, startedAt, results, errors, errorIds);
  });

  route('POST', '/crm/v3/objects/:type/search', (ctx, [rawType = '']) => {
    const type = typeOf(rawType);
    const body = isRecord(ctx.body) ? ctx.body : {};
    const limit = typeof body['limit'] === 'number' ? body['limit'] : 10;
    if (limit > 200) throw new HttpError(400, 'VALIDATION_ERROR', 'limit: must be less than or equal to 200');
    const after = Number(body['after'] ?? 0) || 0;
    const groups = asArray(body['filterGroups']).filter(isRecord);
    // HubSpot's documented bounds: 5 filter groups, 10 filters in a group, 25 filters in all, 10,000 results.
    const filterCounts = groups.map((g) => asArray(g['filters']).length);
    if (groups.length > 5) throw new HttpError(400, 'VALIDATION_ERROR', `Too many filter groups (${groups.length}); the maximum is 5`);
    if (filterCounts.some((n) => n > 10))
      throw new HttpError(400, 'VALIDATION_ERROR', 'Too many filters in a filter group; the maximum is 10');
    if (filterCounts.reduce((a, b) => a + b, 0) > 25) throw new HttpError(400, 'VALIDATION_ERROR', 'Too many filters; the maximum is 25');
    for (const g of groups)
      for (const f of asArray(g['filters']).filter(isRecord))
        if (asArray(f['values']).length > 100)
          throw new HttpError(400, 'VALIDATION_ERROR', 'Too many values in an IN filter; the maximum is 100');
    if (after + limit > 10_000) throw new HttpError(400, 'VALIDATION_ERROR', 'Search results are limited to 10,000: narrow the query');
    const query = typeof body['query'] === 'string' ? body['query'].toLowerCase() : '';
    // The search index lags writes: objects written less than searchIndexDelayMs ago are not found yet.
    const indexedBy = Date.now() - searchIndexDelayMs;
    let found = [...store(type).values()]
      .filter((o) => searchIndexDelayMs === 0 || Date.parse(o.createdAt) <= indexedBy)
      .filter(
        (o) =>
          groups.length === 0 ||
          groups.some((g) =>
            asArray(g['filters'])
              .filter(isRecord)
              .every((f) => matches(o, f)),
          ),
      );
    if (query !== '') found = found.filter((o) => Object.values(o.properties).some((v) => v.toLowerCase().includes(query)));
    const sort = asArray(body['sorts'])[0];
    if (sort !== undefined) {
      const name = typeof sort === 'string' ? sort.replace(/^-/, '') : isRecord(sort) ? str(sort['propertyName'], '') : '';
      const descending = typeof sort === 'string' ? sort.startsWith('-') : isRecord(sort) && sort['direction'] === 'DESCENDING';
      found.sort(
        (a, b) => (a.properties[name] ?? '').localeCompare(b.properties[name] ?? '', 'en', { numeric: true }) * (descending ? -1 : 1),
      );
    }
    const page = found.slice(after, after + limit);
    const next = after + limit < found.length ? String(after + limit) : null;
    const wanted = asArray(body['properties']).map(String);
    return {
      status: 200,
      body: {
        total: found.length,
        results: page.map((o) => present(type, o, wanted)),
        ...(next ? { paging: { next: { after: next, link: `?after=${next}` } } } : {}),
      },
    };
  });

  route('POST', '/crm/v4/associations/:from/:to/batch/create', (ctx, [rawFrom = '', rawTo = '']) => {
    const from = typeOf(rawFrom);
    const to = typeOf(rawTo);
    const startedAt = now();
    const results: unknown[] = [];
    const errors: ItemError[] = [];
    const errorIds: string[][] = [];
    for (const input of inputsOf(ctx.body)) {
      const fromId = idOf(input['from']);
      const toId = idOf(input['to']);
      const missing = [...(objectExists(from, fromId) ? [] : [fromId]), ...(objectExists(to, toId) ? [] : [toId])];
      if (missing.length > 0) {
        errors.push({
          category: 'VALIDATION_ERROR',
          message: `No ${missing.join(', ')} ${from}/${to} object(s) found`,
          context: { fromObjectId: [fromId], toObjectId: [toId] },
          errors: [],
          httpStatus: 404,
        });
        errorIds.push(missing);
        continue;
      }
      const problem = checkAssociationTypes(from, to, asArray(input['types']));
      if (problem) {
        errors.push({
          category: 'VALIDATION_ERROR',
          message: problem,
          context: { fromObjectId: [fromId], toObjectId: [toId] },
          errors: [],
          httpStatus: 400,
        });
        errorIds.push([]);
        continue;
      }
      associate(from, fromId, to, toId, asArray(input['types']));
      results.push(pairResult(from, fromId, to, toId));
    }
    return batchAnswer(201, startedAt, results, errors, errorIds);
  });

  route('POST', '/crm/v4/associations/:from/:to/batch/read', (ctx, [rawFrom = '', rawTo = '']) => {
    const from = typeOf(rawFrom);
    const to = typeOf(rawTo);
    const startedAt = now();
    const results: unknown[] = [];
    const errors: ItemError[] = [];
    const errorIds: string[][] = [];
    for (const input of inputsOf(ctx.body)) {
      const fromId = str(input['id'], '');
      const grouped = associationsOf(from, fromId, to);
      if (grouped.size === 0) {
        errors.push({
          category: 'OBJECT_NOT_FOUND',
          message: `No ${to} is associated with ${SINGULAR[from]} ${fromId}.`,
          context: { fromObjectId: [fromId] },
          errors: [],
          httpStatus: 404,
        });
        errorIds.push([]);
        continue;
      }
      results.push({
        from: { id: fromId },
        to: [...grouped.entries()].map(([toObjectId, list]) => ({ toObjectId, associationTypes: withLabels(from, to, list) })),
      });
    }
    return batchAnswer(200, startedAt, results, errors, errorIds);
  });

  route('POST', '/crm/v4/associations/:from/:to/batch/archive', (ctx, [rawFrom = '', rawTo = '']) => {
    const from = typeOf(rawFrom);
    const to = typeOf(rawTo);
    for (const input of inputsOf(ctx.body)) {
      const fromId = idOf(input['from']);
      for (const t of asArray(input['to']).filter(isRecord)) unlink(from, fromId, to, str(t['id'], ''));
    }
    return { status: 204, body: null };
  });

  route(
    'PUT',
    '/crm/v4/objects/:from/:fromId/associations/default/:to/:toId',
    (_ctx, [rawFrom = '', fromId = '', rawTo = '', toId = '']) => {
      const from = typeOf(rawFrom);
      const to = typeOf(rawTo);
      const startedAt = now();
      if (!objectExists(from, fromId)) throw notFound(from, fromId);
      if (!objectExists(to, toId)) throw notFound(to, toId);
      const typeId = defaultTypeId(from, to);
      if (typeId === undefined) throw new HttpError(400, 'VALIDATION_ERROR', `No default association type between ${from} and ${to}`);
      const spec = { associationCategory: 'HUBSPOT_DEFINED', associationTypeId: typeId };
      associate(from, fromId, to, toId, [spec]);
      return {
        status: 200,
        body: { ...batchEnvelope(startedAt), results: [{ from: { id: fromId }, to: { id: toId }, associationSpec: spec }] },
      };
    },
  );

  route('PUT', '/crm/v4/objects/:from/:fromId/associations/:to/:toId', (ctx, [rawFrom = '', fromId = '', rawTo = '', toId = '']) => {
    const from = typeOf(rawFrom);
    const to = typeOf(rawTo);
    if (!objectExists(from, fromId)) throw notFound(from, fromId);
    if (!objectExists(to, toId)) throw notFound(to, toId);
    const types = asArray(ctx.body);
    const problem = checkAssociationTypes(from, to, types);
    if (problem) throw new HttpError(400, 'VALIDATION_ERROR', problem);
    associate(from, fromId, to, toId, types);
    return { status: 201, body: pairResult(from, fromId, to, toId) };
  });

  route('DELETE', '/crm/v4/objects/:from/:fromId/associations/:to/:toId', (_ctx, [rawFrom = '', fromId = '', rawTo = '', toId = '']) => {
    unlink(typeOf(rawFrom), fromId, typeOf(rawTo), toId);
    return { status: 204, body: null };
  });

  route('GET', '/crm/v4/objects/:from/:fromId/associations/:to', (ctx, [rawFrom = '', fromId = '', rawTo = '']) => {
    const from = typeOf(rawFrom);
    const to = typeOf(rawTo);
    if (!objectExists(from, fromId)) throw notFound(from, fromId);
    const all = [...associationsOf(from, fromId, to).entries()];
    const limit = Number(ctx.query.get('limit') ?? 500) || 500;
    const after = Number(ctx.query.get('after') ?? 0) || 0;
    const next = after + limit < all.length ? String(after + limit) : null;
    return {
      status: 200,
      body: {
        results: all
          .slice(after, after + limit)
          .map(([toObjectId, list]) => ({ toObjectId, associationTypes: withLabels(from, to, list) })),
        ...(next ? { paging: { next: { after: next, link: `?after=${next}` } } } : {}),
      },
    };
  });

  // --- request pipeline

  const rateHeaders = (at: number): Record<string, string> => {
    window = window.filter((t) => t > at - TEN_SECONDS_MS);
    return {
      'X-HubSpot-RateLimit-Max': String(tenSecondlyLimit),
      'X-HubSpot-RateLimit-Remaining': String(Math.max(0, tenSecondlyLimit - window.length)),
      'X-HubSpot-RateLimit-Interval-Milliseconds': String(TEN_SECONDS_MS),
      'X-HubSpot-RateLimit-Daily': String(dailyLimit),
      'X-HubSpot-RateLimit-Daily-Remaining': String(Math.max(0, dailyLimit - dailyUsed)),
    };
  };

  const rateLimited = (
    policy: 'TEN_SECONDLY_ROLLING' | 'DAILY' | 'SECONDLY',
    correlationId: string,
    retryAfterSeconds: number | undefined,
  ): Answer => ({
    status: 429,
    unchecked: true,
    headers: retryAfterSeconds === undefined ? {} : { 'Retry-After': String(retryAfterSeconds) },
    body: {
      status: 'error',
      message:
        policy === 'DAILY'
          ? 'You have reached your daily limit.'
          : policy === 'SECONDLY'
            ? 'You have reached your secondly limit.'
            : 'You have reached your ten_secondly_rolling limit.',
      errorType: 'RATE_LIMIT',
      correlationId,
      policyName: policy,
      requestId: randomUUID(),
    },
  });

  const takeFault = (method: string, path: string): HubSpotFault | null => {
    const pending = faults.find(
      (f) =>
        f.remaining > 0 &&
        (f.match.method === undefined || f.match.method.toUpperCase() === method) &&
        (f.match.pathPrefix === undefined || path.startsWith(f.match.pathPrefix)),
    );
    if (!pending) return null;
    pending.remaining -= 1;
    faults = faults.filter((f) => f.remaining > 0);
    return pending.fault;
  };

  const errorBody = (category: string, message: string, correlationId: string, extra: Record<string, unknown> = {}) => ({
    status: 'error',
    message,
    correlationId,
    category,
    ...extra,
  });

  const dispatch = (ctx: Context): Answer => {
    for (const r of routes) {
      if (r.method !== ctx.method) continue;
      const m = r.pattern.exec(ctx.path);
      if (m) return r.handler(ctx, m.slice(1));
    }
    throw new HttpError(404, 'OBJECT_NOT_FOUND', `The fake does not implement ${ctx.method} ${ctx.path}`);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    const arrivedAt = Date.now();
    const raw = await readBody(req);
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = url.pathname;
    const correlationId = randomUUID();
    const spec: SpecRoute | null = findRoute(method, path);
    const label = `${method} ${spec?.template ?? path}`;

    const finish = (answer: Answer) => {
      const at = Date.now();
      if (spec && answer.unchecked !== true) {
        for (const p of checkResponse(spec, answer.status, answer.body)) violations.push(`response ${label} ${answer.status}: ${p}`);
      }
      const payload = answer.status === 204 || answer.body === null ? '' : JSON.stringify(answer.body);
      if (!res.destroyed) {
        res.writeHead(answer.status, {
          ...(payload === '' ? {} : { 'content-type': 'application/json;charset=utf-8' }),
          'x-hubspot-correlation-id': correlationId,
          ...rateHeaders(at),
          ...answer.headers,
          'content-length': String(Buffer.byteLength(payload)),
        });
        res.end(payload);
      }
      requests.push({
        at: arrivedAt,
        method,
        path,
        status: answer.status,
        correlationId,
        ms: Math.round((performance.now() - started) * 10) / 10,
      });
    };

    let body: unknown = null;
    if (raw !== '') {
      try {
        body = JSON.parse(raw) as unknown;
      } catch {
        violations.push(`request ${label}: body is not JSON`);
        finish({ status: 400, body: errorBody('VALIDATION_ERROR', 'Invalid input JSON on line 1', correlationId) });
        return;
      }
    }

    const auth = req.headers.authorization ?? '';
    const token = /^Bearer (\S+)$/.exec(auth)?.[1];
    if (token === undefined || (opts.accessToken !== undefined && token !== opts.accessToken)) {
      const message = token === undefined ? 'Authentication credentials not found.' : 'Authentication credentials are invalid.';
      finish({
        status: 401,
        body: errorBody('INVALID_AUTHENTICATION', message, correlationId, { links: { 'api key': 'https://app.hubspot.com/l/api-key/' } }),
      });
      return;
    }

    // The limits count every authenticated request that is not itself refused by a limit.
    const at = Date.now();
    window = window.filter((t) => t > at - TEN_SECONDS_MS);
    if (dailyUsed >= dailyLimit) {
      finish(rateLimited('DAILY', correlationId, undefined));
      return;
    }
    if (window.length >= tenSecondlyLimit) {
      const oldest = window[0] ?? at;
      finish(rateLimited('TEN_SECONDLY_ROLLING', correlationId, Math.max(1, Math.ceil((oldest + TEN_SECONDS_MS - at) / 1000))));
      return;
    }
    if (method === 'POST' && /^\/crm\/v3\/objects\/[^/]+\/search$/.test(path)) {
      searchWindow = searchWindow.filter((t) => t > at - 1000);
      if (searchWindow.length >= searchPerSecond) {
        finish(rateLimited('SECONDLY', correlationId, 1));
        return;
      }
      searchWindow.push(at);
    }
    window.push(at);
    dailyUsed += 1;

    // One injected fault per request, the oldest pending one that matches.
    const invalidProperties = new Set<string>();
    const fault = takeFault(method, path);
    if (fault?.kind === '429') {
      finish(rateLimited(fault.policy, correlationId, fault.retryAfterSeconds));
      return;
    }
    if (fault?.kind === '5xx') {
      const status = fault.status ?? 500;
      const message =
        status === 500 ? 'internal error' : status === 502 ? 'Bad Gateway' : status === 503 ? 'Service Unavailable' : 'Gateway Timeout';
      finish({ status, body: errorBody('INTERNAL_ERROR', message, correlationId) });
      return;
    }
    if (fault?.kind === 'slow') {
      await new Promise<void>((resolveDelay) => {
        const timer = setTimeout(() => {
          timers.delete(timer);
          resolveDelay();
        }, fault.ms);
        timers.add(timer);
      });
      // A client that gave up (timeout, killed worker) does not undo the write: like HubSpot, carry on and apply it.
    }
    if (fault?.kind === 'invalid') invalidProperties.add(fault.property);

    if (!spec) {
      violations.push(`request ${method} ${path}: no operation in the spec`);
      finish({ status: 404, body: errorBody('OBJECT_NOT_FOUND', `No route for ${method} ${path}`, correlationId) });
      return;
    }
    const problems = checkRequest(spec, url.searchParams, body);
    if (problems.length > 0) {
      for (const p of problems) violations.push(`request ${label}: ${p}`);
      // What the spec refuses, HubSpot refuses: v4 associations answer 422 (an input without `types`), v3 400.
      const status = path.startsWith('/crm/v4/') ? 422 : 400;
      finish({
        status,
        body: errorBody('VALIDATION_ERROR', `Invalid input: ${problems.slice(0, 5).join('; ')}`, correlationId, {
          errors: problems.slice(0, 20).map((p) => ({ message: p })),
        }),
      });
      return;
    }

    if (fault?.kind === 'lost') {
      try {
        dispatch({ method, path, query: url.searchParams, body, correlationId, invalidProperties });
      } catch {
        // Refused or not: the client hears nothing either way.
      }
      requests.push({ at: arrivedAt, method, path, status: 0, correlationId, ms: Math.round((performance.now() - started) * 10) / 10 });
      res.destroy();
      return;
    }
    try {
      finish(dispatch({ method, path, query: url.searchParams, body, correlationId, invalidProperties }));
    } catch (error) {
      if (error instanceof HttpError) {
        finish({ status: error.status, body: errorBody(error.category, error.message, correlationId, error.extra) });
        return;
      }
      throw error;
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      violations.push(`fake failure on ${req.method ?? ''} ${req.url ?? ''}: ${String(error)}`);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          status: 'error',
          message: `fake failure: ${String(error)}`,
          correlationId: randomUUID(),
          category: 'INTERNAL_ERROR',
        }),
      );
    });
  });
  await new Promise<void>((resolveListen, rejectListen) => {
    server.once('error', rejectListen);
    server.listen(0, '127.0.0.1', () => resolveListen());
  });
  const { port } = server.address() as AddressInfo;

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    violations,
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolveClose) => server.close(() => resolveClose()));
    },
    inject: (fault, match = {}) => {
      faults.push({ fault, match, remaining: fault.count ?? 1 });
    },
    faultsLeft: (kind) => faults.filter((f) => f.fault.kind === kind).reduce((n, f) => n + f.remaining, 0),
    objects: (rawType) => {
      const type = toObjectType(rawType);
      if (!type) return [];
      return [...store(type).values()].map((o) => ({
        id: o.id,
        properties: { ...o.properties },
        createdAt: o.createdAt,
        updatedAt: o.updatedAt,
      }));
    },
    associations: () => links.map((l) => ({ ...l })),
    propertyDefinitions: (rawType) => {
      const type = toObjectType(rawType);
      if (!type) return [];
      return [...defs(type).values()].map((d) => ({
        name: d.name,
        hasUniqueValue: d.hasUniqueValue,
        type: d.type,
        fieldType: d.fieldType,
        options: d.options.map((o) => o.value),
      }));
    },
    seed: (type, props) => create(type, { ...props }).id,
    reset: () => {
      initState();
      requests.length = 0;
      violations.length = 0;
    },
  };
}
