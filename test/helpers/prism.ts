/**
 * Prism, the spec-validating mock server, serving ../shared/specs/hubspot/merged.json for contract tests.
 * Started with `--errors`: a request that violates the spec is answered 422 (and logged as a violation), which is
 * what HubSpot would refuse. Collects every violation prism reports, from its log and from the 422s it answers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createServer as createHttpServer, request as httpRequest, type Server } from 'node:http';
import { resolve } from 'node:path';
import { waitFor } from './wait.ts';

export const HUBSPOT_SPEC = resolve(import.meta.dirname, '../../../shared/specs/hubspot/merged.json');
const PRISM_BIN = resolve(import.meta.dirname, '../../node_modules/@stoplight/prism-cli/dist/index.js');

export interface Prism {
  /** Where the client goes: a pass-through proxy in front of prism (it adds `prefer` headers and sees every status). */
  readonly baseUrl: string;
  /** Violation lines prism logged, and every 422 it answered (method, path, prism's reason), in order. */
  readonly violations: string[];
  /** Everything prism printed (for a failing test's message). */
  readonly output: string[];
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

export interface PrismOptions {
  readonly spec?: string;
  /**
   * Prism's `Prefer` header per request (e.g. `code=404`): steers its schema-generated answers so that every branch
   * of a flow is reached. Requests are validated the same with or without it.
   */
  readonly prefer?: (method: string, path: string) => string | null;
  /**
   * Reshapes a generated JSON answer (prism's data is random: e.g. upsert results that echo no input). Only what the
   * client gets back changes; what prism validated is the request as sent.
   */
  readonly shape?: (method: string, path: string, request: unknown, response: unknown) => unknown;
  readonly timeoutMs?: number;
}

export async function startPrism(options: PrismOptions = {}): Promise<Prism> {
  const spec = options.spec ?? HUBSPOT_SPEC;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [PRISM_BIN, 'mock', '-d', '--errors', spec, '-p', String(port), '-h', '127.0.0.1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const violations: string[] = [];
  const onData = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) {
      // eslint-disable-next-line no-control-regex
      const clean = line.replace(/\u001b\[[0-9;]*m/g, '').trim();
      if (!clean) continue;
      output.push(clean);
      if (/violation|✖|\berror\b/i.test(clean) && !/^\s*$/.test(clean)) violations.push(clean);
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      const res = await fetch(`${baseUrl}/crm/v3/properties/emails`, { headers: { authorization: 'Bearer probe' } });
      await res.arrayBuffer();
      return true;
    },
    {
      what: 'prism to answer',
      timeoutMs,
      intervalMs: 250,
      giveUp: () => (child.exitCode !== null ? `prism exited (${child.exitCode}) before it answered` : null),
      detail: () => output.join('\n'),
    },
  ).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  // The probe is not part of any test.
  violations.length = 0;
  const proxy: Server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers = { ...req.headers };
      const prefer = options.prefer?.(req.method ?? 'GET', (req.url ?? '/').split('?')[0] as string);
      if (prefer) headers['prefer'] = prefer;
      const upstream = httpRequest(`${baseUrl}${req.url ?? '/'}`, { method: req.method, headers }, (up) => {
        const body: Buffer[] = [];
        up.on('data', (c: Buffer) => body.push(c));
        up.on('end', () => {
          const text = Buffer.concat(body);
          if (
            up.statusCode === 422 ||
            (up.statusCode === 500 && text.toString().includes('prism/errors#VIOLATIONS') && text.toString().includes('"request"'))
          ) {
            violations.push(`${req.method} ${req.url} -> ${up.statusCode}: ${text.toString().slice(0, 500)}`);
          }
          let out: Buffer = text;
          if (options.shape && (up.statusCode ?? 0) < 300 && String(up.headers['content-type'] ?? '').includes('json')) {
            const parse = (b: Buffer): unknown => (b.length > 0 ? JSON.parse(b.toString('utf8')) : null);
            out = Buffer.from(
              JSON.stringify(
                options.shape(req.method ?? 'GET', (req.url ?? '/').split('?')[0] as string, parse(Buffer.concat(chunks)), parse(text)),
              ),
            );
          }
          const h = { ...up.headers };
          delete h['content-length'];
          res.writeHead(up.statusCode ?? 502, h);
          res.end(out);
        });
      });
      upstream.on('error', (err) => {
        res.writeHead(502);
        res.end(String(err));
      });
      upstream.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  return {
    baseUrl: `http://127.0.0.1:${(proxy.address() as { port: number }).port}`,
    violations,
    output,
    close: async () => {
      await new Promise<void>((r) => proxy.close(() => r()));
      await new Promise<void>((res) => {
        if (child.exitCode !== null) return res();
        child.once('exit', () => res());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      });
    },
  };
}
