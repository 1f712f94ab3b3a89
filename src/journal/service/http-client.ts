/**
 * The JournalClient that talks to the journal service over HTTP (loopback or a Unix socket). Appends are
 * retried on connection failures and 503s: every append carries an idempotency key (given or derived from its
 * content), so a retry can never add a second entry.
 */
import { Agent, request } from 'node:http';
import type { AppendInput, JournalEntry } from '../entry.ts';
import type { JournalClient } from '../journal-client.ts';
import type { InclusionProofBundle, KindQuery } from '../reader.ts';
import type { AppendResult } from '../writer.ts';
import { JournalRequestError } from '../errors/journal-request.error.ts';

const ENTRY_CACHE_SIZE = 2048;

export interface HttpJournalClientOptions {
  /** http://host:port or unix:/path/to/socket */
  readonly url: string;
  readonly appendToken?: string | undefined;
  readonly readToken?: string | undefined;
  /** Attempts for a request that failed to reach the service or got a 503 (default 5). */
  readonly attempts?: number;
  readonly maxSockets?: number;
  readonly timeoutMs?: number;
}

export class HttpJournalClient implements JournalClient {
  private readonly agent: Agent;
  private readonly base: { host?: string; port?: number; socketPath?: string };
  private readonly attempts: number;
  private readonly timeoutMs: number;
  private readonly entries = new Map<number, JournalEntry>();

