/**
 * ActivitySource over the Gmail API (googleapis): fetches a message as raw RFC 5322 bytes and parses it with
 * our own MIME rules. Google errors are mapped to our error classes by status and reason; googleapis types do
 * not leave this folder.
 */
import type { google } from 'googleapis';
import { googleApis } from '../google/googleapis.ts';
import type { Auth, gmail_v1 } from 'googleapis';
import type { ActivitySource } from '../../src/pipeline/ports.ts';
import type { Interaction } from '../../src/pipeline/interaction.ts';
import { parseRawMessage } from './mime.ts';
import { GmailAuthError } from './errors/gmail-auth.error.ts';
import { GmailRateLimitError } from './errors/gmail-rate-limit.error.ts';
import { GmailUnavailableError } from './errors/gmail-unavailable.error.ts';

/**
 * The OAuth2 client `google.auth.OAuth2` builds. googleapis-common pins its own google-auth-library (10.5) next
 * to the top-level one (10.9) that `Auth.OAuth2Client` names; only the former is what `google.gmail()` accepts.
 */
export type GmailOAuth2Client = InstanceType<typeof google.auth.OAuth2>;

export interface GmailSourceOptions {
  /** The mailbox this source reads (decides direction). */
  readonly mailbox: string;
  /** An OAuth2 client holding the mailbox's refresh token (`new google.auth.OAuth2(...)` or `new Auth.OAuth2Client(...)`). */
  readonly auth: GmailOAuth2Client | Auth.OAuth2Client;
  /** Override the API root (tests point it at a local fake). Must end with '/'. */
  readonly rootUrl?: string;
  /** Privacy mode (scope gmail.metadata): headers only; no body, no attachments ever leave Gmail. */
  readonly metadataOnly?: boolean;
}

/** The headers a metadata-only fetch asks for: who, when, what about, and the thread. */
const METADATA_HEADERS = ['From', 'To', 'Cc', 'Bcc', 'Subject', 'Date', 'Message-ID', 'In-Reply-To', 'References'];

const RATE_LIMIT_REASONS = new Set(['rateLimitExceeded', 'userRateLimitExceeded']);

// Retries belong to the queue (backoff, rate-limit pauses); googleapis would otherwise retry 429/5xx itself.
const NO_RETRY = { retry: false } as const;

interface ErrorShape {
  status?: unknown;
  code?: unknown;
  response?: { status?: unknown; data?: unknown; headers?: unknown };
}

