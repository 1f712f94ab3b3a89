/**
 * The journal writer: the only code that opens the journal for writing.
 *
 * Appends are queued and committed in groups: whatever arrived while the previous transaction was being
 * fsynced goes into the next one (group commit), and every caller is answered only after the transaction
 * holding its entries has committed with synchronous=FULL. A request (one entry or a batch) is atomic: it is
 * written whole, or not at all.
 */
import type Database from 'better-sqlite3';
import { canonicalHeader, isPreparedKind, prepareEntry, uuidv7, type AppendInput, type JournalEntry, type PreparedEntry } from './entry.ts';
import { acquireWriterLock, type WriterLock } from './lock.ts';
import { migrate } from './schema.ts';
import { openWriteConnection } from './sqlite.ts';
import { CompactTree, rootOf, type Hash } from './merkle.ts';
import { sha256, sha256Pair } from './sha256.ts';
import { ENTRY_COLUMNS, StoredNodes, archivedRanges, archivedUpTo, rowToEntry, type EntryRow } from './store.ts';
import { RetentionPolicy, type JournaledPolicy } from './retention.ts';
import { RetentionPolicyError } from './errors/retention-policy.error.ts';
import { EntryValidationError } from './errors/entry-validation.error.ts';
import { HOUSEKEEPING_KINDS, type EntryKind, type PayloadOf } from './kinds.ts';
import { loadOrCreateIdentity, readKeysJournalId, sealOf, type JournalIdentity } from './identity.ts';
import { signCheckpoint, verifySignedCheckpoint, type Checkpoint } from './checkpoint.ts';
import { DirectoryAnchor, type Anchor } from './anchors.ts';
import { parseVerifierKey } from './keys.ts';
import { verifyJournal } from './verify.ts';
import { IdempotencyConflictError } from './errors/idempotency-conflict.error.ts';
import { JournalWriteError } from './errors/journal-write.error.ts';
import { JournalIntegrityError } from './errors/journal-integrity.error.ts';
import { JournalFileError } from './errors/journal-file.error.ts';
import { silentLogger, type Logger } from '../config/logger.ts';
import { erasedAt, sealedKeysOf, type LinkedKeys, type Privacy } from './privacy.ts';
import type { KeyRef } from './sealed-payload.ts';
import { canonicalize } from './canonical.ts';
import { KeyStoreError } from './errors/key-store.error.ts';

export interface JournalWriterOptions {
  readonly path: string;
  /** Where the signing key, the seal key and the journal id live (apart from the journal file). */
  readonly keysDir: string;
  readonly anchors?: readonly Anchor[];
  readonly maxPayloadBytes?: number;
  /** Write a checkpoint after this many entries (default 1,000). */
  readonly checkpointEveryEntries?: number;
  /** ...and at least this often while entries keep coming (default 10 s; 0 turns the timer off). */
  readonly checkpointEveryMs?: number;
  /** Most entries one group-commit transaction takes (default 5,000). */
  readonly maxBatchEntries?: number;
  readonly logger?: Logger;
  /** The clock (ms since epoch); tests inject a fake one. */
  readonly now?: () => number;
  /** Stamps entries that name no class; journaled (`retention.policy`) when its version is new. */
  readonly retention?: RetentionPolicy;
  /** Seals the personal fields of payloads per data subject before they are hashed (crypto-shredding). */
  readonly privacy?: Privacy;
}

/** What sealing a segment records (see segments.ts). */
export interface SealRequest {
  readonly segmentId: string;
  readonly periodStart: string;
  readonly periodEnd: string;
  readonly fromSeq: number;
  readonly toSeq: number;
  readonly fileSha256: string;
  readonly fileBytes: number;
}

export interface ArchiveCommit {
  readonly segmentId: string;
  readonly store: 'directory' | 'gcs';
  readonly location: string;
  readonly sha256: string;
  readonly fileSha256: string;
  readonly compressedBytes: number;
}

/** A verified pruned copy of an archived segment (see expiry.ts); the payload of `segment.pruned`. */
export interface PruneCommit {
  readonly segmentId: string;
  readonly generation: number;
  readonly store: 'directory' | 'gcs';
  readonly location: string;
  readonly sha256: string;
  readonly fileSha256: string;
  readonly compressedBytes: number;
  readonly replaces: string;
  readonly dropped: readonly (readonly [number, number])[];
  readonly entries: number;
  readonly classes: Readonly<Record<string, number>>;
  readonly droppedAt: string;
  readonly policyVersion: number;
  /** Containment of unsealed personal data (contained-payload.ts); absent for retention expiry. */
  readonly reason?: 'unsealed-personal-data';
  /** Containment: dropped entries per kind. */
  readonly kinds?: Readonly<Record<string, number>>;
}

export interface AppendResult {
  readonly entry: JournalEntry;
  /** True when the idempotency key was already in the journal: nothing was added. */
  readonly duplicate: boolean;
}

export interface CheckpointResult {
  readonly checkpoint: Checkpoint;
  readonly note: string;
  /** Seq of the `checkpoint` entry that records it. */
  readonly seq: number;
  readonly created: boolean;
}

interface Request {
  readonly entries: readonly PreparedEntry[];
  readonly resolve: (results: AppendResult[]) => void;
  readonly reject: (err: unknown) => void;
}

interface State {
  size: number;
  chain: Buffer;
  tree: CompactTree;
  userSinceCheckpoint: number;
  lastCheckpoint: CheckpointResult | null;
}

const ZERO_HASH = Buffer.alloc(32);
export const DEFAULT_MAX_PAYLOAD_BYTES = 2 * 1024 * 1024; // as JOURNAL_MAX_PAYLOAD_BYTES defaults (src/config/config.ts)

/** Counters since open: how well group commit is batching. */
export interface WriterStats {
  transactions: number;
  entries: number;
  requests: number;
  largestTransaction: number;
  failedTransactions: number;
}

/** Whether the journal is taking writes: the last commit's failure, while no commit has succeeded since. */
export type WriteHealth = { readonly ok: true } | { readonly ok: false; readonly failingSince: string; readonly reason: string };

