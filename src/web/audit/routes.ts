/**
 * The audit UI (/audit/...) and its JSON API (/api/v1/...), registered as an encapsulated fastify plugin so that
 * its body parsing and error handling stay apart from the webhook receivers'. Its rooms:
 *
 * - auth-routes.ts: sign-in and sign-out (who may come in: see context.ts);
 * - page-routes.ts: the HTML pages and the forms they post (the HTML itself is in pages.ts);
 * - api-routes.ts: the JSON API (described by ../openapi.ts);
 * - export-routes.ts: the JSON Lines exports, from the export page and the API.
 *
 * Every answer carries the security headers (pages.ts: no caching, no framing, the CSP); a failure is answered
 * by error-handler.ts.
 */
import type { FastifyInstance } from 'fastify';
import { registerApiRoutes } from './api-routes.ts';
import { registerAuthRoutes } from './auth-routes.ts';
import { createAuditContext, type AuditRoutesOptions } from './context.ts';
import { auditErrorHandler } from './error-handler.ts';
import { registerExportRoutes } from './export-routes.ts';
import { registerPageRoutes } from './page-routes.ts';
import { SECURITY_HEADERS } from './pages.ts';

export function registerAuditRoutes(app: FastifyInstance, options: AuditRoutesOptions): void {
  const ctx = createAuditContext(options);
  void app.register((audit, _opts, registered) => {
    // Bodies are taken as text (64 KiB at most) and parsed by request.ts: JSON or a form.
    audit.removeAllContentTypeParsers();
    audit.addContentTypeParser('*', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, b, done) => done(null, b));
    audit.setErrorHandler(auditErrorHandler(ctx.log));
    audit.addHook('onSend', async (_req, reply, payload) => {
      reply.headers(SECURITY_HEADERS);
      return payload;
    });
    registerAuthRoutes(audit, ctx);
    registerPageRoutes(audit, ctx);
    registerApiRoutes(audit, ctx);
    registerExportRoutes(audit, ctx);
    registered();
  });
}
