/**
 * The OpenAPI 3.1 document of the audit JSON API, served at GET /api/v1/openapi.json.
 * Read-only except overrides (and the exports and verification runs, which write nothing but their own record).
 */
import { CATEGORIES } from '../journal/categories.ts';

const ref = (name: string): { $ref: string } => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown, description: string): unknown => ({ description, content: { 'application/json': { schema } } });
const errors = {
  '400': json(ref('Error'), 'bad input'),
  '401': json(ref('Error'), 'not signed in / no valid API token'),
  '403': json(ref('Error'), 'the role may not do this, or the CSRF token is missing'),
};
const q = (name: string, schema: unknown, description: string): unknown => ({ name, in: 'query', required: false, schema, description });

export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'activity-journal audit API',
      version: '1.0.0',
      description:
        'Everything the audit UI shows. Authenticate with an API token (`Authorization: Bearer ajt_...`, made by `activity-journal users token NAME`) or the UI session cookie; with the cookie, POSTs need the `x-csrf-token` header (GET /api/v1/me returns it). Roles: viewer reads; reviewer and admin also override, export and verify.',
    },
    security: [{ bearer: [] }, { session: [] }],
    paths: paths(),
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, session: { type: 'apiKey', in: 'cookie', name: 'aj_session' } },
      schemas: schemas(),
    },
  };
}

/** The operations, by path: what each takes and answers (the routes are in audit/api-routes.ts and audit/export-routes.ts). */
function paths(): Record<string, unknown> {
  return {
    '/api/v1/me': {
      get: { summary: 'Who is signed in, their role and CSRF token', responses: { '200': json(ref('Me'), 'the principal'), ...errors } },
    },
    '/api/v1/interactions': {
      get: {
        summary: 'Timeline: interactions newest first, filtered and paged',
        parameters: [
          q('source', { type: 'string' }, 'gmail, twilio, webform...'),
          q('channel', { enum: ['email', 'call', 'form'] }, 'the interaction kind'),
          q('category', { enum: CATEGORIES }, 'the category in force (after overrides)'),
          q('contact', { type: 'string' }, 'an email address or phone number (matched by hash)'),
          q('from', { type: 'string' }, 'occurred at or after (YYYY-MM-DD or RFC 3339)'),
          q('until', { type: 'string' }, 'occurred before'),
          q('before', { type: 'integer' }, 'paging: the `next` of the previous page'),
          q('limit', { type: 'integer', minimum: 1, maximum: 500 }, 'page size (default 50)'),
        ],
        responses: { '200': json(ref('Page'), 'one page'), ...errors },
      },
    },
    '/api/v1/decisions': {
      get: {
        summary: 'Decided interactions (the review queue with needsReview=true)',
        parameters: [
          q('since', { type: 'string' }, 'occurred at or after'),
          q('category', { enum: CATEGORIES }, 'category in force'),
          q('maxConfidence', { type: 'number', minimum: 0, maximum: 1 }, 'confidence at most'),
          q('needsReview', { enum: ['true', 'false'] }, 'only decisions waiting for review'),
          q('before', { type: 'integer' }, 'paging'),
          q('limit', { type: 'integer' }, 'page size'),
        ],
        responses: { '200': json(ref('Page'), 'one page'), ...errors },
      },
    },
    '/api/v1/decisions/{id}': {
      get: {
        summary: 'One decision by its ai.decision entry id',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '200': json(ref('Interaction'), 'the decision'), '404': json(ref('Error'), 'unknown'), ...errors },
      },
    },
    '/api/v1/decisions/{id}/override': {
      post: {
        summary: 'Approve or override a decision (reviewer, admin): appends a human.override entry and re-drives the CRM mirror',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        requestBody: { required: true, content: { 'application/json': { schema: ref('OverrideRequest') } } },
        responses: {
          '201': json(ref('OverrideResult'), 'journaled'),
          '404': json(ref('Error'), 'no such decision'),
          '409': json(ref('Error'), 'the category is already that'),
          ...errors,
        },
      },
    },
    '/api/v1/trace': {
      get: {
        summary: 'One correlation as a chain of steps, each with its inclusion-proof status',
        parameters: [{ name: 'correlationId', in: 'query', required: true, schema: { type: 'string' } }],
        responses: { '200': json(ref('Trace'), 'the trace'), ...errors },
      },
    },
    '/api/v1/integrity': {
      get: {
        summary: 'Newest checkpoint, anchors with their lag',
        responses: { '200': json({ type: 'object' }, 'integrity'), ...errors },
      },
    },
    '/api/v1/integrity/verify': {
      post: {
        summary: 'Start a full verification (reviewer, admin)',
        responses: { '202': json(ref('VerifyRun'), 'started (or the one running)'), ...errors },
      },
    },
    '/api/v1/integrity/verify/{id}': {
      get: {
        summary: 'Progress and result of a verification run',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '200': json(ref('VerifyRun'), 'the run'), '404': json(ref('Error'), 'unknown'), ...errors },
      },
    },
    '/api/v1/connectors': {
      get: {
        summary: 'Inboxes, webhook sources, per-source counts',
        responses: { '200': json({ type: 'object' }, 'connectors'), ...errors },
      },
    },
    '/api/v1/exports': {
      post: {
        summary: 'Export a date range or a correlation as JSON Lines with inclusion proofs (reviewer, admin; journaled)',
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                oneOf: [
                  { type: 'object', required: ['from', 'until'], properties: { from: { type: 'string' }, until: { type: 'string' } } },
                  { type: 'object', required: ['correlationId'], properties: { correlationId: { type: 'string' } } },
                ],
              },
            },
          },
        },
        responses: {
          '200': {
            description: 'line 1: header (format, checkpoint, verifierKey, entries); then one inclusion-proof bundle with payload per line',
            content: { 'application/x-ndjson': { schema: { type: 'string' } } },
          },
          '409': json(ref('Error'), 'no checkpoint yet'),
          ...errors,
        },
      },
    },
  };
}

