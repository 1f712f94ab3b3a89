/**
 * The journal's schema and its versioned migrations. Every table is STRICT and insert-only: UPDATE and DELETE
 * abort in triggers. The triggers are a guard rail against mistakes; tampering is caught by verification.
 */
import type Database from 'better-sqlite3';
import { JournalFileError } from './errors/journal-file.error.ts';

/** "AJNL": lets `file(1)`-style checks and our own open() tell a journal from any other SQLite file. */
export const APPLICATION_ID = 0x414a4e4c;

function insertOnly(table: string): string {
  return `
CREATE TRIGGER ${table}_no_update BEFORE UPDATE ON ${table}
BEGIN SELECT RAISE(ABORT, 'activity-journal: ${table} is insert-only; UPDATE is forbidden'); END;
CREATE TRIGGER ${table}_no_delete BEFORE DELETE ON ${table}
BEGIN SELECT RAISE(ABORT, 'activity-journal: ${table} is insert-only; DELETE is forbidden'); END;`;
}

/**
 * The entries table and its indexes as migration 1 creates them (the benchmark's baseline uses the same).
 * Part of a migration: never edit it; change the schema with a new migration.
 */
export const ENTRIES_DDL = `
CREATE TABLE entries (
  seq INTEGER PRIMARY KEY CHECK (seq >= 0),
  id TEXT NOT NULL UNIQUE,
  recorded_at TEXT NOT NULL,
  occurred_at TEXT NOT NULL,
  kind TEXT NOT NULL,
  source TEXT NOT NULL,
  actor TEXT NOT NULL,
  correlation_id TEXT NOT NULL,
  causation_id TEXT,
  idempotency_key TEXT NOT NULL UNIQUE,
  retention_class TEXT NOT NULL,
  payload TEXT NOT NULL,
  payload_hash BLOB NOT NULL CHECK (length(payload_hash) = 32),
  leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32),
  chain_hash BLOB NOT NULL CHECK (length(chain_hash) = 32),
  tree_nodes BLOB NOT NULL,
  seal BLOB NOT NULL
) STRICT;
CREATE INDEX entries_by_correlation ON entries (correlation_id, seq);
CREATE INDEX entries_by_kind_time ON entries (kind, recorded_at);
`;

interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'entries, meta and insert-only triggers',
    sql: `
CREATE TABLE schema_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at TEXT NOT NULL
) STRICT;
CREATE TABLE journal_meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
${ENTRIES_DDL}
${insertOnly('entries')}
${insertOnly('journal_meta')}
${insertOnly('schema_migrations')}
`,
  },
  {
    version: 2,
    name: 'retention policies, segments, archived ranges; DELETE only of archived rows',
    sql: `
CREATE TABLE retention_policies (
  version INTEGER PRIMARY KEY,
  sha256 TEXT NOT NULL,
  policy TEXT NOT NULL,
  seq INTEGER NOT NULL
) STRICT;
CREATE TABLE segments (
  segment_id TEXT PRIMARY KEY,
  period_start TEXT NOT NULL,
  period_end TEXT NOT NULL,
  from_seq INTEGER NOT NULL,
  to_seq INTEGER NOT NULL,
  sealed_seq INTEGER NOT NULL,
  file_sha256 TEXT NOT NULL,
  file_bytes INTEGER NOT NULL
) STRICT;
CREATE TABLE archived_ranges (
  segment_id TEXT PRIMARY KEY REFERENCES segments (segment_id),
  from_seq INTEGER NOT NULL,
  to_seq INTEGER NOT NULL,
  archived_seq INTEGER NOT NULL,
  chain_head BLOB NOT NULL CHECK (length(chain_head) = 32),
  store TEXT NOT NULL,
  location TEXT NOT NULL,
  sha256 TEXT NOT NULL
) STRICT;
CREATE TABLE archived_nodes (
  level INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  hash BLOB NOT NULL CHECK (length(hash) = 32),
  PRIMARY KEY (level, idx)
) STRICT;
${insertOnly('retention_policies')}
${insertOnly('segments')}
${insertOnly('archived_ranges')}
${insertOnly('archived_nodes')}
DROP TRIGGER entries_no_delete;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
WHEN OLD.seq = 0 OR NOT EXISTS (
  SELECT 1 FROM archived_ranges a JOIN entries e ON e.seq = a.archived_seq AND e.kind = 'segment.archived'
  WHERE OLD.seq BETWEEN a.from_seq AND a.to_seq)
BEGIN SELECT RAISE(ABORT, 'activity-journal: entries is insert-only; DELETE is forbidden (except rows of a segment whose segment.archived entry is committed)'); END;
`,
  },
  {
    version: 3,
    name: 'pruned segments: archived copies whose expired payloads were dropped',
    sql: `
CREATE TABLE pruned_segments (
  segment_id TEXT NOT NULL REFERENCES segments (segment_id),
  generation INTEGER NOT NULL CHECK (generation >= 1),
  pruned_seq INTEGER NOT NULL,
  store TEXT NOT NULL,
  location TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  file_sha256 TEXT NOT NULL,
  dropped_entries INTEGER NOT NULL,
  dropped_by_class TEXT NOT NULL,
  PRIMARY KEY (segment_id, generation)
) STRICT;
${insertOnly('pruned_segments')}
`,
  },
  {
    version: 4,
    name: 'retention assignments: promises raised by later decisions (retention.assigned)',
    sql: `
CREATE TABLE retention_assignments (
  assigned_seq INTEGER PRIMARY KEY,
  target_seq INTEGER NOT NULL,
  retention_class TEXT NOT NULL
) STRICT;
CREATE INDEX retention_assignments_by_target ON retention_assignments (target_seq);
${insertOnly('retention_assignments')}
`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

/** Brings a journal opened for writing up to the current schema, one transaction per migration. */
export function migrate(db: Database.Database, now: () => string): void {
  const appId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  if (appId !== APPLICATION_ID) {
    const tables = db.prepare(`SELECT count(*) AS n FROM sqlite_schema`).get() as { n: number };
    if (appId !== 0 || tables.n > 0) {
      throw new JournalFileError(
        'NOT_A_JOURNAL',
        `the file is an SQLite database but not an activity-journal journal (application_id ${appId})`,
      );
    }
    db.pragma(`application_id = ${APPLICATION_ID}`);
  }
  if (version > SCHEMA_VERSION) {
    throw new JournalFileError(
      'SCHEMA_TOO_NEW',
      `the journal has schema version ${version}, newer than this program knows (${SCHEMA_VERSION}); upgrade activity-journal`,
    );
  }
  for (const m of MIGRATIONS) {
    if (m.version <= version) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, now());
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
  }
}

/** Checks a journal opened read-only: ours, and not newer than this program. */
export function checkReadable(db: Database.Database): void {
  const appId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  if (appId !== APPLICATION_ID) throw new JournalFileError('NOT_A_JOURNAL', `not an activity-journal journal (application_id ${appId})`);
  if (version === 0) throw new JournalFileError('EMPTY', 'the journal has not been initialised yet (start the journal service once)');
  if (version > SCHEMA_VERSION)
    throw new JournalFileError(
      'SCHEMA_TOO_NEW',
      `the journal has schema version ${version}, newer than this program knows (${SCHEMA_VERSION})`,
    );
}
