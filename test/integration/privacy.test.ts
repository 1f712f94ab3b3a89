/**
 * Crypto-shredding as an operator meets it: entries written by the production writer (sealing on), then the
 * real command line: forget (dry run, for real, again), verify before and after, trace, the key store lost and
 * restored from its backup, a rolled-back key store, and a wrong master key.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { tempDir } from '../helpers/tmp.ts';
import { runCliSync, type CliResult } from '../helpers/cli.ts';
import { loadConfig, type Config } from '../../src/config/config.ts';
import { JournalWriter } from '../../src/journal/writer.ts';
import { openWriterPrivacy } from '../../src/journal/configured-privacy.ts';
import { openKeyStoreForCheck, sealedKeysOf } from '../../src/journal/privacy.ts';
import { JournalReader } from '../../src/journal/reader.ts';
import { openConfiguredIndex } from '../../src/audit/configured-index.ts';
import { indexFiles } from '../../src/audit/read-index.ts';
import { SubjectKeyStore } from '../../src/journal/key-store.ts';
import { loadMasterKey } from '../../src/journal/master-key.ts';
import type { JournalEntry } from '../../src/journal/entry.ts';
import { startService } from '../helpers/service.ts';

let tmp: { dir: string; cleanup: () => void };
let env: NodeJS.ProcessEnv;
let config: Config;
beforeEach(() => {
  tmp = tempDir('aj-privacy-');
  env = {
    ...process.env,
    JOURNAL_PATH: join(tmp.dir, 'data', 'journal.sqlite'),
    LOG_LEVEL: 'warn',
    JOURNAL_APPEND_TOKEN: '',
    JOURNAL_READ_TOKEN: '',
    JOURNAL_MASTER_KEY: '',
    JOURNAL_MASTER_KEY_FILE: '',
    KEY_STORE_PATH: '',
    KEY_STORE_BACKUP: '',
  };
  config = loadConfig({ JOURNAL_PATH: env.JOURNAL_PATH, LOG_LEVEL: 'silent' });
});
afterEach(() => tmp.cleanup());

const cli = (args: string[], extra: NodeJS.ProcessEnv = {}): CliResult => runCliSync(args, { env: { ...env, ...extra } });

const sha = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');
const ALICE = 'Alice.Smith@Customer.example';
const BOB = 'bob@other.example';
const SALES = 'sales@northwind.example';

/** One email from each of Alice and Bob to sales, each with a decision and a CRM write, through the production writer. */
async function seed(): Promise<{ alice: string; bob: string }> {
  const privacy = openWriterPrivacy(config);
  const writer = await JournalWriter.open({ path: config.journal.path, keysDir: config.journal.keysDir, checkpointEveryMs: 0, privacy });
  try {
    const one = async (who: string, tag: string): Promise<string> => {
      const correlationId = `email-thread/gmail/${tag}`;
      const { entry } = await writer.append({
        kind: 'interaction.received',
        source: 'gmail',
        actor: 'connector:gmail',
        correlationId,
        idempotencyKey: `interaction/gmail/${tag}`,
        payload: {
          channel: 'email',
          sourceId: tag,
          direction: 'inbound',
          occurredAt: '2026-11-01T09:00:00Z',
          participants: [
            { role: 'from', address: who, name: `Name of ${tag}` },
            { role: 'to', address: SALES },
          ],
          subject: `Quote for ${tag}`,
          text: `Please call ${tag} on +44 20 7946 0000`,
        },
      });
      const { entry: decision } = await writer.append({
        kind: 'ai.decision',
        source: 'pipeline',
        actor: 'classifier:offline',
        correlationId,
        causationId: entry.id,
        idempotencyKey: `decision/${entry.id}/p@1`,
        payload: {
          inputEntryId: entry.id,
          inputHash: 'a'.repeat(64),
          promptId: 'p',
          promptVersion: '1',
          promptHash: 'b'.repeat(64),
          provider: 'offline',
          model: 'rules',
          outcome: 'ok',
          output: { category: 'sales', summary: `${tag} wants a quote` },
          confidence: 0.9,
          tokens: null,
          latencyMs: 1,
          requestId: null,
          attempts: 1,
        },
      });
      await writer.append({
        kind: 'crm.write',
        source: 'hubspot',
        actor: 'crm:hubspot',
        correlationId,
        causationId: decision.id,
        idempotencyKey: `crm/${entry.id}/upsert/x`,
        payload: {
          system: 'hubspot',
          method: 'POST',
          path: '/crm/v3/objects/emails/batch/upsert',
          status: 200,
          durationMs: 3,
          entryId: entry.id,
          properties: { hs_email_subject: `Quote for ${tag}`, hs_email_text: `${tag} wants a quote` },
        },
      });
      return correlationId;
    };
    return { alice: await one(ALICE, 'alice-1'), bob: await one(BOB, 'bob-1') };
  } finally {
    await writer.close();
    privacy.close();
  }
}

