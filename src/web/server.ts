/**
 * The web server: /healthz (is each dependency answering?), /metrics (Prometheus text) and the webhook
 * receivers, the Gmail consent callback, and the audit UI with its JSON API.
 */
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { registerWebhooks, type WebhookOptions } from './webhooks.ts';
import { registerAuditRoutes } from './audit/routes.ts';
import type { AuditRoutesOptions } from './audit/context.ts';
import { registry } from '../metrics/registry.ts';
import { SECURITY_HEADERS } from './audit/pages.ts';
import { notFoundPage } from './audit/pages/not-found.ts';

export interface DependencyCheck {
  readonly name: string;
  check(): Promise<void>;
}

export interface WebServerOptions {
  readonly checks: readonly DependencyCheck[];
  /** The Prometheus text for /metrics, made on every scrape (default: this process's registry). */
  readonly metrics?: () => Promise<string>;
  /** Webhook intake (POST /webhooks/<provider>), when the product takes interactions in here. */
  readonly webhooks?: WebhookOptions;
  /** The Gmail consent callback (GET /oauth/gmail/callback), when Gmail is configured. */
  readonly gmailConsent?: (code: string, state: string) => Promise<{ mailbox: string }>;
  /** The audit UI (/audit) and its JSON API (/api/v1), when the journal is readable here. */
  readonly audit?: AuditRoutesOptions;
  /** The Google Forms consent callback (GET /oauth/google-forms/callback), when a Google OAuth client is configured. */
  readonly googleFormsConsent?: (code: string, state: string) => Promise<{ formId: string }>;
  /** Records a refused consent callback (journaled as webhook.rejected by the wiring); `endpoint` is the callback path. */
  readonly onConsentRefused?: (status: number, reason: string, endpoint: string) => Promise<void>;
}

export function createWebServer(options: WebServerOptions): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: options.webhooks?.maxBodyBytes ?? 1024 * 1024 });
  if (options.webhooks) registerWebhooks(app, options.webhooks);
  if (options.audit) registerAuditRoutes(app, options.audit);
  registerHealth(app, options.checks);
  registerConsentCallbacks(app, options);
  registerNotFound(app);
  app.get('/metrics', async (_req, reply) => {
    const text = await (options.metrics ?? (() => registry.metrics()))();
    return reply.type(registry.contentType).header('cache-control', 'no-store').send(text);
  });
  return app;
}

/** GET /healthz: every dependency's check, with its time; 503 when any fails. */
function registerHealth(app: FastifyInstance, checks: readonly DependencyCheck[]): void {
  app.get('/healthz', async (_req, reply) => {
    const results = await Promise.all(
      checks.map(async (c) => {
        const started = Date.now();
        try {
          await c.check();
          return { name: c.name, ok: true, ms: Date.now() - started };
        } catch (err) {
          return { name: c.name, ok: false, ms: Date.now() - started, error: (err as Error).message.slice(0, 300) };
        }
      }),
    );
    const ok = results.every((r) => r.ok);
    return reply.code(ok ? 200 : 503).send({ ok, checks: results });
  });
}

/** The OAuth consent callbacks (Gmail, Google Forms) that are configured: each answers a small page. */
function registerConsentCallbacks(app: FastifyInstance, options: WebServerOptions): void {
  const consentRoute = (path: string, subject: string, command: string, run: (code: string, state: string) => Promise<string>): void => {
    app.get(path, async (req, reply) => {
      const q = req.query as Record<string, unknown>;
      const page = async (status: number, title: string, text: string): Promise<FastifyReply> => {
        if (status >= 400) await options.onConsentRefused?.(status, text, path).catch(() => undefined);
        return reply
          .code(status)
          .type('text/html; charset=utf-8')
          .header('cache-control', 'no-store')
          .send(
            `<!doctype html><meta charset="utf-8"><title>${escapeHtml(title)}</title><h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p>`,
          );
      };
      if (typeof q.error === 'string')
        return page(400, `${subject} not connected`, `Google answered: ${q.error.slice(0, 100)}. Run ${command} to try again.`);
      if (typeof q.code !== 'string' || typeof q.state !== 'string')
        return page(400, `${subject} not connected`, `The callback is missing its code or state. Run ${command} to start again.`);
      try {
        const done = await run(q.code, q.state);
        return page(200, `${subject} connected`, done);
      } catch (err) {
        return page(400, `${subject} not connected`, `${(err as Error).message.slice(0, 300)}`);
      }
    });
  };
  const gmailConsent = options.gmailConsent;
  if (gmailConsent) {
    consentRoute('/oauth/gmail/callback', 'Inbox', 'activity-journal connect gmail', async (code, state) => {
      const { mailbox } = await gmailConsent(code, state);
      return `${mailbox} is connected; its mail is being backfilled. You can close this window.`;
    });
  }
  const formsConsent = options.googleFormsConsent;
  if (formsConsent) {
    consentRoute('/oauth/google-forms/callback', 'Form', 'activity-journal connect google-forms <formId>', async (code, state) => {
      const { formId } = await formsConsent(code, state);
      return `Google form ${formId} is connected; its responses are being taken in. You can close this window.`;
    });
  }
}

/**
 * An address that does not exist, said for the reader it is for: a page in the audit UI, JSON for the API
 * and everything else (webhook providers, health checks, scrapers).
 */
function registerNotFound(app: FastifyInstance): void {
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] ?? '/';
    if (path === '/audit' || path.startsWith('/audit/')) {
      return reply.code(404).type('text/html; charset=utf-8').headers(SECURITY_HEADERS).send(notFoundPage(path));
    }
    const hint = path.startsWith('/api/')
      ? ' (the API is described at /api/v1/openapi.json)'
      : path.startsWith('/webhooks/')
        ? ' (webhooks are POSTed to /webhooks/<provider>)'
        : ' (this server has /healthz, /metrics, /webhooks/<provider>, /audit and /api/v1)';
    return reply.code(404).send({ error: `no such endpoint: ${req.method} ${path.slice(0, 200)}${hint}` });
  });
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
