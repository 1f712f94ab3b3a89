/**
 * The journal suite's workload and its raw-SQLite baseline, apart from the suite so that profiling scripts can
 * drive exactly the same entries.
 *
 * A pool of realistic ~1 KB payloads (an `interaction.received` e-mail whose canonical RFC 8785 text is 1,024
 * bytes) is shared byte-for-byte by the baseline and the journal: the baseline stores the canonical text that
 * the journal would store.
 */
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { canonicalize } from '../src/journal/canonical.ts';
import { ENTRIES_DDL } from '../src/journal/schema.ts';
import { uuidv7, type AppendInput } from '../src/journal/entry.ts';
import type { PayloadOf } from '../src/journal/kinds.ts';
import { now, secondsSince } from './suite.ts';

export const ENTRY_PAYLOAD_BYTES = 1024;
const POOL = 4096;

const SENTENCES = [
  'Thanks for the call on Tuesday; the team reviewed the revised proposal and we are broadly aligned on scope.',
  'Before we sign, procurement needs the renewal quote to list the per-vehicle tracking units separately from the platform fee.',
  'Could you also confirm whether the 12% multi-year discount still applies if we add the Rotterdam depot in Q3?',
  'Our finance lead, Priya Raman, will join the next meeting to go through the payment schedule and the SLA credits.',
  'We would like to move the go-live to the first week of March so that it does not collide with our peak season.',
  'Please send over the updated data processing addendum; legal flagged two clauses about sub-processors in the EU.',
  "If it helps, we can share last quarter's utilisation report so you can size the storage tier correctly.",
  'Happy to jump on a short call on Thursday afternoon if that is easier than going back and forth by e-mail.',
] as const;

interface PoolEntry {
  readonly payload: PayloadOf<'interaction.received'>;
  /** The canonical (RFC 8785) text the journal stores for `payload`: what the baseline stores too. */
  readonly text: string;
}

function makePayload(i: number, body: string): PayloadOf<'interaction.received'> {
  const day = 1 + (i % 28);
  return {
    channel: 'email',
    sourceId: `<CAF${(i * 7919).toString(36)}.${i}@mail.northwind-logistics.example>`,
    direction: 'inbound',
    occurredAt: `2026-02-${String(day).padStart(2, '0')}T09:${String(i % 60).padStart(2, '0')}:00Z`,
    participants: [
      { role: 'from', address: 'dana.whitfield@northwind-logistics.example', name: 'Dana Whitfield' },
      { role: 'to', address: 'sam.ortega@acme-telematics.example', name: 'Sam Ortega' },
      { role: 'cc', address: 'priya.raman@northwind-logistics.example', name: 'Priya Raman' },
    ],
    subject: `Re: Renewal quote Q-${10_000 + i} for the 2026 fleet tracking contract`,
    text: body,
    threadId: `thread-${i % 512}`,
    metadata: { mailbox: 'sales@acme-telematics.example', labels: ['INBOX', 'renewals'] },
  };
}

/** Payload i, its body trimmed so that its canonical text is ENTRY_PAYLOAD_BYTES long (give or take a byte). */
function poolEntry(i: number): PoolEntry {
  const start = i % SENTENCES.length;
  const rotated = [...SENTENCES.slice(start), ...SENTENCES.slice(0, start)];
  const full = `Hi Sam,\n\n${rotated.join(' ')}\n\nBest regards,\nDana Whitfield\nHead of Fleet Operations, Northwind Logistics`;
  let len = full.length;
  let payload = makePayload(i, full);
  let text = canonicalize(payload);
  for (let k = 0; k < 4 && Buffer.byteLength(text) !== ENTRY_PAYLOAD_BYTES; k++) {
    len = Math.max(0, len - (Buffer.byteLength(text) - ENTRY_PAYLOAD_BYTES));
    payload = makePayload(i, full.slice(0, len).trimEnd());
    text = canonicalize(payload);
  }
  return { payload, text };
}

/** A row of the raw baseline: the values that differ between entries (the rest is constant). */
export interface RawRow {
  readonly correlationId: string;
  readonly idempotencyKey: string;
  readonly text: string;
}

/** Hands out fresh entries (unique idempotency keys) over a fixed pool of payloads. */
export class Workload {
  private readonly pool: readonly PoolEntry[];
  private next = 0;
  constructor(readonly run: string = randomBytes(4).toString('hex')) {
    this.pool = Array.from({ length: POOL }, (_, i) => poolEntry(i));
  }

