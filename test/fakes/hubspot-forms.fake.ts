/**
 * A fake of HubSpot's form submissions API (legacy v1), for the real `@hubspot/api-client` pointed at it with
 * `basePath`: GET /form-integrations/v1/submissions/forms/{guid}?limit=&after=, newest first, paged with an
 * opaque `after`, in HubSpot's documented shape:
 *   { results: [{ conversionId?, submittedAt, values: [{ name, value }], pageUrl }], paging: { next: { after, link } } }
 * Every call needs `Authorization: Bearer <the fake's token>` (401 otherwise, with HubSpot's error body);
 * failures can be scripted: `rateLimit(n)` (429 with Retry-After) and `serverError(n)`. `limit` above 50 is
 * refused (400) as HubSpot does.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeHubSpotSubmission {
  conversionId?: string;
  submittedAt: number;
  values: { name: string; value: string }[];
  pageUrl: string;
}

export interface FakeHubSpotForms {
  /** For `new Client({ basePath })`. */
  readonly basePath: string;
  readonly accessToken: string;
  readonly requests: { path: string; query: Record<string, string>; status: number }[];
  /** Adds a submission (conversionId given unless `withoutConversionId`); returns it. */
  submit(
    formGuid: string,
    s: Partial<FakeHubSpotSubmission> & { email: string },
    options?: { withoutConversionId?: boolean },
  ): FakeHubSpotSubmission;
  /** The next n calls get 429 (Retry-After: `retryAfterSeconds`, default 0). */
  rateLimit(n: number, retryAfterSeconds?: number): void;
  /** The next n calls get this 5xx (default 502). */
  serverError(n: number, status?: number): void;
  /** The token stops working (401). */
  revoke(): void;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): number {
  res.writeHead(status, { 'content-type': 'application/json;charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
  return status;
}

const hubspotError = (category: string, message: string): Record<string, unknown> => ({
  status: 'error',
  message,
  correlationId: randomBytes(16).toString('hex'),
  category,
});

export async function startFakeHubSpotForms(): Promise<FakeHubSpotForms> {
  const accessToken = `pat-na1-${randomBytes(16).toString('hex')}`;
  const forms = new Map<string, FakeHubSpotSubmission[]>();
  const requests: FakeHubSpotForms['requests'] = [];
  let limited = 0;
  let retryAfter = 0;
  let failing = 0;
  let failStatus = 502;
  let revoked = false;
  let clock = Date.now() - 3_600_000;

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const query = Object.fromEntries(url.searchParams);
    const status = ((): number => {
      if (req.headers.authorization !== `Bearer ${accessToken}` || revoked) {
        return send(res, 401, hubspotError('INVALID_AUTHENTICATION', 'Authentication credentials not found.'));
      }
      if (limited > 0) {
        limited--;
        return send(
          res,
          429,
          { ...hubspotError('RATE_LIMITS', 'You have reached your secondly limit.'), policyName: 'SECONDLY' },
          { 'retry-after': String(retryAfter) },
        );
      }
      if (failing > 0) {
        failing--;
        return send(res, failStatus, hubspotError('INTERNAL_ERROR', 'internal error'));
      }
      const m = /^\/form-integrations\/v1\/submissions\/forms\/([^/]+)$/.exec(url.pathname);
      if (req.method !== 'GET' || !m) return send(res, 404, hubspotError('OBJECT_NOT_FOUND', 'not found'));
      const guid = decodeURIComponent(m[1] ?? '');
      const list = forms.get(guid);
      if (!list) return send(res, 404, hubspotError('OBJECT_NOT_FOUND', `form ${guid} does not exist`));
      const limit = Number(url.searchParams.get('limit') ?? 20);
      if (!Number.isInteger(limit) || limit < 1 || limit > 50)
        return send(res, 400, hubspotError('VALIDATION_ERROR', 'limit must be between 1 and 50'));
      const offset = url.searchParams.has('after') ? Number(Buffer.from(url.searchParams.get('after') ?? '', 'base64url').toString()) : 0;
      if (!Number.isInteger(offset) || offset < 0) return send(res, 400, hubspotError('VALIDATION_ERROR', 'invalid after'));
      const newestFirst = [...list].sort((a, b) => b.submittedAt - a.submittedAt);
      const page = newestFirst.slice(offset, offset + limit);
      const body: Record<string, unknown> = { results: page };
      if (offset + limit < newestFirst.length) {
        const after = Buffer.from(String(offset + limit)).toString('base64url');
        body['paging'] = { next: { after, link: `${url.origin}${url.pathname}?after=${after}` } };
      }
      return send(res, 200, body);
    })();
    requests.push({ path: url.pathname, query, status });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    basePath: `http://127.0.0.1:${port}`,
    accessToken,
    requests,
    submit(guid, s, options = {}) {
      clock += 1000;
      const submission: FakeHubSpotSubmission = {
        ...(options.withoutConversionId
          ? {}
          : {
              conversionId:
                s.conversionId ??
                randomBytes(16)
                  .toString('hex')
                  .replace(/(.{8})(.{4})(.{4})(.{4})(.{12})/, '$1-$2-$3-$4-$5'),
            }),
        submittedAt: s.submittedAt ?? clock,
        values: s.values ?? [
          { name: 'email', value: s.email },
          { name: 'message', value: `hello from ${s.email}` },
        ],
        pageUrl: s.pageUrl ?? 'https://www.example.com/contact',
      };
      forms.set(guid, [...(forms.get(guid) ?? []), submission]);
      return submission;
    },
    rateLimit(n, seconds = 0) {
      limited = n;
      retryAfter = seconds;
    },
    serverError(n, status = 502) {
      failing = n;
      failStatus = status;
    },
    revoke() {
      revoked = true;
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      });
    },
  };
}
