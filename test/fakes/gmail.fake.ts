/**
 * A fake Gmail API (v1) for the real `googleapis` client, on 127.0.0.1 and a free port: profile, messages
 * list/get (raw, metadata, full), history, labels, and an OAuth token endpoint, with scriptable failures
 * (revoked grant, 429 rate limits, 5xx, expired history).
 *
 * Pointing the real client at it:
 *
 *   const auth = new google.auth.OAuth2({
 *     clientId: fake.clientId,
 *     clientSecret: fake.clientSecret,
 *     // google-auth-library (>= 9.x) takes its endpoints as an option; refreshes POST here, form-encoded
 *     // (grant_type=refresh_token&refresh_token=...&client_id=...&client_secret=...).
 *     endpoints: { oauth2TokenUrl: fake.tokenUrl },
 *   });
 *   auth.setCredentials({ refresh_token: fake.refreshToken });
 *   const gmail = google.gmail({ version: 'v1', auth, rootUrl: fake.rootUrl });
 *
 * Every API call needs `Authorization: Bearer <token issued by POST /token>` (401 otherwise). After `revoke()`
 * issued tokens stop working and refreshes get `400 { error: 'invalid_grant' }`. Note that OAuth2Client only
 * refreshes on a 401 before its token's expiry when built with `forceRefreshOnFailure: true`; without it a revoked
 * grant surfaces as the API's 401 instead of the token endpoint's invalid_grant.
 *
 * Simplifications: `q` understands `after:YYYY/M/D`, `newer_than:Nd`, `from:`, `to:`, `subject:` and bare words (case-insensitive substring
 * matches on the header block / raw text); `format=full` returns the top-level headers and body size only,
 * not a decomposed part tree; every user id other than an email address means the fake's own mailbox.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The authorization code the fake's "consent screen" hands out (exchanged at POST /token). */
export const AUTHORIZATION_CODE = '4/fake-consent-code';

export interface FakeGmailRequest {
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  readonly query: Readonly<Record<string, string | string[]>>;
  readonly status: number;
}

export interface AddMessageInput {
  readonly raw: Buffer;
  readonly threadId?: string;
  readonly labelIds?: readonly string[];
  /** Epoch milliseconds; defaults to now. */
  readonly internalDate?: number | string;
}

interface StoredMessage {
  readonly id: string;
  readonly threadId: string;
  readonly labelIds: string[];
  readonly historyId: number;
  readonly internalDate: string;
  readonly raw: Buffer;
  readonly mailbox: string;
}

interface HistoryRecord {
  readonly id: number;
  readonly mailbox: string;
  readonly message: StoredMessage;
}

export interface FakeGmail {
  /** e.g. http://127.0.0.1:PORT/ (googleapis appends `gmail/v1/...`). */
  readonly rootUrl: string;
  /** For `new google.auth.OAuth2({ endpoints: { oauth2TokenUrl } })`. */
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** A refresh token the fake accepts until `revoke()`. */
  readonly refreshToken: string;
  /** The mailbox `userId: 'me'` means. */
  readonly mailbox: string;
  readonly requests: FakeGmailRequest[];
  /** A refresh token for another mailbox on this fake (`userId: 'me'` then means that mailbox). */
  grant(mailbox: string): string;
  /** Stores a message, bumps the history id and records a messagesAdded history entry. Returns the message id. */
  addMessage(mailbox: string, input: AddMessageInput): string;
  /** Adds n small generated messages to the fake's mailbox; returns their ids. */
  burst(n: number): string[];
  /** history.list with an older startHistoryId now answers 404 (as Gmail does when history has expired). */
  expireHistoryBefore(historyId: number | string): void;
  /** Revokes the grant: issued access tokens stop working, refreshes get invalid_grant. */
  revoke(): void;
  /** The next n API calls get 429 rateLimitExceeded (with `Retry-After` when given). */
  rateLimit(n: number, retryAfterSeconds?: number): void;
  /** The next n API calls get this 5xx status (default 500). */
  serverError(n: number, status?: number): void;
  close(): Promise<void>;
}

const SYSTEM_LABELS = ['INBOX', 'SENT', 'DRAFT', 'SPAM', 'TRASH', 'UNREAD', 'STARRED', 'IMPORTANT'];

function gmailError(
  res: ServerResponse,
  code: number,
  message: string,
  reason: string,
  status: string,
  headers: Record<string, string> = {},
): number {
  const body = JSON.stringify({ error: { code, message, errors: [{ message, domain: 'global', reason }], status } });
  res.writeHead(code, { 'content-type': 'application/json; charset=UTF-8', ...headers });
  res.end(body);
  return code;
}

