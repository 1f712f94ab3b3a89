/**
 * Polling a form's submissions, the same way for every provider (HubSpot, Google Forms): list what is at or
 * after the stored cursor, take it in oldest first through the pipeline's intake (journal commit first), and
 * advance the cursor only past submissions whose entries are committed, each advance journaled as
 * connector.cursor_advanced (from → to). Submissions at the cursor's own time are listed again and recognised
 * as duplicates by the intake (one entry per stable submission id), so nothing at a boundary is skipped.
 * A refused credential marks the form as needing consent and journals connector.health with the window affected.
 */
import { createHash } from 'node:crypto';
import type { JournalClient } from '../../src/journal/journal-client.ts';
import type { IntakeOutcome } from '../../src/pipeline/pipeline.ts';
import type { Interaction } from '../../src/pipeline/interaction.ts';
import { FormPollAuthError } from './errors/form-poll-auth.error.ts';
import { FormPollTransientError } from './errors/form-poll-transient.error.ts';
import type { FormPollState } from './form-poll-store.ts';

/** One submission as a provider adapter hands it over. */
export interface PolledSubmission {
  /** The provider's own time, as the cursor stores it (and as the provider filters on it). */
  readonly at: string;
  /** The same time in epoch ms, for ordering. */
  readonly atMs: number;
  readonly interaction: Interaction;
}

/** A provider adapter: every submission at or after `cursor` (or, without one, since `floorMs`), in any order. */
export interface FormFeed {
  list(cursor: string | null, floorMs: number): Promise<PolledSubmission[]>;
}

export interface FormPollOptions {
  readonly connector: 'hubspot-forms' | 'google-forms';
  /** The form's id at the provider (HubSpot form guid, Google form id). */
  readonly formId: string;
  readonly feed: FormFeed;
  readonly journal: JournalClient;
  readonly intake: (ix: Interaction) => Promise<IntakeOutcome>;
  /**
   * Whether a submission is already on the record (journaled or excluded). Submissions at the cursor's time are
   * listed again on every poll; skipping the known ones keeps a later change of how a submission reads (a
   * renamed form, an edited Google response) from being an idempotency conflict.
   */
  readonly accounted?: (source: string, sourceId: string) => Promise<'received' | 'excluded' | null>;
  readonly state: FormPollState;
  /** A fingerprint source for the credential in use (never stored: only a hash prefix is). */
  readonly credential: string;
  /** Days of submissions the first poll takes in (default 30). */
  readonly backfillDays?: number;
  /** The cursor advances after this many committed submissions, and at the end (default 50). */
  readonly advanceEvery?: number;
  readonly now?: () => Date;
}

export interface FormPollReport {
  readonly mode: 'backfill' | 'incremental' | 'needs-consent';
  readonly seen: number;
  readonly accepted: number;
  readonly duplicates: number;
  readonly excluded: number;
  readonly cursor: string | null;
}

export const stateKey = (connector: string, formId: string): string => `${connector}/${formId}`;

export function credentialHash(credential: string): string {
  return createHash('sha256').update(credential).digest('hex').slice(0, 16);
}

