import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { JournalWriter } from '../../src/journal/writer.ts';
import { JournalReader } from '../../src/journal/reader.ts';
import { createJournalServer } from '../../src/journal/service/server.ts';
import { HttpJournalClient } from '../../src/journal/service/http-client.ts';
import type { AddressInfo } from 'node:net';
import { verifyJournal } from '../../src/journal/verify.ts';
import { readSealKey } from '../../src/journal/identity.ts';
import { IdempotencyConflictError } from '../../src/journal/errors/idempotency-conflict.error.ts';
import { EntryValidationError } from '../../src/journal/errors/entry-validation.error.ts';
import { JournalFileError } from '../../src/journal/errors/journal-file.error.ts';
import { tempDir } from '../helpers/tmp.ts';
import { runCliSync } from '../helpers/cli.ts';
import { DirectoryAnchor } from '../../src/journal/anchors.ts';
import { ruleDecision, stateChange } from '../helpers/entries.ts';

let tmp: { dir: string; cleanup: () => void };
let path: string;
let keysDir: string;
const open = (extra: Partial<Parameters<typeof JournalWriter.open>[0]> = {}): Promise<JournalWriter> =>
  JournalWriter.open({ path, keysDir, checkpointEveryMs: 0, ...extra });

function count(kind?: string): number {
  const db = new Database(path, { readonly: true });
  try {
    const row = (
      kind
        ? db.prepare('SELECT count(*) AS n FROM entries WHERE kind = ?').get(kind)
        : db.prepare('SELECT count(*) AS n FROM entries').get()
    ) as { n: number };
    return row.n;
  } finally {
    db.close();
  }
}

function verify(): ReturnType<typeof verifyJournal> {
  const reader = JournalReader.open(path);
  try {
    return verifyJournal(reader.connection, { sealKey: readSealKey(keysDir) });
  } finally {
    reader.close();
  }
}

beforeEach(() => {
  tmp = tempDir('aj-writer-');
  path = join(tmp.dir, 'journal.sqlite');
  keysDir = join(tmp.dir, 'keys');
});
afterEach(() => tmp.cleanup());

