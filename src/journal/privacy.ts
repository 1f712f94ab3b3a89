/**
 * Crypto-shredding of personal data in the journal: which payload fields are personal, under whose keys they
 * are sealed, how readers open them (one function: `openPayload`), how a subject is forgotten, and how a lost
 * or rolled-back key store is detected.
 *
 * Sealed on append (by the writer, before hashing): the fields RULES lists per kind, under the subjects
 * `Privacy.seal` finds (it never leaves a personal field in clear).
 * Ids, kinds, times, categories in rule decisions, hashes and the rest stay in clear: they are what makes the
 * record checkable without anyone's personal data.
 */
import type Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { JournalEntry } from './entry.ts';
import type { EntryKind, PayloadOf } from './kinds.ts';
import { SealedPayloadError } from './errors/sealed-payload.error.ts';
import { asEnvelope, openFields, sealFields, SEALED, type KeyRef } from './sealed-payload.ts';
import { isJsonObject } from './json-object.ts';
import { SubjectKeyStore, type KeyRecord, type KeyStoreOptions } from './key-store.ts';
import { KeyStoreError } from './errors/key-store.error.ts';
import { MasterKeyError } from './errors/master-key.error.ts';
import { loadMasterKey, type MasterKeySource } from './master-key.ts';

interface SealRule {
  /** The payload fields that may hold personal data (free text included): never stored in clear. */
  readonly fields: readonly string[];
  /**
   * Entries whose subjects this one inherits, most specific first (the causation id is always tried after
   * them). interaction.received has none: its subjects are its participants.
   */
  readonly links?: (payload: Record<string, unknown>) => readonly unknown[];
  /** Entries whose subjects are added to those (a call activity's write holds its transcripts' summaries too). */
  readonly also?: (payload: Record<string, unknown>) => readonly unknown[];
}

/** The interactions a CRM write names as held by its activity besides its own entry (`members`). */
const membersOf = (p: Record<string, unknown>): unknown[] =>
  Array.isArray(p.members) ? (p.members as { entryId?: unknown }[]).map((m) => m?.entryId) : [];

/**
 * Which fields are personal, kind by kind. Free text that may quote a person (reasons, error messages a CRM or
 * a model sent back) is sealed as well as the fields that name or describe them: a field that can carry a person
 * is sealed, whatever it usually carries. What stays in clear is structure: ids, enums, counts, hashes, paths.
 */
const NONE = { fields: [] } as const satisfies SealRule;

/**
 * Every kind is listed, the ones without personal fields with none: a kind added to the catalogue (kinds.ts)
 * without a decision here does not compile, nor does a field its schema does not have, and one unknown at run
 * time is refused (`ruleOf`). The field lists are literal types: readers' payload types (entry-payload.ts) say
 * which fields a sealed, erased or unavailable payload lacks.
 */
const RULES = {
  'interaction.received': { fields: ['participants', 'subject', 'text', 'attachments', 'metadata'] },
  'ai.decision': { fields: ['output', 'error'], links: (p) => [p.inputEntryId, p.replacesEntryId, p.reusedEntryId] },
  'rule.decision': { fields: ['reason'], links: (p) => [p.inputEntryId] },
  'crm.write': { fields: ['properties', 'associations', 'removedAssociations'], links: (p) => [p.entryId], also: membersOf },
  'crm.write_failed': {
    fields: ['properties', 'associations', 'removedAssociations', 'error'],
    links: (p) => [p.entryId],
    also: membersOf,
  },
  'state.changed': { fields: ['from', 'to'] },
  'human.override': { fields: ['reason'], links: (p) => [p.supersedes] },
  'job.failed': { fields: ['error'], links: (p) => [p.entryId] },
  // Recipients' addresses, the message and the provider's words are sealed under the interaction's subjects.
  'notification.sent': { fields: ['to', 'providerReply', 'rejected'], links: (p) => [p.entryId] },
  'notification.attempted': { fields: ['to', 'subject', 'text'], links: (p) => [p.entryId] },
  'notification.failed': { fields: ['error'], links: (p) => [p.entryId] },
  // Ids, enums, counts, hashes, class names and ids of configured users only (their schemas say so).
  'audit.login': NONE,
  'audit.exported': NONE,
  'connector.cursor_advanced': NONE,
  'connector.health': NONE,
  'inbox.connected': NONE,
  'webhook.rejected': NONE,
  'privacy.erased': NONE,
  'retention.assigned': NONE,
  'segment.sealed': NONE,
  'segment.archived': NONE,
  'segment.pruned': NONE,
  'retention.policy': NONE,
  'journal.created': NONE,
  checkpoint: NONE,
  'checkpoint.anchored': NONE,
} as const satisfies { readonly [K in EntryKind]: SealRule & { readonly fields: readonly (keyof PayloadOf<K> & string)[] } };

