/**
 * The Google Cloud Storage archive store, through googleapis (`storage` v1, JSON API).
 *
 * Write-once: every insert carries `ifGenerationMatch=0`, so GCS itself refuses to replace an existing object
 * (412); the caller then reads the object back and verifies it, which is how a re-run after a crash between
 * upload and commit carries on without a second object. Nothing here ever deletes or replaces an object, so a
 * bucket under a (locked) retention policy is never asked to do what it would refuse.
 *
 * Retention: the bucket's retention policy is read from the bucket (`buckets.get`). Before an upload, the
 * latest expiry among the segment's entries is compared with what the policy protects (now + period); a
 * bucket that cannot protect the object that long (or has no policy) is refused (`requireRetention`, the
 * default), or accepted when the operator turned that off (the summary still prints the bucket's policy). Entries kept forever
 * (class `permanent`) cannot be covered by any finite period; they are not counted (see the README).
 *
 * 429 and 5xx (and network errors) are retried with exponential backoff and jitter; googleapis' own retry is off
 * so the count is ours. Errors never carry the googleapis error as cause: its request config holds the
 * Authorization header.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Readable } from 'node:stream';
import { googleApis } from '../google/googleapis.ts';
import type { storage_v1 } from 'googleapis';
import { type ArchiveStore, type PutOptions, type PutResult, type StoreRetention } from '../../src/journal/archive-store.ts';
import { ArchiveStoreError } from '../../src/journal/errors/archive-store.error.ts';
import { PreconditionFailed } from './errors/precondition-failed.error.ts';
import { NotFound } from './errors/not-found.error.ts';

/** How the store authenticates: a fixed access token (tests, short jobs), a service-account key file, or ADC. */
export type GcsCredentials = { readonly accessToken: string } | { readonly keyFile: string } | null;

export interface GcsArchiveStoreOptions {
  readonly bucket: string;
  /** Object name prefix ('' or ending in '/'). */
  readonly prefix: string;
  readonly credentials: GcsCredentials;
  /** The API root (default https://storage.googleapis.com/); tests point it at the fake. */
  readonly rootUrl?: string | undefined;
  /** Refuse an object the bucket's retention policy cannot protect as long as its entries need (default true). */
  readonly requireRetention?: boolean;
  /** Tries per call for 429 / 5xx / network errors (default 5). */
  readonly attempts?: number;
  /** First backoff (default 500 ms), doubled per try, with jitter, at most 30 s. */
  readonly backoffMs?: number;
  readonly now?: () => number;
}

const SCOPE = 'https://www.googleapis.com/auth/devstorage.read_write';
const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;
const DAY_S = 86_400;
const TRANSIENT_NETWORK = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ENETUNREACH',
  'EHOSTUNREACH',
]);

interface GoogleFailure {
  readonly status: number | null;
  readonly reason: string | null;
  readonly network: string | null;
}

function failureOf(err: unknown): GoogleFailure {
  if (typeof err !== 'object' || err === null) return { status: null, reason: null, network: null };
  const e = err as { status?: unknown; code?: unknown; response?: { status?: unknown; data?: unknown } };
  const raw = e.response?.status ?? e.status ?? e.code;
  const status = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d{3}$/.test(raw) ? Number(raw) : null;
  let reason: string | null = null;
  const data = e.response?.data;
  if (typeof data === 'object' && data !== null) {
    const first = (data as { error?: { errors?: { reason?: unknown }[] } }).error?.errors?.[0]?.reason;
    if (typeof first === 'string') reason = first;
  }
  const network = typeof e.code === 'string' && TRANSIENT_NETWORK.has(e.code) ? e.code : null;
  return { status, reason, network };
}

const retryable = (f: GoogleFailure): boolean =>
  f.status === 429 || f.status === 408 || (f.status !== null && f.status >= 500) || (f.status === null && f.network !== null);

function humanPeriod(seconds: number): string {
  const days = seconds / DAY_S;
  return Number.isInteger(days) ? `${days} day${days === 1 ? '' : 's'}` : `${seconds} s`;
}