  get payloadBytes(): { min: number; max: number; mean: number } {
    const sizes = this.pool.map((p) => Buffer.byteLength(p.text));
    return { min: Math.min(...sizes), max: Math.max(...sizes), mean: sizes.reduce((a, b) => a + b, 0) / sizes.length };
  }

  /** n fresh appends, as a connector would send them (explicit idempotency key, no occurredAt). */
  inputs(n: number): AppendInput<'interaction.received'>[] {
    const out = new Array<AppendInput<'interaction.received'>>(n);
    for (let k = 0; k < n; k++) {
      const i = this.next++;
      out[k] = {
        kind: 'interaction.received',
        source: 'gmail',
        actor: 'connector/gmail',
        correlationId: correlationOf(i),
        idempotencyKey: `gmail/${this.run}/${String(i).padStart(8, '0')}`,
        payload: (this.pool[i % POOL] as PoolEntry).payload,
      };
    }
    return out;
  }

  /** n fresh rows for the raw baseline: the same field values a journal entry would get. */
  rows(n: number): RawRow[] {
    const out = new Array<RawRow>(n);
    for (let k = 0; k < n; k++) {
      const i = this.next++;
      out[k] = {
        correlationId: correlationOf(i),
        idempotencyKey: `gmail/${this.run}/${String(i).padStart(8, '0')}`,
        text: (this.pool[i % POOL] as PoolEntry).text,
      };
    }
    return out;
  }
}

/** About 5,000 open deals, each touched again and again: inserts land all over the correlation index. */
function correlationOf(i: number): string {
  return `deal/${(i * 31) % 5000}`;
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// The raw-SQLite baseline
// ---------------------------------------------------------------------------------------------------------

/** The journal's `entries` table and indexes (src/journal/schema.ts), without the insert-only triggers. */
export const SAME_SHAPE_DDL = ENTRIES_DDL;

export const BARE_DDL = `CREATE TABLE entries (seq INTEGER PRIMARY KEY, payload TEXT NOT NULL) STRICT;`;

/** Plain better-sqlite3 with the durability the journal uses: WAL, synchronous=FULL, nothing else tuned (unless `pragmas`). */
export function openRaw(path: string, ddl: string, pragmas: readonly string[] = []): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  for (const p of pragmas) db.pragma(p);
  db.exec(ddl);
  return db;
}

/** The pragmas src/journal/sqlite.ts adds on top of WAL + FULL. */
export const JOURNAL_EXTRA_PRAGMAS = ['trusted_schema = OFF', 'wal_autocheckpoint = 4000'] as const;

/** Inserts the rows in one transaction (BEGIN IMMEDIATE ... COMMIT). */
export type RawInserter = (rows: readonly RawRow[]) => void;

export function sameShapeInserter(db: Database.Database): RawInserter {
  const stmt = db.prepare(
    'INSERT INTO entries (seq, id, recorded_at, occurred_at, kind, source, actor, correlation_id, causation_id, idempotency_key, retention_class, payload, payload_hash, leaf_hash, chain_hash, tree_nodes, seal) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)',
  );
  // Stand-ins for the hashes the journal computes: the right sizes, no hashing. tree_nodes holds one node on average.
  const [h1, h2, h3, h4, h5] = [randomBytes(32), randomBytes(32), randomBytes(32), randomBytes(32), randomBytes(32)];
  let seq = 0;
  const tx = db.transaction((rows: readonly RawRow[]) => {
    const recordedAt = new Date().toISOString();
    for (const r of rows) {
      // uuidv7 as the journal does: time-ordered ids keep the id index append-only here too.
      stmt.run(
        seq++,
        uuidv7(),
        recordedAt,
        recordedAt,
        'interaction.received',
        'gmail',
        'connector/gmail',
        r.correlationId,
        null,
        r.idempotencyKey,
        'standard',
        r.text,
        h1,
        h2,
        h3,
        h4,
        h5,
      );
    }
  });
  return (rows) => tx.immediate(rows);
}

export function bareInserter(db: Database.Database): RawInserter {
  const stmt = db.prepare('INSERT INTO entries (seq, payload) VALUES (?, ?)');
  let seq = 0;
  const tx = db.transaction((rows: readonly RawRow[]) => {
    for (const r of rows) stmt.run(seq++, r.text);
  });
  return (rows) => tx.immediate(rows);
}

/** Seconds to insert `rows` in transactions of `batch` rows (the rows are made before the clock starts). */
export function timeRawInserts(insert: RawInserter, rows: readonly RawRow[], batch: number): number {
  const batches = chunk(rows, batch);
  const start = now();
  for (const b of batches) insert(b);
  return secondsSince(start);
}