/** The payload fields of kind K that privacy seals (never stored in clear). */
export type PersonalField<K extends EntryKind> = (typeof RULES)[K]['fields'][number];

/**
 * Fields kept in clear on purpose although they can hold an address: the connected account (the company's own
 * mailbox that sales ops connected, e.g. sales@northwind.example), which names the inbox a cursor, a health
 * report or a label change is about, as it does in those entries' correlation ids (`inbox/gmail/<mailbox>`).
 * It is the operator's configuration, not a customer's data; README's Privacy section says so. `privacy scan`
 * does not report these.
 */
const CLEAR_BY_DESIGN: Partial<Record<EntryKind, readonly string[]>> = {
  'connector.cursor_advanced': ['account'],
  'connector.health': ['account'],
  'inbox.connected': ['account'],
  'state.changed': ['entity'],
};

/** The fields of a kind kept in clear by design although they may hold an address (see CLEAR_BY_DESIGN). */
export function clearByDesignOf(kind: string): readonly string[] {
  return (CLEAR_BY_DESIGN as Record<string, readonly string[] | undefined>)[kind] ?? [];
}

/** The rule of a kind; a kind without one is refused rather than stored unsealed. */
function ruleOf(kind: string): SealRule {
  const rule = Object.prototype.hasOwnProperty.call(RULES, kind) ? RULES[kind as EntryKind] : undefined;
  if (!rule) throw new SealedPayloadError(`no privacy rule for kind ${kind}: refusing to store its payload unsealed`);
  return rule;
}

/** The subject under whose key a correlation's personal fields are sealed when no person can be named for them. */
export function correlationSubject(correlationId: string): string {
  return `correlation:${correlationId}`;
}

/** The payload fields of `kind` that are personal and must never be stored in clear (empty: none). */
export function personalFieldsOf(kind: string): readonly string[] {
  return Object.prototype.hasOwnProperty.call(RULES, kind) ? RULES[kind as EntryKind].fields : [];
}

/** How the sealer finds the subjects of what is already journaled. */
export interface LinkedKeys {
  /** The subjects (key references) of an entry, by id; null when it is not sealed or unknown. */
  byId(entryId: string): readonly KeyRef[] | null;
  /** The subjects of the sealed entries of a correlation (empty when none). */
  byCorrelation(correlationId: string): readonly KeyRef[];
}

/** What an opened payload carries instead of its personal fields when they cannot be read. */
export interface ErasedMarker {
  readonly erased: true;
  readonly erasedAt: string;
}

export class Privacy {
  private store: SubjectKeyStore | null;
  private readonly openStore: () => SubjectKeyStore;

  constructor(store: SubjectKeyStore | (() => SubjectKeyStore)) {
    this.store = typeof store === 'function' ? null : store;
    this.openStore = typeof store === 'function' ? store : () => store;
  }

