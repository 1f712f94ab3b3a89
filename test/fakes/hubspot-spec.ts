/**
 * Spec checks for the HubSpot fake: finds the operation of `../shared/specs/hubspot/merged.json` that a request
 * hits (method + path template) and validates request bodies, query parameter names and response bodies against
 * it with ajv. Problems are returned as strings, never thrown: the fake records them as violations.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Ajv } from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

export const HUBSPOT_SPEC_PATH = resolve(import.meta.dirname, '../../../shared/specs/hubspot/merged.json');

const SPEC_ID = 'https://fake-hubspot.local/merged.json';
const addFormats = addFormatsModule.default;

interface SpecParameter {
  readonly name: string;
  readonly in: string;
  readonly required?: boolean;
}
interface SpecMedia {
  readonly schema?: unknown;
}
interface SpecResponse {
  readonly content?: Record<string, SpecMedia>;
  readonly $ref?: string;
}
interface SpecOperation {
  readonly parameters?: readonly SpecParameter[];
  readonly requestBody?: { readonly content?: Record<string, SpecMedia>; readonly required?: boolean };
  readonly responses: Record<string, SpecResponse>;
}
interface SpecDocument {
  readonly paths: Record<string, Record<string, unknown>>;
  readonly components: { readonly schemas: Record<string, unknown>; readonly responses?: Record<string, SpecResponse> };
}

/** One operation of the spec that a concrete request path matched. */
export interface SpecRoute {
  readonly method: string;
  /** The spec's path template, e.g. `/crm/v3/objects/emails/batch/upsert`. */
  readonly template: string;
  readonly operation: SpecOperation;
}

interface CompiledPath {
  readonly template: string;
  readonly regex: RegExp;
  /** Literal segments count: more literal wins when two templates match (`.../groups` over `.../{propertyName}`). */
  readonly literals: number;
  readonly operations: Record<string, SpecOperation>;
}

/** Object type ids the API accepts in place of names (`0-3` is how the deals spec spells its paths). */
export const OBJECT_TYPE_IDS: Readonly<Record<string, string>> = {
  contacts: '0-1',
  companies: '0-2',
  deals: '0-3',
  notes: '0-46',
  meetings: '0-47',
  calls: '0-48',
  emails: '0-49',
};

let loaded: { ajv: Ajv; doc: SpecDocument; paths: CompiledPath[] } | undefined;
const validators = new Map<string, ValidateFunction>();

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function load(): { ajv: Ajv; doc: SpecDocument; paths: CompiledPath[] } {
  if (loaded) return loaded;
  const doc = JSON.parse(readFileSync(HUBSPOT_SPEC_PATH, 'utf8')) as SpecDocument;
  // strict: false because the spec carries `example` and `x-hubspot-*` keywords that are not JSON Schema.
  const ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false });
  addFormats(ajv);
  for (const format of ['int32', 'int64', 'double', 'float', 'binary']) {
    if (!(format in ajv.formats)) ajv.addFormat(format, true);
  }
  ajv.addSchema({ $id: SPEC_ID, components: { schemas: doc.components.schemas } });
  const paths: CompiledPath[] = Object.entries(doc.paths).map(([template, operations]) => {
    const segments = template.split('/');
    const pattern = segments.map((segment) => (/^\{[^}]+\}$/.test(segment) ? '[^/]+' : escapeRegex(segment))).join('/');
    const ops: Record<string, SpecOperation> = {};
    for (const [method, op] of Object.entries(operations)) {
      if (op !== null && typeof op === 'object' && 'responses' in op) ops[method.toUpperCase()] = op as SpecOperation;
    }
    return { template, regex: new RegExp(`^${pattern}$`), literals: segments.filter((s) => !s.startsWith('{')).length, operations: ops };
  });
  paths.sort((a, b) => b.literals - a.literals);
  loaded = { ajv, doc, paths };
  return loaded;
}

/**
 * The spec names the deals paths `/crm/v3/objects/0-3` while the SDK calls `/crm/v3/objects/deals`, and the API
 * takes `0-1`-style type ids wherever it takes names; look a request up under the spelling the spec uses.
 */
