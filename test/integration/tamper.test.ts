/**
 * Tamper evidence, end to end: each test writes a real journal with the real writer (anchored to a directory),
 * tampers with the file through a raw SQLite connection the way an attacker with file access would (dropping
 * the insert-only triggers first, and putting them back afterwards to cover their tracks), and then runs the
 * real `activity-journal verify` command line, asserting the exit code and the exact first bad seq.
 */
import { runCli, type CliResult } from '../helpers/cli.ts';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { DirectoryAnchor, readAnchoredNotes } from '../../src/journal/anchors.ts';
import { parseSignedCheckpoint } from '../../src/journal/checkpoint.ts';
import { canonicalHeader, prepareEntry, uuidv7, type AppendInput } from '../../src/journal/entry.ts';
import { JournalFileError } from '../../src/journal/errors/journal-file.error.ts';
import { JournalIntegrityError } from '../../src/journal/errors/journal-integrity.error.ts';
import { HOUSEKEEPING_KINDS } from '../../src/journal/kinds.ts';
import { CompactTree, hashLeaf } from '../../src/journal/merkle.ts';
import { ENTRY_COLUMNS, StoredNodes, rowHeader, type EntryRow } from '../../src/journal/store.ts';
import type { VerifyReport } from '../../src/journal/verify.ts';
import { JournalWriter } from '../../src/journal/writer.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHECKPOINT_EVERY = 10;
const USER_ENTRIES = 50;

// ---------------------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------------------

interface Fixture {
  readonly dir: string;
  readonly journal: string;
  readonly keys: string;
  readonly anchors: string;
}

const tempDirs: string[] = [];