  /**
   * Opens the key store configured in `config` under the master key. An existing store (or backup) is opened
   * now, so a wrong master key or a missing store fails at start-up; with `create` and neither there yet, the
   * master key and the store are created when the first personal payload is sealed, not before.
   */
  static open(
    config: MasterKeySource & { keyStorePath: string; keyStoreBackupPath: string },
    options: { create: boolean; readOnly?: boolean; now?: () => Date },
  ): Privacy {
    const open = (): SubjectKeyStore => {
      const { key } = loadMasterKey(config, { create: options.create && options.readOnly !== true });
      const o: KeyStoreOptions = {
        path: config.keyStorePath,
        backupPath: config.keyStoreBackupPath,
        masterKey: key,
        create: options.create,
        ...(options.readOnly === true ? { readOnly: true } : {}),
        ...(options.now ? { now: options.now } : {}),
      };
      return SubjectKeyStore.open(o);
    };
    const there = SubjectKeyStore.exists(config.keyStorePath, config.keyStoreBackupPath);
    return new Privacy(there.store || there.backup || !options.create ? open() : open);
  }

  /** The key store, opened (or created) on first use. */
  get keys(): SubjectKeyStore {
    this.store ??= this.openStore();
    return this.store;
  }

  /** The key store if it was opened or created already; null while nothing has been sealed. */
  get openedKeys(): SubjectKeyStore | null {
    return this.store;
  }

  /**
   * The payload as it is to be stored: its personal fields replaced by one `$sealed` envelope. Unchanged only
   * for kinds without personal fields and when none of them is present: a personal field is never stored in
   * clear. Its subjects, first that answers:
   * 1. its own participants (interaction.received), or the subjects of the entry it links to (the interaction a
   *    decision or a CRM write is about, the decision an override supersedes), or of its causation;
   * 2. the subjects of the sealed entries of its correlation (a call transcript without participants belongs to
   *    its call's people);
   * 3. the correlation's own subject (`correlationSubject`): a key that `forget` of anyone in the correlation
   *    destroys along with their own, so such fields are erased with the people they came with.
   * Plus the subjects of the entries its rule adds (`also`: the transcripts a call activity's write holds).
   */
  seal(kind: EntryKind, payload: unknown, ids: { causationId: string | null; correlationId: string }, linked: LinkedKeys): unknown {
    const rule = ruleOf(kind);
    if (rule.fields.length === 0 || !isJsonObject(payload)) return payload;
    const p = payload;
    const present = rule.fields.filter((f) => p[f] !== undefined);
    if (present.length === 0) return payload;
    let subjects = this.subjectsOf(rule, p, ids.causationId, linked);
    if (subjects.length === 0) subjects = linked.byCorrelation(ids.correlationId).map((r) => r.subject);
    if (subjects.length === 0) subjects = [this.keys.subjectHash(correlationSubject(ids.correlationId))];
    for (const target of rule.also?.(p) ?? [])
      if (typeof target === 'string') subjects.push(...(linked.byId(target) ?? []).map((r) => r.subject));
    subjects = [...new Set(subjects)].sort();
    const keys = subjects.map((s) => this.keys.activeKey(s));
    const fields: Record<string, unknown> = {};
    const rest: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(p)) (present.includes(k) ? fields : rest)[k] = v;
    return { ...rest, [SEALED]: sealFields(kind, fields, keys) };
  }

  private subjectsOf(rule: SealRule, p: Record<string, unknown>, causationId: string | null, linked: LinkedKeys): string[] {
    if (!rule.links) {
      const parts = Array.isArray(p.participants) ? (p.participants as { address?: unknown }[]) : [];
      return parts
        .filter((x) => x !== null && typeof x === 'object' && typeof x.address === 'string')
        .map((x) => this.keys.subjectHash(x.address as string));
    }
    for (const target of [...rule.links(p), causationId]) {
      const refs = typeof target === 'string' ? linked.byId(target) : null;
      if (refs !== null && refs.length > 0) return refs.map((r) => r.subject);
    }
    return [];
  }

  /** An entry with its payload opened (see openPayload). */
  open(entry: JournalEntry): JournalEntry {
    const payload = this.openPayload(entry.kind, entry.payload);
    return payload === entry.payload ? entry : { ...entry, payload };
  }

  /**
   * The one way readers open a stored payload: sealed fields are put back; when a subject's key was destroyed
   * the payload carries `erased: true, erasedAt` instead, and when a key is missing from the store (a lost or
   * rolled-back key store) or the envelope does not authenticate, `unavailable: <why>`.
   */
  openPayload(kind: string, payload: unknown): unknown {
    if (!isJsonObject(payload) || !(SEALED in payload)) return payload;
    const { [SEALED]: raw, ...rest } = payload;
    const envelope = asEnvelope(raw);
    if (envelope === null) return { ...rest, unavailable: 'malformed-envelope' };
    const states = envelope.keys.map((k) => this.keys.state(k.keyId));
    const destroyed = states.flatMap((s) => (s.status === 'destroyed' ? [s.destroyedAt] : [])).sort();
    if (destroyed.length > 0)
      return { ...rest, erased: true, erasedAt: destroyed[0] as string } satisfies ErasedMarker & Record<string, unknown>;
    const keys = states.flatMap((s) => (s.status === 'active' ? [s.key] : []));
    if (keys.length !== states.length) return { ...rest, unavailable: 'key-missing' };
    try {
      return { ...rest, ...openFields(kind, envelope, keys) };
    } catch (err) {
      if (err instanceof SealedPayloadError) return { ...rest, unavailable: 'does-not-authenticate' };
      throw err;
    }
  }

  private closed = false;

  /** Closes the key store; idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.store?.close();
  }
}

/** The key references of a stored payload (its `$sealed` envelope), or null. */
export function sealedKeysOf(payloadText: string): readonly KeyRef[] | null {
  if (!payloadText.includes(`"${SEALED}"`)) return null;
  const p = JSON.parse(payloadText) as Record<string, unknown>;
  return asEnvelope(p[SEALED])?.keys ?? null;
}

