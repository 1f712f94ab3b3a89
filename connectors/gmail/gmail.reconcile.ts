/**
 * Coverage of an inbox: the provider's message ids against the journal. Reports the percentage, the missing
 * ids and the time windows they fall in, and (unless asked not to) takes the missing ones in.
 */
import type { Interaction } from '../../src/pipeline/interaction.ts';
import type { IntakeOutcome } from '../../src/pipeline/pipeline.ts';
import { GmailSource, gmailClient, mapGmailError, type GmailOAuth2Client } from './gmail.source.ts';

export interface ReconcileOptions {
  readonly mailbox: string;
  readonly auth: GmailOAuth2Client;
  readonly rootUrl?: string | undefined;
  /** Only messages after this day (Gmail's `after:` search). */
  readonly since: Date;
  readonly accounted: (sourceId: string) => Promise<'received' | 'excluded' | null>;
  /** Takes a missing message in; omitted for a report only. */
  readonly intake?: (ix: Interaction) => Promise<IntakeOutcome>;
  readonly onProgress?: (done: number, total: number) => void;
  /** Privacy mode: fetch headers only (scope gmail.metadata). */
  readonly metadataOnly?: boolean;
}

export interface CoverageReport {
  readonly mailbox: string;
  readonly since: string;
  readonly providerMessages: number;
  readonly journaled: number;
  readonly excludedByRule: number;
  readonly missing: readonly string[];
  /** Journaled or excluded on purpose, as a percentage of what the provider has (100 when it has nothing). */
  readonly coveragePercent: number;
  /** Contiguous runs of missing messages by time: [first, last] message time. */
  readonly gapWindows: readonly { readonly from: string; readonly to: string; readonly messages: number }[];
  /** Missing messages taken in by this run. */
  readonly ingested: number;
}

const NO_RETRY = { retry: false } as const;

export async function reconcileInbox(o: ReconcileOptions): Promise<CoverageReport> {
  const gmail = gmailClient({ auth: o.auth, ...(o.rootUrl ? { rootUrl: o.rootUrl } : {}) });
  const source = new GmailSource({
    mailbox: o.mailbox,
    auth: o.auth,
    metadataOnly: o.metadataOnly === true,
    ...(o.rootUrl ? { rootUrl: o.rootUrl } : {}),
  });
  const after = `${o.since.getUTCFullYear()}/${o.since.getUTCMonth() + 1}/${o.since.getUTCDate()}`;
  const ids: string[] = [];
  try {
    let pageToken: string | undefined;
    do {
      const page = await gmail.users.messages.list(
        { userId: 'me', q: `after:${after}`, maxResults: 500, ...(pageToken ? { pageToken } : {}) },
        NO_RETRY,
      );
      for (const m of page.data.messages ?? []) if (m.id) ids.push(m.id);
      pageToken = page.data.nextPageToken ?? undefined;
    } while (pageToken);
  } catch (err) {
    throw mapGmailError(err);
  }
  ids.reverse();
  let journaled = 0;
  let excluded = 0;
  let ingested = 0;
  const missing: string[] = [];
  // A gap window is a run of consecutive missing messages in the provider's order (oldest first).
  const windows: { from: string; to: string; messages: number }[] = [];
  let run: { from: string; to: string; messages: number } | null = null;
  for (const [i, id] of ids.entries()) {
    const state = await o.accounted(id);
    if (state === 'received') journaled++;
    else if (state === 'excluded') excluded++;
    if (state !== null) {
      run = null;
    } else {
      const ix = await source.fetch(id);
      if (ix) {
        missing.push(id);
        if (run) {
          run.to = ix.occurredAt;
          run.messages++;
        } else {
          run = { from: ix.occurredAt, to: ix.occurredAt, messages: 1 };
          windows.push(run);
        }
        if (o.intake) {
          await o.intake(ix);
          ingested++;
        }
      }
    }
    o.onProgress?.(i + 1, ids.length);
  }
  const total = ids.length;
  return {
    mailbox: o.mailbox,
    since: o.since.toISOString(),
    providerMessages: total,
    journaled,
    excludedByRule: excluded,
    missing,
    coveragePercent: total === 0 ? 100 : Math.round(((journaled + excluded) / total) * 10_000) / 100,
    gapWindows: windows,
    ingested,
  };
}