afterEach(() => {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh temp dir laid out as the configuration defaults would: journal, `keys/`, `anchors/`. */
function newFixture(under?: string): Fixture {
  let dir: string;
  if (under === undefined) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aj-tamper-'));
    tempDirs.push(dir);
  } else {
    dir = path.join(under, 'forgery');
    fs.mkdirSync(dir);
  }
  const anchors = path.join(dir, 'anchors');
  fs.mkdirSync(anchors);
  return { dir, journal: path.join(dir, 'journal.sqlite'), keys: path.join(dir, 'keys'), anchors };
}

const DEALS = ['D-1042', 'D-1043', 'D-2001'] as const;
const OWNERS = ['jonas.weber', 'lea.schmidt', 'tom.becker'] as const;

/** The i-th of a realistic mix of entries: an email received, the routing rule's decision, the deal moving on. */
function sampleEntry(i: number): AppendInput {
  const deal = DEALS[i % DEALS.length] as string;
  const owner = OWNERS[Math.floor(i / 3) % OWNERS.length] as string;
  const correlationId = `deal/${deal}`;
  const occurredAt = new Date(Date.UTC(2026, 0, 12, 9, 0, 0) + i * 61_000).toISOString();
  switch (i % 3) {
    case 0:
      return {
        kind: 'interaction.received',
        source: 'gmail-connector',
        actor: 'connector:gmail/sales@example.com',
        correlationId,
        occurredAt,
        idempotencyKey: `gmail/msg-${1000 + i}`,
        payload: {
          channel: 'email',
          sourceId: `gmail:msg-${1000 + i}`,
          direction: 'inbound',
          occurredAt,
          participants: [
            { role: 'from', address: 'maria.keller@kunde-example.de', name: 'Maria Keller' },
            { role: 'to', address: 'sales@example.com' },
            { role: 'cc', address: `${owner}@example.com` },
          ],
          subject: `Re: quote for ${deal}, volume pricing (message ${i})`,
          text:
            'Hello, thank you for the revised quote. We would like to go ahead with 250 seats if the volume discount ' +
            'also applies to the second year, and we need the data processing agreement signed before the pilot starts.',
          threadId: `thread-${deal}`,
          metadata: { mailbox: 'sales', labels: ['inbox', 'customer'], sizeBytes: 4200 + i },
        },
      };
    case 1:
      return {
        kind: 'rule.decision',
        source: 'rules-engine',
        actor: 'rule:lead-routing',
        correlationId,
        causationId: `gmail/msg-${1000 + i - 1}`,
        idempotencyKey: `rules/lead-routing/${i}`,
        payload: {
          ruleId: 'lead-routing',
          ruleVersion: '2026-01-03',
          inputEntryId: `gmail:msg-${1000 + i - 1}`,
          evaluated: { region: 'DACH', employees: 250 + i, budgetEur: 48_000, lastContactDays: i % 9, existingCustomer: false },
          outcome: 'route-to-enterprise',
          reason: 'Company size above 200 employees and a budget over 40k EUR; the enterprise team owns DACH accounts of that size.',
        },
      };
    default:
      return {
        kind: 'state.changed',
        source: 'crm-sync',
        actor: `user:${owner}`,
        correlationId,
        causationId: `rules/lead-routing/${i - 1}`,
        idempotencyKey: `crm/${deal}/stage/${i}`,
        payload: {
          entity: `deal:${deal}`,
          field: 'stage',
          from: { stage: 'qualified', probability: 0.3, owner, amountEur: 40_000 },
          to: {
            stage: 'proposal',
            probability: 0.5,
            owner,
            amountEur: 48_000,
            note: `proposal sent after call ${i}; awaiting legal review of the DPA`,
          },
        },
      };
  }
}

interface Built {
  readonly origin: string;
  /** Entries in the file after a clean close. */
  readonly size: number;
}

/** Opens the writer, appends entries [from, from+count) one request at a time, checkpoints and closes cleanly. */
async function writeJournal(fx: Fixture, from = 0, count = USER_ENTRIES): Promise<Built> {
  const writer = await JournalWriter.open({
    path: fx.journal,
    keysDir: fx.keys,
    anchors: [new DirectoryAnchor(fx.anchors)],
    checkpointEveryEntries: CHECKPOINT_EVERY,
    checkpointEveryMs: 0,
  });
  const origin = writer.identity.origin;
  try {
    for (let i = from; i < from + count; i++) {
      const r = await writer.append(sampleEntry(i));
      expect(r.duplicate).toBe(false);
    }
    await writer.checkpoint();
  } finally {
    await writer.close();
  }
  // A clean close leaves everything in the main file, which is what gets copied and restored below.
  expect(fs.existsSync(`${fx.journal}-wal`) && fs.statSync(`${fx.journal}-wal`).size > 0).toBe(false);
  return { origin, size: readRows(fx.journal).length };
}

function readRows(file: string): EntryRow[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(`SELECT ${ENTRY_COLUMNS} FROM entries ORDER BY seq`).all() as EntryRow[];
  } finally {
    db.close();
  }
}

function rowAt(file: string, seq: number): EntryRow {
  const row = readRows(file).find((r) => r.seq === seq);
  if (!row) throw new Error(`no row at seq ${seq}`);
  return row;
}

/** The first client-written entry at or after `from` (never a checkpoint or other housekeeping entry). */
function userSeqFrom(file: string, from: number): number {
  const row = readRows(file).find((r) => r.seq >= from && !HOUSEKEEPING_KINDS.has(r.kind));
  if (!row) throw new Error(`no user entry at or after seq ${from}`);
  return row.seq;
}

/** A target in the middle of the journal that is not a checkpoint entry. */
function middleTarget(fx: Fixture, size: number): number {
  const seq = userSeqFrom(fx.journal, Math.floor(size / 2) - 2);
  expect(rowAt(fx.journal, seq).kind).not.toBe('checkpoint');
  expect(seq).toBeGreaterThan(CHECKPOINT_EVERY);
  expect(seq).toBeLessThan(size - CHECKPOINT_EVERY);
  return seq;
}

/** Tree sizes of the checkpoints held by the directory anchor for `origin`, ascending. */
function anchoredSizes(anchors: string, origin: string): number[] {
  return readAnchoredNotes(anchors, origin).map((note) => parseSignedCheckpoint(note).checkpoint.treeSize);
}

// ---------------------------------------------------------------------------------------------------------
// The attacker's tools: a raw better-sqlite3 connection (defensive mode stays on) and the project's own hashing.
// ---------------------------------------------------------------------------------------------------------

