/**
 * A tamper check on a live journal, between trials: a consistent copy of the journal (SQLite's online backup
 * API; the anchors copied just before it, so that every anchored checkpoint is one the copy already holds),
 * which must verify as it is; then one change, as an attacker with file access would make it (insert-only
 * triggers dropped and put back), and the real `activity-journal verify --json` on the copy must fail (exit 1)
 * and name the first entry that changed. The live journal is never touched.
 */
import { runCliSync } from '../helpers/cli.ts';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { readAnchoredNotes } from '../../src/journal/anchors.ts';
import { parseSignedCheckpoint } from '../../src/journal/checkpoint.ts';
import { originFor, readKeysJournalId } from '../../src/journal/identity.ts';
import { HOUSEKEEPING_KINDS } from '../../src/journal/kinds.ts';

export const TAMPER_KINDS = ['payload-byte', 'delete-row', 'swap-payloads', 'truncate-tail'] as const;
export type TamperKind = (typeof TAMPER_KINDS)[number];

export interface TamperResult {
  readonly kind: TamperKind;
  /** The first seq the change touched: what verify must name. */
  readonly expectedSeq: number;
  readonly passed: boolean;
  /** What went wrong when it did not pass (never any payload). */
  readonly problem: string | null;
  /** verify's report on the copy before and after the change. */
  readonly intact: VerifyRun;
  readonly tampered: VerifyRun;
}

interface VerifyRun {
  readonly status: number | null;
  readonly ok: boolean | null;
  readonly firstBadSeq: number | null;
  readonly reason: string | null;
}

export interface TamperTarget {
  readonly journalPath: string;
  readonly keysDir: string;
  readonly anchorsDir: string;
  /** A scratch directory outside the journal's (small) file system. */
  readonly workDir: string;
}

/**
 * verify on a copy of the journal. The key store (which verify checks against the journal's sealed payloads) is
 * the live journal's: its store, backup and master key, found where the configuration puts them by default.
 */
function runVerify(journal: string, keysDir: string, anchors: string, liveJournal: string): VerifyRun {
  const dataDir = dirname(liveJournal);
  const privacy = {
    KEY_STORE_PATH: join(dataDir, 'privacy', 'subject-keys.sqlite'),
    KEY_STORE_BACKUP: join(dirname(dataDir), `${basename(dataDir)}-key-backup`, 'subject-keys.sqlite'),
    JOURNAL_MASTER_KEY_FILE: join(dataDir, 'secrets', 'master.key'),
  };
  const env = {
    ...process.env,
    ...privacy,
    JOURNAL_PATH: journal,
    JOURNAL_KEYS_DIR: keysDir,
    JOURNAL_ANCHOR_DIRS: anchors,
    JOURNAL_APPEND_TOKEN: '',
    JOURNAL_READ_TOKEN: '',
    LOG_LEVEL: 'error',
  };
  const r = runCliSync(['verify', '--anchors', anchors, '--json'], { env, timeoutMs: 120_000 });
  try {
    const report = JSON.parse(r.stdout) as { ok: boolean; firstBadSeq: number | null; reason: string | null };
    return { status: r.status, ok: report.ok, firstBadSeq: report.firstBadSeq, reason: report.reason };
  } catch {
    return { status: r.status, ok: null, firstBadSeq: null, reason: `no JSON report: ${r.stderr.slice(0, 300)}` };
  }
}

interface Row {
  seq: number;
  kind: string;
  payload: string;
}

/** Drops the insert-only triggers, runs the change, and puts the triggers back, in one transaction. */
function attack(file: string, change: (db: Database.Database) => void): void {
  const db = new Database(file, { fileMustExist: true });
  try {
    const triggers = db.prepare(`SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'entries'`).all() as {
      name: string;
      sql: string;
    }[];
    db.transaction(() => {
      for (const t of triggers) db.exec(`DROP TRIGGER ${t.name}`);
      change(db);
      for (const t of triggers) db.exec(t.sql);
    })();
  } finally {
    db.close();
  }
}

const pick = <T>(xs: readonly T[], random: () => number): T => {
  const x = xs[Math.floor(random() * xs.length)];
  if (x === undefined) throw new Error('nothing to pick from');
  return x;
};

