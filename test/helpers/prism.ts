/**
 * Prism, the spec-validating mock server, serving ../shared/specs/hubspot/merged.json for contract tests.
 * Started with `--errors`: a request that violates the spec is answered 422 (and logged as a violation), which is
 * what HubSpot would refuse. Collects every violation prism reports, from its log and from the 422s it answers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve } from 'node:path';

export const HUBSPOT_SPEC = resolve(import.meta.dirname, '../../../shared/specs/hubspot/merged.json');
const PRISM_BIN = resolve(import.meta.dirname, '../../node_modules/@stoplight/prism-cli/dist/index.js');

export interface Prism {
  readonly baseUrl: string;
  /** Violation lines prism logged (request validation), in order. */
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

export async function startPrism(spec = HUBSPOT_SPEC, timeoutMs = 60_000): Promise<Prism> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [PRISM_BIN, 'mock', '-d', '--errors', spec, '-p', String(port), '-h', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
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
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prism exited (${child.exitCode}) before it answered:\n${output.join('\n')}`);
    try {
      const res = await fetch(`${baseUrl}/crm/v3/properties/emails`, { headers: { authorization: 'Bearer probe' } });
      await res.arrayBuffer();
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`prism did not answer within ${timeoutMs} ms:\n${output.join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  // The probe is not part of any test.
  violations.length = 0;
  return {
    baseUrl,
    violations,
    output,
    close: () =>
      new Promise<void>((res) => {
        if (child.exitCode !== null) return res();
        child.once('exit', () => res());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      }),
  };
}
