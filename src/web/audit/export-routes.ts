/**
 * Exports: a date range or one correlation as a JSON Lines download with inclusion proofs (reviewer, admin;
 * journaled by the service), from the export page's forms (POST /audit/export) or the API (POST /api/v1/exports).
 * Both take the same fields and answer the same file.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ExportScope } from '../../audit/export.ts';
import { HttpError } from '../../errors/http.error.ts';
import type { AuditContext, Principal } from './context.ts';
import { body, zodMessage } from './request.ts';
import { ExportBodySchema } from './schemas.ts';

export function registerExportRoutes(audit: FastifyInstance, ctx: AuditContext): void {
  const { service } = ctx.options;

  const sendExport = async (reply: FastifyReply, p: Principal, fields: Record<string, unknown>): Promise<FastifyReply> => {
    const scope = exportScope(fields);
    const lines: string[] = [];
    await service.export(scope, `user:${p.user.id}`, (line) => void lines.push(line));
    const name = `activity-journal-export-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`;
    return reply
      .type('application/x-ndjson; charset=utf-8')
      .header('content-disposition', `attachment; filename="${name}"`)
      .send(lines.join('\n') + '\n');
  };

  audit.post('/audit/export', async (req, reply) => {
    const f = body(req);
    const p = ctx.require(req, 'export', f);
    // The form's CSRF field is the form's, not the export's (the scope's schema is strict).
    const { _csrf, ...rest } = f;
    void _csrf;
    return sendExport(reply, p, rest);
  });
  audit.post('/api/v1/exports', async (req, reply) => {
    const f = body(req);
    const p = ctx.require(req, 'export', f);
    return sendExport(reply, p, f);
  });
}

/** The scope the fields ask for: a range (a bare date is that day's midnight UTC) or one correlation. */
function exportScope(fields: Record<string, unknown>): ExportScope {
  const parsed = ExportBodySchema.safeParse(fields);
  if (!parsed.success)
    throw new HttpError(400, 'INVALID_BODY', `give from and until (dates), or a correlationId: ${zodMessage(parsed.error)}`);
  const d = parsed.data;
  const day = (s: string): string => (/^\d{4}-\d{2}-\d{2}$/.test(s) ? `${s}T00:00:00Z` : s);
  const scope: ExportScope =
    'correlationId' in d
      ? { kind: 'correlation', correlationId: d.correlationId }
      : { kind: 'range', from: day(d.from), until: day(d.until) };
  if (scope.kind === 'range' && (Number.isNaN(Date.parse(scope.from)) || Number.isNaN(Date.parse(scope.until))))
    throw new HttpError(400, 'INVALID_BODY', 'from and until must be dates (YYYY-MM-DD) or RFC 3339 times');
  return scope;
}
