/**
 * A fake Google Forms API (v1) for the real `googleapis` client (`google.forms({ version: 'v1', auth, rootUrl })`),
 * with an OAuth token endpoint for `new google.auth.OAuth2({ endpoints: { oauth2TokenUrl } })`:
 *   GET  /v1/forms/{formId}                              the form: info.title and items (question ids and titles)
 *   GET  /v1/forms/{formId}/responses?filter=&pageSize=&pageToken=
 *        filter: `timestamp > T` or `timestamp >= T` (RFC 3339) on lastSubmittedTime, as the real API documents
 *   POST /token                                          authorization_code and refresh_token grants
 * Every API call needs a Bearer token issued by /token (401 otherwise). `revoke()` makes refreshes answer
 * invalid_grant and issued tokens stop working; `rateLimit(n)` (429) and `serverError(n)` script failures.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const FORMS_AUTHORIZATION_CODE = '4/fake-forms-consent-code';

export interface FakeFormQuestion {
  readonly questionId: string;
  readonly title: string;
}

export interface FakeGoogleForms {
  readonly rootUrl: string;
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly refreshToken: string;
  readonly requests: { method: string; path: string; query: Record<string, string>; status: number }[];
  addForm(formId: string, title: string, questions: readonly FakeFormQuestion[]): void;
  /** A response: answers by question id; returns its responseId and lastSubmittedTime. */
  respond(
    formId: string,
    answers: Readonly<Record<string, string | string[]>>,
    options?: { email?: string; at?: Date },
  ): { responseId: string; lastSubmittedTime: string };
  revoke(): void;
  rateLimit(n: number): void;
  serverError(n: number, status?: number): void;
  close(): Promise<void>;
}

interface StoredResponse {
  responseId: string;
  createTime: string;
  lastSubmittedTime: string;
  respondentEmail?: string;
  answers: Record<string, { questionId: string; textAnswers: { answers: { value: string }[] } }>;
}