/** True when an opened payload says its personal fields were erased; `erasedAt` then says when. */
export function erasedAt(payload: unknown): string | null {
  return isJsonObject(payload) && payload.erased === true && typeof payload.erasedAt === 'string' ? payload.erasedAt : null;
}

// ---------------------------------------------------------------------------------------------------------
// Forgetting a subject

export interface ForgetPlan {
  readonly subjectHash: string;
  readonly keys: readonly KeyRecord[];
  /** Keys to destroy now. */
  readonly toDestroy: readonly string[];
  /** Keys destroyed but not yet on the journal's record (a forget that crashed between the two steps). */
  readonly unrecorded: readonly string[];
  /** Hot-storage entries sealed under this subject's keys, with their correlations. */
  readonly entries: readonly { seq: number; kind: string; correlationId: string }[];
  readonly correlations: readonly string[];
  /** Set when there is nothing left to do: the subject's keys are gone and the journal says so. */
  readonly alreadyErased: { readonly erasedAt: string; readonly seq: number } | null;
}

/** What `forget` would do for `address`; reads only. */
export function planForget(db: Database.Database, store: SubjectKeyStore, address: string): ForgetPlan {
  const subjectHash = store.subjectHash(address);
  const own = store.keysOf(subjectHash);
  // Only erasures this key store authenticates count: a forged privacy.erased (anyone with the append
  // credential can write one) neither makes forget skip a person nor stands for an erasure on the record.
  const erasures = erasuresOf(db, store).authentic;
  const recorded = erasures.filter((e) => e.subjectHash === subjectHash);
  // A correlation key may have been erased with someone else already: on the record is on the record.
  const recordedIds = new Set(erasures.flatMap((e) => e.keyIds));
  type Sealed = { seq: number; kind: string; correlationId: string };
  type Row = { seq: number; kind: string; correlation_id: string; payload: string };
  const under = (subject: string, rows: Row[]): Sealed[] =>
    rows
      .filter((r) => (sealedKeysOf(r.payload) ?? []).some((k) => k.subject === subject))
      .map((r) => ({ seq: r.seq, kind: r.kind, correlationId: r.correlation_id }));
  const personal = under(
    subjectHash,
    db
      .prepare('SELECT seq, kind, correlation_id, payload FROM entries WHERE instr(payload, ?) > 0 ORDER BY seq')
      .all(`"subject":"${subjectHash}"`) as Row[],
  );
  // Fields of the person's correlations that no one could be named for were sealed under the correlation's own
  // key (privacy.ts seal, step 3): they go with the person. Such entries are in those correlations by
  // construction, so each is found through the correlation index, not by another scan of the journal.
  const byCorrelation = db.prepare('SELECT seq, kind, correlation_id, payload FROM entries WHERE correlation_id = ? ORDER BY seq');
  const correlationSubjects = [...new Set(personal.map((e) => e.correlationId))].map((c) => ({
    c,
    subject: store.subjectHash(correlationSubject(c)),
  }));
  const keys = [...own, ...correlationSubjects.flatMap((x) => store.keysOf(x.subject))];
  const bySeq = new Map(personal.map((e) => [e.seq, e]));
  for (const { c, subject } of correlationSubjects) for (const e of under(subject, byCorrelation.all(c) as Row[])) bySeq.set(e.seq, e);
  const entries = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  const toDestroy = keys.filter((k) => k.destroyedAt === null).map((k) => k.keyId);
  const unrecorded = keys.filter((k) => k.destroyedAt !== null && !recordedIds.has(k.keyId)).map((k) => k.keyId);
  const correlations = [...new Set(entries.map((e) => e.correlationId))];
  const last = recorded[recorded.length - 1];
  const alreadyErased = toDestroy.length === 0 && unrecorded.length === 0 && last ? { erasedAt: last.recordedAt, seq: last.seq } : null;
  return { subjectHash, keys, toDestroy, unrecorded, entries, correlations, alreadyErased };
}

