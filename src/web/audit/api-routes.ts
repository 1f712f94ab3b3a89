/**
 * The audit JSON API under /api/v1 (described by openapi.ts, served at /api/v1/openapi.json): the same reads as
 * the pages, overrides (also of associations), verification runs. Every route needs a principal (session or API
 * token); a refusal is `{ error }` with its status (see error-handler.ts).
 */
import type { FastifyInstance } from 'fastify';
import { allowed } from '../../audit/users.ts';
import { HttpError } from '../../errors/http.error.ts';
import { openApiDocument } from '../openapi.ts';
import type { AuditContext } from './context.ts';
import { body, idParam, present, query, str, zodMessage } from './request.ts';
import { ApiOverrideBodySchema, DecisionQuerySchema, TimelineQuerySchema } from './schemas.ts';

export function registerApiRoutes(audit: FastifyInstance, ctx: AuditContext): void {
  const { service, sessions, verify } = ctx.options;

  audit.get('/api/v1/openapi.json', (_req, reply) => reply.send(openApiDocument()));
  audit.get('/api/v1/me', (req, reply) => {
    const p = ctx.require(req, 'read');
    return reply.send({
      id: p.user.id,
      role: p.user.role,
      csrfToken: p.session ? sessions.csrfFor(p.session.sid) : null,
      can: { override: allowed(p.user.role, 'override'), export: allowed(p.user.role, 'export'), verify: allowed(p.user.role, 'verify') },
    });
  });
  audit.get('/api/v1/interactions', (req, reply) => {
    ctx.require(req, 'read');
    const parsed = TimelineQuerySchema.safeParse(present(req.query));
    if (!parsed.success) throw new HttpError(400, 'BAD_QUERY', zodMessage(parsed.error));
    return reply.send(service.timeline(parsed.data));
  });
  audit.get('/api/v1/decisions', (req, reply) => {
    ctx.require(req, 'read');
    const parsed = DecisionQuerySchema.safeParse(present(req.query));
    if (!parsed.success) throw new HttpError(400, 'BAD_QUERY', zodMessage(parsed.error));
    const q = parsed.data;
    const decided = {
      from: q.since,
      category: q.category,
      maxConfidence: q.maxConfidence,
      before: q.before,
      limit: q.limit,
      decided: true,
    };
    return reply.send(q.needsReview === 'true' ? service.reviewQueue(decided) : service.timeline(decided));
  });
  audit.get('/api/v1/decisions/:id', (req, reply) => {
    ctx.require(req, 'read');
    const row = service.decision(idParam(req));
    if (!row) throw new HttpError(404, 'NOT_FOUND', 'no such decision');
    return reply.send(row);
  });
  audit.post('/api/v1/decisions/:id/override', async (req, reply) => {
    const f = body(req);
    const p = ctx.require(req, 'override', f);
    const parsed = ApiOverrideBodySchema.safeParse(f);
    if (!parsed.success) throw new HttpError(400, 'INVALID_BODY', zodMessage(parsed.error));
    const r = await service.override(idParam(req), { ...parsed.data, userId: p.user.id, via: 'api' });
    return reply.code(201).send({
      entry: { seq: r.entry.seq, id: r.entry.id, kind: r.entry.kind, payload: r.entry.payload, actor: r.entry.actor },
      redriven: r.redriven,
    });
  });
  audit.get('/api/v1/trace', (req, reply) => {
    ctx.require(req, 'read');
    const id = str(query(req).correlationId);
    if (!id) throw new HttpError(400, 'BAD_QUERY', 'correlationId is required');
    return reply.send(service.trace(id));
  });
  audit.get('/api/v1/integrity', (req, reply) => {
    ctx.require(req, 'read');
    return reply.send(service.integrity());
  });
  audit.post('/api/v1/integrity/verify', (req, reply) => {
    ctx.require(req, 'verify', body(req));
    return reply.code(202).send(verify.start());
  });
  audit.get('/api/v1/integrity/verify/:id', (req, reply) => {
    ctx.require(req, 'read');
    const run = verify.get(idParam(req));
    if (!run) throw new HttpError(404, 'NOT_FOUND', 'no such verification run');
    return reply.send(run);
  });
  audit.get('/api/v1/connectors', (req, reply) => {
    ctx.require(req, 'read');
    return reply.send(service.connectors());
  });
}
