/**
 * The web server: /healthz (is each dependency answering?), /metrics (Prometheus text) and the webhook
 * receivers. OAuth callbacks and the audit UI arrive with later issues.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { registerWebhooks, type WebhookOptions } from './webhooks.ts';

export interface DependencyCheck {
  readonly name: string;
  check(): Promise<void>;
}

export interface Gauge {
  readonly name: string;
  readonly help: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface WebServerOptions {
  readonly checks: readonly DependencyCheck[];
  /** Gauges to expose; read on every scrape. */
  readonly gauges: () => Promise<readonly Gauge[]>;
  /** Webhook intake (POST /webhooks/<provider>), when the product takes interactions in here. */
  readonly webhooks?: WebhookOptions;
}

export function createWebServer(options: WebServerOptions): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: options.webhooks?.maxBodyBytes ?? 1024 * 1024 });
  if (options.webhooks) registerWebhooks(app, options.webhooks);

  app.get('/healthz', async (_req, reply) => {
    const results = await Promise.all(
      options.checks.map(async (c) => {
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

  app.get('/metrics', async (_req, reply) => {
    const gauges = await options.gauges();
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(renderPrometheus(gauges));
  });

  return app;
}

/** Prometheus text exposition format: HELP and TYPE once per metric name, then one line per label set. */
export function renderPrometheus(gauges: readonly Gauge[]): string {
  const lines: string[] = [];
  const seen = new Set<string>();
  for (const g of gauges) {
    if (!seen.has(g.name)) {
      seen.add(g.name);
      lines.push(`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} gauge`);
    }
    const labels = g.labels ? Object.entries(g.labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`) : [];
    lines.push(`${g.name}${labels.length > 0 ? `{${labels.join(',')}}` : ''} ${Number.isFinite(g.value) ? g.value : 'NaN'}`);
  }
  return lines.join('\n') + '\n';
}