const trace = (correlationId: string, extra: NodeJS.ProcessEnv = {}): JournalEntry[] => {
  const r = cli(['--json', 'trace', correlationId], extra);
  expect(r.status, r.stderr).toBe(0);
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as JournalEntry);
};
const payloadOf = (entries: JournalEntry[], kind: string): Record<string, unknown> =>
  entries.find((e) => e.kind === kind)?.payload as Record<string, unknown>;

describe('crypto-shredding', () => {
  it('keeps personal fields out of the journal file and opens them for readers', async () => {
    const { alice } = await seed();
    const raw = [config.journal.path, `${config.journal.path}-wal`]
      .filter((f) => existsSync(f))
      .map((f) => readFileSync(f).toString('latin1'))
      .join('');
    // The phone number whole: its digits alone could turn up inside a hash.
    for (const secret of ['alice.smith', 'Alice.Smith', 'Quote for alice', '+44 20 7946 0000', 'wants a quote', 'Name of alice'])
      expect(raw).not.toContain(secret);
    expect(statSync(config.privacy.keyStorePath).mode & 0o777).toBe(0o600);
    expect(statSync(config.privacy.keyStoreBackupPath).mode & 0o777).toBe(0o600);
    expect(statSync(config.privacy.masterKeyFile).mode & 0o777).toBe(0o600);
    const entries = trace(alice);
    expect(payloadOf(entries, 'interaction.received')).toMatchObject({
      subject: 'Quote for alice-1',
      participants: [{ address: ALICE }, { address: SALES }],
    });
    expect(payloadOf(entries, 'ai.decision')).toMatchObject({ output: { summary: 'alice-1 wants a quote' } });
    expect(payloadOf(entries, 'crm.write')).toMatchObject({ properties: { hs_email_subject: 'Quote for alice-1' } });
  });

  it('forget erases one person and nobody else; the journal verifies before and after; dry run writes nothing; twice says already erased', async () => {
    const { alice, bob } = await seed();
    expect(cli(['verify']).status).toBe(0);

    const files = [config.journal.path, config.privacy.keyStorePath, config.privacy.keyStoreBackupPath];
    const before = files.map(sha);
    const dry = cli(['--json', 'forget', 'alice.smith@customer.example', '--dry-run']);
    expect(dry.status, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, keys: 1, entries: 3, correlations: [alice] });
    expect(files.map(sha)).toEqual(before);

    const done = cli(['--json', 'forget', 'ALICE.SMITH@customer.example']);
    expect(done.status, done.stderr).toBe(0);
    const result = JSON.parse(done.stdout) as { erasedSeq: number; erasedAt: string; entries: number; subjectHash: string };
    expect(result.entries).toBe(3);

    const erased = trace(alice);
    for (const kind of ['interaction.received', 'ai.decision', 'crm.write']) {
      expect(payloadOf(erased, kind).erased).toBe(true);
      expect(payloadOf(erased, kind).erasedAt).toMatch(/^20\d\d-\d\d-\d\dT/);
    }
    expect(JSON.stringify(erased)).not.toMatch(/alice-1 wants|Quote for alice|\+44 20 7946 0000|Please call alice/);
    expect(payloadOf(erased, 'interaction.received')).toMatchObject({ channel: 'email', sourceId: 'alice-1', direction: 'inbound' });
    const human = cli(['trace', alice]);
    expect(human.stdout).toMatch(/erased on 20\d\d-/);

    const kept = trace(bob);
    expect(payloadOf(kept, 'interaction.received')).toMatchObject({ subject: 'Quote for bob-1' });
    expect(payloadOf(kept, 'ai.decision')).toMatchObject({ output: { summary: 'bob-1 wants a quote' } });

    const record = cli(['--json', 'trace', `privacy/${result.subjectHash.slice(0, 32)}`]);
    const erasedEntry = JSON.parse(record.stdout.trim()) as JournalEntry;
    expect(erasedEntry.kind).toBe('privacy.erased');
    expect(erasedEntry.payload).toMatchObject({
      subjectHash: result.subjectHash,
      entries: 3,
      correlations: 1,
      keyIds: [expect.any(String)],
    });
    expect(record.stdout.toLowerCase()).not.toContain('alice');

    const verify = cli(['verify']);
    expect(verify.status, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/key store: ok/);

    const again = cli(['forget', 'alice.smith@customer.example']);
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/already erased on .* \(privacy\.erased at seq \d+\)/);
  }, 300_000);

  it('forget leaves nothing of the person in the audit read index (file, -wal, -shm) while another process holds it open; contacts are keyed, files 0600', async () => {
    await seed();
    // The audit commands build the index (as the web process does at start).
    const built = cli(['--json', 'decisions']);
    expect(built.status, built.stderr).toBe(0);
    const indexPath = config.audit.indexPath;
    const privacy = openKeyStoreForCheck(config.privacy);
    if (!privacy) throw new Error('no key store after seeding');
    const reader = JournalReader.open(config.journal.path);
    reader.attachPrivacy(privacy, { owned: true });
    // Held open here, like the web process would: its -wal and -shm stay.
    const index = openConfiguredIndex(config, reader.attachedPrivacy);
    try {
      expect(indexFiles(indexPath).map((f) => (statSync(f).mode & 0o777).toString(8))).toEqual(['600', '600', '600']);
      const subject = privacy.keys.subjectHash(ALICE);
      const plain = createHash('sha256').update(ALICE.toLowerCase()).digest();
      const needles: Record<string, Buffer> = {
        'keyed hash (hex)': Buffer.from(subject),
        'keyed hash (raw)': Buffer.from(subject, 'hex'),
        address: Buffer.from(ALICE.toLowerCase()),
        'sha256 (hex)': Buffer.from(plain.toString('hex')),
        'sha256 (raw)': plain,
      };
      // Read in another process: closing any descriptor of the file in this one would drop this connection's
      // POSIX locks, and the forget's process would then take itself for the last one and delete the WAL.
      const found = (): string[] => {
        const scan = `const fs = require('node:fs'); const [files, needles] = JSON.parse(process.argv[1]); const hits = [];
          for (const f of files.filter((x) => fs.existsSync(x))) { const b = fs.readFileSync(f); const l = Buffer.from(b.toString('latin1').toLowerCase(), 'latin1');
            for (const [what, hex] of Object.entries(needles)) { const n = Buffer.from(hex, 'hex'); if (b.includes(n) || l.includes(n)) hits.push(what + ' in ' + f); } }
          process.stdout.write(JSON.stringify(hits));`;
        const r = spawnSync(
          process.execPath,
          [
            '-e',
            scan,
            JSON.stringify([indexFiles(indexPath), Object.fromEntries(Object.entries(needles).map(([k, v]) => [k, v.toString('hex')]))]),
          ],
          { encoding: 'utf8' },
        );
        expect(r.status, r.stderr).toBe(0);
        return JSON.parse(r.stdout) as string[];
      };
      // Keyed by the key store's subject hash: found by address, and the plain hash is nowhere.
      expect(index.query({ contact: ALICE }).rows).toHaveLength(1);
      expect(found()).toEqual([expect.stringMatching(/^keyed hash \(hex\)/)]);

      const done = cli(['--json', 'forget', ALICE]);
      expect(done.status, done.stderr).toBe(0);
      expect(JSON.parse(done.stdout)).toMatchObject({ removedFromIndex: 2, indexWalTruncated: true, subjectHash: subject });
      expect(found()).toEqual([]);
      // The WAL was truncated, not deleted: this connection still holds it, as the web process would.
      expect(indexFiles(indexPath).map((f) => statSync(f).size)).toEqual([expect.any(Number), 0, expect.any(Number)]);
      expect(index.query({ contact: ALICE }).rows).toEqual([]);
      expect(index.query({ contact: BOB }).rows).toHaveLength(1);
      // This process's index folds the erasure too; still nothing of Alice.
      index.catchUp(reader);
      expect(found()).toEqual([]);
    } finally {
      index.close();
      reader.close();
    }
  }, 300_000);

  it('detects a lost key store, restores it from the backup with erasures kept, and detects a rolled-back store', async () => {
    const { alice, bob } = await seed();
    const stale = join(tmp.dir, 'stale-store.sqlite');
    copyFileSync(config.privacy.keyStorePath, stale);
    expect(cli(['forget', ALICE]).status).toBe(0);

    rmSync(config.privacy.keyStorePath);
    const verify = cli(['verify']);
    expect(verify.status).toBe(1);
    expect(verify.stdout).toMatch(/KEY STORE PROBLEM: .*missing/);
    const status = cli(['--json', 'status']);
    expect(status.status).toBe(1);
    expect((JSON.parse(status.stdout) as { keyStore: { ok: boolean; missing: string[] } }).keyStore).toMatchObject({ ok: false });
    const failed = cli(['trace', bob]);
    expect(failed.status).not.toBe(0);
    expect(failed.stderr).toMatch(/keys restore/);

    const restored = cli(['keys', 'restore']);
    expect(restored.status, restored.stdout + restored.stderr).toBe(0);
    expect(payloadOf(trace(bob), 'interaction.received')).toMatchObject({ subject: 'Quote for bob-1' });
    expect(payloadOf(trace(alice), 'interaction.received')).toMatchObject({ erased: true });
    expect(cli(['verify']).status).toBe(0);

    // A store rolled back to before the erasure would bring Alice back: detected, and the restore re-applies the erasure.
    copyFileSync(stale, config.privacy.keyStorePath);
    const rolled = cli(['keys', 'status']);
    expect(rolled.status).toBe(1);
    expect(rolled.stdout).toMatch(/erased by privacy\.erased entries are present again/);
    expect(cli(['keys', 'restore']).status).toBe(0);
    expect(payloadOf(trace(alice), 'interaction.received')).toMatchObject({ erased: true });
    expect(cli(['keys', 'status']).status).toBe(0);

    // A lost backup is said by a check, which writes nothing; where the product writes it is re-created.
    rmSync(config.privacy.keyStoreBackupPath);
    const lost = cli(['keys', 'status']);
    expect(lost.status).toBe(0);
    expect(lost.stdout).toMatch(/backup MISSING/);
    expect(lost.stdout).toMatch(/KEY STORE NOTE: the key store backup .* is missing: a lost key store could not be restored/);
    expect(existsSync(config.privacy.keyStoreBackupPath)).toBe(false);
    expect(cli(['verify']).status).toBe(0);
    expect(existsSync(config.privacy.keyStoreBackupPath)).toBe(false);
    expect(cli(['keys', 'restore']).status).toBe(2);
    const rebuilt = cli(['checkpoint']);
    expect(rebuilt.status, rebuilt.stderr).toBe(0);
    expect(existsSync(config.privacy.keyStoreBackupPath)).toBe(true);
    expect(cli(['keys', 'status']).status).toBe(0);
  }, 300_000);

  it('takes no privacy.erased from the append credential; one forged into the journal erases nothing and fails no check; older ones can be confirmed', async () => {
    const { alice, bob } = await seed();
    // What a forger needs is in clear in every envelope: the victim's subject hash and key id.
    const bobEntry = trace(bob).find((e) => e.kind === 'interaction.received') as JournalEntry;
    const raw = new Database(config.journal.path, { readonly: true });
    const refsOf = (seq: number) =>
      sealedKeysOf((raw.prepare('SELECT payload FROM entries WHERE seq = ?').get(seq) as { payload: string }).payload) ?? [];
    const check = openKeyStoreForCheck(config.privacy);
    const [bobHash, aliceHash] = [check?.keys.subjectHash(BOB), check?.keys.subjectHash(ALICE)];
    check?.close();
    const aliceSeq = (trace(alice).find((e) => e.kind === 'interaction.received') as JournalEntry).seq;
    const bobRef = refsOf(bobEntry.seq).find((k) => k.subject === bobHash);
    const aliceRef = refsOf(aliceSeq).find((k) => k.subject === aliceHash);
    raw.close();
    if (!bobRef || !aliceRef) throw new Error('no key refs');
    const forged = (ref: { subject: string; keyId: string }, key: string) => ({
      kind: 'privacy.erased' as const,
      source: 'cli',
      actor: 'operator',
      correlationId: `privacy/${ref.subject.slice(0, 32)}`,
      idempotencyKey: key,
      payload: {
        subjectHash: ref.subject,
        keyIds: [ref.keyId],
        reason: 'forged',
        entries: 1,
        correlations: 1,
        authentication: `hmac-sha256:${'0'.repeat(64)}`,
      },
    });

    // 1. Through the journal service, with the append credential the web server and workers hold: refused.
    const svc = await startService(join(tmp.dir, 'data'), {
      env: { JOURNAL_MASTER_KEY: '', JOURNAL_MASTER_KEY_FILE: '', KEY_STORE_PATH: '', KEY_STORE_BACKUP: '' },
    });
    try {
      const r = await fetch(`${svc.url}/v1/entries`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${svc.appendToken}` },
        body: JSON.stringify(forged(bobRef, 'forged/1')),
      });
      expect(r.status).toBe(422);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('ERASURE_UNAUTHENTICATED');
    } finally {
      await svc.stop();
    }

    // 2. One in the journal anyway (a writer without the key store, as a forger with file access or an older
    //    version would write it): ignored by every check, listed, and never acted on by keys restore.
    const bare = await JournalWriter.open({ path: config.journal.path, keysDir: config.journal.keysDir, checkpointEveryMs: 0 });
    const { entry: fake } = await bare.append(forged(bobRef, 'forged/2'));
    const { entry: older } = await bare.append(forged(aliceRef, 'older/1'));
    await bare.close();
    const status = cli(['keys', 'status']);
    expect(status.status, status.stdout).toBe(0);
    expect(status.stdout).toMatch(
      new RegExp(`2 privacy\\.erased entries do not authenticate and are ignored \\(seq ${fake.seq}, ${older.seq}\\)`),
    );
    expect(cli(['verify']).status).toBe(0);
    expect(cli(['keys', 'restore', '--force']).status).toBe(0);
    expect(payloadOf(trace(bob), 'interaction.received')).toMatchObject({ subject: 'Quote for bob-1' });

    // 3. The operator confirms the erasure they recognise as theirs: carried out and recorded authenticated.
    expect(cli(['keys', 'confirm-erasure', 'x']).status).toBe(2);
    expect(cli(['keys', 'confirm-erasure', String(bobEntry.seq)]).status).toBe(2); // not an erasure
    const confirmed = cli(['keys', 'confirm-erasure', String(older.seq)]);
    expect(confirmed.status, confirmed.stdout + confirmed.stderr).toBe(0);
    expect(payloadOf(trace(alice), 'interaction.received')).toMatchObject({ erased: true });
    const after = cli(['keys', 'status']);
    expect(after.stdout).toMatch(new RegExp(`1 privacy\\.erased entry does not authenticate and is ignored \\(seq ${fake.seq}\\)`));
    // forget still works for the person a forged entry named, and records an authenticated erasure.
    const f = cli(['--json', 'forget', BOB]);
    expect(f.status, f.stderr).toBe(0);
    expect(JSON.parse(f.stdout)).toMatchObject({ dryRun: false });
    expect(payloadOf(trace(bob), 'interaction.received')).toMatchObject({ erased: true });
    expect(cli(['verify']).status).toBe(0);
  }, 300_000);

  it("commits a batch's new subject keys together with it, and none when the batch is refused while sealing", async () => {
    await seed(); // the key store exists
    const privacy = openWriterPrivacy(config);
    const writer = await JournalWriter.open({ path: config.journal.path, keysDir: config.journal.keysDir, checkpointEveryMs: 0, privacy });
    const store = (): number => {
      const db = new Database(config.privacy.keyStorePath, { readonly: true });
      try {
        return (db.prepare('SELECT count(*) AS n FROM keys').get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    const email = (i: number, sender: string): Parameters<JournalWriter['appendBatch']>[0][number] => ({
      kind: 'interaction.received',
      source: 'gmail',
      actor: 'connector:gmail',
      correlationId: `email-thread/gmail/batch-${i}`,
      idempotencyKey: `interaction/gmail/batch-${i}`,
      payload: {
        channel: 'email',
        sourceId: `batch-${i}`,
        direction: 'inbound',
        occurredAt: '2026-11-02T09:00:00Z',
        participants: [
          { role: 'from', address: sender },
          { role: 'to', address: SALES },
        ],
        subject: 'Quote',
        text: 'A quote, please',
      },
    });
    try {
      const before = store();
      // Ten first contacts, then an entry that fails validation: the batch is refused whole, and the ten keys
      // created for it while sealing are not committed to the store.
      const refused = writer.appendBatchReceived([
        ...Array.from({ length: 10 }, (_, i) => email(i, `first-${i}@new.example`)),
        { ...email(10, 'x@new.example'), payload: { channel: 'email' } },
      ]);
      await expect(refused).rejects.toThrow();
      expect(store()).toBe(before);
      const results = await writer.appendBatch(Array.from({ length: 10 }, (_, i) => email(i, `first-${i}@new.example`)));
      expect(results).toHaveLength(10);
      expect(store()).toBe(before + 10);
      expect(results.every((r) => (r.entry.payload as { participants?: unknown }).participants !== undefined)).toBe(true); // opened for the caller
    } finally {
      await writer.close();
    }
    const r = cli(['verify', '--json']);
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });

  it("a running writer seals under a new key once another process has destroyed the subject's key", async () => {
    await seed();
    const privacy = openWriterPrivacy(config);
    const writer = await JournalWriter.open({ path: config.journal.path, keysDir: config.journal.keysDir, checkpointEveryMs: 0, privacy });
    const keyIdsOf = (seq: number): string[] => {
      const db = new Database(config.journal.path, { readonly: true });
      try {
        return (sealedKeysOf((db.prepare('SELECT payload FROM entries WHERE seq = ?').get(seq) as { payload: string }).payload) ?? []).map(
          (k) => k.keyId,
        );
      } finally {
        db.close();
      }
    };
    const email = (tag: string): Parameters<JournalWriter['append']>[0] => ({
      kind: 'interaction.received',
      source: 'gmail',
      actor: 'connector:gmail',
      correlationId: `email-thread/gmail/${tag}`,
      idempotencyKey: `interaction/gmail/${tag}`,
      payload: {
        channel: 'email',
        sourceId: tag,
        direction: 'inbound',
        occurredAt: '2026-11-03T09:00:00Z',
        participants: [{ role: 'from', address: ALICE }],
        subject: 'Again',
        text: 'Hello again',
      },
    });
    try {
      const first = await writer.append(email('alice-2'));
      const [aliceKey] = keyIdsOf(first.entry.seq);
      expect((await writer.append(email('alice-3'))).entry.seq).toBeGreaterThan(first.entry.seq);
      // Another process (another connection to the store) destroys Alice's key, as `forget` does.
      const { key } = loadMasterKey(config.privacy, { create: false });
      const other = SubjectKeyStore.open({
        path: config.privacy.keyStorePath,
        backupPath: config.privacy.keyStoreBackupPath,
        masterKey: key,
        create: false,
      });
      try {
        other.destroy([aliceKey as string]);
      } finally {
        other.close();
      }
      // The writer's next append for her must not be sealed under the destroyed key (it would read as erased).
      const after = await writer.append(email('alice-4'));
      const [newKey] = keyIdsOf(after.entry.seq);
      expect(newKey).toBeDefined();
      expect(newKey).not.toBe(aliceKey);
      expect((after.entry.payload as { participants?: unknown }).participants).toEqual([{ role: 'from', address: ALICE }]);
    } finally {
      await writer.close();
    }
  });

  it('refuses a wrong master key with a clear error and decrypts nothing', async () => {
    const { bob } = await seed();
    const wrong = cli(['trace', bob], { JOURNAL_MASTER_KEY: randomBytes(32).toString('base64') });
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toMatch(/sealed under master key [0-9a-f]{8}, but the configured master key is [0-9a-f]{8}/);
    expect(wrong.stdout).not.toContain('Quote for bob');
    // The journal itself verifies without any key.
    const db = new Database(config.journal.path, { readonly: true });
    expect((db.prepare(`SELECT count(*) AS n FROM entries WHERE payload LIKE '%$sealed%'`).get() as { n: number }).n).toBe(6);
    db.close();
  });
});

describe('sealing on every path', () => {
  /** A call, its participant-less transcript, a lone transcript, and entries whose free text quotes the caller. */
  async function seedCall(): Promise<{ call: string; lone: string }> {
    const privacy = openWriterPrivacy(config);
    const writer = await JournalWriter.open({ path: config.journal.path, keysDir: config.journal.keysDir, checkpointEveryMs: 0, privacy });
    try {
      const call = 'call/aircall/c-1';
      const lone = 'call/twilio/t-9';
      const { entry: ev } = await writer.append({
        kind: 'interaction.received',
        source: 'aircall',
        actor: 'connector:aircall',
        correlationId: call,
        idempotencyKey: 'interaction/aircall/c-1',
        payload: {
          channel: 'call',
          sourceId: 'c-1',
          direction: 'inbound',
          occurredAt: '2026-11-01T09:00:00Z',
          participants: [
            { role: 'caller', address: CALLER },
            { role: 'agent', address: SALES },
          ],
        },
      });
      const { entry: tr } = await writer.append({
        kind: 'interaction.received',
        source: 'aircall',
        actor: 'connector:aircall',
        correlationId: call,
        idempotencyKey: 'interaction/aircall/c-1/transcript',
        payload: {
          channel: 'call',
          sourceId: 'c-1/transcript',
          direction: 'inbound',
          occurredAt: '2026-11-01T09:05:00Z',
          participants: [],
          text: 'Transcript: my card number changed, write to zed.quill@caller.example',
        },
      });
      await writer.append({
        kind: 'interaction.received',
        source: 'twilio',
        actor: 'connector:twilio',
        correlationId: lone,
        idempotencyKey: 'interaction/twilio/t-9',
        payload: {
          channel: 'call',
          sourceId: 't-9',
          direction: 'inbound',
          occurredAt: '2026-11-01T09:06:00Z',
          participants: [],
          text: 'Lone transcript mentioning Zed Quill',
        },
      });
      // A dry-run CRM write (no entryId: it links through its causation), a HubSpot error quoting the caller,
      // a rule decision and a job failure whose texts quote them.
      await writer.append({
        kind: 'crm.write',
        source: 'hubspot',
        actor: 'crm:dry-run',
        correlationId: call,
        causationId: ev.id,
        idempotencyKey: 'crm/dry/c-1',
        payload: {
          system: 'hubspot',
          method: 'POST',
          path: '/crm/v3/objects/calls/batch/upsert',
          status: 0,
          durationMs: 0,
          dryRun: true,
          properties: { hs_call_title: 'Call with Zed Quill' },
          associations: [{ objectType: 'contact-phone', id: CALLER }],
        },
      });
      await writer.append({
        kind: 'crm.write_failed',
        source: 'hubspot',
        actor: 'crm:hubspot',
        correlationId: call,
        causationId: tr.id,
        idempotencyKey: 'crm/failed/c-1',
        payload: {
          system: 'hubspot',
          method: 'POST',
          path: '/crm/v3/objects/calls/batch/upsert',
          status: 400,
          durationMs: 1,
          entryId: tr.id,
          error: `VALIDATION_ERROR: ${CALLER} is not a valid value`,
          retryable: false,
        },
      });
      await writer.append({
        kind: 'rule.decision',
        source: 'hubspot',
        actor: 'rules',
        correlationId: call,
        causationId: tr.id,
        idempotencyKey: 'rules/c-1/crm-match',
        payload: {
          ruleId: 'crm-match',
          ruleVersion: 'human.override',
          inputEntryId: tr.id,
          evaluated: { counterparts: 1 },
          outcome: 'contacts:1',
          reason: 'association override by user:ana: Zed Quill asked to be linked',
        },
      });
      await writer.append({
        kind: 'job.failed',
        source: 'pipeline',
        actor: 'worker',
        correlationId: lone,
        idempotencyKey: 'job/failed/t-9',
        payload: { queue: 'classify', jobId: 'j-1', attempts: 1, error: 'model refused: Zed Quill', finality: 'permanent' },
      });
      return { call, lone };
    } finally {
      await writer.close();
      privacy.close();
    }
  }
  const CALLER = '+1 415 555 0199';

  it("seals transcripts without participants under their call's people (or their correlation), free text included, and forget reaches them", async () => {
    const { call, lone } = await seedCall();
    const raw = [config.journal.path, `${config.journal.path}-wal`]
      .filter((f) => existsSync(f))
      .map((f) => readFileSync(f).toString('latin1'))
      .join('');
    for (const secret of ['+14155550199', CALLER, 'Zed Quill', 'zed.quill', 'card number changed']) expect(raw).not.toContain(secret);
    const entries = trace(call);
    const transcript = entries.find(
      (e) => e.kind === 'interaction.received' && (e.payload as { sourceId: string }).sourceId === 'c-1/transcript',
    ) as JournalEntry;
    expect((transcript.payload as { text: string }).text).toContain('card number');
    expect(payloadOf(entries, 'crm.write')).toMatchObject({ associations: [{ id: CALLER }] });
    expect(payloadOf(entries, 'crm.write_failed').error).toContain(CALLER);
    expect(payloadOf(trace(lone), 'job.failed')).toMatchObject({ error: 'model refused: Zed Quill' });

    const done = cli(['--json', 'forget', CALLER]);
    expect(done.status, done.stderr).toBe(0);
    const erased = trace(call);
    for (const e of erased)
      if (['interaction.received', 'crm.write', 'crm.write_failed', 'rule.decision'].includes(e.kind))
        expect((e.payload as { erased?: boolean }).erased, `${e.kind} ${e.seq}`).toBe(true);
    expect(JSON.stringify(erased)).not.toMatch(/Zed Quill|card number|4155550199|415 555/);
    // The lone transcript had no one to be sealed under but its correlation: it stays readable until someone
    // of that correlation is forgotten, and it was never in clear.
    expect(payloadOf(trace(lone), 'interaction.received')).toMatchObject({ text: 'Lone transcript mentioning Zed Quill' });
    expect(cli(['verify']).status).toBe(0);
  });

  it("seals a call activity's write under the people of every transcript it holds: forgetting one erases it", async () => {
    const OTHER = '+1 415 555 0123';
    const privacy = openWriterPrivacy(config);
    const writer = await JournalWriter.open({ path: config.journal.path, keysDir: config.journal.keysDir, checkpointEveryMs: 0, privacy });
    const call = 'call-thread/calls/c-7';
    try {
      const { entry: ev } = await writer.append({
        kind: 'interaction.received',
        source: 'calls',
        actor: 'connector:calls',
        correlationId: call,
        idempotencyKey: 'interaction/calls/c-7',
        payload: {
          channel: 'call',
          sourceId: 'c-7',
          threadId: 'c-7',
          direction: 'inbound',
          occurredAt: '2026-11-01T09:00:00Z',
          participants: [{ role: 'caller', address: CALLER }],
        },
      });
      // The transcript names someone the call does not (a colleague who took over the line).
      const { entry: tr } = await writer.append({
        kind: 'interaction.received',
        source: 'calls',
        actor: 'connector:calls',
        correlationId: call,
        idempotencyKey: 'interaction/calls/c-7/transcript/t-1',
        payload: {
          channel: 'call',
          sourceId: 'c-7/transcript/t-1',
          threadId: 'c-7',
          direction: 'inbound',
          occurredAt: '2026-11-01T09:05:00Z',
          participants: [{ role: 'caller', address: OTHER }],
          text: 'Transcript: Ola Vance asks for a refund',
        },
      });
      await writer.append({
        kind: 'crm.write',
        source: 'hubspot',
        actor: 'crm:dry-run',
        correlationId: call,
        causationId: ev.id,
        idempotencyKey: 'crm/dry/c-7',
        payload: {
          system: 'hubspot',
          method: 'POST',
          path: '/crm/v3/objects/calls/batch/upsert',
          status: 0,
          durationMs: 0,
          dryRun: true,
          entryId: ev.id,
          members: [
            { entryId: ev.id, decisionEntryId: ev.id },
            { entryId: tr.id, decisionEntryId: tr.id },
          ],
          properties: {
            hs_call_body: `Journal entry: ${ev.id}\n\nTranscript (journal entry ${tr.id}):\nSummary: Ola Vance asks for a refund`,
          },
        },
      });
    } finally {
      await writer.close();
      privacy.close();
    }
    expect(((payloadOf(trace(call), 'crm.write').properties ?? {}) as Record<string, string>)['hs_call_body']).toContain('Ola Vance');
    const done = cli(['--json', 'forget', OTHER]);
    expect(done.status, done.stderr).toBe(0);
    const after = trace(call);
    expect(payloadOf(after, 'crm.write')).toMatchObject({ erased: true });
    expect(JSON.stringify(after)).not.toContain('Ola Vance');
    // The call's own entry belongs to its caller alone, who was not forgotten.
    expect(
      (
        after.find((e) => e.kind === 'interaction.received' && (e.payload as { sourceId: string }).sourceId === 'c-7')?.payload as {
          erased?: boolean;
        }
      ).erased,
    ).toBeUndefined();
  });
});