export class JournalWriter {
  readonly stats: WriterStats = { transactions: 0, entries: 0, requests: 0, largestTransaction: 0, failedTransactions: 0 };
  private writeFailure: { failingSince: string; reason: string } | null = null;
  private readonly pending: Request[] = [];
  private flushScheduled = false;
  private closed = false;
  private readonly inflightAnchoring = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | null = null;
  private anchorRetryNote: { note: string; checkpoint: Checkpoint } | null = null;
  private readonly insertStmt: Database.Statement;
  private readonly insertIfAbsentStmt: Database.Statement;
  private readonly byKeyStmt: Database.Statement<[string], EntryRow>;
  private readonly maxPayloadBytes: number;
  private readonly checkpointEveryEntries: number;
  private readonly maxBatchEntries: number;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly retention: RetentionPolicy | null;
  private readonly privacy: Privacy | null;
  private readonly byIdStmt: Database.Statement<[string], { payload: string }>;
  private readonly seqOfIdStmt: Database.Statement<[number], { id: string; kind: string }>;
  private readonly insertAssignmentStmt: Database.Statement;
  private readonly sealedKeysByCorrelationStmt: Database.Statement<[string], { keys: string }>;

  private constructor(
    private readonly db: Database.Database,
    private readonly lock: WriterLock,
    readonly identity: JournalIdentity,
    private readonly state: State,
    private readonly anchors: readonly Anchor[],
    readonly path: string,
    options: JournalWriterOptions,
  ) {
    this.maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    this.checkpointEveryEntries = options.checkpointEveryEntries ?? 1000;
    this.maxBatchEntries = options.maxBatchEntries ?? 5000;
    this.now = options.now ?? Date.now;
    this.retention = options.retention ?? null;
    this.privacy = options.privacy ?? null;
    this.byIdStmt = db.prepare('SELECT payload FROM entries WHERE id = ?');
    this.seqOfIdStmt = db.prepare('SELECT id, kind FROM entries WHERE seq = ?');
    this.insertAssignmentStmt = db.prepare(
      'INSERT INTO retention_assignments (assigned_seq, target_seq, retention_class) VALUES (?, ?, ?)',
    );
    // The subjects of a correlation's people: its interactions' envelopes (at most 1,000 of them read).
    this.sealedKeysByCorrelationStmt = db.prepare(
      `SELECT json_extract(payload, '$."$sealed".keys') AS keys FROM entries WHERE correlation_id = ? AND kind = 'interaction.received' AND json_extract(payload, '$."$sealed".keys') IS NOT NULL LIMIT 1000`,
    );
    this.log = (options.logger ?? silentLogger).child({ component: 'journal.writer' });
    this.insertStmt = db.prepare(
      `INSERT INTO entries (${ENTRY_COLUMNS}) VALUES (${ENTRY_COLUMNS.split(',')
        .map(() => '?')
        .join(',')})`,
    );
    this.insertIfAbsentStmt = db.prepare(
      `INSERT INTO entries (${ENTRY_COLUMNS}) VALUES (${ENTRY_COLUMNS.split(',')
        .map(() => '?')
        .join(',')}) ON CONFLICT (idempotency_key) DO NOTHING`,
    );
    this.byKeyStmt = db.prepare(`SELECT ${ENTRY_COLUMNS} FROM entries WHERE idempotency_key = ?`);
    const everyMs = options.checkpointEveryMs ?? 10_000;
    if (everyMs > 0) {
      this.timer = setInterval(() => this.onTimer(), everyMs);
      this.timer.unref();
    }
  }

  /**
   * Opens (creating if needed) the journal for writing. Refuses to start when another writer holds it, when its
   * tail since the last checkpoint does not verify, or when it is shorter than or inconsistent with the newest
   * checkpoint held by any anchor.
   */
  static async open(options: JournalWriterOptions): Promise<JournalWriter> {
    const lock = acquireWriterLock(options.path);
    let db: Database.Database | null = null;
    try {
      db = openWriteConnection(options.path);
      const now = options.now ?? Date.now;
      migrate(db, () => new Date(now()).toISOString());
      const metaId =
        (db.prepare(`SELECT value FROM journal_meta WHERE key = 'journal_id'`).get() as { value: string } | undefined)?.value ?? null;
      const keysId = readKeysJournalId(options.keysDir);
      if (metaId !== null && keysId !== null && metaId !== keysId) {
        throw new JournalFileError(
          'KEY_MISMATCH',
          `the keys in ${options.keysDir} belong to journal ${keysId}, not to this journal (${metaId})`,
        );
      }
      const identity = loadOrCreateIdentity(options.keysDir, metaId);
      const anchors = options.anchors ?? [];
      for (const anchor of anchors) if (anchor instanceof DirectoryAnchor) anchor.pinKey(identity.origin, identity.signingKey.verifierKey);

      const state = loadState(db, identity);
      const writer = new JournalWriter(db, lock, identity, state, anchors, options.path, options);
      if (metaId === null) writer.writeGenesis();
      else writer.checkOwnTail();
      await writer.checkAnchors();
      writer.journalPolicy();
      return writer;
    } catch (err) {
      db?.close();
      lock.release();
      throw err;
    }
  }

  get size(): number {
    return this.state.size;
  }

  /**
   * Failing from the first commit that failed (a full disk, an I/O error) until one succeeds again; the next
   * append tells whether writing works once the cause is gone.
   */
  get writeHealth(): WriteHealth {
    return this.writeFailure ? { ok: false, ...this.writeFailure } : { ok: true };
  }

  get latestCheckpoint(): CheckpointResult | null {
    return this.state.lastCheckpoint;
  }

  /** Appends one entry. Resolves after commit; returns the existing entry (duplicate: true) when the idempotency key was already appended. */
  async append(input: AppendInput): Promise<AppendResult> {
    const [result] = await this.appendBatch([input]);
    return result as AppendResult;
  }

  /** Appends entries atomically in one request: all are written (or found as duplicates), or none is. */
  appendBatch(inputs: readonly AppendInput[]): Promise<AppendResult[]> {
    return this.appendBatchReceived(inputs);
  }

