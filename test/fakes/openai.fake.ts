/**
 * A fake OpenAI server for tests and benchmarks: `POST /v1/chat/completions` on 127.0.0.1, request bodies validated
 * against the published OpenAPI spec (`../shared/specs/openai/openapi.json`), answers shaped like the real API
 * (headers, `chat.completion` objects, OpenAI error bodies), and scriptable failures: rate limits, 5xx, slowness,
 * refusals, invalid JSON, schema violations, truncation.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { Category, Classification } from '../../src/pipeline/classification.ts';

export const OPENAI_SPEC_PATH = resolve(import.meta.dirname, '../../../shared/specs/openai/openapi.json');

/** What an `ok` output function gets: the parsed body and the text of its system and user messages. */
export interface FakeChatRequest {
  readonly body: Record<string, unknown>;
  readonly systemText: string;
  readonly userText: string;
}

export type Behaviour =
  | {
      readonly kind: 'ok';
      readonly output?: Partial<Classification> | ((req: FakeChatRequest) => Classification);
      readonly latencyMs?: number;
    }
  /** 429 with `retry-after` (seconds, default 1), optionally `retry-after-ms`, and `x-ratelimit-*` headers. */
  | { readonly kind: 'rate-limit'; readonly retryAfterSeconds?: number; readonly retryAfterMs?: number }
  | { readonly kind: 'server-error'; readonly status?: number }
  /** Answers like `ok` (default output) after `latencyMs`. */
  | { readonly kind: 'slow'; readonly latencyMs: number }
  | { readonly kind: 'refusal' }
  | { readonly kind: 'content-filter' }
  | { readonly kind: 'invalid-json' }
  | { readonly kind: 'schema-violation' }
  | { readonly kind: 'length' };

export interface RecordedRequest {
  /** The `x-request-id` the fake answered with. */
  readonly requestId: string;
  readonly method: string;
  readonly path: string;
  /** Lower-case names; `authorization` is left out. */
  readonly headers: Readonly<Record<string, string>>;
  /** The parsed JSON body (the raw text when it is not JSON, null when empty). */
  readonly body: unknown;
  /** False when the body failed spec validation (or was not JSON); true when validation is off. */
  readonly valid: boolean;
  readonly problems: readonly string[];
  /** The behaviour that answered, null for requests answered before one was picked (404, 400, 401). */
  readonly behaviour: Behaviour['kind'] | null;
  readonly status: number;
  /** The JSON body the fake answered with. */
  readonly responseBody: unknown;
  /** Spec problems of the response body the fake sent (empty when validation is off). */
  readonly responseProblems: readonly string[];
}

export interface FakeOpenAi {
  /** e.g. http://127.0.0.1:PORT/v1 */
  readonly baseURL: string;
  readonly requests: RecordedRequest[];
  /** Queues behaviours, one consumed per valid chat completion request; when the queue is empty the default answers. */
  script(...behaviours: Behaviour[]): void;
  setDefault(behaviour: Behaviour): void;
  close(): Promise<void>;
}

export interface FakeOpenAiOptions {
  /** Added before every answer (default 0). */
  readonly latencyMs?: number;
  /** Validate request and response bodies against the spec (default true); off for benchmarks. */
  readonly validate?: boolean;
}

// ---------------------------------------------------------------------------------------------------------------
// Spec validation

export interface SpecCheck {
  readonly valid: boolean;
  readonly problems: string[];
  /** The instance path of the most specific problem, OpenAI style (`messages[1].role`), null when valid. */
  readonly param: string | null;
}

const SPEC_ID = 'https://fake-openai.local/openapi.json';
const addFormats = addFormatsModule.default;
let specAjv: Ajv2020 | undefined;
const specValidators = new Map<string, ValidateFunction>();

/**
 * The spec is OpenAPI 3.1 (JSON Schema 2020-12) but still carries 3.0 habits that a JSON-schema validator does not
 * know: `nullable: true` (on enums and on `$ref`/`oneOf` wrappers, where a `type` list cannot express it), and two
 * 2019-09 `$recursiveRef`s (compound filters) that 2020-12 dropped. Rewrite them into plain 2020-12.
 */