export class GcsArchiveStore implements ArchiveStore {
  readonly kind = 'gcs' as const;
  readonly bucket: string;
  readonly prefix: string;
  private readonly api: storage_v1.Storage;
  /** Per-call options: googleapis applies a client-wide rootUrl to API URLs but not to upload (media) URLs. */
  private readonly callOptions: { readonly retry: false; readonly rootUrl?: string };
  private readonly requireRetention: boolean;
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly now: () => number;
  private lastRetention: StoreRetention | null = null;

  constructor(options: GcsArchiveStoreOptions) {
    if (!BUCKET_NAME.test(options.bucket)) throw new ArchiveStoreError(`invalid bucket name ${JSON.stringify(options.bucket)}`);
    this.bucket = options.bucket;
    this.prefix = options.prefix;
    this.requireRetention = options.requireRetention ?? true;
    this.attempts = Math.max(1, options.attempts ?? 5);
    this.backoffMs = options.backoffMs ?? 500;
    this.now = options.now ?? Date.now;
    const c = options.credentials;
    let auth;
    if (c && 'accessToken' in c) {
      const client = new (googleApis().auth.OAuth2)();
      client.setCredentials({ access_token: c.accessToken });
      auth = client;
    } else {
      if (c && !existsSync(c.keyFile))
        throw new ArchiveStoreError(`the service-account key file ${c.keyFile} (GOOGLE_APPLICATION_CREDENTIALS) does not exist`, {
          reason: 'denied',
        });
      auth = new (googleApis().auth.GoogleAuth)({ ...(c ? { keyFile: c.keyFile } : {}), scopes: [SCOPE] });
    }
    this.api = googleApis().storage({ version: 'v1', auth, ...(options.rootUrl ? { rootUrl: options.rootUrl } : {}) });
    this.callOptions = { retry: false, ...(options.rootUrl ? { rootUrl: options.rootUrl } : {}) };
  }

  get description(): string {
    return `Google Cloud Storage gs://${this.bucket}/${this.prefix}`;
  }

  owns(location: string): boolean {
    return location.startsWith(`gs://${this.bucket}/`);
  }

  async retention(): Promise<StoreRetention> {
    const res = await this.call('read the bucket', () =>
      this.api.buckets.get({ bucket: this.bucket, fields: 'name,retentionPolicy' }, this.callOptions),
    );
    const p = res.data.retentionPolicy;
    const period = p?.retentionPeriod === undefined || p.retentionPeriod === null ? null : Number(p.retentionPeriod);
    const locked = p?.isLocked === true;
    const r: StoreRetention =
      period === null || !Number.isFinite(period)
        ? {
            periodSeconds: null,
            locked: false,
            description: `bucket ${this.bucket} has no retention policy: objects are protected by IAM permissions only`,
          }
        : {
            periodSeconds: period,
            locked,
            description: `bucket ${this.bucket} retention policy ${humanPeriod(period)}, ${locked ? 'locked' : 'not locked (an admin can still shorten or remove it)'}`,
          };
    this.lastRetention = r;
    return r;
  }

  async put(objectName: string, data: Buffer, options: PutOptions = {}): Promise<PutResult> {
    const name = this.objectName(objectName);
    const location = `gs://${this.bucket}/${name}`;
    if (!this.lastRetention) await this.retention();
    const refusal = this.refusal(options);
    if (refusal !== null) throw new ArchiveStoreError(`${location} was not written: ${refusal}`, { reason: 'retention' });
    const md5 = createHash('md5').update(data).digest('base64');
    const sha256 = createHash('sha256').update(data).digest('hex');
    try {
      const res = await this.call(`write ${location}`, () =>
        this.api.objects.insert(
          {
            bucket: this.bucket,
            name,
            ifGenerationMatch: '0',
            requestBody: { name, contentType: 'application/gzip', metadata: { sha256 } },
            // A fresh stream per try: a stream is consumed by the first.
            media: { mimeType: 'application/gzip', body: Readable.from([data]) },
          },
          this.callOptions,
        ),
      );
      if (res.data.md5Hash !== md5) {
        throw new ArchiveStoreError(
          `${location}: GCS reports md5 ${res.data.md5Hash ?? '(none)'} for the object written, not ${md5}; the upload did not arrive intact (the object cannot be replaced; delete it once its retention allows, then re-run)`,
          { reason: 'invalid' },
        );
      }
      return { location, alreadyPresent: false };
    } catch (err) {
      // 412: the name exists (an earlier run, or an earlier try whose response was lost). The caller reads it back.
      if (err instanceof PreconditionFailed) return { location, alreadyPresent: true };
      throw err;
    }
  }