/** The privacy.erased payload that records a plan carried out (never the address), authenticated by the key store. */
export function erasedPayload(
  plan: ForgetPlan,
  reason: string,
  store: SubjectKeyStore,
): { subjectHash: string; keyIds: string[]; reason: string; entries: number; correlations: number; authentication: string } {
  const keyIds = [...plan.toDestroy, ...plan.unrecorded].sort();
  return {
    subjectHash: plan.subjectHash,
    keyIds,
    reason,
    entries: plan.entries.length,
    correlations: plan.correlations.length,
    authentication: store.erasureTag(plan.subjectHash, keyIds),
  };
}

/** Idempotency key of the privacy.erased entry of a plan: re-running a crashed forget finds it. */
export function erasedKey(plan: ForgetPlan): string {
  const ids = [...plan.toDestroy, ...plan.unrecorded].sort().join(',');
  return `privacy/erased/${plan.subjectHash}/${createHash('sha256').update(ids).digest('hex').slice(0, 16)}`;
}

export interface Erasure {
  readonly seq: number;
  readonly recordedAt: string;
  readonly subjectHash: string;
  readonly keyIds: readonly string[];
}

/**
 * The privacy.erased entries in hot storage, split by whether `store` authenticates them. Without a store none
 * can be checked, and none is needed: with no keys there is nothing an erasure could apply to.
 */