function normaliseSpecSchemas(schemas: Record<string, unknown>): Record<string, unknown> {
  const visit = (node: unknown, component: string): unknown => {
    if (Array.isArray(node)) return node.map((item) => visit(item, component));
    if (node === null || typeof node !== 'object') return node;
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(node)) {
      if ((key === 'nullable' && typeof value === 'boolean') || key === '$recursiveAnchor') continue;
      if (key === '$recursiveRef' && value === '#') {
        out['$ref'] = `#/components/schemas/${component}`;
        continue;
      }
      out[key] = visit(value, component);
    }
    if ((node as Record<string, unknown>)['nullable'] === true) return { anyOf: [out, { type: 'null' }] };
    return out;
  };
  return Object.fromEntries(Object.entries(schemas).map(([name, schema]) => [name, visit(schema, name)]));
}

function loadSpecAjv(): Ajv2020 {
  if (specAjv) return specAjv;
  const spec = JSON.parse(readFileSync(OPENAI_SPEC_PATH, 'utf8')) as { components: { schemas: Record<string, unknown> } };
  // strict: false because the spec is full of vendor keywords (x-oaiMeta, x-stainless-*, discriminator, example).
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
  addFormats(ajv);
  for (const format of ['unixtime', 'int64', 'double', 'float', 'binary']) {
    if (!(format in ajv.formats)) ajv.addFormat(format, true);
  }
  ajv.addSchema({ $id: SPEC_ID, components: { schemas: normaliseSpecSchemas(spec.components.schemas) } });
  specAjv = ajv;
  return ajv;
}

/** A validator for one of the spec's component schemas (`CreateChatCompletionRequest`, ...); compiled once. */
export function specValidator(component: string): (value: unknown) => SpecCheck {
  let validate = specValidators.get(component);
  if (!validate) {
    validate = loadSpecAjv().compile({ $ref: `${SPEC_ID}#/components/schemas/${component}` });
    specValidators.set(component, validate);
  }
  const compiled = validate;
  return (value) => {
    if (compiled(value)) return { valid: true, problems: [], param: null };
    const errors = compiled.errors ?? [];
    return { valid: false, problems: describeErrors(errors), param: paramOf(errors) };
  };
}

function describeErrors(errors: readonly ErrorObject[]): string[] {
  const seen = new Set<string>();
  for (const e of errors) {
    const extra = e.keyword === 'enum' ? ` (${JSON.stringify((e.params as { allowedValues?: unknown }).allowedValues)})` : '';
    seen.add(`${e.instancePath === '' ? '/' : e.instancePath} ${e.message ?? e.keyword}${extra}`);
  }
  return [...seen];
}

/** OpenAI names the offending field in `param`; take the deepest instance path. */
function paramOf(errors: readonly ErrorObject[]): string | null {
  const deepest = [...errors].sort((a, b) => b.instancePath.split('/').length - a.instancePath.split('/').length)[0];
  if (!deepest || deepest.instancePath === '') return null;
  return deepest.instancePath
    .slice(1)
    .split('/')
    .map((part, i) => (/^\d+$/.test(part) ? `[${part}]` : i === 0 ? part : `.${part}`))
    .join('');
}

// ---------------------------------------------------------------------------------------------------------------
// Answers

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: unknown;
  readonly delayMs: number;
}

const REFUSAL_TEXT = "I can't help with that.";

function openAiError(message: string, type: string, param: string | null, code: string | null) {
  return { error: { message, type, param, code } };
}

function messageText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part: unknown) =>
        part !== null && typeof part === 'object' && typeof (part as { text?: unknown }).text === 'string'
          ? (part as { text: string }).text
          : '',
      )
      .join('\n');
  }
  return '';
}

function chatRequestOf(body: Record<string, unknown>): FakeChatRequest {
  const messages = Array.isArray(body['messages']) ? (body['messages'] as unknown[]) : [];
  const textOf = (roles: string[]) =>
    messages
      .filter(
        (m): m is { role: string; content: unknown } =>
          m !== null && typeof m === 'object' && roles.includes(String((m as { role?: unknown }).role)),
      )
      .map((m) => messageText(m.content))
      .join('\n');
  return { body, systemText: textOf(['system', 'developer']), userText: textOf(['user']) };
}

const KEYWORDS: ReadonlyArray<readonly [Category, RegExp]> = [
  ['spam', /\b(unsubscribe|lottery|winner|click here|crypto|viagra)\b/i],
  ['billing', /\b(invoice|payment|refund|receipt|billing|charged?)\b/i],
  ['customer_support', /\b(error|broken|not working|bug|outage|crash|how do i)\b/i],
  ['sales_conversation', /\b(contract|proposal|renewal|negotiat\w*|discount)\b/i],
  ['new_lead', /\b(demo|pricing|price|quote|trial|interested)\b/i],
  ['scheduling', /\b(meeting|reschedule|calendar|appointment)\b/i],
  ['internal', /\b(team standup|all-hands|colleagues)\b/i],
];

