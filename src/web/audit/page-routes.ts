/**
 * The audit UI's HTML pages (timeline, review queue, trace, integrity, connectors, export) and the forms they
 * post (an override, a verification run). A page without a session redirects to the sign-in form; a form's
 * action answers with a redirect back to a page that says what happened.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { allowed } from '../../audit/users.ts';
import { HttpError } from '../../errors/http.error.ts';
import { OverrideError } from '../../pipeline/errors/override.error.ts';
import type { AuditContext, Principal } from './context.ts';
import { connectorsPage } from './pages/connectors.ts';
import { exportPage } from './pages/export.ts';
import { integrityPage } from './pages/integrity.ts';
import { reviewPage } from './pages/review.ts';
import { timelinePage } from './pages/timeline.ts';
import { traceFinderPage, tracePage } from './pages/trace.ts';
import { body, idParam, present, query, str, zodMessage } from './request.ts';
import { OverrideBodySchema, TimelineQuerySchema } from './schemas.ts';

export function registerPageRoutes(audit: FastifyInstance, ctx: AuditContext): void {
  const { service, verify } = ctx.options;

  /** A page: redirects to the sign-in form when there is no session. */
  const page =
    (handler: (req: FastifyRequest, p: Principal) => string) =>
    (req: FastifyRequest, reply: FastifyReply): FastifyReply => {
      const p = ctx.principal(req);
      if (!p) return reply.redirect(`/audit/login?next=${encodeURIComponent(req.url)}`, 303);
      if (!allowed(p.user.role, 'read')) throw new HttpError(403, 'FORBIDDEN', 'not allowed');
      return reply.type('text/html; charset=utf-8').send(handler(req, p));
    };

  audit.get(
    '/audit/timeline',
    page((req, p) => timeline(ctx, req, p)),
  );
  audit.get(
    '/audit/review',
    page((req, p) => {
      const q = query(req);
      const before = Number(q.before);
      return reviewPage(
        ctx.pageUser(p),
        service.reviewQueue({ before: Number.isSafeInteger(before) ? before : undefined, limit: 50 }),
        allowed(p.user.role, 'override'),
        str(q.notice) ?? null,
      );
    }),
  );
  audit.get(
    '/audit/trace',
    page((req, p) => {
      const q = query(req);
      const id = str(q.correlationId);
      if (!id) return traceFinderPage(ctx.pageUser(p));
      return tracePage(ctx.pageUser(p), service.trace(id), allowed(p.user.role, 'override'), str(q.notice) ?? null, str(q.error) ?? null);
    }),
  );
  audit.post('/audit/decisions/:id/override', (req, reply) => postOverride(ctx, req, reply));
  audit.get(
    '/audit/integrity',
    page((_req, p) => integrityPage(ctx.pageUser(p), service.integrity(), allowed(p.user.role, 'verify'), verify.latest())),
  );
  audit.post('/audit/integrity/verify', (req, reply) => {
    ctx.require(req, 'verify', body(req));
    verify.start();
    return reply.redirect('/audit/integrity', 303);
  });
  audit.get(
    '/audit/connectors',
    page((_req, p) => connectorsPage(ctx.pageUser(p), service.connectors())),
  );
  audit.get(
    '/audit/export',
    page((_req, p) => exportPage(ctx.pageUser(p), allowed(p.user.role, 'export'), null)),
  );
}

/** The timeline page: the filters given (a bad one is said on the page, with no rows), one page of rows. */
function timeline(ctx: AuditContext, req: FastifyRequest, p: Principal): string {
  const { service } = ctx.options;
  const parsed = TimelineQuerySchema.safeParse(present(req.query));
  const sources = service.connectors().sources.map((s) => s.source);
  if (!parsed.success) return timelinePage(ctx.pageUser(p), {}, { rows: [], next: null, matches: null }, sources, zodMessage(parsed.error));
  const { before, limit, ...filters } = parsed.data;
  try {
    return timelinePage(ctx.pageUser(p), filters, service.timeline({ ...filters, before, limit: limit ?? 50 }), sources, null);
  } catch (err) {
    if (err instanceof RangeError)
      return timelinePage(ctx.pageUser(p), filters, { rows: [], next: null, matches: null }, sources, err.message);
    throw err;
  }
}

/**
 * The approve-or-override form (review queue, trace): journals the override, then redirects back to the trace
 * (or the review queue when the decision is unknown) with a notice or the error.
 */
async function postOverride(ctx: AuditContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { service } = ctx.options;
  const f = body(req);
  const p = ctx.require(req, 'override', f);
  const id = idParam(req);
  const parsed = OverrideBodySchema.safeParse({
    action: f.action,
    reason: f.reason,
    ...(f.action === 'override' ? { category: f.category } : {}),
  });
  const row = service.decision(id);
  const back = (params: Record<string, string>): string =>
    row
      ? `/audit/trace?${new URLSearchParams({ correlationId: row.correlationId, ...params }).toString()}`
      : `/audit/review?${new URLSearchParams(params).toString()}`;
  if (!parsed.success) return reply.redirect(back({ error: zodMessage(parsed.error) }), 303);
  try {
    const r = await service.override(id, { ...parsed.data, userId: p.user.id, via: 'audit-ui' });
    return reply.redirect(
      back({
        notice: `${parsed.data.action === 'approve' ? 'Approved' : 'Overridden'}: journaled as seq ${r.entry.seq}${r.redriven ? '; the CRM mirror is being updated' : ''}.`,
      }),
      303,
    );
  } catch (err) {
    if (err instanceof OverrideError) return reply.redirect(back({ error: err.message }), 303);
    throw err;
  }
}