  /**
   * Appends one entry as it arrived from outside the program (JSON from a client, a line of a file): untyped,
   * and validated against the catalogue like every append (prepareEntry), which is what makes it an entry.
   */
  async appendReceived(input: unknown): Promise<AppendResult> {
    const [result] = await this.appendBatchReceived([input]);
    return result as AppendResult;
  }

  /** appendBatch for entries that arrived from outside the program, untyped (see appendReceived). */
  async appendBatchReceived(inputs: readonly unknown[]): Promise<AppendResult[]> {
    if (this.closed) throw new JournalWriteError('CLOSED', 'the journal writer is closed');
    const privacy = this.privacy;
    const linked: LinkedKeys = {
      byId: (id) => {
        const row = this.byIdStmt.get(id);
        return row ? sealedKeysOf(row.payload) : null;
      },
      byCorrelation: (correlationId) => {
        const refs = new Map<string, KeyRef>();
        for (const row of this.sealedKeysByCorrelationStmt.all(correlationId))
          for (const k of JSON.parse(row.keys) as KeyRef[]) refs.set(`${k.subject}/${k.keyId}`, k);
        return [...refs.values()];
      },
    };
    const seal = privacy
      ? (kind: EntryKind, payload: unknown, ids: { causationId: string | null; correlationId: string }): unknown =>
          privacy.seal(kind, payload, ids, linked)
      : undefined;
    const prepare = (): PreparedEntry[] =>
      inputs.map((input) =>
        this.authenticated(this.stamp(prepareEntry(input, { maxPayloadBytes: this.maxPayloadBytes, ...(seal ? { seal } : {}) }))),
      );
    // Sealing looks subject keys up (and creates new ones) in one key-store transaction for the whole batch,
    // committed before any entry sealed under them can be.
    // (A store not opened yet is created by the first personal payload, not by this.)
    const keys = privacy?.openedKeys;
    let prepared: PreparedEntry[];
    try {
      prepared = keys ? keys.batch(prepare) : prepare();
    } catch (err) {
      throw sealingWriteFailure(err);
    }
    return this.enqueue(prepared);
  }

  /** Writes a checkpoint now (unless nothing but housekeeping was appended since the last one) and anchors it. */
  async checkpoint(): Promise<CheckpointResult> {
    if (this.closed) throw new JournalWriteError('CLOSED', 'the journal writer is closed');
    await this.enqueue([]); // a barrier: everything queued before is committed first
    if (this.state.userSinceCheckpoint > 0 || this.state.lastCheckpoint === null) {
      const result = this.writeCheckpointNow();
      this.startAnchoring(result);
      return result;
    }
    const last = this.state.lastCheckpoint;
    this.startAnchoring(last); // re-publishing is idempotent; it heals an anchor that missed it
    return { ...last, created: false };
  }

  /**
   * A privacy.erased is taken only when the key store authenticates it (made by `forget`, which holds the key
   * store): the append credential alone cannot record an erasure. A writer without a key store has no keys an
   * erasure could name and cannot check one; readers check again in any case (privacy.ts erasuresOf).
   */
  private authenticated(p: PreparedEntry): PreparedEntry {
    if (!isPreparedKind(p, 'privacy.erased')) return p;
    const keys = this.privacy?.openedKeys ?? null;
    if (keys === null && this.privacy === null) return p;
    if (!(this.privacy?.keys.erasureAuthentic(p.payload) ?? false)) {
      throw new EntryValidationError(
        'ERASURE_UNAUTHENTICATED',
        "privacy.erased is not authenticated by this journal's key store: erasures are recorded only by `activity-journal forget`",
        ['payload.authentication: does not authenticate'],
      );
    }
    return p;
  }

  /**
   * The retention class of an entry that names none comes from the policy (an interaction's rules may match on
   * its payload's channel); a named class must exist in it. A retention.assigned must name an entry in hot
   * storage by its seq and id, and a class of the policy.
   */
  private stamp(p: PreparedEntry): PreparedEntry {
    const policy = this.retention;
    if (isPreparedKind(p, 'retention.assigned')) this.checkAssignment(p.payload);
    if (policy === null) return p;
    if (p.retentionGiven) {
      if (!policy.has(p.retentionClass))
        throw new EntryValidationError(
          'INVALID_ENTRY',
          `retentionClass ${p.retentionClass} is not a class of retention policy version ${policy.version}`,
          ['retentionClass: unknown class'],
        );
      return p;
    }
    const channel = isPreparedKind(p, 'interaction.received') ? p.payload.channel : undefined;
    return { ...p, retentionClass: policy.classify(p.kind, p.source, channel) };
  }

  private checkAssignment(a: PayloadOf<'retention.assigned'>): void {
    const target = this.seqOfIdStmt.get(a.entrySeq);
    if (!target || target.id !== a.entryId) {
      throw new EntryValidationError(
        'INVALID_PAYLOAD',
        `invalid retention.assigned entry: entry seq ${a.entrySeq} is not ${a.entryId} in hot storage`,
        ['payload.entrySeq: does not name payload.entryId in hot storage'],
      );
    }
    if (this.retention !== null && !this.retention.has(a.retentionClass)) {
      throw new EntryValidationError(
        'INVALID_PAYLOAD',
        `invalid retention.assigned entry: retentionClass ${a.retentionClass} is not a class of retention policy version ${this.retention.version}`,
        ['payload.retentionClass: unknown class'],
      );
    }
  }

  /** Every retention policy version journaled so far, oldest first. */
  policyHistory(): JournaledPolicy[] {
    const rows = this.db.prepare('SELECT version, seq, policy FROM retention_policies ORDER BY version').all() as {
      version: number;
      seq: number;
      policy: string;
    }[];
    return rows.map((r) => ({
      version: r.version,
      seq: r.seq,
      policy: RetentionPolicy.parse(JSON.parse(r.policy), `journaled retention policy version ${r.version}`),
    }));
  }