function json(res: ServerResponse, body: unknown, code = 200): number {
  res.writeHead(code, { 'content-type': 'application/json; charset=UTF-8' });
  res.end(JSON.stringify(body));
  return code;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function headerBlock(raw: Buffer): string {
  const s = raw.toString('latin1');
  const m = /\r?\n\r?\n/.exec(s);
  return m === null ? s : s.slice(0, m.index);
}

function parseHeaders(raw: Buffer): Array<{ name: string; value: string }> {
  const out: Array<{ name: string; value: string }> = [];
  for (const line of headerBlock(raw).split(/\r?\n/)) {
    const last = out[out.length - 1];
    if (/^[ \t]/.test(line) && last !== undefined) last.value += ' ' + line.trim();
    else {
      const colon = line.indexOf(':');
      if (colon > 0) out.push({ name: line.slice(0, colon).trim(), value: line.slice(colon + 1).trim() });
    }
  }
  return out;
}

function matchesQuery(msg: StoredMessage, q: string): boolean {
  const headers = parseHeaders(msg.raw);
  const header = (name: string): string =>
    headers
      .filter((h) => h.name.toLowerCase() === name)
      .map((h) => h.value.toLowerCase())
      .join(' ');
  for (const term of q
    .toLowerCase()
    .split(/\s+/)
    .filter((t) => t !== '')) {
    const after = /^after:(\d{4})\/(\d{1,2})\/(\d{1,2})$/.exec(term);
    if (after !== null) {
      if (Number(msg.internalDate) < Date.UTC(Number(after[1]), Number(after[2]) - 1, Number(after[3]))) return false;
      continue;
    }
    const days = /^newer_than:(\d+)d$/.exec(term);
    if (days !== null) {
      if (Number(msg.internalDate) < Date.now() - Number(days[1]) * 86_400_000) return false;
      continue;
    }
    const m = /^(from|to|subject):(.+)$/.exec(term);
    if (m !== null) {
      if (!header(m[1] ?? '').includes(m[2] ?? '')) return false;
    } else if (!msg.raw.toString('latin1').toLowerCase().includes(term)) return false;
  }
  return true;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function all(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

export async function startFakeGmail(options: { mailbox?: string } = {}): Promise<FakeGmail> {
  const mailbox = (options.mailbox ?? 'me@example.com').toLowerCase();
  const clientId = 'fake-client-id.apps.googleusercontent.com';
  const clientSecret = 'fake-client-secret';
  const refreshToken = `1//fake-refresh-${randomBytes(8).toString('hex')}`;
  /** Access token → the mailbox it was issued for; refresh token → its mailbox. */
  const issued = new Map<string, string>();
  const grants = new Map<string, string>([[refreshToken, mailbox]]);
  const messages = new Map<string, StoredMessage>();
  const history: HistoryRecord[] = [];
  const requests: FakeGmailRequest[] = [];
  let historyId = 1000;
  let nextId = 1;
  let expiredBefore = 0;
  let revoked = false;
  let rateLimited = 0;
  let retryAfter: number | undefined;
  let failures = 0;
  let failureStatus = 500;

  const userMailbox = (userId: string, own: string): string => (userId.includes('@') ? userId.toLowerCase() : own);

  const addMessage = (box: string, input: AddMessageInput): string => {
    const id = (0x18c0000000000 + nextId++).toString(16);
    historyId++;
    const msg: StoredMessage = {
      id,
      threadId: input.threadId ?? id,
      labelIds: [...(input.labelIds ?? ['INBOX', 'UNREAD'])],
      historyId,
      internalDate: String(input.internalDate ?? Date.now()),
      raw: input.raw,
      mailbox: box.toLowerCase(),
    };
    messages.set(id, msg);
    history.push({ id: historyId, mailbox: msg.mailbox, message: msg });
    return id;
  };

  const messageResource = (msg: StoredMessage, format: string): Record<string, unknown> => {
    const base = {
      id: msg.id,
      threadId: msg.threadId,
      labelIds: msg.labelIds,
      historyId: String(msg.historyId),
      internalDate: msg.internalDate,
      sizeEstimate: msg.raw.byteLength,
      snippet: '',
    };
    if (format === 'raw') return { ...base, raw: msg.raw.toString('base64url') };
    if (format === 'minimal') return base;
    const headers = parseHeaders(msg.raw);
    const contentType = headers.find((h) => h.name.toLowerCase() === 'content-type')?.value ?? 'text/plain';
    return {
      ...base,
      payload: {
        partId: '',
        mimeType: (contentType.split(';')[0] ?? 'text/plain').trim().toLowerCase(),
        filename: '',
        headers,
        body: { size: msg.raw.byteLength - headerBlock(msg.raw).length },
      },
    };
  };

  const api = (res: ServerResponse, method: string, segments: string[], query: URLSearchParams, own: string): number => {
    // segments: ['gmail', 'v1', 'users', userId, ...rest]
    const userId = decodeURIComponent(segments[3] ?? '');
    const box = userMailbox(userId, own);
    const rest = segments.slice(4);
    const boxMessages = (): StoredMessage[] => [...messages.values()].filter((m) => m.mailbox === box);
    if (method !== 'GET') return gmailError(res, 405, 'Method not allowed', 'badRequest', 'INVALID_ARGUMENT');

    if (rest.length === 1 && rest[0] === 'profile') {
      return json(res, {
        emailAddress: box,
        historyId: String(historyId),
        messagesTotal: boxMessages().length,
        threadsTotal: new Set(boxMessages().map((m) => m.threadId)).size,
      });
    }
    if (rest.length === 1 && rest[0] === 'labels') {
      const custom = new Set(
        boxMessages()
          .flatMap((m) => m.labelIds)
          .filter((l) => !SYSTEM_LABELS.includes(l)),
      );
      return json(res, {
        labels: [
          ...SYSTEM_LABELS.map((l) => ({ id: l, name: l, type: 'system' })),
          ...[...custom].map((l) => ({ id: l, name: l, type: 'user' })),
        ],
      });
    }
    if (rest.length === 1 && rest[0] === 'messages') {
      const q = query.get('q') ?? '';
      const labelIds = query.getAll('labelIds');
      const maxResults = Math.min(Math.max(Number(query.get('maxResults') ?? 100) || 100, 1), 500);
      const offset = Number(query.get('pageToken') ?? 0) || 0;
      const matching = boxMessages()
        .filter((m) => labelIds.every((l) => m.labelIds.includes(l)) && matchesQuery(m, q))
        .sort((a, b) => b.historyId - a.historyId);
      const page = matching.slice(offset, offset + maxResults);
      const body: Record<string, unknown> = { resultSizeEstimate: matching.length };
      if (page.length > 0) body['messages'] = page.map((m) => ({ id: m.id, threadId: m.threadId }));
      if (offset + maxResults < matching.length) body['nextPageToken'] = String(offset + maxResults);
      return json(res, body);
    }
    if (rest.length === 2 && rest[0] === 'messages') {
      const msg = messages.get(decodeURIComponent(rest[1] ?? ''));
      if (msg === undefined || msg.mailbox !== box) return gmailError(res, 404, 'Requested entity was not found.', 'notFound', 'NOT_FOUND');
      const format = query.get('format') ?? 'full';
      if (!['raw', 'metadata', 'full', 'minimal'].includes(format))
        return gmailError(res, 400, `Invalid format: ${format}`, 'invalidArgument', 'INVALID_ARGUMENT');
      return json(res, messageResource(msg, format));
    }
    if (rest.length === 1 && rest[0] === 'history') {
      const start = Number(query.get('startHistoryId'));
      if (!Number.isInteger(start) || start <= 0)
        return gmailError(res, 400, 'Invalid startHistoryId', 'invalidArgument', 'INVALID_ARGUMENT');
      if (start < expiredBefore) return gmailError(res, 404, 'Requested entity was not found.', 'notFound', 'NOT_FOUND');
      const types = query.getAll('historyTypes');
      if (types.length > 0 && !types.includes('messageAdded')) return json(res, { historyId: String(historyId) });
      const maxResults = Math.min(Math.max(Number(query.get('maxResults') ?? 100) || 100, 1), 500);
      const offset = Number(query.get('pageToken') ?? 0) || 0;
      const records = history.filter((h) => h.mailbox === box && h.id > start);
      const page = records.slice(offset, offset + maxResults);
      const body: Record<string, unknown> = { historyId: String(historyId) };
      if (page.length > 0) {
        body['history'] = page.map((h) => {
          const message = { id: h.message.id, threadId: h.message.threadId, labelIds: h.message.labelIds };
          return { id: String(h.id), messages: [message], messagesAdded: [{ message }] };
        });
      }
      if (offset + maxResults < records.length) body['nextPageToken'] = String(offset + maxResults);
      return json(res, body);
    }
    return gmailError(res, 404, 'Not Found', 'notFound', 'NOT_FOUND');
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<number> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    if (url.pathname === '/token') {
      if (method !== 'POST') return json(res, { error: 'invalid_request' }, 405);
      const form = new URLSearchParams(await readBody(req));
      const grant = form.get('grant_type');
      if (grant !== 'refresh_token' && grant !== 'authorization_code') return json(res, { error: 'unsupported_grant_type' }, 400);
      if (form.get('client_id') !== clientId || form.get('client_secret') !== clientSecret) {
        return json(res, { error: 'invalid_client', error_description: 'The OAuth client was not found.' }, 401);
      }
      if (grant === 'authorization_code') {
        // The consent screen's answer: AUTHORIZATION_CODE (any other code is refused, as an expired one would be).
        if (form.get('code') !== AUTHORIZATION_CODE)
          return json(res, { error: 'invalid_grant', error_description: 'Malformed auth code.' }, 400);
        revoked = false;
        const accessToken = `ya29.fake-${randomBytes(12).toString('hex')}`;
        issued.set(accessToken, mailbox);
        return json(res, {
          access_token: accessToken,
          refresh_token: refreshToken,
          expires_in: 3599,
          token_type: 'Bearer',
          scope: 'https://www.googleapis.com/auth/gmail.readonly',
        });
      }
      const granted = grants.get(form.get('refresh_token') ?? '');
      if (revoked || granted === undefined) {
        return json(res, { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' }, 400);
      }
      const accessToken = `ya29.fake-${randomBytes(12).toString('hex')}`;
      issued.set(accessToken, granted);
      return json(res, {
        access_token: accessToken,
        expires_in: 3599,
        token_type: 'Bearer',
        scope: 'https://www.googleapis.com/auth/gmail.readonly',
      });
    }
    const segments = url.pathname.split('/').filter((s) => s !== '');
    if (segments[0] !== 'gmail' || segments[1] !== 'v1' || segments[2] !== 'users' || segments[3] === undefined) {
      return gmailError(res, 404, 'Not Found', 'notFound', 'NOT_FOUND');
    }
    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    const own = issued.get(token);
    if (own === undefined) {
      return gmailError(
        res,
        401,
        'Request had invalid authentication credentials. Expected OAuth 2 access token.',
        'authError',
        'UNAUTHENTICATED',
        {
          'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"',
        },
      );
    }
    if (rateLimited > 0) {
      rateLimited--;
      return gmailError(
        res,
        429,
        "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user'.",
        'rateLimitExceeded',
        'RESOURCE_EXHAUSTED',
        retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) },
      );
    }
    if (failures > 0) {
      failures--;
      return gmailError(
        res,
        failureStatus,
        'Internal error encountered.',
        'backendError',
        failureStatus === 503 ? 'UNAVAILABLE' : 'INTERNAL',
      );
    }
    return api(res, method, segments, url.searchParams, own);
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const query: Record<string, string | string[]> = {};
    for (const key of new Set(url.searchParams.keys())) {
      const values = url.searchParams.getAll(key);
      query[key] = values.length === 1 ? (first(values) ?? '') : all(values);
    }
    handle(req, res).then(
      (status) => requests.push({ method: req.method ?? 'GET', path: url.pathname, query, status }),
      (err: unknown) => {
        requests.push({ method: req.method ?? 'GET', path: url.pathname, query, status: 500 });
        if (!res.headersSent) gmailError(res, 500, err instanceof Error ? err.message : 'error', 'backendError', 'INTERNAL');
        else res.destroy();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const origin = `http://127.0.0.1:${port}`;

  return {
    rootUrl: `${origin}/`,
    tokenUrl: `${origin}/token`,
    clientId,
    clientSecret,
    refreshToken,
    mailbox,
    requests,
    addMessage,
    grant(box) {
      const token = `1//fake-refresh-${randomBytes(8).toString('hex')}`;
      grants.set(token, box.toLowerCase());
      return token;
    },
    burst(n) {
      const ids: string[] = [];
      for (let k = 0; k < n; k++) {
        const raw = Buffer.from(
          `From: Sender ${k} <sender${k}@customer.test>\r\nTo: ${mailbox}\r\nSubject: Burst ${k}\r\n` +
            `Message-ID: <burst-${k}-${randomBytes(4).toString('hex')}@customer.test>\r\nDate: ${new Date().toUTCString()}\r\n\r\nBody ${k}\r\n`,
        );
        ids.push(addMessage(mailbox, { raw }));
      }
      return ids;
    },
    expireHistoryBefore(id) {
      expiredBefore = Number(id);
    },
    revoke() {
      revoked = true;
      issued.clear();
    },
    rateLimit(n, retryAfterSeconds) {
      rateLimited = n;
      retryAfter = retryAfterSeconds;
    },
    serverError(n, status = 500) {
      failures = n;
      failureStatus = status;
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      });
    },
  };
}