export async function pollForm(o: FormPollOptions): Promise<FormPollReport> {
  const now = o.now ?? (() => new Date());
  const key = stateKey(o.connector, o.formId);
  const before = o.state.get(key);
  const credential = credentialHash(o.credential);
  // A form marked as refused stays parked until its credential changes (a new token or a new consent).
  if (before.status === 'needs_consent' && (before.refusedCredential === undefined || before.refusedCredential === credential)) {
    return { mode: 'needs-consent', seen: 0, accepted: 0, duplicates: 0, excluded: 0, cursor: before.cursor };
  }
  const counts = { seen: 0, accepted: 0, duplicates: 0, excluded: 0 };
  const correlationId = `form/${o.connector}/${o.formId}`;
  let cursor = before.cursor;

  const advance = async (to: string): Promise<void> => {
    if (cursor === to) return;
    // Journal first: if the state write is lost, the next poll starts from the older cursor and adds nothing new.
    await o.journal.append({
      kind: 'connector.cursor_advanced',
      source: o.connector,
      actor: `connector:${o.connector}`,
      correlationId,
      idempotencyKey: `cursor/${o.connector}/${o.formId}/${cursor ?? 'start'}/${to}`,
      payload: { connector: o.connector, account: o.formId, from: cursor, to },
    });
    await o.state.save(key, { cursor: to, status: 'ok', lastPollAt: now().toISOString() });
    cursor = to;
  };

  try {
    const floorMs = now().getTime() - (o.backfillDays ?? 30) * 86_400_000;
    const items = await o.feed.list(before.cursor, floorMs);
    // Oldest first, so the cursor can follow the commits; equal times keep a stable order by id.
    items.sort(
      (a, b) =>
        a.atMs - b.atMs || (a.interaction.sourceId < b.interaction.sourceId ? -1 : a.interaction.sourceId > b.interaction.sourceId ? 1 : 0),
    );
    const every = Math.max(1, o.advanceEvery ?? 50);
    let sinceAdvance = 0;
    for (const item of items) {
      counts.seen++;
      if (o.accounted && (await o.accounted(item.interaction.source, item.interaction.sourceId)) !== null) counts.duplicates++;
      else {
        const r = await o.intake(item.interaction);
        if (r.status === 'excluded') counts.excluded++;
        else if (r.duplicate) counts.duplicates++;
        else counts.accepted++;
      }
      if (++sinceAdvance >= every) {
        await advance(item.at);
        sinceAdvance = 0;
      }
    }
    const last = items.at(-1);
    if (last) await advance(last.at);
    else if (before.status !== 'ok' || before.refusedCredential !== undefined)
      await o.state.save(key, { cursor, status: 'ok', lastPollAt: now().toISOString() });
    return { mode: before.cursor === null ? 'backfill' : 'incremental', ...counts, cursor };
  } catch (err) {
    if (!(err instanceof FormPollAuthError)) throw err;
    const latest = o.state.get(key);
    await o.state.save(key, { ...latest, cursor, status: 'needs_consent', refusedCredential: credential });
    await o.journal.append({
      kind: 'connector.health',
      source: o.connector,
      actor: `connector:${o.connector}`,
      correlationId,
      idempotencyKey: `health/${o.connector}/${o.formId}/needs-consent/${cursor ?? 'start'}/${credential}`,
      payload: {
        connector: o.connector,
        account: o.formId,
        status: 'needs_consent',
        reason: `${o.connector === 'hubspot-forms' ? 'HubSpot refused the access token (HUBSPOT_ACCESS_TOKEN): set a valid one' : 'Google refused the grant (revoked or expired): run `activity-journal connect google-forms <formId>` again'}; submissions from the window below are not yet journaled`,
        ...(latest.lastPollAt ? { windowStart: latest.lastPollAt } : {}),
        windowEnd: now().toISOString(),
      },
    });
    return { mode: 'needs-consent', ...counts, cursor };
  }
}

/**
 * Runs one provider call, backing off on 429 / 5xx / network failures (Retry-After honoured, capped) up to
 * `attempts` times; a refused credential or anything else is not retried here.
 */
export async function withBackoff<T>(
  call: () => Promise<T>,
  opts: { attempts?: number; baseMs?: number; maxMs?: number; sleep?: (ms: number) => Promise<void> } = {},
): Promise<T> {
  const attempts = opts.attempts ?? 4;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let i = 1; ; i++) {
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof FormPollTransientError) || i >= attempts) throw err;
      const backoff = Math.min(opts.maxMs ?? 30_000, err.retryAfterMs ?? (opts.baseMs ?? 500) * 2 ** (i - 1));
      await sleep(backoff);
    }
  }
}

/** Maps an HTTP status to our error types (null when it is not an error we classify). */
export function errorForStatus(provider: string, status: number, retryAfter: string | null | undefined, cause?: unknown): Error | null {
  if (status === 401 || status === 403)
    return new FormPollAuthError(`${provider} refused the credential (HTTP ${status})`, { status, cause });
  if (status === 429 || status >= 500) {
    const after = retryAfterMs(retryAfter);
    return new FormPollTransientError(`${provider} ${status === 429 ? 'rate limit' : 'unavailable'} (HTTP ${status})`, {
      status,
      cause,
      ...(after === undefined ? {} : { retryAfterMs: after }),
    });
  }
  return null;
}

function retryAfterMs(v: string | null | undefined): number | undefined {
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}