export function erasuresOf(db: Database.Database, store: SubjectKeyStore | null): { authentic: Erasure[]; unauthenticated: Erasure[] } {
  const rows = db.prepare(`SELECT seq, recorded_at, payload FROM entries WHERE kind = 'privacy.erased' ORDER BY seq`).all() as {
    seq: number;
    recorded_at: string;
    payload: string;
  }[];
  const authentic: Erasure[] = [];
  const unauthenticated: Erasure[] = [];
  for (const r of rows) {
    const p = JSON.parse(r.payload) as { subjectHash?: unknown; keyIds?: unknown; authentication?: unknown };
    if (typeof p.subjectHash !== 'string' || !Array.isArray(p.keyIds)) continue;
    const e = {
      seq: r.seq,
      recordedAt: r.recorded_at,
      subjectHash: p.subjectHash,
      keyIds: p.keyIds.filter((k): k is string => typeof k === 'string'),
    };
    (store?.erasureAuthentic({ ...e, authentication: p.authentication }) === true ? authentic : unauthenticated).push(e);
  }
  // One confirmed since (`keys confirm-erasure`: an authenticated erasure of the same subject and keys) is settled.
  const confirmed = (e: Erasure): boolean =>
    authentic.some((a) => a.subjectHash === e.subjectHash && e.keyIds.every((k) => a.keyIds.includes(k)));
  return { authentic, unauthenticated: unauthenticated.filter((e) => !confirmed(e)) };
}

// ---------------------------------------------------------------------------------------------------------
// Loss and roll-back detection

export interface KeyStoreCheck {
  readonly ok: boolean;
  /** False when there is no key store file at all. */
  readonly storePresent: boolean;
  /** Whether the backup file is there (null: no store, so nothing was looked at). */
  readonly backupPresent: boolean | null;
  /** Distinct key ids named by sealed entries in hot storage. */
  readonly referenced: number;
  /** Referenced, not erased by a privacy.erased entry, and absent from the store: data nobody can read any more. */
  readonly missing: readonly string[];
  /** Named by a privacy.erased entry but present and usable in the store: a rolled-back store undid an erasure. */
  readonly resurrected: readonly string[];
  /** Seqs of privacy.erased entries this key store does not authenticate: ignored, listed in notes. */
  readonly unauthenticatedErasures: readonly number[];
  /** The backup's fingerprint differs from the store's (null: no store to compare). */
  readonly backupInStep: boolean | null;
  readonly problems: readonly string[];
  /** Repairs made while opening (a missing backup re-created by a writer), and findings that fail nothing (a missing backup, seen by a read-only check): said. */
  readonly notes: readonly string[];
}

/** Key ids referenced by sealed entries (hot storage). */
function referencedKeyIds(db: Database.Database): string[] {
  const rows = db
    .prepare(
      `SELECT DISTINCT json_extract(k.value, '$.keyId') AS keyId FROM entries e, json_each(e.payload, '$."$sealed".keys') k WHERE instr(e.payload, '"$sealed"') > 0`,
    )
    .all() as { keyId: string | null }[];
  return rows.flatMap((r) => (typeof r.keyId === 'string' ? [r.keyId] : []));
}

/**
 * Compares what the journal needs with what the key store holds. `store` null means the store could not be
 * opened because it is missing. Never silent: every finding is in `problems`, worded for an operator.
 */