  /** Why put would refuse an object that must be kept until `keepUntil` (by the retention last read), or null. */
  refusal(options: PutOptions): string | null {
    const keepUntil = options.keepUntil ?? null;
    if (keepUntil === null || !this.requireRetention) return null;
    const retention = this.lastRetention;
    if (!retention) return `the retention policy of bucket ${this.bucket} was not read yet`;
    const protectedUntil = this.now() + (retention.periodSeconds ?? 0) * 1000;
    if (protectedUntil >= keepUntil) return null;
    const needDays = Math.ceil((keepUntil - this.now()) / (DAY_S * 1000));
    return (
      `its entries must be kept until ${new Date(keepUntil).toISOString()} (${needDays} more days), but ${retention.description}. ` +
      'Set a retention policy on the bucket at least that long, or GCS_REQUIRE_RETENTION=false to archive without that protection'
    );
  }

  async get(location: string): Promise<Buffer | null> {
    if (!this.owns(location)) throw new ArchiveStoreError(`${location} is not in bucket ${this.bucket}`);
    const object = location.slice(`gs://${this.bucket}/`.length);
    try {
      const res = await this.call(`read ${location}`, () =>
        this.api.objects.get({ bucket: this.bucket, object, alt: 'media' }, { ...this.callOptions, responseType: 'arraybuffer' }),
      );
      return Buffer.from(res.data as unknown as ArrayBuffer);
    } catch (err) {
      if (err instanceof NotFound) return null;
      throw err;
    }
  }

  private objectName(objectName: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9._/-]{0,511}$/.test(objectName) || objectName.split('/').includes('..'))
      throw new ArchiveStoreError(`invalid object name ${JSON.stringify(objectName)}`);
    return `${this.prefix}${objectName}`;
  }

  /** Runs one API call with retries; maps failures to ArchiveStoreError (412 and 404 to marker errors). */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let last: GoogleFailure = { status: null, reason: null, network: null };
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const f = failureOf(err);
        if (f.status === 412) throw new PreconditionFailed();
        if (f.status === 404) throw new NotFound(`GCS could not ${what}: not found (404); does bucket ${this.bucket} exist?`);
        if (f.status === 401)
          throw new ArchiveStoreError(
            `GCS did not accept the credentials to ${what} (401); check GCS_ACCESS_TOKEN or the service-account key file (GOOGLE_APPLICATION_CREDENTIALS)`,
            { reason: 'denied' },
          );
        if (f.status === 403) {
          throw new ArchiveStoreError(
            `GCS refused to ${what} (403${f.reason ? ` ${f.reason}` : ''}): the service account needs storage.buckets.get, storage.objects.create and storage.objects.get on bucket ${this.bucket}`,
            { reason: 'denied' },
          );
        }
        if (!retryable(f))
          throw new ArchiveStoreError(
            `GCS could not ${what}: ${f.status !== null ? `HTTP ${f.status}${f.reason ? ` ${f.reason}` : ''}` : (err as Error).name}`,
            { reason: 'invalid' },
          );
        last = f;
        if (attempt < this.attempts) {
          const delay = Math.min(30_000, this.backoffMs * 2 ** (attempt - 1));
          await new Promise((r) => setTimeout(r, delay / 2 + Math.random() * (delay / 2)));
        }
      }
    }
    throw new ArchiveStoreError(
      `GCS could not ${what} after ${this.attempts} tries (last: ${last.status !== null ? `HTTP ${last.status}` : (last.network ?? 'network error')})`,
      { reason: 'unavailable' },
    );
  }
}