  /** Journals the configured policy when its version is new; refuses a changed policy under an old version number. */
  private journalPolicy(): void {
    const policy = this.retention;
    if (policy === null) return;
    const latest = this.db.prepare('SELECT version, sha256 FROM retention_policies ORDER BY version DESC LIMIT 1').get() as
      { version: number; sha256: string } | undefined;
    if (latest && latest.sha256 === policy.sha256) return;
    if (latest && policy.version <= latest.version) {
      throw new RetentionPolicyError(
        `the retention policy changed but its version (${policy.version}) is not above the journaled version ${latest.version}; bump "version"`,
      );
    }
    const prepared = this.internal('retention.policy', policy.entryPayload(), `retention-policy/${policy.version}`);
    this.commitSystem(prepared, (entry) => {
      this.db
        .prepare('INSERT INTO retention_policies (version, sha256, policy, seq) VALUES (?, ?, ?, ?)')
        .run(policy.version, policy.sha256, policy.canonical, entry.seq);
    });
    this.log.info({ version: policy.version, sha256: policy.sha256 }, 'retention policy version journaled');
  }

  /**
   * Commits one entry the journal writes about itself, with `extra` writes in the same transaction. The caller
   * has drained the queue first (or holds the only reference, at open). Idempotent on the entry's key: a re-run
   * that finds the same entry returns it (duplicate) and runs `extra` only when it was not yet applied.
   */
  private commitSystem(prepared: PreparedEntry, extra: (entry: JournalEntry, duplicate: boolean) => void): AppendResult {
    const snapshot = this.snapshot();
    try {
      let result: AppendResult | null = null;
      this.db
        .transaction(() => {
          const inserted = this.insert(prepared, new Date(this.now()).toISOString(), true);
          if (inserted) result = { entry: inserted, duplicate: false };
          else {
            const earlier = this.lookup(prepared.idempotencyKey) as JournalEntry;
            const diff = differingFields(prepared, earlier);
            if (diff.length > 0) throw new IdempotencyConflictError(prepared.idempotencyKey, earlier.seq, diff);
            result = { entry: earlier, duplicate: true };
          }
          extra(result.entry, result.duplicate);
        })
        .immediate();
      return result as unknown as AppendResult;
    } catch (err) {
      this.restore(snapshot);
      throw err;
    }
  }

  /** A checkpoint of the first `size` entries (root and chain head from storage), signed with `timestamp`. */
  private checkpointAt(size: number, timestamp: string): { checkpoint: Checkpoint; note: string } {
    const row = this.db.prepare('SELECT chain_hash FROM entries WHERE seq = ?').get(size - 1) as { chain_hash: Buffer } | undefined;
    if (!row)
      throw new JournalWriteError('WRITE_FAILED', `cannot sign a checkpoint of size ${size}: entry seq ${size - 1} is not in hot storage`);
    const checkpoint: Checkpoint = {
      origin: this.identity.origin,
      treeSize: size,
      rootHash: rootOf(size, new StoredNodes(this.db)),
      chainHead: row.chain_hash,
      timestamp,
    };
    return { checkpoint, note: signCheckpoint(checkpoint, this.identity.signingKey) };
  }

  /**
   * Seals a segment: appends `segment.sealed` with a checkpoint signed at its end (timestamped with the period's
   * end, so that a re-run writes the identical entry and finds it) and records it in `segments`.
   */
  async sealSegment(req: SealRequest): Promise<AppendResult> {
    if (this.closed) throw new JournalWriteError('CLOSED', 'the journal writer is closed');
    await this.enqueue([]);
    const { checkpoint, note } = this.checkpointAt(req.toSeq + 1, new Date(Date.parse(req.periodEnd)).toISOString());
    const payload = {
      ...req,
      entries: req.toSeq - req.fromSeq + 1,
      rootHash: Buffer.from(checkpoint.rootHash).toString('base64'),
      chainHead: Buffer.from(checkpoint.chainHead).toString('base64'),
      note,
    };
    return this.commitSystem(this.internal('segment.sealed', payload, `segment/${req.segmentId}/sealed`), (entry) => {
      this.db
        .prepare(
          'INSERT INTO segments (segment_id, period_start, period_end, from_seq, to_seq, sealed_seq, file_sha256, file_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
        )
        .run(req.segmentId, req.periodStart, req.periodEnd, req.fromSeq, req.toSeq, entry.seq, req.fileSha256, req.fileBytes);
    });
  }