describe('JournalWriter', () => {
  it('starts a new journal with its journal.created entry at seq 0, in a 0600 file', async () => {
    const w = await open();
    await w.close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const reader = JournalReader.open(path);
    const genesis = reader.bySeq(0);
    reader.close();
    expect(genesis?.kind).toBe('journal.created');
    expect((genesis?.payload as { verifierKey: string }).verifierKey).toMatch(/^activity-journal\/[0-9a-f-]+\+[0-9a-f]{8}\+/);
  });

  it('numbers entries without gaps and returns the stored entry', async () => {
    const w = await open();
    const a = await w.append(stateChange('k-1'));
    const b = await w.append(stateChange('k-2'));
    await w.close();
    expect([a.entry.seq, b.entry.seq]).toEqual([1, 2]);
    expect(a.duplicate).toBe(false);
    expect(a.entry.payload).toEqual(stateChange('k-1').payload);
    expect(a.entry.chainHash).toMatch(/^[0-9a-f]{64}$/);
    expect(verify().ok).toBe(true);
  });

  it('returns the existing entry for a repeated idempotency key, and adds nothing', async () => {
    const w = await open();
    const first = await w.append(stateChange('k-1'));
    const again = await w.append(stateChange('k-1'));
    const size = w.size;
    await w.close();
    expect(again.duplicate).toBe(true);
    expect(again.entry.seq).toBe(first.entry.seq);
    expect(again.entry.id).toBe(first.entry.id);
    expect(size).toBe(2);
  });

  it('refuses the same key with different content, naming what differs, and writes nothing', async () => {
    const w = await open();
    await w.append(stateChange('k-1'));
    await expect(w.append(stateChange('k-1', 'c-1', 'churned'))).rejects.toThrow(IdempotencyConflictError);
    await expect(w.append(stateChange('k-1', 'c-1', 'churned'))).rejects.toThrow(/payload/);
    const size = w.size;
    await w.close();
    expect(size).toBe(2);
  });

  it('writes a batch whole or not at all', async () => {
    const w = await open();
    await w.append(stateChange('k-1'));
    await expect(w.appendBatch([stateChange('k-2'), stateChange('k-1', 'c-1', 'other'), stateChange('k-3')])).rejects.toThrow(
      IdempotencyConflictError,
    );
    await expect(w.appendBatchReceived([stateChange('k-2'), { ...stateChange('k-4'), kind: 'nope' }])).rejects.toThrow(
      EntryValidationError,
    );
    expect(w.size).toBe(2);
    const ok = await w.appendBatch([stateChange('k-2'), stateChange('k-2'), stateChange('k-1')]);
    expect(ok.map((r) => [r.entry.seq, r.duplicate])).toEqual([
      [2, false],
      [2, true],
      [1, true],
    ]);
    await w.close();
  });

  it('groups concurrent appends into few transactions, acknowledging each', async () => {
    const w = await open();
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => w.append(ruleDecision(`g-${i}`, `c-${i % 7}`))));
    const stats = { ...w.stats };
    await w.close();
    expect(new Set(results.map((r) => r.entry.seq)).size).toBe(500);
    expect(stats.entries).toBeGreaterThanOrEqual(500);
    // 500 concurrent appends issued in one tick must share transactions (group commit), not take 500.
    expect(stats.transactions).toBeLessThan(10);
    expect(stats.largestTransaction).toBeGreaterThan(100);
  });

  it('checkpoints every N entries and on close, and the journal verifies', async () => {
    const w = await open({ checkpointEveryEntries: 10 });
    for (let i = 0; i < 25; i++) await w.append(stateChange(`k-${i}`));
    await w.close();
    expect(count('checkpoint')).toBe(3); // after 10, after 20, and the final one on close
    const report = verify();
    expect(report.ok).toBe(true);
    expect(report.checkpointsChecked).toBe(3);
    expect(report.sealsChecked).toBe(true);
  });

  it('signs a new journal to its end on its first clean close, and adds nothing on a close with nothing new', async () => {
    const rows = (): { seq: number; kind: string; payload: string }[] => {
      const db = new Database(path, { readonly: true });
      try {
        return db.prepare('SELECT seq, kind, payload FROM entries ORDER BY seq').all() as { seq: number; kind: string; payload: string }[];
      } finally {
        db.close();
      }
    };
    mkdirSync(join(tmp.dir, 'anchors'));
    const w = await open({ anchors: [new DirectoryAnchor(join(tmp.dir, 'anchors'))] });
    await w.close();
    const all = rows();
    const cp = all.filter((r) => r.kind === 'checkpoint').at(-1);
    expect(cp).toBeDefined();
    // The checkpoint covers every entry before it; only its own anchoring outcome follows it.
    expect((JSON.parse(cp?.payload ?? '{}') as { treeSize: number }).treeSize).toBe(cp?.seq);
    expect(all.filter((r) => r.seq > (cp?.seq ?? 0)).map((r) => r.kind)).toEqual(['checkpoint.anchored']);
    expect(verify()).toMatchObject({ ok: true, checkpointsChecked: 1 });

    const again = await open({ anchors: [new DirectoryAnchor(join(tmp.dir, 'anchors'))] });
    await again.close();
    expect(rows().length).toBe(all.length);
  });

  it('carries on after a restart with the same chain and tree', async () => {
    const w1 = await open({ checkpointEveryEntries: 7 });
    for (let i = 0; i < 20; i++) await w1.append(stateChange(`a-${i}`));
    await w1.close();
    const w2 = await open({ checkpointEveryEntries: 7 });
    const dup = await w2.append(stateChange('a-3'));
    expect(dup.duplicate).toBe(true);
    for (let i = 0; i < 20; i++) await w2.append(stateChange(`b-${i}`));
    await w2.close();
    expect(verify().ok).toBe(true);
  });

  it('refuses a second writer on the same journal, in this process and in another', async () => {
    const w = await open();
    await expect(open()).rejects.toThrow(JournalFileError);
    await expect(open()).rejects.toThrow(/already open for writing by pid/);
    const other = runCliSync(['--journal', path, 'checkpoint'], {
      env: { ...process.env, JOURNAL_KEYS_DIR: keysDir, JOURNAL_APPEND_TOKEN: '', JOURNAL_READ_TOKEN: '' },
    });
    expect(other.status).not.toBe(0);
    expect(other.stderr).toMatch(/already open for writing/);
    await w.close();
    const again = await open();
    await again.close();
  });

  it('on a full disk refuses the commit with the reason, says it is not writing until a commit succeeds, and resumes', async () => {
    const w = await open();
    await w.append(stateChange('before'));
    expect(w.writeHealth).toEqual({ ok: true });
    // The writer's own connection capped at the pages it has: SQLite's "database or disk is full", as on a full disk.
    const db = (w as unknown as { db: Database.Database }).db;
    db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
    const refused = w.append(stateChange('while-full', 'c-1', 'x'.repeat(50_000)));
    await expect(refused).rejects.toMatchObject({
      code: 'WRITE_FAILED',
      message: expect.stringContaining('database or disk is full') as unknown,
    });
    const failing = w.writeHealth;
    expect(failing).toMatchObject({ ok: false, reason: expect.stringContaining('database or disk is full') as unknown });
    // The service's /healthz answers 503 with since when and why, so that the web server's health check says so.
    const reader = JournalReader.open(path);
    const server = createJournalServer({ writer: w, reader, credentials: { appendToken: 'a'.repeat(32), readToken: 'r'.repeat(32) } });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const client = new HttpJournalClient({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, attempts: 1 });
    try {
      const health = await client.health().then(
        () => null,
        (e: unknown) => e,
      );
      expect(health).toMatchObject({ status: 503, code: 'WRITE_FAILED' });
      expect((health as Error).message).toMatch(/refusing writes since \d{4}-.*database or disk is full/);
      db.pragma('max_page_count = 1073741823');
      await w.append(stateChange('after'));
      await expect(client.health()).resolves.toMatchObject({ ok: true });
    } finally {
      await client.close();
      await new Promise((r) => server.close(r));
      reader.close();
    }
    expect(count()).toBe(3); // journal.created, before, after: the refused entry took no seq
    expect(w.writeHealth).toEqual({ ok: true });
    await w.close();
    expect(verify().ok).toBe(true);
  });

  it('refuses UPDATE and DELETE at the schema level', async () => {
    const w = await open();
    await w.append(stateChange('k-1'));
    await w.close();
    const db = new Database(path);
    expect(() => db.prepare(`UPDATE entries SET actor = 'mallory' WHERE seq = 1`).run()).toThrow(/insert-only; UPDATE is forbidden/);
    expect(() => db.prepare(`DELETE FROM entries WHERE seq = 1`).run()).toThrow(/insert-only; DELETE is forbidden/);
    expect(db.pragma('application_id', { simple: true })).toBe(0x414a4e4c);
    db.close();
  });

  it('refuses to open a file that is not a journal', async () => {
    const db = new Database(path);
    db.exec('CREATE TABLE t (x)');
    db.close();
    await expect(open()).rejects.toThrow(/not an activity-journal journal/);
  });
});