  constructor(private readonly options: HttpJournalClientOptions) {
    this.agent = new Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 64 });
    if (options.url.startsWith('unix:')) this.base = { socketPath: options.url.slice(5) };
    else {
      const u = new URL(options.url);
      this.base = { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80) };
    }
    this.attempts = options.attempts ?? 5;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  async append(input: AppendInput): Promise<AppendResult> {
    const { result } = await this.call<{ result: AppendResult }>('POST', '/v1/entries', 'append', input);
    return withPayload(result, input);
  }

  async appendBatch(inputs: readonly AppendInput[]): Promise<AppendResult[]> {
    const { results } = await this.call<{ results: AppendResult[] }>('POST', '/v1/entries', 'append', { entries: inputs });
    return results.map((r, i) => withPayload(r, inputs[i]));
  }

  async appendReceived(input: unknown): Promise<AppendResult> {
    const { result } = await this.call<{ result: AppendResult }>('POST', '/v1/entries', 'append', input);
    return withPayload(result, input);
  }

  /** Entries never change, so a read one can be kept: the pipeline reads the same few entries at every stage. */
  async bySeq(seq: number): Promise<JournalEntry | null> {
    const cached = this.entries.get(seq);
    if (cached) return cached;
    try {
      const { entry } = await this.call<{ entry: JournalEntry }>('GET', `/v1/entries/${seq}`, 'read');
      this.entries.set(seq, entry);
      if (this.entries.size > ENTRY_CACHE_SIZE) this.entries.delete(this.entries.keys().next().value as number);
      return entry;
    } catch (err) {
      if (err instanceof JournalRequestError && err.status === 404) return null;
      throw err;
    }
  }

  async range(fromSeq: number, limit: number): Promise<JournalEntry[]> {
    return (await this.call<{ entries: JournalEntry[] }>('GET', `/v1/entries?from=${fromSeq}&limit=${limit}`, 'read')).entries;
  }

  /** Every entry of the correlation, following pages. */
  async byCorrelation(correlationId: string): Promise<JournalEntry[]> {
    const out: JournalEntry[] = [];
    for (;;) {
      const after = out.length > 0 ? (out[out.length - 1] as JournalEntry).seq : -1;
      const page = (
        await this.call<{ entries: JournalEntry[] }>(
          'GET',
          `/v1/entries?correlationId=${encodeURIComponent(correlationId)}&afterSeq=${after}&limit=10000`,
          'read',
        )
      ).entries;
      out.push(...page);
      if (page.length < 10000) return out;
    }
  }

  async byKind(q: KindQuery): Promise<JournalEntry[]> {
    const params = new URLSearchParams({ kind: q.kind });
    if (q.since) params.set('since', q.since);
    if (q.until) params.set('until', q.until);
    if (q.limit) params.set('limit', String(q.limit));
    if (q.afterSeq !== undefined) params.set('afterSeq', String(q.afterSeq));
    return (await this.call<{ entries: JournalEntry[] }>('GET', `/v1/entries?${params.toString()}`, 'read')).entries;
  }

  async byIdempotencyKey(key: string): Promise<JournalEntry | null> {
    return (await this.call<{ entry: JournalEntry | null }>('GET', `/v1/entries?idempotencyKey=${encodeURIComponent(key)}`, 'read')).entry;
  }

  /** Writes (or returns) the newest checkpoint and anchors it. */
  checkpoint(): Promise<{ seq: number; treeSize: number; note: string; created: boolean }> {
    return this.call('POST', '/v1/checkpoints', 'append', {});
  }

  proveInclusion(seq: number, includePayload = false): Promise<InclusionProofBundle> {
    return this.call('GET', `/v1/proofs/inclusion/${seq}${includePayload ? '?payload=true' : ''}`, 'read');
  }

  health(): Promise<{ ok: boolean; size: number }> {
    return this.call('GET', '/healthz', null, undefined, 1);
  }

  /** The journal service's own metrics (Prometheus text; read credential). */
  metrics(): Promise<string> {
    const token = this.options.readToken;
    if (!token)
      return Promise.reject(new JournalRequestError(0, 'NO_CREDENTIAL', 'no read credential configured for the journal service', false));
    return this.once<string>('GET', '/metrics', token, undefined, true);
  }

  close(): Promise<void> {
    this.agent.destroy();
    return Promise.resolve();
  }

  private async call<T>(
    method: string,
    path: string,
    role: 'append' | 'read' | null,
    body?: unknown,
    attempts = this.attempts,
  ): Promise<T> {
    const token = role === 'append' ? this.options.appendToken : role === 'read' ? this.options.readToken : undefined;
    if (role !== null && !token)
      throw new JournalRequestError(0, 'NO_CREDENTIAL', `no ${role} credential configured for the journal service`, false);
    const text = body === undefined ? undefined : JSON.stringify(body);
    let lastError: JournalRequestError | null = null;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        return await this.once<T>(method, path, token, text);
      } catch (err) {
        if (!(err instanceof JournalRequestError) || !err.retryable) throw err;
        lastError = err;
        if (attempt < attempts) await sleep(Math.min(2000, 50 * 2 ** attempt) * (0.5 + Math.random()));
      }
    }
    throw lastError as JournalRequestError;
  }

  private once<T>(method: string, path: string, token: string | undefined, text: string | undefined, plain = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const headers: Record<string, string | number> = { accept: plain ? 'text/plain' : 'application/json' };
      if (token) headers.authorization = `Bearer ${token}`;
      if (text !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(text);
      }
      const req = request({ ...this.base, method, path, headers, agent: this.agent, timeout: this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) =>
          reject(new JournalRequestError(0, 'NETWORK', `journal service connection failed: ${err.message}`, true, { cause: err })),
        );
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (plain && status >= 200 && status < 300) {
            resolve(Buffer.concat(chunks).toString('utf8') as T);
            return;
          }
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            reject(
              new JournalRequestError(
                status,
                'BAD_RESPONSE',
                `journal service answered ${status} with a body that is not JSON`,
                status >= 500,
              ),
            );
            return;
          }
          if (status >= 200 && status < 300) resolve(parsed as T);
          else {
            const e = (parsed as { error?: { code?: string; message?: string; issues?: string[] } }).error ?? {};
            reject(
              new JournalRequestError(
                status,
                e.code ?? 'HTTP_' + status,
                e.message ?? `status ${status}`,
                status === 503 || status === 502,
                { issues: e.issues },
              ),
            );
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (err) =>
        reject(new JournalRequestError(0, 'NETWORK', `journal service unreachable: ${err.message}`, true, { cause: err })),
      );
      req.end(text);
    });
  }
}

/** The service leaves the payload out of append answers: it is the one we sent (or the same, for a duplicate). */
function withPayload(r: AppendResult, input: unknown): AppendResult {
  const payload = typeof input === 'object' && input !== null && 'payload' in input ? input.payload : undefined;
  return { duplicate: r.duplicate, entry: { ...r.entry, payload } };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
