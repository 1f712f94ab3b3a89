/**
 * State of polled forms (HubSpot form guids, Google Forms form ids): the cursor, health, and for Google Forms
 * the refresh token of the account that consented, plus the one-time `state` values of consent flows in
 * progress. Kept in the encrypted state store, never in the journal or Redis.
 */
import { randomBytes } from 'node:crypto';
import { EncryptedStore } from '../../src/state/encrypted-store.ts';
import type { MasterKey } from '../../src/journal/master-key.ts';

/** What is kept per polled form. `key` is `<connector>/<form id>`. */
export interface FormPollCursor {
  /** The provider's submission time of the newest submission committed (HubSpot: epoch ms; Google: RFC 3339). */
  readonly cursor: string | null;
  readonly status: 'ok' | 'needs_consent';
  readonly lastPollAt: string | null;
  /** SHA-256 prefix of the credential that was refused: a new one lifts needs_consent without a manual step. */
  readonly refusedCredential?: string;
}

export interface FormPollState {
  get(key: string): FormPollCursor;
  save(key: string, next: FormPollCursor): Promise<void>;
}

export interface FormGrant {
  readonly refreshToken: string;
  readonly scopes: readonly string[];
  readonly connectedAt: string;
}

interface Doc extends Record<string, unknown> {
  forms: Record<string, FormPollCursor>;
  grants: Record<string, FormGrant>;
  pending: Record<string, { createdAt: string; formId: string }>;
}

const STATE_TTL_MS = 15 * 60_000;
const EMPTY: FormPollCursor = { cursor: null, status: 'ok', lastPollAt: null };

export class FormPollStore implements FormPollState {
  private readonly store: EncryptedStore<Doc>;
  /** `legacyKeyDir`: where a state file of an older version may have its own key (read once, then re-sealed). */
  constructor(
    path: string,
    masterKey: MasterKey,
    legacyKeyDir?: string,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.store = new EncryptedStore<Doc>(path, masterKey, () => ({ forms: {}, grants: {}, pending: {} }), legacyKeyDir);
  }

  get(key: string): FormPollCursor {
    return this.store.read().forms[key] ?? EMPTY;
  }

  save(key: string, next: FormPollCursor): Promise<void> {
    return this.store.update((d) => {
      d.forms[key] = { ...next };
    });
  }

  list(): (FormPollCursor & { key: string })[] {
    return Object.entries(this.store.read().forms).map(([key, c]) => ({ ...c, key }));
  }

  grant(formId: string): FormGrant | null {
    return this.store.read().grants[formId] ?? null;
  }

  grantedForms(): string[] {
    return Object.keys(this.store.read().grants);
  }

  /** A new grant for a Google form; the form keeps its cursor, and a needs_consent mark is lifted. */
  connect(formId: string, key: string, refreshToken: string, scopes: readonly string[]): Promise<void> {
    return this.store.update((d) => {
      d.grants[formId] = { refreshToken, scopes: [...scopes], connectedAt: this.now().toISOString() };
      const c = d.forms[key];
      if (c) d.forms[key] = { cursor: c.cursor, status: 'ok', lastPollAt: c.lastPollAt };
    });
  }

  rotate(formId: string, refreshToken: string): Promise<void> {
    return this.store.update((d) => {
      const g = d.grants[formId];
      if (g && g.refreshToken !== refreshToken) d.grants[formId] = { ...g, refreshToken };
    });
  }

  async newConsentState(formId: string): Promise<string> {
    const state = randomBytes(24).toString('base64url');
    await this.store.update((d) => {
      const cutoff = this.now().getTime() - STATE_TTL_MS;
      for (const [k, v] of Object.entries(d.pending)) if (Date.parse(v.createdAt) < cutoff) delete d.pending[k];
      d.pending[state] = { createdAt: this.now().toISOString(), formId };
    });
    return state;
  }

  /** The form a state was issued for, once, within 15 minutes; null otherwise. */
  async takeConsentState(state: string): Promise<string | null> {
    let formId: string | null = null;
    await this.store.update((d) => {
      const p = d.pending[state];
      if (p !== undefined && this.now().getTime() - Date.parse(p.createdAt) < STATE_TTL_MS) formId = p.formId;
      delete d.pending[state];
    });
    return formId;
  }
}
