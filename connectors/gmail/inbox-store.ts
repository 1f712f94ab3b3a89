/**
 * Connected inboxes: refresh tokens, sync cursors and health, in the encrypted state store (never in the journal
 * or in Redis), plus the one-time `state` values of consent flows in progress.
 */
import { randomBytes } from 'node:crypto';
import { EncryptedStore } from '../../src/state/encrypted-store.ts';
import type { MasterKey } from '../../src/journal/master-key.ts';
import type { InboxCursor, InboxStateStore } from './gmail.sync.ts';

/** Which labels an inbox takes in: `include` empty means every label; `exclude` wins over `include`. */
export interface LabelFilter {
  readonly include: readonly string[];
  readonly exclude: readonly string[];
}

export interface InboxRecord extends InboxCursor {
  readonly refreshToken: string;
  readonly scopes: readonly string[];
  readonly connectedAt: string;
  /** The inbox's own label filter; absent means the defaults (GMAIL_INCLUDE_LABELS / GMAIL_EXCLUDE_LABELS). */
  readonly labels?: LabelFilter;
}

interface Doc extends Record<string, unknown> {
  inboxes: Record<string, InboxRecord>;
  /** Consent flows in progress; `labels` was asked for with `connect gmail --include-labels/--exclude-labels`. */
  pending: Record<string, { createdAt: string; labels?: LabelFilter }>;
}

const STATE_TTL_MS = 15 * 60_000;

export class GmailInboxStore implements InboxStateStore {
  private readonly store: EncryptedStore<Doc>;
  /** `legacyKeyDir`: where a state file of an older version may have its own key (read once, then re-sealed). */
  constructor(
    path: string,
    masterKey: MasterKey,
    legacyKeyDir?: string,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.store = new EncryptedStore<Doc>(path, masterKey, () => ({ inboxes: {}, pending: {} }), legacyKeyDir);
  }

  list(): (InboxRecord & { mailbox: string })[] {
    return Object.entries(this.store.read().inboxes).map(([mailbox, r]) => ({ ...r, mailbox }));
  }

  record(mailbox: string): InboxRecord | null {
    return this.store.read().inboxes[mailbox] ?? null;
  }

  get(mailbox: string): InboxCursor {
    const r = this.record(mailbox);
    return r ? { historyId: r.historyId, status: r.status, lastSyncAt: r.lastSyncAt } : { historyId: null, status: 'ok', lastSyncAt: null };
  }

  save(mailbox: string, next: InboxCursor): Promise<void> {
    return this.store.update((d) => {
      const r = d.inboxes[mailbox];
      if (r) d.inboxes[mailbox] = { ...r, historyId: next.historyId, status: next.status, lastSyncAt: next.lastSyncAt };
    });
  }

  /** A (re)connected inbox keeps its cursor, so reconnecting after a revocation resumes where it stopped. */
  connect(mailbox: string, refreshToken: string, scopes: readonly string[]): Promise<void> {
    return this.store.update((d) => {
      const old = d.inboxes[mailbox];
      d.inboxes[mailbox] = {
        refreshToken,
        scopes: [...scopes],
        connectedAt: this.now().toISOString(),
        historyId: old?.historyId ?? null,
        status: 'ok',
        lastSyncAt: old?.lastSyncAt ?? null,
        ...(old?.labels ? { labels: old.labels } : {}),
      };
    });
  }

  /** Sets (or, with null, removes) an inbox's own label filter. Resolves false when the inbox is not connected. */
  async setLabels(mailbox: string, labels: LabelFilter | null): Promise<boolean> {
    let found = false;
    await this.store.update((d) => {
      const r = d.inboxes[mailbox];
      if (!r) return;
      found = true;
      const { labels: _old, ...rest } = r;
      d.inboxes[mailbox] = labels ? { ...rest, labels: { include: [...labels.include], exclude: [...labels.exclude] } } : rest;
    });
    return found;
  }

  /** Google may rotate a refresh token; the new one must be kept or the next start loses access. */
  rotate(mailbox: string, refreshToken: string): Promise<void> {
    return this.store.update((d) => {
      const r = d.inboxes[mailbox];
      if (r && r.refreshToken !== refreshToken) d.inboxes[mailbox] = { ...r, refreshToken };
    });
  }

  /** A single-use state for a consent flow; `labels` are applied to the inbox when the consent comes back. */
  async newConsentState(labels?: LabelFilter): Promise<string> {
    const state = randomBytes(24).toString('base64url');
    await this.store.update((d) => {
      const cutoff = this.now().getTime() - STATE_TTL_MS;
      for (const [k, v] of Object.entries(d.pending)) if (Date.parse(v.createdAt) < cutoff) delete d.pending[k];
      d.pending[state] = { createdAt: this.now().toISOString(), ...(labels ? { labels } : {}) };
    });
    return state;
  }

  /**
   * Takes a state this store issued in the last 15 minutes, once (a consent answer cannot be replayed): null when
   * unknown or expired, else what the flow asked for.
   */
  async takeConsentState(state: string): Promise<{ labels?: LabelFilter } | null> {
    let taken: { labels?: LabelFilter } | null = null;
    await this.store.update((d) => {
      const p = d.pending[state];
      if (p !== undefined && this.now().getTime() - Date.parse(p.createdAt) < STATE_TTL_MS) taken = p.labels ? { labels: p.labels } : {};
      delete d.pending[state];
    });
    return taken;
  }
}