/** The shapes the operations answer and take, referred to as #/components/schemas/<name>. */
function schemas(): Record<string, unknown> {
  return {
    Error: { type: 'object', required: ['error'], properties: { error: { type: 'string' } } },
    Me: {
      type: 'object',
      properties: { id: { type: 'string' }, role: { enum: ['viewer', 'reviewer', 'admin'] }, csrfToken: { type: ['string', 'null'] } },
    },
    Interaction: {
      type: 'object',
      properties: {
        seq: { type: 'integer' },
        entryId: { type: 'string' },
        correlationId: { type: 'string' },
        source: { type: 'string' },
        channel: { type: 'string' },
        direction: { type: 'string' },
        occurredAt: { type: 'string' },
        decisionId: { type: ['string', 'null'] },
        decisionSeq: { type: ['integer', 'null'] },
        model: { type: ['string', 'null'] },
        confidence: { type: ['number', 'null'] },
        modelCategory: { type: ['string', 'null'] },
        category: { type: ['string', 'null'] },
        reviewState: { enum: ['none', 'pending', 'approved', 'overridden'] },
        reviewRule: { type: ['string', 'null'] },
        subject: { type: ['string', 'null'] },
        summary: { type: ['string', 'null'] },
      },
    },
    Page: {
      type: 'object',
      properties: {
        rows: { type: 'array', items: ref('Interaction') },
        next: {
          type: ['integer', 'null'],
          description: 'pass as `before` for the next page (keyset paging by seq); null on the last page',
        },
        matches: {
          type: ['object', 'null'],
          description:
            'how many match all pages, on the first page only (null when `before` is given): exact up to 10,000; `capped` true means more than 10,000',
          properties: { count: { type: 'integer' }, capped: { type: 'boolean' } },
        },
      },
    },
    OverrideRequest: {
      type: 'object',
      required: ['action', 'reason'],
      description:
        'approve; override (with category); associate (with associations: the HubSpot record ids, per target type given, that replace what the matching rule chose; an empty list removes them all)',
      properties: {
        action: { enum: ['approve', 'override', 'associate'] },
        category: { enum: CATEGORIES },
        associations: {
          type: 'object',
          additionalProperties: false,
          properties: Object.fromEntries(
            ['contacts', 'companies', 'deals'].map((t) => [
              t,
              { type: 'array', maxItems: 100, items: { type: 'string', pattern: '^[0-9]{1,20}$' } },
            ]),
          ),
        },
        reason: { type: 'string', minLength: 1 },
      },
      additionalProperties: false,
    },
    OverrideResult: { type: 'object', properties: { entry: { type: 'object' }, redriven: { type: 'boolean' } } },
    Trace: {
      type: 'object',
      properties: {
        correlationId: { type: 'string' },
        checkpointSize: { type: ['integer', 'null'] },
        steps: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              seq: { type: 'integer' },
              kind: { type: 'string' },
              step: { type: 'string' },
              facts: { type: 'object' },
              proof: { type: 'object', properties: { status: { enum: ['ok', 'pending', 'failed'] }, reason: { type: 'string' } } },
            },
          },
        },
      },
    },
    VerifyRun: {
      type: 'object',
      properties: {
        id: { type: 'string' },
        state: { enum: ['running', 'ok', 'failed', 'error'] },
        done: { type: 'integer' },
        total: { type: 'integer' },
        report: { type: ['object', 'null'] },
      },
    },
  };
}
