/**
 * What the audit read index's files hold and who may read them: the file, its -wal and -shm are 0600; contacts
 * are keyed hashes (HMAC), never a plain SHA-256 that a list of candidate addresses reverses; an index of the
 * old, unkeyed schema is emptied and rebuilt; and after a forget neither the person's keyed hash, nor their
 * address, nor its plain hash is anywhere in the three files' bytes.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { chmodSync, existsSync, readFileSync, statSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { tempDir } from '../helpers/tmp.ts';
import { JournalWriter } from '../../src/journal/writer.ts';
import { JournalReader } from '../../src/journal/reader.ts';
import { indexFiles, keyedContactHasher, ReadIndex } from '../../src/audit/read-index.ts';

let tmp: { dir: string; cleanup: () => void };
beforeEach(() => {
  tmp = tempDir('aj-index-files-');
});
afterEach(() => tmp.cleanup());

const DANA = 'Dana.Person@Example.com';
const key = randomBytes(32);
const KEY = keyedContactHasher(key);

/** A journal of `n` emails, each from buyer<i>@example.com to sales, and #3 from Dana (unsealed: the index's own keying is under test). */
async function journal(n: number): Promise<{ writer: JournalWriter; reader: JournalReader; danaSeq: number }> {
  const path = join(tmp.dir, 'journal.sqlite');
  const writer = await JournalWriter.open({ path, keysDir: join(tmp.dir, 'keys'), checkpointEveryMs: 0 });
  let danaSeq = -1;
  for (let i = 0; i < n; i++) {
    const from = i === 3 ? DANA : `buyer${i}@example.com`;
    const { entry } = await writer.append({
      kind: 'interaction.received',
      source: 'gmail',
      actor: 'connector:gmail',
      correlationId: `c-${i}`,
      idempotencyKey: `ix/${i}`,
      occurredAt: '2026-11-02T10:00:00Z',
      payload: {
        channel: 'email',
        sourceId: `m-${i}`,
        direction: 'inbound',
        occurredAt: '2026-11-02T10:00:00Z',
        participants: [
          { role: 'from', address: from },
          { role: 'to', address: 'sales@northwind.example' },
        ],
        subject: 's',
        text: 't',
      },
    });
    if (i === 3) danaSeq = entry.seq;
  }
  return { writer, reader: JournalReader.open(path), danaSeq };
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Every way a person could still be read out of the index: keyed hash (hex, raw), address, plain SHA-256 (hex, raw). */
function traces(address: string): Record<string, Buffer> {
  const norm = address.trim().toLowerCase();
  const keyed = KEY(address);
  return {
    'keyed hash (hex)': Buffer.from(keyed),
    'keyed hash (raw)': Buffer.from(keyed, 'hex'),
    address: Buffer.from(norm),
    'address as typed': Buffer.from(address),
    'sha256 (hex)': Buffer.from(sha256(norm).toString('hex')),
    'sha256 (raw)': sha256(norm),
  };
}

/** Which of `needles` occur in the raw bytes of the index file, its -wal or its -shm (case-insensitively for text). */
function found(indexPath: string, needles: Record<string, Buffer>): string[] {
  const hits: string[] = [];
  for (const file of indexFiles(indexPath).filter((f) => existsSync(f))) {
    const bytes = readFileSync(file);
    const lower = Buffer.from(bytes.toString('latin1').toLowerCase(), 'latin1');
    for (const [what, needle] of Object.entries(needles)) {
      if (bytes.includes(needle) || lower.includes(Buffer.from(needle.toString('latin1').toLowerCase(), 'latin1')))
        hits.push(`${what} in ${file.slice(indexPath.length) || 'the file'}`);
    }
  }
  return hits;
}

const modes = (indexPath: string): string[] => indexFiles(indexPath).map((f) => (statSync(f).mode & 0o777).toString(8));

describe('the audit read index files', () => {
  it('creates the index, its -wal and -shm 0600 whatever the umask, and makes existing ones 0600 on open', async () => {
    const { writer, reader } = await journal(3);
    const indexPath = join(tmp.dir, 'data', 'audit-index.sqlite');
    const umask = process.umask(0);
    try {
      const index = ReadIndex.open(indexPath, KEY);
      index.catchUp(reader);
      expect(modes(indexPath)).toEqual(['600', '600', '600']);
      index.close();
    } finally {
      process.umask(umask);
    }
    // An index left by an older version (0644 all three, as SQLite creates them by default).
    const old = new Database(indexPath);
    old.pragma('journal_mode = WAL');
    old.prepare('SELECT count(*) FROM meta').get();
    for (const f of indexFiles(indexPath)) chmodSync(f, 0o644);
    const index = ReadIndex.open(indexPath, KEY);
    expect(modes(indexPath)).toEqual(['600', '600', '600']);
    index.close();
    old.close();
    reader.close();
    await writer.close();
  });

  it('keys contacts by an HMAC: neither an address nor its plain SHA-256 is in the files, and lookups still work', async () => {
    const { writer, reader } = await journal(20);
    const indexPath = join(tmp.dir, 'audit-index.sqlite');
    const index = ReadIndex.open(indexPath, KEY);
    index.catchUp(reader);
    expect(index.query({ contact: ' dana.person@EXAMPLE.com ' }).rows.map((r) => r.correlationId)).toEqual(['c-3']);
    expect(index.query({ contact: 'buyer7@example.com' }).rows.map((r) => r.correlationId)).toEqual(['c-7']);
    expect(index.query({ contact: 'sales@northwind.example' }).matches).toEqual({ count: 20, capped: false });
    // The scan can see: the keyed hash is there (the index is open, its WAL in use).
    expect(found(indexPath, { keyed: Buffer.from(KEY(DANA)) })).not.toEqual([]);
    for (const address of [DANA, 'buyer7@example.com', 'sales@northwind.example']) {
      const { 'keyed hash (hex)': _hex, 'keyed hash (raw)': _raw, ...clear } = traces(address);
      expect(found(indexPath, clear), address).toEqual([]);
    }
    // Under another key the same address finds nothing: the hash is keyed.
    index.close();
    const otherKey = ReadIndex.open(indexPath, keyedContactHasher(randomBytes(32)));
    expect(otherKey.query({ contact: DANA }).rows).toEqual([]); // emptied: it was built under another key
    otherKey.catchUp(reader);
    expect(otherKey.query({ contact: DANA }).rows.map((r) => r.correlationId)).toEqual(['c-3']);
    otherKey.close();
    reader.close();
    await writer.close();
  });

  it('empties an index of the old schema (unkeyed SHA-256 contacts), overwriting them, and rebuilds it keyed', async () => {
    const { writer, reader } = await journal(20);
    const indexPath = join(tmp.dir, 'audit-index.sqlite');
    const index = ReadIndex.open(indexPath, KEY);
    index.catchUp(reader);
    index.close();
    // What schema 3 wrote: the plain SHA-256 of every participant.
    const old = new Database(indexPath);
    old.exec('DELETE FROM contacts');
    const insert = old.prepare('INSERT INTO contacts (contact_hash, seq) VALUES (?, ?)');
    const rows = old.prepare('SELECT seq, correlation_id FROM interactions').all() as { seq: number; correlation_id: string }[];
    for (const r of rows) {
      const i = Number(r.correlation_id.slice(2));
      insert.run(sha256(i === 3 ? DANA.toLowerCase() : `buyer${i}@example.com`).toString('hex'), r.seq);
      insert.run(sha256('sales@northwind.example').toString('hex'), r.seq);
    }
    old.prepare(`UPDATE meta SET value = '3' WHERE key = 'schema'`).run();
    old.close();
    expect(found(indexPath, { 'sha256 (hex)': Buffer.from(sha256(DANA.toLowerCase()).toString('hex')) })).toHaveLength(1);

    const upgraded = ReadIndex.open(indexPath, KEY);
    expect(upgraded.lastSeq()).toBe(-1);
    for (const address of [DANA, 'buyer7@example.com', 'sales@northwind.example'])
      expect(found(indexPath, traces(address)), address).toEqual([]);
    upgraded.catchUp(reader);
    expect(upgraded.query({ contact: DANA }).rows.map((r) => r.correlationId)).toEqual(['c-3']);
    for (const address of [DANA, 'sales@northwind.example']) {
      const { 'keyed hash (hex)': _hex, 'keyed hash (raw)': _raw, ...clear } = traces(address);
      expect(found(indexPath, clear), address).toEqual([]);
    }
    upgraded.close();
    reader.close();
    await writer.close();
  });

  it('forget leaves nothing of the person in the index file, its -wal or its -shm, and keeps everyone else findable', async () => {
    const { writer, reader, danaSeq } = await journal(40);
    const indexPath = join(tmp.dir, 'audit-index.sqlite');
    const index = ReadIndex.open(indexPath, KEY);
    index.catchUp(reader);
    expect(found(indexPath, traces(DANA))).toContain('keyed hash (hex) in -wal');
    const result = index.forget('  dana.person@example.COM', [danaSeq]);
    // Dana's row, and the other contact (sales) of her erased interaction.
    expect(result).toEqual({ removed: 2, walTruncated: true });
    expect(found(indexPath, traces(DANA))).toEqual([]);
    expect(index.query({ contact: DANA }).rows).toEqual([]);
    expect(index.query({ contact: 'buyer4@example.com' }).rows.map((r) => r.correlationId)).toEqual(['c-4']);
    expect(index.query({ contact: 'sales@northwind.example' }).matches).toEqual({ count: 39, capped: false });
    // The interaction itself stays (ids and filters, nothing personal).
    expect(index.query({ limit: 500 }).rows).toHaveLength(40);
    index.close();
    expect(found(indexPath, traces(DANA))).toEqual([]);
    reader.close();
    await writer.close();
  });

  it("a privacy.erased entry folded from the journal drops the subject's rows, overwritten, WAL truncated", async () => {
    const { writer, reader } = await journal(40);
    const indexPath = join(tmp.dir, 'audit-index.sqlite');
    const index = ReadIndex.open(indexPath, KEY);
    index.catchUp(reader);
    expect(found(indexPath, traces(DANA))).not.toEqual([]);
    // In production the index is keyed by the key store's subject hash, which privacy.erased names.
    await writer.append({
      kind: 'privacy.erased',
      source: 'cli',
      actor: 'operator',
      correlationId: `privacy/${KEY(DANA).slice(0, 32)}`,
      idempotencyKey: 'privacy/erased/x',
      payload: {
        subjectHash: KEY(DANA),
        keyIds: [],
        reason: 'erasure request',
        entries: 1,
        correlations: 1,
        authentication: `hmac-sha256:${'0'.repeat(64)}`,
      },
    });
    expect(index.catchUp(reader)).toBe(1);
    expect(index.query({ contact: DANA }).rows).toEqual([]);
    expect(found(indexPath, traces(DANA))).toEqual([]);
    expect(index.query({ contact: 'buyer4@example.com' }).rows.map((r) => r.correlationId)).toEqual(['c-4']);
    index.close();
    reader.close();
    await writer.close();
  });

  it('a privacy.erased the key store does not authenticate drops no rows (a forged one cannot hide a person)', async () => {
    const { writer, reader } = await journal(10);
    const tag = `hmac-sha256:${'1'.repeat(64)}`;
    const index = ReadIndex.open(join(tmp.dir, 'audit-index.sqlite'), KEY, { erasureAuthentic: (p) => p.authentication === tag });
    index.catchUp(reader);
    const erasure = (key: string, authentication: string) => ({
      kind: 'privacy.erased' as const,
      source: 'cli',
      actor: 'operator',
      correlationId: `privacy/${KEY(DANA).slice(0, 32)}`,
      idempotencyKey: key,
      payload: { subjectHash: KEY(DANA), keyIds: [], reason: 'erasure request', entries: 1, correlations: 1, authentication },
    });
    await writer.append(erasure('privacy/erased/forged', `hmac-sha256:${'0'.repeat(64)}`));
    expect(index.catchUp(reader)).toBe(1);
    expect(index.query({ contact: DANA }).rows).toHaveLength(1);
    await writer.append(erasure('privacy/erased/real', tag));
    index.catchUp(reader);
    expect(index.query({ contact: DANA }).rows).toEqual([]);
    index.close();
    reader.close();
    await writer.close();
  });
});
