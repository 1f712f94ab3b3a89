/**
 * The worker's own /metrics (its registry) on WORKER_METRICS_LISTEN, loopback by default, for the web server to
 * gather and for Prometheus to scrape directly. Only GET /metrics; nothing else is served. A port that is taken
 * is said in words and the worker goes on without it: metrics never stop the pipeline.
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from '../config/logger.ts';
import { registry } from './registry.ts';

export interface MetricsEndpoint {
  readonly url: string | null;
  close(): Promise<void>;
}

export async function serveMetrics(listen: { host: string; port: number } | null, logger: Logger): Promise<MetricsEndpoint> {
  const log = logger.child({ component: 'metrics' });
  if (!listen) return { url: null, close: () => Promise.resolve() };
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('only GET /metrics is served here\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => {
        log.error({ err: (err as Error).message.slice(0, 200) }, 'metrics could not be collected');
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics could not be collected; see the worker log\n');
      },
    );
  });
  const where = `${listen.host}:${listen.port}`;
  const listening = await new Promise<boolean>((resolve) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      log.warn(
        { listen: where, code: err.code },
        `worker metrics not served: ${where} ${err.code === 'EADDRINUSE' ? 'is in use by another process' : `could not be opened (${err.code ?? err.message})`}; set WORKER_METRICS_LISTEN to a free HOST:PORT, or off`,
      );
      resolve(false);
    });
    server.listen(listen.port, listen.host, () => resolve(true));
  });
  if (!listening) return { url: null, close: () => Promise.resolve() };
  const address = server.address();
  const url = `http://${listen.host}:${typeof address === 'object' && address ? address.port : listen.port}/metrics`;
  log.info({ url }, 'worker metrics served');
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
