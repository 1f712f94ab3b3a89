/**
 * How the audit plugin answers a failed request: JSON `{ error }` under /api/, an HTML page elsewhere. A 5xx says
 * only "see the server log" (and is logged), except the work queue being down, which is said as such.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../../config/logger.ts';
import { HttpError } from '../../errors/http.error.ts';
import { ExportError } from '../../audit/errors/export.error.ts';
import { OverrideError } from '../../pipeline/errors/override.error.ts';
import { QueueUnavailableError } from '../../pipeline/errors/queue-unavailable.error.ts';
import { esc, layout } from './pages.ts';

type RouteError = Error & { statusCode?: number };

/** The status a failure is answered with, by its type (fastify's own errors carry a statusCode). */
function statusOf(err: RouteError): number {
  if (err instanceof HttpError) return err.status;
  if (err instanceof OverrideError) return err.code === 'NOT_FOUND' ? 404 : err.code === 'UNCHANGED' ? 409 : 400;
  if (err instanceof ExportError) return 409;
  if (err instanceof RangeError) return 400;
  return err.statusCode ?? 500;
}

export function auditErrorHandler(log: Logger): (err: RouteError, req: FastifyRequest, reply: FastifyReply) => FastifyReply {
  return (err, req, reply) => {
    const api = req.url.startsWith('/api/');
    const status = statusOf(err);
    if (status >= 500 && !(err instanceof QueueUnavailableError))
      log.error({ url: req.routeOptions.url, err: err.message }, 'audit request failed');
    // The queue being down is said as such (the UI's users are staff): what they did may need doing again.
    const message =
      err instanceof QueueUnavailableError
        ? `the work queue is unavailable (${err.message}); what was recorded stays recorded, try the action again shortly`
        : status >= 500
          ? 'internal error; see the server log'
          : err.message;
    if (err instanceof QueueUnavailableError) void reply.header('retry-after', '5');
    if (api) return reply.code(status).send({ error: message });
    return reply
      .code(status)
      .type('text/html; charset=utf-8')
      .send(
        layout(
          status === 403 ? 'Not allowed' : 'Something went wrong',
          null,
          '',
          `<p class="error" role="alert">${esc(message)}</p><p><a href="/audit/timeline">Back to the timeline</a></p>`,
        ),
      );
  };
}