const INSERT_ROW = `INSERT INTO entries (${ENTRY_COLUMNS}) VALUES (${ENTRY_COLUMNS.split(', ')
  .map((c) => `@${c}`)
  .join(', ')})`;

/** Drops the insert-only triggers, runs the attack, and re-creates the triggers, all in one transaction. */
function tamper(file: string, attack: (db: Database.Database) => void): void {
  const db = new Database(file, { fileMustExist: true });
  try {
    const triggers = db.prepare(`SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'entries'`).all() as {
      name: string;
      sql: string;
    }[];
    expect(triggers.map((t) => t.name).sort()).toEqual(['entries_no_delete', 'entries_no_update']);
    db.transaction(() => {
      for (const t of triggers) db.exec(`DROP TRIGGER ${t.name}`);
      attack(db);
      for (const t of triggers) db.exec(t.sql);
    })();
  } finally {
    db.close();
  }
}

function setColumn(db: Database.Database, seq: number, column: keyof EntryRow, value: string | Buffer): void {
  const changed = db.prepare(`UPDATE entries SET ${column} = ? WHERE seq = ?`).run(value, seq).changes;
  expect(changed).toBe(1);
}

function flipFirstByte(b: Buffer): Buffer {
  const copy = Buffer.from(b);
  copy[0] = (copy[0] ?? 0) ^ 0x01;
  return copy;
}

/** Recomputes leaf, chain and tree nodes of `row` (at its seq) after `chain`/`tree`, exactly as the writer does. */
function rehash(row: EntryRow, chain: Buffer, tree: CompactTree): EntryRow {
  const leaf = Buffer.from(hashLeaf(Buffer.from(canonicalHeader(rowHeader(row)), 'utf8')));
  const chainHash = createHash('sha256').update(chain).update(leaf).digest();
  const nodes = tree.append(leaf);
  return { ...row, leaf_hash: leaf, chain_hash: chainHash, tree_nodes: nodes.length === 0 ? Buffer.alloc(0) : Buffer.concat(nodes) };
}

/** A well-formed row for `input` at `seq`: payload hash, leaf, chain and tree nodes all correct; the seal is a guess. */
function forgedRow(input: AppendInput, seq: number, recordedAt: string, chain: Buffer, tree: CompactTree, seal: Buffer): EntryRow {
  const p = prepareEntry(input, { maxPayloadBytes: 1024 * 1024 });
  const row: EntryRow = {
    seq,
    id: uuidv7(Date.parse(recordedAt)),
    recorded_at: recordedAt,
    occurred_at: p.occurredAt ?? recordedAt,
    kind: p.kind,
    source: p.source,
    actor: p.actor,
    correlation_id: p.correlationId,
    causation_id: p.causationId,
    idempotency_key: p.idempotencyKey,
    retention_class: p.retentionClass,
    payload: p.payloadText,
    payload_hash: Buffer.from(p.payloadHash, 'hex'),
    leaf_hash: Buffer.alloc(32),
    chain_hash: Buffer.alloc(32),
    tree_nodes: Buffer.alloc(0),
    seal,
  };
  return rehash(row, chain, tree);
}

const FORGED_INPUT: AppendInput = {
  kind: 'state.changed',
  source: 'crm-sync',
  actor: 'user:jonas.weber',
  correlationId: 'deal/D-1042',
  idempotencyKey: 'crm/D-1042/discount/forged',
  occurredAt: '2026-01-12T09:30:00Z',
  payload: { entity: 'deal:D-1042', field: 'discountPercent', from: 10, to: 35 },
};

// ---------------------------------------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------------------------------------

interface VerifyRun {
  /** Defaults to the fixture's keys dir. */
  readonly keysDir?: string;
  /** `--anchors` directories; defaults to the fixture's anchors dir. */
  readonly anchors?: readonly string[];
}

/** The environment of a CLI run: nothing inherited from JOURNAL_*; keys and configured anchors as given. */
function cliEnv(fx: Fixture, keysDir: string, anchorDirs: readonly string[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('JOURNAL_')) env[k] = v;
  // An empty JOURNAL_ANCHOR_DIRS would mean the default <journal dir>/anchors; "no anchors" is a directory that does not exist.
  const configured = anchorDirs.length > 0 ? anchorDirs.join(',') : path.join(fx.dir, 'no-anchors-here');
  return { ...env, JOURNAL_KEYS_DIR: keysDir, JOURNAL_ANCHOR_DIRS: configured, LOG_LEVEL: 'silent', NO_COLOR: '1' };
}