function specSpelling(path: string): string {
  const match = /^\/crm\/v3\/objects\/([^/]+)(.*)$/.exec(path);
  if (!match) return path;
  const [, type = '', rest = ''] = match;
  const byId = Object.entries(OBJECT_TYPE_IDS).find(([, id]) => id === type)?.[0];
  const name = byId ?? type;
  return `/crm/v3/objects/${name === 'deals' ? '0-3' : name}${rest}`;
}

/** The spec operation a request hits, or null when the spec has none. */
export function findRoute(method: string, path: string): SpecRoute | null {
  const spelled = specSpelling(path);
  for (const candidate of load().paths) {
    const operation = candidate.operations[method.toUpperCase()];
    if (operation && candidate.regex.test(spelled)) return { method: method.toUpperCase(), template: candidate.template, operation };
  }
  return null;
}

/** Points the document-local `$ref`s of an inline schema at the registered spec. */
function absolutise(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(absolutise);
  if (node === null || typeof node !== 'object') return node;
  return Object.fromEntries(
    Object.entries(node).map(([key, value]) => [
      key,
      key === '$ref' && typeof value === 'string' && value.startsWith('#') ? `${SPEC_ID}${value}` : absolutise(value),
    ]),
  );
}

function validatorFor(key: string, schema: unknown): ValidateFunction {
  let validate = validators.get(key);
  if (!validate) {
    validate = load().ajv.compile(absolutise(schema) as object);
    validators.set(key, validate);
  }
  return validate;
}

function describe(errors: readonly ErrorObject[] | null | undefined): string[] {
  const seen = new Set<string>();
  for (const e of errors ?? []) {
    const params = e.params as { allowedValues?: unknown; missingProperty?: string };
    const extra = e.keyword === 'enum' ? ` (${JSON.stringify(params.allowedValues)})` : '';
    seen.add(`${e.instancePath === '' ? '/' : e.instancePath} ${e.message ?? e.keyword}${extra}`);
  }
  return [...seen];
}

function jsonSchemaOf(content: Record<string, SpecMedia> | undefined): unknown {
  if (!content) return undefined;
  return (content['application/json'] ?? Object.values(content)[0])?.schema;
}

/** Problems of a request: its body against the operation's request schema, and query parameters it does not declare. */
export function checkRequest(route: SpecRoute, query: URLSearchParams, body: unknown): string[] {
  const problems: string[] = [];
  const declared = new Set((route.operation.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name));
  for (const name of new Set(query.keys())) {
    if (!declared.has(name)) problems.push(`query parameter "${name}" is not declared`);
  }
  for (const p of route.operation.parameters ?? []) {
    if (p.in === 'query' && p.required === true && !query.has(p.name)) problems.push(`query parameter "${p.name}" is required`);
  }
  const schema = jsonSchemaOf(route.operation.requestBody?.content);
  if (schema === undefined) {
    if (body !== null && body !== undefined) problems.push('the operation takes no request body');
    return problems;
  }
  if (body === null || body === undefined) {
    if (route.operation.requestBody?.required === true) problems.push('request body is required');
    return problems;
  }
  const validate = validatorFor(`${route.method} ${route.template} request`, schema);
  if (!validate(body)) problems.push(...describe(validate.errors).map((p) => `body${p}`));
  return problems;
}

/** Problems of a response body against the operation's response for that status (or its `default`). */
export function checkResponse(route: SpecRoute, status: number, body: unknown): string[] {
  const doc = load().doc;
  let response = route.operation.responses[String(status)];
  const declared = response !== undefined;
  response ??= route.operation.responses['default'];
  if (!response) return [`status ${status} is not a response of the operation`];
  if (declared === false && status < 400) return [`status ${status} is not a response of the operation`];
  if (response.$ref) {
    const name = response.$ref.split('/').pop() ?? '';
    response = doc.components.responses?.[name] ?? response;
  }
  const schema = jsonSchemaOf(response.content);
  if (schema === undefined) return body === null || body === undefined ? [] : [`status ${status} has no body in the spec`];
  const validate = validatorFor(`${route.method} ${route.template} ${declared ? status : 'default'}`, schema);
  return validate(body) ? [] : describe(validate.errors).map((p) => `body${p}`);
}