function retryAfterMs(headers: unknown): number | undefined {
  let value: string | null | undefined;
  // gaxios 7 gives a fetch `Headers` (possibly another realm's class, so no instanceof); older ones a plain object.
  if (typeof headers === 'object' && headers !== null && typeof (headers as { get?: unknown }).get === 'function') {
    value = (headers as { get(name: string): string | null }).get('retry-after');
  } else if (typeof headers === 'object' && headers !== null) {
    const v = (headers as Record<string, unknown>)['retry-after'];
    value = typeof v === 'string' ? v : undefined;
  }
  if (value === undefined || value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Maps an error thrown by googleapis / google-auth-library to ours; returns other errors unchanged. */
export function mapGmailError(err: unknown): unknown {
  if (!fromGoogleClient(err)) return err;
  const e = err as ErrorShape;
  const rawStatus = e.response?.status ?? e.status;
  const status = typeof rawStatus === 'number' ? rawStatus : undefined;
  const data = e.response?.data as { error?: unknown } | undefined;
  const oauthError = typeof data?.error === 'string' ? data.error : undefined;
  const apiError =
    typeof data?.error === 'object' && data.error !== null ? (data.error as { errors?: Array<{ reason?: unknown }> }) : undefined;
  const reason = apiError?.errors?.map((x) => x.reason).find((r): r is string => typeof r === 'string');

  if (oauthError === 'invalid_grant' || oauthError === 'invalid_client' || oauthError === 'unauthorized_client' || status === 401) {
    return new GmailAuthError(`Gmail authorization failed (${oauthError ?? reason ?? `HTTP ${status}`}): the mailbox needs consent again`, {
      cause: err,
      ...(status === undefined ? {} : { status }),
    });
  }
  if (status === 429 || (status === 403 && reason !== undefined && RATE_LIMIT_REASONS.has(reason))) {
    const after = retryAfterMs(e.response?.headers);
    return new GmailRateLimitError(`Gmail rate limit (${reason ?? `HTTP ${status}`})`, {
      cause: err,
      status,
      ...(after === undefined ? {} : { retryAfterMs: after }),
      ...(reason === undefined ? {} : { reason }),
    });
  }
  if (status === 403) {
    // Missing scope or a domain policy: only a new grant fixes it.
    return new GmailAuthError(`Gmail refused access (${reason ?? 'HTTP 403'})`, { cause: err, status });
  }
  if (status !== undefined && status >= 500) {
    return new GmailUnavailableError(`Gmail unavailable (HTTP ${status})`, { cause: err, status });
  }
  if (status === undefined && e.response === undefined && typeof e.code === 'string') {
    // No response at all (ECONNREFUSED, ETIMEDOUT...): transient.
    return new GmailUnavailableError(`Gmail unreachable (${e.code})`, { cause: err });
  }
  return err;
}

/**
 * googleapis and google-auth-library fail with a GaxiosError, which always carries the request's `config`.
 * Anything else met during a sync (the journal service refusing an append with its own status, the state store
 * failing to save) is not about Gmail and must not be reported as a Gmail outage.
 */
function fromGoogleClient(err: unknown): err is object {
  return typeof err === 'object' && err !== null && Object.prototype.hasOwnProperty.call(err, 'config');
}

function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as ErrorShape;
  const s = e.response?.status ?? e.status;
  return typeof s === 'number' ? s : undefined;
}

/** A googleapis Gmail client on our auth (tests point rootUrl at the fake). */
export function gmailClient(options: Pick<GmailSourceOptions, 'auth' | 'rootUrl'>): gmail_v1.Gmail {
  // Both OAuth2Client declarations are the same class at run time (duck-typed by googleapis-common).
  const auth = options.auth as GmailOAuth2Client;
  return googleApis().gmail({ version: 'v1', auth, ...(options.rootUrl === undefined ? {} : { rootUrl: options.rootUrl }) });
}

export class GmailSource implements ActivitySource {
  readonly name = 'gmail';
  private readonly mailbox: string;
  private readonly gmail: gmail_v1.Gmail;
  private readonly metadataOnly: boolean;

  constructor(options: GmailSourceOptions) {
    this.mailbox = options.mailbox;
    this.gmail = gmailClient(options);
    this.metadataOnly = options.metadataOnly === true;
  }

  /** The message as an Interaction, or null when Gmail no longer has it (404). Throws our Gmail*Error classes. */
  async fetch(messageId: string, _account?: string): Promise<Interaction | null> {
    let message: gmail_v1.Schema$Message;
    try {
      const res = this.metadataOnly
        ? await this.gmail.users.messages.get(
            { userId: 'me', id: messageId, format: 'metadata', metadataHeaders: METADATA_HEADERS },
            NO_RETRY,
          )
        : await this.gmail.users.messages.get({ userId: 'me', id: messageId, format: 'raw' }, NO_RETRY);
      message = res.data;
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw mapGmailError(err);
    }
    // In metadata mode the same parser reads a header-only message rebuilt from the headers Gmail returned.
    const wanted = new Set(METADATA_HEADERS.map((h) => h.toLowerCase()));
    const raw = this.metadataOnly
      ? Buffer.from(
          (message.payload?.headers ?? [])
            .filter((h) => typeof h.name === 'string' && wanted.has(h.name.toLowerCase()))
            .map((h) => `${h.name ?? ''}: ${(h.value ?? '').replace(/[\r\n]+/g, ' ')}`)
            .join('\r\n') + '\r\n\r\n',
          'utf8',
        )
      : Buffer.from(message.raw ?? '', 'base64url');
    const ix = await parseRawMessage(raw, {
      messageId: message.id ?? messageId,
      mailbox: this.mailbox,
      ...(message.threadId ? { threadId: message.threadId } : {}),
      ...(message.labelIds ? { labelIds: message.labelIds } : {}),
      internalDate: message.internalDate ?? null,
    });
    return this.metadataOnly ? { ...ix, metadata: { ...ix.metadata, privacyMode: 'metadata-only' } } : ix;
  }
}

/** One page of message ids (newest first), for backfills and tests. */
export async function listMessageIds(
  options: Pick<GmailSourceOptions, 'auth' | 'rootUrl'>,
  query: { q?: string; labelIds?: string[]; pageToken?: string; maxResults?: number },
): Promise<{ ids: Array<{ id: string; threadId: string }>; nextPageToken: string | undefined }> {
  const gmail = gmailClient(options);
  try {
    const res = await gmail.users.messages.list({ userId: 'me', ...query }, NO_RETRY);
    return {
      ids: (res.data.messages ?? []).flatMap((m) => (m.id ? [{ id: m.id, threadId: m.threadId ?? m.id }] : [])),
      nextPageToken: res.data.nextPageToken ?? undefined,
    };
  } catch (err) {
    throw mapGmailError(err);
  }
}