const cli = (args: readonly string[], env: NodeJS.ProcessEnv): Promise<CliResult> => runCli(args, { cwd: ROOT, env, timeoutMs: 60_000 });

/** `verify --json` and plain `verify` on `fx` (run side by side: both only read). */
async function verify(fx: Fixture, run: VerifyRun = {}): Promise<{ json: CliResult; report: VerifyReport; text: CliResult }> {
  const keysDir = run.keysDir ?? fx.keys;
  const anchors = run.anchors ?? [fx.anchors];
  const base = ['--journal', fx.journal, 'verify', ...anchors.flatMap((a) => ['--anchors', a])];
  const env = cliEnv(fx, keysDir, anchors);
  const [json, text] = await Promise.all([cli([...base, '--json'], env), cli(base, env)]);
  let report: VerifyReport;
  try {
    report = JSON.parse(json.stdout.trim()) as VerifyReport;
  } catch {
    throw new Error(`verify --json printed no JSON report (exit ${json.status}):\n${json.stdout}\n${json.stderr}`);
  }
  return { json, report, text };
}

function describeRun(r: CliResult): string {
  return `exit ${r.status}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
}

/** The untouched journal verifies (so that a later failure is the tampering's doing, not the fixture's). */
async function expectIntact(fx: Fixture, run: VerifyRun = {}): Promise<VerifyReport> {
  const { json, report, text } = await verify(fx, run);
  expect(json.status, describeRun(json)).toBe(0);
  expect(report.ok).toBe(true);
  expect(report.firstBadSeq).toBeNull();
  expect(report.sealsChecked).toBe(true);
  expect(text.status, describeRun(text)).toBe(0);
  expect(text.stdout).toMatch(/^ok: \d+ entries intact/);
  return report;
}

/** Exit 1, the exact first bad seq in the JSON report and in the plain output, and a reason matching `reason`. */
async function expectBroken(fx: Fixture, firstBadSeq: number, reason: RegExp, run: VerifyRun = {}): Promise<VerifyReport> {
  const { json, report, text } = await verify(fx, run);
  expect(json.status, describeRun(json)).toBe(1);
  expect(report.ok).toBe(false);
  expect({ firstBadSeq: report.firstBadSeq, reason: report.reason }).toEqual({
    firstBadSeq,
    reason: expect.stringMatching(reason) as unknown,
  });
  expect(text.status, describeRun(text)).toBe(1);
  expect(text.stdout).toContain(`first bad entry: seq ${firstBadSeq}\n`);
  expect(text.stdout).toMatch(reason);
  return report;
}

/** What JournalWriter.open throws for `fx` (with its anchors); fails the test if it opens. */
async function openError(fx: Fixture): Promise<Error> {
  let writer: JournalWriter;
  try {
    writer = await JournalWriter.open({
      path: fx.journal,
      keysDir: fx.keys,
      anchors: [new DirectoryAnchor(fx.anchors)],
      checkpointEveryEntries: CHECKPOINT_EVERY,
      checkpointEveryMs: 0,
    });
  } catch (err) {
    expect(err).toBeInstanceOf(Error);
    return err as Error;
  }
  await writer.close();
  throw new Error('JournalWriter.open accepted the tampered journal');
}

/** Builds the standard journal and checks that it verifies; returns its size and a middle target seq. */
async function intactJournal(): Promise<{ fx: Fixture; built: Built; target: number }> {
  const fx = newFixture();
  const built = await writeJournal(fx);
  expect(built.size).toBeGreaterThan(USER_ENTRIES + USER_ENTRIES / CHECKPOINT_EVERY);
  await expectIntact(fx);
  return { fx, built, target: middleTarget(fx, built.size) };
}

// ---------------------------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------------------------

describe('tamper evidence: `activity-journal verify` finds the first entry an attacker changed', () => {
  it('1. one changed letter in a payload string (still valid JSON) is reported at that seq', async () => {
    const { fx, target } = await intactJournal();
    const original = rowAt(fx.journal, target).payload;
    const m = /":"[a-z]/.exec(original);
    if (!m) throw new Error(`no lower-case string value in ${original}`);
    const at = m.index + 3;
    const edited = original.slice(0, at) + (original[at] === 'a' ? 'b' : 'a') + original.slice(at + 1);
    expect(() => JSON.parse(edited) as unknown).not.toThrow();
    expect(Buffer.byteLength(edited)).toBe(Buffer.byteLength(original));
    expect([...edited].filter((c, i) => c !== original[i])).toHaveLength(1);

    tamper(fx.journal, (db) => setColumn(db, target, 'payload', edited));

    await expectBroken(fx, target, /payload does not match its hash/);
  });

  it.each([
    { column: 'actor' as const, edit: (v: string): string => v.slice(0, -1) + (v.endsWith('x') ? 'y' : 'x') },
    // One millisecond later: still a well-formed timestamp.
    { column: 'recorded_at' as const, edit: (v: string): string => v.replace(/(\d)Z$/, (_, d: string) => `${(Number(d) + 1) % 10}Z`) },
  ])('2. a changed header field ($column) is reported at that seq', async ({ column, edit }) => {
    const { fx, target } = await intactJournal();
    const before = rowAt(fx.journal, target)[column];
    const after = edit(before);
    expect(after).not.toBe(before);

    tamper(fx.journal, (db) => setColumn(db, target, column, after));

    await expectBroken(fx, target, /header does not match its leaf hash/);
  });

  it.each([
    { column: 'leaf_hash' as const, reason: /does not match its leaf hash/ },
    { column: 'chain_hash' as const, reason: /chain hash does not follow/ },
    { column: 'payload_hash' as const, reason: /payload does not match its hash/ },
  ])('3. one changed byte in the stored $column is reported at that seq', async ({ column, reason }) => {
    const { fx, target } = await intactJournal();
    const flipped = flipFirstByte(rowAt(fx.journal, target)[column]);

    tamper(fx.journal, (db) => setColumn(db, target, column, flipped));

    await expectBroken(fx, target, reason);
  });

  it('4. a deleted row is reported at the gap', async () => {
    const { fx, target } = await intactJournal();

    tamper(fx.journal, (db) => expect(db.prepare('DELETE FROM entries WHERE seq = ?').run(target).changes).toBe(1));

    await expectBroken(fx, target, new RegExp(`entry seq ${target} is missing`));
  });

  it('5a. a forged row inserted at k, with everything but the seal recomputed and the rest shifted, is caught by the seal at k', async () => {
    const { fx, built, target: k } = await intactJournal();
    const rows = readRows(fx.journal);
    const tail = rows.slice(k);
    const firstShifted = tail[0] as EntryRow;

    tamper(fx.journal, (db) => {
      // The attacker rebuilds the tree over the untouched prefix and re-links everything from k on.
      const tree = new CompactTree();
      for (const r of rows.slice(0, k)) tree.append(r.leaf_hash);
      let chain = (rows[k - 1] as EntryRow).chain_hash;
      expect(db.prepare('DELETE FROM entries WHERE seq >= ?').run(k).changes).toBe(tail.length);
      const insert = db.prepare(INSERT_ROW);
      // Without keys/entry-seal.key the best the attacker can do is reuse a seal that was there.
      const forged = forgedRow(FORGED_INPUT, k, firstShifted.recorded_at, chain, tree, firstShifted.seal);
      insert.run(forged);
      chain = forged.chain_hash;
      for (const r of tail) {
        const moved = rehash({ ...r, seq: r.seq + 1 }, chain, tree);
        insert.run(moved);
        chain = moved.chain_hash;
      }
    });
    expect(readRows(fx.journal)).toHaveLength(built.size + 1);

    await expectBroken(fx, k, /seal is wrong/);

    // The forgery is otherwise sound: without the seal key nothing is wrong at k, and the first thing that gives
    // it away is the first signed checkpoint after k, whose note no longer matches its (shifted) position.
    const firstCheckpointAfter = rows.find((r) => r.seq > k && r.kind === 'checkpoint');
    if (!firstCheckpointAfter) throw new Error('no checkpoint after the target');
    const noSealKey = path.join(fx.dir, 'no-keys-here');
    const { report } = await verify(fx, { keysDir: noSealKey });
    expect(report).toMatchObject({ ok: false, sealsChecked: false, firstBadSeq: firstCheckpointAfter.seq + 1 });
  });

  it('5b. a forged row appended at the tail with correct hashes but no valid seal is caught at that seq', async () => {
    const { fx, built } = await intactJournal();
    const size = built.size;
    const last = rowAt(fx.journal, size - 1);

    tamper(fx.journal, (db) => {
      const tree = CompactTree.fromNodeSource(size, new StoredNodes(db));
      const recordedAt = new Date(Date.parse(last.recorded_at) + 1000).toISOString();
      db.prepare(INSERT_ROW).run(forgedRow(FORGED_INPUT, size, recordedAt, last.chain_hash, tree, randomBytes(32)));
    });

    await expectBroken(fx, size, /seal is wrong/);
    // Only the seal gives it away: the hashes, the chain, the tree nodes and every anchor are consistent with it.
    const { json, report } = await verify(fx, { keysDir: path.join(fx.dir, 'no-keys-here') });
    expect(json.status, describeRun(json)).toBe(0);
    expect(report).toMatchObject({ ok: true, entries: size + 1, sealsChecked: false });
  });

  it('6. two swapped rows (all columns but seq) are reported at the lower seq', async () => {
    const { fx, target: a } = await intactJournal();
    const b = userSeqFrom(fx.journal, a + 5);
    const rowA = rowAt(fx.journal, a);
    const rowB = rowAt(fx.journal, b);
    expect(rowA.payload).not.toBe(rowB.payload);

    tamper(fx.journal, (db) => {
      expect(db.prepare('DELETE FROM entries WHERE seq IN (?, ?)').run(a, b).changes).toBe(2);
      db.prepare(INSERT_ROW).run({ ...rowB, seq: a });
      db.prepare(INSERT_ROW).run({ ...rowA, seq: b });
    });

    await expectBroken(fx, a, /header does not match its leaf hash/);
  });

  it('7. a truncated tail is caught by the anchor at the new length, and the writer refuses to open it', async () => {
    const { fx, built } = await intactJournal();
    const sizes = anchoredSizes(fx.anchors, built.origin);
    const newest = Math.max(...sizes);
    const length = built.size - 15;
    expect(length).toBeLessThan(newest);
    // verify checks anchors in size order, so it names the smallest anchored checkpoint the journal falls short of;
    // the writer names the newest.
    const smallestBeyond = Math.min(...sizes.filter((s) => s > length));

    tamper(fx.journal, (db) => expect(db.prepare('DELETE FROM entries WHERE seq >= ?').run(length).changes).toBe(15));

    // What is left is internally sound; only the anchor knows that entries are missing.
    const { report: withoutAnchors } = await verify(fx, { anchors: [] });
    expect(withoutAnchors.ok).toBe(true);
    const report = await expectBroken(fx, length, /anchor mismatch: .* holds a signed checkpoint of \d+ entries but the journal has \d+/);
    expect(report.reason).toContain(
      `signed checkpoint of ${smallestBeyond} entries but the journal has ${length}: entries from seq ${length} were removed`,
    );

    const err = await openError(fx);
    expect(err).toBeInstanceOf(JournalIntegrityError);
    expect((err as JournalIntegrityError).firstBadSeq).toBe(length);
    expect(err.message).toContain(`the journal has ${length} entries but anchor dir:${fx.anchors} holds a signed checkpoint of ${newest}`);
    expect(err.message).toMatch(/truncated/);
  });

  it('8a. the file replaced by an internally consistent forgery is rejected (with the keys and the anchors)', async () => {
    const { fx } = await intactJournal();
    const forgery = newFixture(fx.dir);
    await writeJournal(forgery);
    await expectIntact(forgery);

    for (const suffix of ['-wal', '-shm']) fs.rmSync(`${fx.journal}${suffix}`, { force: true });
    fs.copyFileSync(forgery.journal, fx.journal);

    // Seq 0 already differs (another journal id, another key): with the seal key, its seal is the first thing wrong
    // today; a verifier that matched the anchors' origin before scanning could equally report the anchor.
    await expectBroken(fx, 0, /seal is wrong|anchor/);

    const err = await openError(fx);
    expect(err.message).toMatch(/belong to journal .*not to this journal|anchor/);
    expect(err instanceof JournalIntegrityError || (err instanceof JournalFileError && err.code === 'KEY_MISMATCH')).toBe(true);
  });

  it('8b. the file replaced by an internally consistent forgery fails `verify --anchors` even without the seal key', async () => {
    // An auditor who holds the anchor directory but not the writer's keys: the anchors must still say that this
    // is not the journal whose checkpoints they hold.
    const { fx } = await intactJournal();
    const forgery = newFixture(fx.dir);
    await writeJournal(forgery);
    await expectIntact(forgery);
    fs.copyFileSync(forgery.journal, fx.journal);

    await expectBroken(fx, 0, /anchor/, { keysDir: path.join(fx.dir, 'no-keys-here') });
  });

  it('9. an older copy of the file restored is caught by the anchors at the old length, and the writer refuses to open it', async () => {
    const fx = newFixture();
    const first = await writeJournal(fx, 0, 20);
    const old = readRows(fx.journal);
    expect(old.some((r) => r.kind === 'checkpoint')).toBe(true);
    expect(Math.max(...anchoredSizes(fx.anchors, first.origin))).toBeLessThan(first.size);
    const copy = path.join(fx.dir, 'journal.old.sqlite');
    fs.copyFileSync(fx.journal, copy);

    const second = await writeJournal(fx, 20, 30);
    const newest = Math.max(...anchoredSizes(fx.anchors, first.origin));
    expect(newest).toBeGreaterThan(first.size);
    await expectIntact(fx);

    for (const suffix of ['-wal', '-shm']) fs.rmSync(`${fx.journal}${suffix}`, { force: true });
    fs.copyFileSync(copy, fx.journal);
    expect(readRows(fx.journal)).toHaveLength(first.size);
    expect(second.size).toBeGreaterThan(first.size);

    await expectBroken(fx, first.size, /anchor mismatch: .*older copy/);

    const err = await openError(fx);
    expect(err).toBeInstanceOf(JournalIntegrityError);
    expect((err as JournalIntegrityError).firstBadSeq).toBe(first.size);
    expect(err.message).toContain(
      `the journal has ${first.size} entries but anchor dir:${fx.anchors} holds a signed checkpoint of ${newest}`,
    );
  });

  it('10. UPDATE and DELETE on entries through a normal connection fail: the table is insert-only', async () => {
    const { fx, target } = await intactJournal();
    const db = new Database(fx.journal, { fileMustExist: true });
    try {
      expect(() => db.prepare('UPDATE entries SET actor = ? WHERE seq = ?').run('user:mallory', target)).toThrow(/insert-only/);
      expect(() => db.prepare('DELETE FROM entries WHERE seq = ?').run(target)).toThrow(/insert-only/);
      expect(() => db.prepare('DELETE FROM entries').run()).toThrow(/insert-only/);
      expect(() => db.prepare(`UPDATE journal_meta SET value = 'x' WHERE key = 'journal_id'`).run()).toThrow(/insert-only/);
    } finally {
      db.close();
    }
    await expectIntact(fx);
  });

  it('11. an untouched journal verifies against its anchors', async () => {
    const fx = newFixture();
    const built = await writeJournal(fx);
    const report = await expectIntact(fx, { anchors: [fx.anchors] });
    expect(report).toMatchObject({ ok: true, entries: built.size, firstBadSeq: null, reason: null });
    expect(report.anchorsChecked).toBeGreaterThanOrEqual(1);
    expect(report.anchorsChecked).toBe(anchoredSizes(fx.anchors, built.origin).length);
    expect(report.checkpointsChecked).toBeGreaterThanOrEqual(USER_ENTRIES / CHECKPOINT_EVERY);
  });
});