/** Copies the journal and its anchors, checks the copy verifies, changes one thing of `kind`, checks verify fails there. */
export async function tamperCheck(target: TamperTarget, kind: TamperKind, random: () => number): Promise<TamperResult> {
  const dir = join(target.workDir, `tamper-${Date.now().toString(36)}-${Math.floor(random() * 1e6)}`);
  const anchors = join(dir, 'anchors');
  const copy = join(dir, 'journal.sqlite');
  mkdirSync(dir, { recursive: true });
  try {
    // Anchors first: a checkpoint is published only after it is committed, so the copy holds every one of them.
    // (A checkpoint file is written under a hidden temporary name and then linked: those are left out.)
    cpSync(target.anchorsDir, anchors, { recursive: true, filter: (src) => !basename(src).startsWith('.') });
    const live = new Database(target.journalPath, { readonly: true, fileMustExist: true });
    try {
      await live.backup(copy);
    } finally {
      live.close();
    }
    const intact = runVerify(copy, target.keysDir, anchors, target.journalPath);
    const notRun: VerifyRun = { status: null, ok: null, firstBadSeq: null, reason: null };
    if (intact.status !== 0 || intact.ok !== true) {
      return {
        kind,
        expectedSeq: -1,
        passed: false,
        problem: `the untampered copy did not verify: exit ${intact.status}, ${intact.reason}`,
        intact,
        tampered: notRun,
      };
    }

    const db = new Database(copy, { readonly: true });
    const rows = db.prepare('SELECT seq, kind, payload FROM entries ORDER BY seq').all() as Row[];
    db.close();
    const size = rows.length;
    // Entries the pipeline wrote (not checkpoints or other housekeeping), away from both ends.
    const user = rows.filter((r) => !HOUSEKEEPING_KINDS.has(r.kind) && r.seq > 0 && r.seq < size - 1);
    let expectedSeq: number;
    let reason: RegExp;
    switch (kind) {
      case 'payload-byte': {
        // One letter of a string value changed: still valid JSON of the same length, so only the hash can tell.
        const candidates = user.filter((r) => /":"[a-z]/.test(r.payload));
        const row = pick(candidates, random);
        const starts = [...row.payload.matchAll(/":"[a-z]/g)].map((m) => m.index + 3);
        const at = pick(starts, random);
        const edited = row.payload.slice(0, at) + (row.payload[at] === 'a' ? 'b' : 'a') + row.payload.slice(at + 1);
        attack(copy, (d) => d.prepare('UPDATE entries SET payload = ? WHERE seq = ?').run(edited, row.seq));
        expectedSeq = row.seq;
        reason = /payload does not match its hash/;
        break;
      }
      case 'delete-row': {
        const row = pick(
          rows.filter((r) => r.seq > 0 && r.seq < size - 1),
          random,
        );
        attack(copy, (d) => d.prepare('DELETE FROM entries WHERE seq = ?').run(row.seq));
        expectedSeq = row.seq;
        reason = new RegExp(`entry seq ${row.seq} is missing`);
        break;
      }
      case 'swap-payloads': {
        const a = pick(user, random);
        const b = pick(
          user.filter((r) => r.seq !== a.seq && r.payload !== a.payload),
          random,
        );
        attack(copy, (d) => {
          const set = d.prepare('UPDATE entries SET payload = ? WHERE seq = ?');
          set.run(b.payload, a.seq);
          set.run(a.payload, b.seq);
        });
        expectedSeq = Math.min(a.seq, b.seq);
        reason = /payload does not match its hash/;
        break;
      }
      case 'truncate-tail': {
        // Cut below an anchored checkpoint: what is left is internally sound, only the anchor knows.
        const journalId = readKeysJournalId(target.keysDir);
        if (journalId === null) throw new Error(`no journal id in ${target.keysDir}`);
        const sizes = readAnchoredNotes(anchors, originFor(journalId)).map((n) => parseSignedCheckpoint(n).checkpoint.treeSize);
        const newest = Math.max(...sizes);
        const length = Math.max(1, newest - 1 - Math.floor(random() * Math.min(200, newest - 1)));
        attack(copy, (d) => d.prepare('DELETE FROM entries WHERE seq >= ?').run(length));
        expectedSeq = length;
        reason = /anchor mismatch/;
        break;
      }
    }
    const tampered = runVerify(copy, target.keysDir, anchors, target.journalPath);
    const problems: string[] = [];
    if (tampered.status !== 1) problems.push(`verify exited ${tampered.status}, not 1`);
    if (tampered.ok !== false) problems.push(`verify said ok: ${tampered.ok}`);
    if (tampered.firstBadSeq !== expectedSeq) problems.push(`verify named seq ${tampered.firstBadSeq}, not ${expectedSeq}`);
    if (!reason.test(tampered.reason ?? '')) problems.push(`verify's reason does not match ${reason}: ${tampered.reason}`);
    return {
      kind,
      expectedSeq,
      passed: problems.length === 0,
      problem: problems.length === 0 ? null : problems.join('; '),
      intact,
      tampered,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
