/**
 * A fake Slack incoming-webhook endpoint: POST /services/<T>/<B>/<secret> with a JSON body that has a `text`
 * string, answered as Slack documents: 200 `ok`; 400 `invalid_payload` (not JSON, or no text); 404
 * `no_service` for an unknown webhook path; and scripted refusals: 403 action_prohibited, 404 channel_not_found,
 * 410 channel_is_archived, 429 (Retry-After) and 500 rollup_error. Every posted message is recorded.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type SlackRefusal = 'action_prohibited' | 'channel_not_found' | 'channel_is_archived' | 'rate_limited' | 'rollup_error';
const STATUS: Record<SlackRefusal, number> = {
  action_prohibited: 403,
  channel_not_found: 404,
  channel_is_archived: 410,
  rate_limited: 429,
  rollup_error: 500,
};

export interface SlackFake {
  /** The webhook URL Slack would have given (a secret: keep it out of logs and the journal). */
  readonly webhookUrl: string;
  readonly messages: { text: string }[];
  readonly answers: number[];
  /** When each answer was given (ms since the epoch), in the order of `answers`. */
  readonly answeredAt: number[];
  /** The Retry-After (seconds) of a rate_limited answer (default 1). */
  retryAfterSeconds: number;
  refuseNext(...r: SlackRefusal[]): void;
  close(): Promise<void>;
}

export async function startSlackFake(): Promise<SlackFake> {
  const secretPath = `/services/T0FAKE/B0FAKE/${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  const messages: { text: string }[] = [];
  const answers: number[] = [];
  const answeredAt: number[] = [];
  const queue: SlackRefusal[] = [];
  const answer = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void => {
    answers.push(status);
    answeredAt.push(Date.now());
    res.writeHead(status, { 'content-type': 'text/html', ...headers }).end(body);
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== secretPath) return answer(res, 404, 'no_service');
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return answer(res, 400, 'invalid_payload');
      }
      const text = (body as { text?: unknown } | null)?.text;
      if (typeof text !== 'string' || text.length === 0) return answer(res, 400, 'invalid_payload');
      const r = queue.shift();
      if (r)
        return answer(
          res,
          STATUS[r],
          r === 'rate_limited' ? 'rate_limited' : r,
          r === 'rate_limited' ? { 'retry-after': String(fake.retryAfterSeconds) } : {},
        );
      messages.push({ text });
      answer(res, 200, 'ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const fake: SlackFake = {
    webhookUrl: `http://127.0.0.1:${port}${secretPath}`,
    messages,
    answers,
    answeredAt,
    retryAfterSeconds: 1,
    refuseNext: (...r) => queue.push(...r),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  return fake;
}