export function checkKeyStore(db: Database.Database, store: SubjectKeyStore | null): KeyStoreCheck {
  const referenced = referencedKeyIds(db);
  const erasures = erasuresOf(db, store);
  const erased = new Set(erasures.authentic.flatMap((e) => e.keyIds));
  const problems: string[] = [];
  const missing: string[] = [];
  const resurrected: string[] = [];
  for (const id of referenced) {
    const state = store ? store.state(id).status : 'missing';
    if (state === 'missing' && !erased.has(id)) missing.push(id);
  }
  if (store) for (const id of erased) if (store.state(id).status === 'active') resurrected.push(id);
  let backupInStep: boolean | null = null;
  const notes: string[] = [];
  const diff = store?.compareWithBackup() ?? null;
  if (diff) {
    backupInStep = diff.storeOnly.length === 0 && diff.differing.length === 0;
    // The backup is written first: a store write that failed (a full disk) leaves an unused key in the backup.
    if (diff.backupOnly.length > 0)
      notes.push(
        `${diff.backupOnly.length} key(s) are in the backup only (a store write failed after its backup write); unused unless listed as missing`,
      );
  }
  if (!store && referenced.length > 0)
    problems.push(
      `the key store (or the master key that opens it) is missing but ${referenced.length} key(s) are referenced by sealed journal entries`,
    );
  if (missing.length > 0)
    problems.push(
      `${missing.length} subject key(s) referenced by the journal are missing from the key store (lost or rolled back): their entries cannot be read; restore with \`activity-journal keys restore\``,
    );
  if (resurrected.length > 0)
    problems.push(
      `${resurrected.length} key(s) erased by privacy.erased entries are present again in the key store (a rolled-back store): run \`activity-journal keys restore\` to re-apply the erasures`,
    );
  if (backupInStep === false)
    problems.push(
      'the key store backup is behind the key store (keys the backup lacks, or in another state): a lost store could not be fully restored',
    );
  // A privacy.erased that this store does not authenticate was not written by forget: it is ignored (it erases
  // nothing and cannot make a check fail), and listed. Erasures recorded before they were authenticated are
  // confirmed with `keys confirm-erasure`.
  if (store && erasures.unauthenticated.length > 0) {
    const seqs = erasures.unauthenticated.map((e) => e.seq);
    notes.push(
      `${seqs.length} privacy.erased entr${seqs.length === 1 ? 'y does' : 'ies do'} not authenticate and ${seqs.length === 1 ? 'is' : 'are'} ignored (seq ${seqs.slice(0, 20).join(', ')}${seqs.length > 20 ? ', …' : ''}): not written by \`forget\` with this key store (forged with the append credential, or recorded before erasures were authenticated: confirm your own with \`activity-journal keys confirm-erasure <seq>\`)`,
    );
  }
  // A check writes nothing (a read-only open): the backup is re-created where the product writes, not here. No
  // key is unreadable for it, so it fails no check (a copy of the data directory verifies), but it is said.
  if (store?.backupMissing === true)
    notes.push(
      `the key store backup ${store.backupPath} is missing: a lost key store could not be restored; the journal service re-creates it from the store when it starts (or run \`activity-journal checkpoint\` while the service is stopped)`,
    );
  if (store?.backupRecreated === true) notes.push(`the key store backup ${store.backupPath} was missing: it was re-created from the store`);
  const unauthenticatedErasures = store ? erasures.unauthenticated.map((e) => e.seq) : [];
  return {
    ok: problems.length === 0,
    storePresent: store !== null,
    backupPresent: store === null ? null : !store.backupMissing,
    referenced: referenced.length,
    missing,
    resurrected,
    unauthenticatedErasures,
    backupInStep,
    problems,
    notes,
  };
}

/**
 * Destroys every key that an authenticated privacy.erased entry names and the store still holds; returns how
 * many. An erasure the store does not authenticate is never acted on: a forged one must not destroy anyone's key.
 */
export function reapplyErasures(db: Database.Database, store: SubjectKeyStore): number {
  const ids = [...new Set(erasuresOf(db, store).authentic.flatMap((e) => e.keyIds))].filter((id) => store.state(id).status === 'active');
  if (ids.length > 0) store.destroy(ids);
  return ids.length;
}

/**
 * Opens the store for reading and checking: null when there is none at all (no store, no backup, or no master
 * key yet: nothing was ever sealed with them). A store missing while its backup exists throws (KeyStoreError
 * MISSING, naming `keys restore`), and so does a wrong master key. Read-only unless `readOnly: false` (for
 * `keys confirm-erasure`, which destroys keys): a check, a reader, `verify` and `status` write nothing.
 */
export function openKeyStoreForCheck(
  config: MasterKeySource & { keyStorePath: string; keyStoreBackupPath: string },
  options: { readOnly: boolean } = { readOnly: true },
): Privacy | null {
  try {
    return Privacy.open(config, { create: false, readOnly: options.readOnly });
  } catch (err) {
    if (err instanceof KeyStoreError && err.reason === 'MISSING' && !existsSync(config.keyStoreBackupPath)) return null;
    if (err instanceof MasterKeyError && err.reason === 'MISSING') return null;
    throw err;
  }
}