const INTENTS: Readonly<Record<Category, string>> = {
  new_lead: 'ask about buying',
  sales_conversation: 'negotiate a deal',
  customer_support: 'get help with a problem',
  billing: 'sort out a payment',
  scheduling: 'arrange a meeting',
  internal: 'coordinate internally',
  personal: 'personal matter',
  spam: 'unsolicited promotion',
  other: 'general enquiry',
};

/** A plausible classification from keywords of the user message; confidence 0.9. */
export function defaultClassification(userText: string): Classification {
  const category = KEYWORDS.find(([, re]) => re.test(userText))?.[0] ?? 'other';
  const sentiment = /\b(angry|disappointed|unacceptable|terrible|cancel|broken)\b/i.test(userText)
    ? 'negative'
    : /\b(thanks?|thank you|great|love|excellent)\b/i.test(userText)
      ? 'positive'
      : 'neutral';
  const urgency = /\b(urgent|asap|immediately|today|outage|cancel)\b/i.test(userText) ? 'high' : category === 'spam' ? 'low' : 'normal';
  return {
    summary: `The sender wants to ${INTENTS[category]}.`,
    category,
    intent: INTENTS[category],
    sentiment,
    urgency,
    nextSteps: category === 'spam' || category === 'other' ? [] : [`Follow up: ${INTENTS[category]}`],
    confidence: 0.9,
  };
}

function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