function send(res: ServerResponse, status: number, body: unknown): number {
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
  res.end(JSON.stringify(body));
  return status;
}
const googleError = (res: ServerResponse, code: number, status: string, message: string): number =>
  send(res, code, { error: { code, message, status } });

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startFakeGoogleForms(): Promise<FakeGoogleForms> {
  const clientId = 'fake-forms-client.apps.googleusercontent.com';
  const clientSecret = 'fake-forms-secret';
  const refreshToken = `1//fake-forms-refresh-${randomBytes(8).toString('hex')}`;
  const issued = new Set<string>();
  const forms = new Map<string, { title: string; questions: FakeFormQuestion[]; responses: StoredResponse[] }>();
  const requests: FakeGoogleForms['requests'] = [];
  let revoked = false;
  let limited = 0;
  let failing = 0;
  let failStatus = 503;
  let clock = Date.now() - 3_600_000;

  const handle = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<number> => {
    if (url.pathname === '/token') {
      const form = new URLSearchParams(await readBody(req));
      if (form.get('client_id') !== clientId || form.get('client_secret') !== clientSecret)
        return send(res, 401, { error: 'invalid_client' });
      const grant = form.get('grant_type');
      if (grant === 'authorization_code') {
        if (form.get('code') !== FORMS_AUTHORIZATION_CODE)
          return send(res, 400, { error: 'invalid_grant', error_description: 'Malformed auth code.' });
        revoked = false;
      } else if (grant !== 'refresh_token' || revoked || form.get('refresh_token') !== refreshToken) {
        return send(res, 400, { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' });
      }
      const accessToken = `ya29.fake-forms-${randomBytes(12).toString('hex')}`;
      issued.add(accessToken);
      return send(res, 200, {
        access_token: accessToken,
        expires_in: 3599,
        token_type: 'Bearer',
        scope: 'https://www.googleapis.com/auth/forms.responses.readonly https://www.googleapis.com/auth/forms.body.readonly',
        ...(grant === 'authorization_code' ? { refresh_token: refreshToken } : {}),
      });
    }
    const auth = req.headers.authorization ?? '';
    if (!issued.has(auth.replace(/^Bearer /, '')))
      return googleError(res, 401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials.');
    if (limited > 0) {
      limited--;
      return googleError(res, 429, 'RESOURCE_EXHAUSTED', "Quota exceeded for quota metric 'Read requests'.");
    }
    if (failing > 0) {
      failing--;
      return googleError(res, failStatus, 'UNAVAILABLE', 'The service is currently unavailable.');
    }
    const m = /^\/v1\/forms\/([^/]+)(\/responses)?$/.exec(url.pathname);
    if (req.method !== 'GET' || !m) return googleError(res, 404, 'NOT_FOUND', 'Not found');
    const form = forms.get(decodeURIComponent(m[1] ?? ''));
    if (!form) return googleError(res, 404, 'NOT_FOUND', 'Requested entity was not found.');
    if (!m[2]) {
      return send(res, 200, {
        formId: m[1],
        info: { title: form.title, documentTitle: form.title },
        items: form.questions.map((q, i) => ({
          itemId: `item${i}`,
          title: q.title,
          questionItem: { question: { questionId: q.questionId, textQuestion: {} } },
        })),
      });
    }
    const filter = url.searchParams.get('filter') ?? '';
    let list = [...form.responses].sort((a, b) => a.lastSubmittedTime.localeCompare(b.lastSubmittedTime));
    if (filter !== '') {
      const f = /^timestamp\s*(>=|>)\s*(\S+)$/.exec(filter.trim());
      if (!f) return googleError(res, 400, 'INVALID_ARGUMENT', `Invalid filter: ${filter}`);
      const t = Date.parse(f[2] ?? '');
      if (Number.isNaN(t)) return googleError(res, 400, 'INVALID_ARGUMENT', 'Invalid timestamp in filter');
      list = list.filter((r) => (f[1] === '>' ? Date.parse(r.lastSubmittedTime) > t : Date.parse(r.lastSubmittedTime) >= t));
    }
    const size = Math.min(Number(url.searchParams.get('pageSize') ?? 5000) || 5000, 5000);
    const offset = Number(url.searchParams.get('pageToken') ?? 0) || 0;
    const page = list.slice(offset, offset + size);
    return send(res, 200, {
      ...(page.length > 0 ? { responses: page } : {}),
      ...(offset + size < list.length ? { nextPageToken: String(offset + size) } : {}),
    });
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    handle(req, res, url).then(
      (status) => requests.push({ method: req.method ?? 'GET', path: url.pathname, query: Object.fromEntries(url.searchParams), status }),
      () => res.destroy(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    rootUrl: `${origin}/`,
    tokenUrl: `${origin}/token`,
    clientId,
    clientSecret,
    refreshToken,
    requests,
    addForm(formId, title, questions) {
      forms.set(formId, { title, questions: [...questions], responses: [] });
    },
    respond(formId, answers, options = {}) {
      const form = forms.get(formId);
      if (!form) throw new Error(`no form ${formId}`);
      clock += 1000;
      const at = (options.at ?? new Date(clock))
        .toISOString()
        .replace('Z', '123Z')
        .replace(/\.(\d{3})123Z$/, '.$1123Z');
      const r: StoredResponse = {
        responseId: `ACYDBN${randomBytes(10).toString('hex')}`,
        createTime: at,
        lastSubmittedTime: at,
        ...(options.email ? { respondentEmail: options.email } : {}),
        answers: Object.fromEntries(
          Object.entries(answers).map(([qid, v]) => [
            qid,
            { questionId: qid, textAnswers: { answers: (Array.isArray(v) ? v : [v]).map((value) => ({ value })) } },
          ]),
        ),
      };
      form.responses.push(r);
      return { responseId: r.responseId, lastSubmittedTime: r.lastSubmittedTime };
    },
    revoke() {
      revoked = true;
      issued.clear();
    },
    rateLimit(n) {
      limited = n;
    },
    serverError(n, status = 503) {
      failing = n;
      failStatus = status;
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      });
    },
  };
}