  /**
   * Records a verified archive copy: `segment.archived` and the `archived_ranges` row (with the chain head at the
   * segment's end and the tree frontier after it, which new appends and proofs keep needing) in one transaction.
   * From then on the DELETE trigger lets the segment's rows leave hot storage.
   */
  async commitArchive(req: ArchiveCommit): Promise<AppendResult> {
    if (this.closed) throw new JournalWriteError('CLOSED', 'the journal writer is closed');
    await this.enqueue([]);
    const seg = this.db.prepare('SELECT from_seq, to_seq FROM segments WHERE segment_id = ?').get(req.segmentId) as
      { from_seq: number; to_seq: number } | undefined;
    if (!seg) throw new JournalWriteError('WRITE_FAILED', `segment ${req.segmentId} is not sealed`);
    const chain = (this.db.prepare('SELECT chain_hash FROM entries WHERE seq = ?').get(seg.to_seq) as { chain_hash: Buffer } | undefined)
      ?.chain_hash;
    const frontierSize = seg.to_seq + 1;
    const payload = {
      segmentId: req.segmentId,
      fromSeq: seg.from_seq,
      toSeq: seg.to_seq,
      store: req.store,
      location: req.location,
      sha256: req.sha256,
      fileSha256: req.fileSha256,
      compressedBytes: req.compressedBytes,
    };
    return this.commitSystem(this.internal('segment.archived', payload, `segment/${req.segmentId}/archived`), (entry, duplicate) => {
      if (duplicate && this.db.prepare('SELECT 1 FROM archived_ranges WHERE segment_id = ?').get(req.segmentId)) return;
      if (!chain) throw new JournalWriteError('WRITE_FAILED', `segment ${req.segmentId}: entry seq ${seg.to_seq} is not in hot storage`);
      const nodes = new StoredNodes(this.db);
      const insertNode = this.db.prepare('INSERT INTO archived_nodes (level, idx, hash) VALUES (?, ?, ?) ON CONFLICT DO NOTHING');
      let offset = 0;
      for (let level = Math.floor(Math.log2(frontierSize)); level >= 0; level--) {
        const width = 2 ** level;
        if (Math.floor(frontierSize / width) % 2 === 1) {
          insertNode.run(level, offset / width, Buffer.from(nodes.node(level, offset / width)));
          offset += width;
        }
      }
      this.db
        .prepare(
          'INSERT INTO archived_ranges (segment_id, from_seq, to_seq, archived_seq, chain_head, store, location, sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        )
        .run(req.segmentId, seg.from_seq, seg.to_seq, entry.seq, chain, req.store, req.location, req.sha256);
    });
  }

  /**
   * Records a verified pruned copy of an archived segment: `segment.pruned` and the `pruned_segments` row (which
   * readers use to find the newest copy) in one transaction. Idempotent per segment and generation.
   */
  async commitPrune(req: PruneCommit): Promise<AppendResult> {
    if (this.closed) throw new JournalWriteError('CLOSED', 'the journal writer is closed');
    await this.enqueue([]);
    const r = this.db.prepare('SELECT from_seq, to_seq FROM archived_ranges WHERE segment_id = ?').get(req.segmentId) as
      { from_seq: number; to_seq: number } | undefined;
    if (!r) throw new JournalWriteError('WRITE_FAILED', `segment ${req.segmentId} is not archived; only archived segments are pruned`);
    for (const [a, b] of req.dropped) {
      if (a > b || a < r.from_seq || b > r.to_seq || a === 0)
        throw new JournalWriteError(
          'WRITE_FAILED',
          `segment ${req.segmentId}: dropped range ${a}..${b} is outside its seqs ${r.from_seq}..${r.to_seq}`,
        );
    }
    const payload = {
      ...req,
      fromSeq: r.from_seq,
      toSeq: r.to_seq,
      dropped: req.dropped.map(([a, b]) => [a, b]),
      classes: { ...req.classes },
      ...(req.kinds ? { kinds: { ...req.kinds } } : {}),
    };
    return this.commitSystem(
      this.internal('segment.pruned', payload, `segment/${req.segmentId}/pruned/${req.generation}`),
      (entry, duplicate) => {
        if (
          duplicate &&
          this.db.prepare('SELECT 1 FROM pruned_segments WHERE segment_id = ? AND generation = ?').get(req.segmentId, req.generation)
        )
          return;
        this.db
          .prepare(
            'INSERT INTO pruned_segments (segment_id, generation, pruned_seq, store, location, sha256, file_sha256, dropped_entries, dropped_by_class) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
          )
          .run(
            req.segmentId,
            req.generation,
            entry.seq,
            req.store,
            req.location,
            req.sha256,
            req.fileSha256,
            req.entries,
            JSON.stringify(req.classes),
          );
      },
    );
  }

  /** Deletes the hot rows of an archived segment (all but seq 0); returns how many left. Idempotent. */
  async dropArchivedRows(segmentId: string): Promise<number> {
    if (this.closed) throw new JournalWriteError('CLOSED', 'the journal writer is closed');
    await this.enqueue([]);
    const r = this.db.prepare('SELECT from_seq, to_seq FROM archived_ranges WHERE segment_id = ?').get(segmentId) as
      { from_seq: number; to_seq: number } | undefined;
    if (!r) throw new JournalWriteError('WRITE_FAILED', `segment ${segmentId} has no committed archive; its rows stay`);
    return this.db
      .transaction(() => this.db.prepare('DELETE FROM entries WHERE seq BETWEEN ? AND ? AND seq > 0').run(r.from_seq, r.to_seq).changes)
      .immediate();
  }

  /**
   * Rewrites the journal file (VACUUM) and checkpoints and truncates its WAL, so that no byte of the rows that
   * left hot storage (dropArchivedRows) stays in a free page or an old WAL frame. Containment calls it once it
   * dropped payloads an older version stored in clear. `walTruncated` is false when a reader kept the WAL busy
   * (its old frames are then overwritten at a later checkpoint).
   */
  async compact(): Promise<{ walTruncated: boolean }> {
    if (this.closed) throw new JournalWriteError('CLOSED', 'the journal writer is closed');
    await this.enqueue([]);
    this.db.exec('VACUUM');
    const rows = this.db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
    return { walTruncated: rows[0]?.busy === 0 };
  }

  /**
   * Waits for queued appends and anchoring, writes a final checkpoint unless the newest one already covers every
   * entry (only its own anchoring outcomes may follow it), releases the lock. A new journal gets one too: its
   * genesis and policy entries are housekeeping, but a clean shutdown always leaves the journal signed to its end.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    try {
      await this.enqueue([]); // a barrier: everything queued before is committed first
      if (this.uncoveredByCheckpoint()) {
        const result = this.writeCheckpointNow();
        this.startAnchoring(result);
      }
      while (this.inflightAnchoring.size > 0) await Promise.allSettled([...this.inflightAnchoring]);
      await this.enqueue([]);
    } finally {
      this.closed = true;
      this.db.close();
      this.lock.release();
    }
  }

  /** Entries after the newest checkpoint other than anchoring outcomes (which report on a checkpoint, not new facts). */
  private uncoveredByCheckpoint(): boolean {
    const last = this.state.lastCheckpoint;
    if (last === null) return this.state.size > 0;
    if (this.state.userSinceCheckpoint > 0) return true;
    const row = this.db.prepare(`SELECT 1 AS x FROM entries WHERE seq > ? AND kind <> 'checkpoint.anchored' LIMIT 1`).get(last.seq);
    return row !== undefined;
  }

  private enqueue(entries: readonly PreparedEntry[]): Promise<AppendResult[]> {
    return new Promise((resolve, reject) => {
      this.pending.push({ entries, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // setImmediate lets every request already read from the sockets join this transaction.
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0) return;
    const batch: Request[] = [];
    let count = 0;
    while (this.pending.length > 0) {
      const next = this.pending[0] as Request;
      if (batch.length > 0 && count + next.entries.length > this.maxBatchEntries) break;
      batch.push(next);
      count += next.entries.length;
      this.pending.shift();
    }
    const snapshot = this.snapshot();
    const outcomes: (AppendResult[] | Error)[] = [];
    let checkpointWritten: CheckpointResult | null = null;
    try {
      this.db.exec('BEGIN IMMEDIATE');
      const recordedAt = new Date(this.now()).toISOString();
      const written = new Map<string, JournalEntry>();
      for (const req of batch) outcomes.push(this.applyRequest(req, recordedAt, written));
      if (this.state.userSinceCheckpoint >= this.checkpointEveryEntries) checkpointWritten = this.insertCheckpoint(recordedAt);
      this.db.exec('COMMIT');
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      this.restore(snapshot);
      this.stats.failedTransactions++;
      this.log.error(
        {
          err: { name: (err as Error).name, code: (err as { code?: string }).code, message: (err as Error).message },
          requests: batch.length,
        },
        'journal transaction failed; nothing of it was written',
      );
      const failure = new JournalWriteError('WRITE_FAILED', `the journal could not commit: ${(err as Error).message}`, { cause: err });
      this.writeFailure = {
        failingSince: this.writeFailure?.failingSince ?? new Date(this.now()).toISOString(),
        reason: (err as Error).message,
      };
      for (const req of batch) req.reject(failure);
      this.scheduleIfPending();
      return;
    }
    const added = this.state.size - snapshot.size;
    this.writeFailure = null;
    this.stats.transactions++;
    this.stats.entries += added;
    this.stats.requests += batch.length;
    if (added > this.stats.largestTransaction) this.stats.largestTransaction = added;
    batch.forEach((req, i) => {
      const outcome = outcomes[i] as AppendResult[] | Error;
      if (outcome instanceof Error) req.reject(outcome);
      else req.resolve(outcome);
    });
    if (checkpointWritten) this.startAnchoring(checkpointWritten);
    this.scheduleIfPending();
  }

  private scheduleIfPending(): void {
    if (this.pending.length > 0 && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /**
   * Inserts the request's entries; a key already in the journal makes the insert a no-op (ON CONFLICT DO
   * NOTHING), and only then is the stored entry read and compared. A conflict undoes the request: a savepoint
   * in SQLite and a snapshot of the in-memory state, so the rest of the group commits without it.
   */
  private applyRequest(req: Request, recordedAt: string, written: Map<string, JournalEntry>): AppendResult[] | Error {
    const multi = req.entries.length > 1;
    const snap = multi ? this.snapshot() : null;
    const added: string[] = [];
    if (multi) this.db.exec('SAVEPOINT request');
    const results: AppendResult[] = [];
    for (const p of req.entries) {
      const seen = written.get(p.idempotencyKey);
      if (seen === undefined) {
        const inserted = this.insert(p, recordedAt, true);
        if (inserted) {
          written.set(p.idempotencyKey, inserted);
          added.push(p.idempotencyKey);
          results.push({ entry: inserted, duplicate: false });
          continue;
        }
      }
      const earlier = seen ?? this.lookup(p.idempotencyKey);
      if (earlier === undefined) throw new Error(`entry with idempotency key ${p.idempotencyKey} was neither inserted nor found`);
      let diff = differingFields(p, earlier);
      // A re-delivery of something whose subject was forgotten since: the record stands, erased; it is not taken in again.
      if (diff.length === 1 && diff[0] === 'payload' && erasedAt(earlier.payload) !== null) diff = [];
      // A retry sealed under other subjects (its correlation gained a person meanwhile) is the same entry when
      // what it says is the same: sealed bytes differ, the opened payload does not.
      if (diff.length === 1 && diff[0] === 'payload' && samePlainPayload(p, earlier)) diff = [];
      if (diff.length > 0) {
        if (multi) {
          this.db.exec('ROLLBACK TO request');
          this.db.exec('RELEASE request');
          this.restore(snap as State);
          for (const k of added) written.delete(k);
        }
        return new IdempotencyConflictError(p.idempotencyKey, earlier.seq, diff);
      }
      results.push({ entry: earlier, duplicate: true });
    }
    if (multi) this.db.exec('RELEASE request');
    return results;
  }

  private lookup(key: string): JournalEntry | undefined {
    const row = this.byKeyStmt.get(key);
    if (!row) return undefined;
    const entry = rowToEntry(row);
    return this.privacy ? this.privacy.open(entry) : entry;
  }

  /** Inserts p; with ifAbsent, returns undefined (state untouched) when its idempotency key is already there. */
  private insert(p: PreparedEntry, recordedAt: string): JournalEntry;
  private insert(p: PreparedEntry, recordedAt: string, ifAbsent: true): JournalEntry | undefined;
  private insert(p: PreparedEntry, recordedAt: string, ifAbsent = false): JournalEntry | undefined {
    const s = this.state;
    const seq = s.size;
    const id = uuidv7(this.now());
    const occurredAt = p.occurredAt ?? recordedAt;
    const header = {
      seq,
      id,
      recordedAt,
      occurredAt,
      kind: p.kind,
      source: p.source,
      actor: p.actor,
      correlationId: p.correlationId,
      causationId: p.causationId,
      idempotencyKey: p.idempotencyKey,
      retentionClass: p.retentionClass,
      payloadHash: p.payloadHash,
    };
    // RFC 6962 leaf: SHA-256(0x00 ‖ header); a leading U+0000 encodes as the single byte 0x00.
    const leaf = sha256('\u0000' + canonicalHeader(header));
    const chain = sha256Pair(s.chain, leaf);
    const frontier = ifAbsent ? s.tree.frontier() : null;
    const nodes = s.tree.append(leaf);
    const seal = sealOf(this.identity.sealKey, chain);
    const info = (ifAbsent ? this.insertIfAbsentStmt : this.insertStmt).run(
      seq,
      id,
      recordedAt,
      occurredAt,
      p.kind,
      p.source,
      p.actor,
      p.correlationId,
      p.causationId,
      p.idempotencyKey,
      p.retentionClass,
      p.payloadText,
      Buffer.from(p.payloadHash, 'hex'),
      leaf,
      chain,
      nodes.length === 0 ? EMPTY : Buffer.concat(nodes),
      seal,
    );
    if (info.changes === 0) {
      // The key is already in the journal: undo the tree append; nothing else was touched yet.
      s.tree = new CompactTree(seq, frontier as Hash[]);
      return undefined;
    }
    if (isPreparedKind(p, 'retention.assigned')) this.insertAssignmentStmt.run(seq, p.payload.entrySeq, p.payload.retentionClass);
    s.size = seq + 1;
    s.chain = chain;
    if (!HOUSEKEEPING_KINDS.has(p.kind)) s.userSinceCheckpoint++;
    return { ...header, kind: p.kind, payload: p.payload, leafHash: leaf.toString('hex'), chainHash: chain.toString('hex') };
  }

  private internal(kind: EntryKind, payload: unknown, idempotencyKey: string): PreparedEntry {
    return prepareEntry(
      { kind, source: 'journal', actor: 'journal-writer', correlationId: `journal/${this.identity.journalId}`, idempotencyKey, payload },
      { maxPayloadBytes: this.maxPayloadBytes, allowInternal: true },
    );
  }

  private writeGenesis(): void {
    const { journalId, origin, signingKey } = this.identity;
    this.db
      .transaction(() => {
        this.db.prepare(`INSERT INTO journal_meta (key, value) VALUES ('journal_id', ?), ('origin', ?)`).run(journalId, origin);
        this.insert(
          this.internal(
            'journal.created',
            { journalId, origin, verifierKey: signingKey.verifierKey, format: 1 },
            `journal/${journalId}/created`,
          ),
          new Date(this.now()).toISOString(),
        );
      })
      .immediate();
  }

  private insertCheckpoint(recordedAt: string): CheckpointResult {
    const s = this.state;
    const checkpoint: Checkpoint = {
      origin: this.identity.origin,
      treeSize: s.size,
      rootHash: s.tree.root(),
      chainHead: s.chain,
      timestamp: recordedAt,
    };
    const note = signCheckpoint(checkpoint, this.identity.signingKey);
    const payload = {
      treeSize: checkpoint.treeSize,
      rootHash: Buffer.from(checkpoint.rootHash).toString('base64'),
      chainHead: Buffer.from(checkpoint.chainHead).toString('base64'),
      note,
    };
    const entry = this.insert(this.internal('checkpoint', payload, `checkpoint/${checkpoint.treeSize}`), recordedAt);
    const result: CheckpointResult = { checkpoint, note, seq: entry.seq, created: true };
    s.lastCheckpoint = result;
    s.userSinceCheckpoint = 0;
    return result;
  }

  private writeCheckpointNow(): CheckpointResult {
    const snapshot = this.snapshot();
    try {
      let result: CheckpointResult | null = null;
      this.db
        .transaction(() => {
          result = this.insertCheckpoint(new Date(this.now()).toISOString());
        })
        .immediate();
      return result as unknown as CheckpointResult;
    } catch (err) {
      this.restore(snapshot);
      throw new JournalWriteError('WRITE_FAILED', `the checkpoint could not be committed: ${(err as Error).message}`, { cause: err });
    }
  }

  private onTimer(): void {
    if (this.closed) return;
    if (this.state.userSinceCheckpoint > 0) {
      this.checkpoint().catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'timed checkpoint failed'));
    } else if (this.anchorRetryNote) {
      const retry = this.anchorRetryNote;
      this.anchorRetryNote = null;
      this.startAnchoring({ ...retry, seq: -1, created: false });
    }
  }

  private startAnchoring(cp: CheckpointResult): void {
    if (this.anchors.length === 0) return;
    const p = this.publish(cp).finally(() => this.inflightAnchoring.delete(p));
    this.inflightAnchoring.add(p);
  }

  /** Publishes to every anchor and journals each outcome; a failure is retried with the next checkpoint or timer tick. */
  private async publish(cp: CheckpointResult): Promise<void> {
    const size = cp.checkpoint.treeSize;
    await Promise.all(
      this.anchors.map(async (anchor) => {
        let prepared: PreparedEntry;
        try {
          const receipt = await anchor.publish(cp.note, cp.checkpoint);
          prepared = this.internal(
            'checkpoint.anchored',
            { treeSize: size, anchor: anchor.name, ok: true, location: receipt.location, alreadyPresent: receipt.alreadyPresent },
            `anchor/${anchor.name}/${size}`,
          );
        } catch (err) {
          this.anchorRetryNote = { note: cp.note, checkpoint: cp.checkpoint };
          this.log.warn({ anchor: anchor.name, treeSize: size, err: (err as Error).message }, 'anchoring failed; will retry');
          prepared = this.internal(
            'checkpoint.anchored',
            { treeSize: size, anchor: anchor.name, ok: false, error: (err as Error).message.slice(0, 2000) },
            `anchor-failed/${anchor.name}/${size}/${this.now()}`,
          );
        }
        if (this.closed) return;
        await this.enqueue([prepared]).catch((err: unknown) =>
          this.log.error({ err: (err as Error).message }, 'could not journal an anchoring outcome'),
        );
      }),
    );
  }

  /** Start-up: the entries after the newest checkpoint verify (hashes, chain, seals, stored tree nodes). */
  private checkOwnTail(): void {
    const from = this.state.lastCheckpoint ? this.state.lastCheckpoint.checkpoint.treeSize : 0;
    const report = verifyJournal(this.db, {
      sealKey: this.identity.sealKey,
      verifier: parseVerifierKey(this.identity.signingKey.verifierKey),
      fromSeq: from,
    });
    if (!report.ok) {
      throw new JournalIntegrityError(
        `the journal does not verify: first bad entry seq ${report.firstBadSeq ?? '?'}: ${report.reason ?? ''}; run \`activity-journal verify\` for details`,
        report.firstBadSeq,
      );
    }
  }

  /** Start-up: no anchor may hold a checkpoint that this journal is shorter than or inconsistent with. */
  private async checkAnchors(): Promise<void> {
    const verifier = parseVerifierKey(this.identity.signingKey.verifierKey);
    const nodes = new StoredNodes(this.db);
    const hotFrom = archivedUpTo(archivedRanges(this.db));
    for (const anchor of this.anchors) {
      const note = await anchor.latest(this.identity.origin);
      if (note === null) continue;
      const cp = verifySignedCheckpoint(note, verifier);
      if (cp === null) throw new JournalIntegrityError(`anchor ${anchor.name} holds a checkpoint not signed by this journal's key`, null);
      // A checkpoint inside the archived prefix was checked against the archive when it was archived.
      if (cp.treeSize <= hotFrom && hotFrom > 0) continue;
      if (cp.treeSize > this.state.size) {
        throw new JournalIntegrityError(
          `the journal has ${this.state.size} entries but anchor ${anchor.name} holds a signed checkpoint of ${cp.treeSize}: it was truncated or restored from an older copy; entries from seq ${this.state.size} are missing`,
          this.state.size,
        );
      }
      if (cp.treeSize === 0) continue;
      const root = rootOf(cp.treeSize, nodes);
      const chainAt = (this.db.prepare('SELECT chain_hash FROM entries WHERE seq = ?').get(cp.treeSize - 1) as { chain_hash: Buffer })
        .chain_hash;
      if (!Buffer.from(root).equals(Buffer.from(cp.rootHash)) || !chainAt.equals(Buffer.from(cp.chainHead))) {
        throw new JournalIntegrityError(
          `the journal is inconsistent with the checkpoint of size ${cp.treeSize} held by anchor ${anchor.name}: its first ${cp.treeSize} entries are not the ones that were signed`,
          null,
        );
      }
    }
  }

  private snapshot(): State {
    const s = this.state;
    return {
      size: s.size,
      chain: s.chain,
      tree: s.tree.clone(),
      userSinceCheckpoint: s.userSinceCheckpoint,
      lastCheckpoint: s.lastCheckpoint,
    };
  }

  private restore(snap: State): void {
    Object.assign(this.state, snap);
  }
}

const EMPTY = Buffer.alloc(0);

function loadState(db: Database.Database, identity: JournalIdentity): State {
  const last = db.prepare('SELECT seq, chain_hash FROM entries ORDER BY seq DESC LIMIT 1').get() as
    { seq: number; chain_hash: Buffer } | undefined;
  const size = last ? last.seq + 1 : 0;
  const tree = CompactTree.fromNodeSource(size, new StoredNodes(db));
  const cpRow = db.prepare(`SELECT ${ENTRY_COLUMNS} FROM entries WHERE kind = 'checkpoint' ORDER BY seq DESC LIMIT 1`).get() as
    EntryRow | undefined;
  let lastCheckpoint: CheckpointResult | null = null;
  let userSince = 0;
  if (cpRow) {
    const payload = JSON.parse(cpRow.payload) as { note: string };
    const cp = verifySignedCheckpoint(payload.note, parseVerifierKey(identity.signingKey.verifierKey));
    if (cp === null) throw new JournalIntegrityError(`the checkpoint at seq ${cpRow.seq} is not signed by this journal's key`, cpRow.seq);
    lastCheckpoint = { checkpoint: cp, note: payload.note, seq: cpRow.seq, created: false };
  }
  const placeholders = [...HOUSEKEEPING_KINDS].map(() => '?').join(',');
  userSince = (
    db
      .prepare(`SELECT count(*) AS n FROM entries WHERE seq > ? AND kind NOT IN (${placeholders})`)
      .get(cpRow ? cpRow.seq : -1, ...HOUSEKEEPING_KINDS) as { n: number }
  ).n;
  return { size, chain: last ? last.chain_hash : ZERO_HASH, tree, userSinceCheckpoint: userSince, lastCheckpoint };
}

/**
 * A key store that cannot write (a full disk, an I/O error) refuses the append the way a journal that cannot
 * commit does: WRITE_FAILED (503, try again), not an internal error. Validation errors pass unchanged.
 */
function sealingWriteFailure(err: unknown): unknown {
  const code = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
  const sqlite = typeof code === 'string' && code.startsWith('SQLITE_');
  const backup = err instanceof KeyStoreError && err.reason === 'BACKUP_FAILED';
  if (!sqlite && !backup) return err;
  const cause = backup && err.cause instanceof Error ? err.cause.message : (err as Error).message;
  return new JournalWriteError('WRITE_FAILED', `personal fields could not be sealed: the key store could not write (${cause})`, {
    cause: err,
  });
}

function samePlainPayload(p: PreparedEntry, earlier: JournalEntry): boolean {
  if (p.payload === null || typeof p.payload !== 'object' || earlier.payload === null || typeof earlier.payload !== 'object') return false;
  try {
    return canonicalize(p.payload) === canonicalize(earlier.payload);
  } catch {
    return false;
  }
}

function differingFields(p: PreparedEntry, e: JournalEntry): string[] {
  return compareFields(p, e);
}

function compareFields(
  p: PreparedEntry,
  e: Pick<JournalEntry, 'kind' | 'source' | 'actor' | 'correlationId' | 'causationId' | 'payloadHash' | 'retentionClass'> & {
    occurredAt: string | null;
  },
): string[] {
  const diff: string[] = [];
  if (p.kind !== e.kind) diff.push('kind');
  if (p.source !== e.source) diff.push('source');
  if (p.actor !== e.actor) diff.push('actor');
  if (p.correlationId !== e.correlationId) diff.push('correlationId');
  if (p.causationId !== e.causationId) diff.push('causationId');
  if (p.payloadHash !== e.payloadHash) diff.push('payload');
  // Fields the caller left to defaults cannot conflict: a retry may not repeat them.
  if (p.occurredAt !== null && e.occurredAt !== null && p.occurredAt !== e.occurredAt) diff.push('occurredAt');
  if (p.retentionGiven && p.retentionClass !== e.retentionClass) diff.push('retentionClass');
  return diff;
}