function completion(
  req: FakeChatRequest,
  content: string | null,
  finishReason: 'stop' | 'length' | 'content_filter',
  refusal: string | null = null,
) {
  const promptTokens = estimateTokens(req.systemText) + estimateTokens(req.userText) + 7;
  const completionTokens = estimateTokens(content ?? refusal ?? '');
  return {
    id: `chatcmpl-${randomBytes(15).toString('base64url')}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: typeof req.body['model'] === 'string' ? req.body['model'] : 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content, refusal, annotations: [] }, logprobs: null, finish_reason: finishReason }],
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    },
    service_tier: 'default',
    system_fingerprint: 'fp_fake0001',
  };
}

function answerFor(behaviour: Behaviour, req: FakeChatRequest, baseDelayMs: number): Answer {
  const ok = (body: unknown, delayMs = baseDelayMs): Answer => ({ status: 200, headers: {}, body, delayMs });
  switch (behaviour.kind) {
    case 'ok': {
      const derived = defaultClassification(req.userText);
      const output = typeof behaviour.output === 'function' ? behaviour.output(req) : { ...derived, ...behaviour.output };
      return ok(completion(req, JSON.stringify(output), 'stop'), behaviour.latencyMs ?? baseDelayMs);
    }
    case 'slow':
      return ok(completion(req, JSON.stringify(defaultClassification(req.userText)), 'stop'), behaviour.latencyMs);
    case 'refusal':
      return ok(completion(req, null, 'stop', REFUSAL_TEXT));
    case 'content-filter':
      return ok(completion(req, null, 'content_filter'));
    case 'invalid-json':
      return ok(completion(req, 'Sure! Here is the classification: {category: new_lead, confidence: high', 'stop'));
    case 'schema-violation':
      return ok(completion(req, JSON.stringify({ ...defaultClassification(req.userText), category: 'banana' }), 'stop'));
    case 'length': {
      const full = JSON.stringify(defaultClassification(req.userText));
      return ok(completion(req, full.slice(0, Math.floor(full.length / 2)), 'length'));
    }
    case 'rate-limit': {
      const seconds = behaviour.retryAfterSeconds ?? 1;
      return {
        status: 429,
        headers: {
          'retry-after': String(seconds),
          ...(behaviour.retryAfterMs === undefined ? {} : { 'retry-after-ms': String(behaviour.retryAfterMs) }),
          'x-ratelimit-limit-requests': '500',
          'x-ratelimit-remaining-requests': '0',
          'x-ratelimit-reset-requests': `${seconds}s`,
          'x-ratelimit-limit-tokens': '200000',
          'x-ratelimit-remaining-tokens': '0',
          'x-ratelimit-reset-tokens': `${seconds}s`,
        },
        body: openAiError(
          'Rate limit reached for requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again later.',
          'requests',
          null,
          'rate_limit_exceeded',
        ),
        delayMs: baseDelayMs,
      };
    }
    case 'server-error': {
      const status = behaviour.status ?? 500;
      const message =
        status === 503
          ? 'The engine is currently overloaded, please try again later.'
          : 'The server had an error while processing your request. Sorry about that!';
      return { status, headers: {}, body: openAiError(message, 'server_error', null, null), delayMs: baseDelayMs };
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Server

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Starts the fake on 127.0.0.1 (a free port). The spec is loaded (once per process) before it listens. */
export async function startFakeOpenAi(options: FakeOpenAiOptions = {}): Promise<FakeOpenAi> {
  const validate = options.validate ?? true;
  const baseDelayMs = options.latencyMs ?? 0;
  const checkRequest = validate ? specValidator('CreateChatCompletionRequest') : null;
  const checkCompletion = validate ? specValidator('CreateChatCompletionResponse') : null;
  const checkError = validate ? specValidator('ErrorResponse') : null;
  const queue: Behaviour[] = [];
  let fallback: Behaviour = { kind: 'ok' };
  const requests: RecordedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const send = (res: ServerResponse, record: Omit<RecordedRequest, 'responseProblems' | 'responseBody' | 'status'>, answer: Answer) => {
    const check = answer.status === 200 ? checkCompletion : checkError;
    const responseProblems = check ? check(answer.body).problems : [];
    requests.push({ ...record, status: answer.status, responseBody: answer.body, responseProblems });
    const write = () => {
      timers.delete(timer);
      if (res.destroyed) return;
      const payload = JSON.stringify(answer.body);
      res.writeHead(answer.status, {
        'content-type': 'application/json',
        'x-request-id': record.requestId,
        'openai-processing-ms': String(answer.delayMs + 1),
        'openai-version': '2020-10-01',
        ...answer.headers,
        'content-length': String(Buffer.byteLength(payload)),
      });
      res.end(payload);
    };
    const timer = setTimeout(write, answer.delayMs);
    timers.add(timer);
    res.on('close', () => {
      clearTimeout(timer);
      timers.delete(timer);
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const raw = await readBody(req);
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const headers = Object.fromEntries(
      Object.entries(req.headers)
        .filter(([name]) => name !== 'authorization')
        .map(([name, value]) => [name, Array.isArray(value) ? value.join(', ') : (value ?? '')]),
    );
    let body: unknown = raw === '' ? null : raw;
    try {
      if (raw !== '') body = JSON.parse(raw) as unknown;
    } catch {
      // keep the raw text
    }
    const record = { requestId: `req_${randomBytes(16).toString('hex')}`, method, path, headers, body };
    const reject = (status: number, problems: string[], error: ReturnType<typeof openAiError>, valid = false) =>
      send(res, { ...record, valid, problems, behaviour: null }, { status, headers: {}, body: error, delayMs: baseDelayMs });

    if (method !== 'POST' || path !== '/v1/chat/completions') {
      reject(404, [], openAiError(`Invalid URL (${method} ${path})`, 'invalid_request_error', null, null), true);
      return;
    }
    if (!/^Bearer \S+/.test(req.headers.authorization ?? '')) {
      const message = "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth.";
      reject(401, ['no bearer token'], openAiError(message, 'invalid_request_error', null, null), true);
      return;
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      const message = 'We could not parse the JSON body of your request. The OpenAI API expects a JSON payload.';
      reject(400, ['body is not a JSON object'], openAiError(message, 'invalid_request_error', null, null));
      return;
    }
    const check = checkRequest ? checkRequest(body) : { valid: true, problems: [], param: null };
    if (!check.valid) {
      const message = `Invalid request body: ${check.problems.slice(0, 10).join('; ')}`;
      reject(400, check.problems, openAiError(message, 'invalid_request_error', check.param, 'invalid_request_body'));
      return;
    }
    const behaviour = queue.shift() ?? fallback;
    const chat = chatRequestOf(body as Record<string, unknown>);
    send(res, { ...record, valid: true, problems: [], behaviour: behaviour.kind }, answerFor(behaviour, chat, baseDelayMs));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify(openAiError(`fake failure: ${String(error)}`, 'server_error', null, null)));
    });
  });
  await new Promise<void>((resolveListen, rejectListen) => {
    server.once('error', rejectListen);
    server.listen(0, '127.0.0.1', () => resolveListen());
  });
  const { port } = server.address() as AddressInfo;

  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    requests,
    script: (...behaviours) => {
      queue.push(...behaviours);
    },
    setDefault: (behaviour) => {
      fallback = behaviour;
    },
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolveClose) => server.close(() => resolveClose()));
    },
  };
}
