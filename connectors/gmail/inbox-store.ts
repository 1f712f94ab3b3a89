/**
 * Connected inboxes: refresh tokens, sync cursors and health, in the encrypted state store (never in the journal
 * or in Redis), plus the one-time `state` values of consent flows in progress.
 */
import { randomBytes } from 'node:crypto';
import { EncryptedStore } from '../../src/state/encrypted-store.ts';
import type { InboxCursor, InboxStateStore } from './gmail.sync.ts';

export interface InboxRecord extends InboxCursor {
  readonly refreshToken: string;
  readonly scopes: readonly string[];
  readonly connectedAt: string;
}

interface Doc extends Record<string, unknown> {
  inboxes: Record<string, InboxRecord>;
  pending: Record<string, { createdAt: string }>;
}

const STATE_TTL_MS = 15 * 60_000;

export class GmailInboxStore implements InboxStateStore {
  private readonly store: EncryptedStore<Doc>;
  constructor(path: string, keyDir: string, private readonly now: () => Date = () => new Date()) {
    this.store = new EncryptedStore<Doc>(path, keyDir, 'state-store.key', () => ({ inboxes: {}, pending: {} }));
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
      d.inboxes[mailbox] = { refreshToken, scopes: [...scopes], connectedAt: this.now().toISOString(), historyId: old?.historyId ?? null, status: 'ok', lastSyncAt: old?.lastSyncAt ?? null };
    });
  }

  /** Google may rotate a refresh token; the new one must be kept or the next start loses access. */
  rotate(mailbox: string, refreshToken: string): Promise<void> {
    return this.store.update((d) => {
      const r = d.inboxes[mailbox];
      if (r && r.refreshToken !== refreshToken) d.inboxes[mailbox] = { ...r, refreshToken };
    });
  }

  async newConsentState(): Promise<string> {
    const state = randomBytes(24).toString('base64url');
    await this.store.update((d) => {
      const cutoff = this.now().getTime() - STATE_TTL_MS;
      for (const [k, v] of Object.entries(d.pending)) if (Date.parse(v.createdAt) < cutoff) delete d.pending[k];
      d.pending[state] = { createdAt: this.now().toISOString() };
    });
    return state;
  }

  /** True once for a state this store issued in the last 15 minutes (a consent answer cannot be replayed). */
  async takeConsentState(state: string): Promise<boolean> {
    let ok = false;
    await this.store.update((d) => {
      const p = d.pending[state];
      ok = p !== undefined && this.now().getTime() - Date.parse(p.createdAt) < STATE_TTL_MS;
      delete d.pending[state];
    });
    return ok;
  }
}
