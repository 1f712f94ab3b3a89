/**
 * `forget` (crypto-shredding of one data subject) and `keys status|restore` (the subject key store, its
 * backup, and what the journal needs of it). The address typed by the operator is never printed, logged or
 * journaled: only its keyed hash.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import type { Config } from '../config/config.ts';
import { JournalReader } from '../journal/reader.ts';
import { openWriterPrivacy } from '../journal/configured-privacy.ts';
import {
  checkKeyStore,
  erasedKey,
  erasedPayload,
  erasuresOf,
  openKeyStoreForCheck,
  planForget,
  reapplyErasures,
  type Erasure,
  type KeyStoreCheck,
  type Privacy,
} from '../journal/privacy.ts';
import { openConfiguredIndex } from '../audit/configured-index.ts';
import { SubjectKeyStore } from '../journal/key-store.ts';
import { loadMasterKey } from '../journal/master-key.ts';
import { withJournal } from './journal-access.ts';
import { UsageError } from './usage-error.ts';
import type { AuditCommandContext } from './audit-commands.ts';

/** The same context the audit commands get from main.ts. */
export type PrivacyCommandContext = AuditCommandContext;

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const PHONE = /^\+?[\d\s().-]{6,20}$/;
const DEFAULT_REASON = 'erasure request of the data subject (GDPR Art. 17)';

export function registerPrivacyCommands(program: Command, ctx: PrivacyCommandContext): void {
  program
    .command('forget')
    .description(
      'erase one person: destroy the keys of their address (email or phone); their payloads then read as erased; the journal still verifies',
    )
    .argument('<address>', 'the email address (or E.164 phone number) of the data subject')
    .option('--dry-run', 'say what would be erased (entries, correlation ids); write nothing')
    .option('--reason <text>', 'why (journaled with the erasure)', DEFAULT_REASON)
    .action(async (address: string, opts: { dryRun?: boolean; reason: string }) => {
      if (!EMAIL.test(address.trim()) && !PHONE.test(address.trim()))
        throw new UsageError('forget takes an email address (name@example.com) or a phone number (+44 20 7946 0000)');
      if (opts.reason.trim() === '' || opts.reason.length > 2000) throw new UsageError('--reason must be 1 to 2000 characters');
      ctx.setExit(await forget(ctx, address, opts.dryRun === true, opts.reason));
    });

  const keys = program.command('keys').description('the subject key store of crypto-shredding: status and restore from its backup');
  keys
    .command('status')
    .description('the key store and its backup, and whether every key the journal needs is there (exit 1 if not)')
    .action(() => {
      const config = ctx.config();
      const check = keyStoreCheck(config);
      if (ctx.json()) ctx.out(JSON.stringify(check));
      else for (const line of describeCheck(config, check)) ctx.out(line);
      ctx.setExit(check.ok ? 0 : 1);
    });
  keys
    .command('confirm-erasure')
    .description(
      'carry out and record, authenticated, privacy.erased entries the key store does not authenticate (recorded by an older version); review each first: a forged one names someone else',
    )
    .argument('<seq...>', 'the seqs `keys status` lists as not authenticating')
    .action(async (seqs: string[]) => {
      const parsed = seqs.map((s) => (/^\d{1,15}$/.test(s) ? Number(s) : NaN));
      if (parsed.some((n) => Number.isNaN(n)))
        throw new UsageError('confirm-erasure takes journal seqs (whole numbers), as `activity-journal keys status` lists them');
      ctx.setExit(await confirmErasures(ctx, parsed));
    });
  keys
    .command('restore')
    .description('replace the key store with its backup (KEY_STORE_BACKUP), then re-apply every authenticated erasure the journal records')
    .option('--force', 'restore even though the key store is present and has every key the journal needs')
    .action((opts: { force?: boolean }) => {
      const config = ctx.config();
      if (!existsSync(config.privacy.keyStoreBackupPath))
        throw new UsageError(
          `there is no key store backup at ${config.privacy.keyStoreBackupPath} to restore from${existsSync(config.privacy.keyStorePath) ? ' (the journal service re-creates it from the store when it starts)' : ''}`,
        );
      const before = keyStoreCheck(config);
      if (before.storePresent && before.ok && opts.force !== true)
        throw new UsageError(
          'the key store is present and complete; nothing to restore (pass --force to replace it with the backup anyway)',
        );
      const { key } = loadMasterKey(config.privacy, { create: false });
      const store = SubjectKeyStore.restoreFromBackup({
        path: config.privacy.keyStorePath,
        backupPath: config.privacy.keyStoreBackupPath,
        masterKey: key,
      });
      try {
        const reader = JournalReader.open(config.journal.path);
        try {
          const reErased = reapplyErasures(reader.connection, store);
          const after = checkKeyStore(reader.connection, store);
          const fp = store.fingerprint();
          if (ctx.json())
            ctx.out(JSON.stringify({ restoredFrom: config.privacy.keyStoreBackupPath, keys: fp.keys, reErased, check: after }));
          else {
            ctx.out(
              `restored ${config.privacy.keyStorePath} from ${config.privacy.keyStoreBackupPath}: ${fp.keys} key(s), ${fp.active} active, ${fp.destroyed} destroyed`,
            );
            ctx.out(`re-applied the journal's erasures: ${reErased} key(s) destroyed again`);
            for (const line of after.ok
              ? ['key store: ok, every key the journal needs is present']
              : after.problems.map((p) => `KEY STORE PROBLEM: ${p}`))
              ctx.out(line);
          }
          ctx.setExit(after.ok ? 0 : 1);
        } finally {
          reader.close();
        }
      } finally {
        store.close();
      }
    });
}

/**
 * Confirms privacy.erased entries the key store does not authenticate (recorded before erasures were, or by
 * anyone holding the append credential): each confirmed one is carried out (its keys destroyed) and recorded
 * again, authenticated, so `keys restore` re-applies it. Review each first: confirming a forged one erases its
 * subject for good.
 */
async function confirmErasures(ctx: PrivacyCommandContext, seqs: readonly number[]): Promise<number> {
  const config = ctx.config();
  if (!existsSync(config.journal.path)) throw new UsageError(`no journal at ${config.journal.path}`);
  // It destroys keys: opened for writing (and a missing backup is re-created, as where the product writes).
  const privacy = openKeyStoreForCheck(config.privacy, { readOnly: false });
  if (privacy === null) throw new UsageError('there is no key store: nothing was ever sealed, so there is no erasure to confirm');
  try {
    const store = privacy.keys;
    const reader = JournalReader.open(config.journal.path);
    let pending: Erasure[];
    try {
      const { unauthenticated } = erasuresOf(reader.connection, store);
      pending = seqs.map((seq) => {
        const e = unauthenticated.find((x) => x.seq === seq);
        if (!e) throw new UsageError(`seq ${seq} is not an unconfirmed privacy.erased entry (see \`activity-journal keys status\`)`);
        return e;
      });
    } finally {
      reader.close();
    }
    const results = [];
    for (const e of pending) {
      const active = e.keyIds.filter((id) => store.state(id).status === 'active');
      store.destroy(active);
      const { entry } = await withJournal(config, (journal) =>
        journal.append({
          kind: 'privacy.erased',
          source: 'cli',
          actor: 'operator',
          correlationId: `privacy/${e.subjectHash.slice(0, 32)}`,
          idempotencyKey: `privacy/erased-confirmed/${e.seq}`,
          payload: {
            subjectHash: e.subjectHash,
            keyIds: [...e.keyIds].sort(),
            reason: `confirms the erasure recorded at seq ${e.seq}`,
            entries: 0,
            correlations: 0,
            authentication: store.erasureTag(e.subjectHash, e.keyIds),
          },
        }),
      );
      results.push({ confirmed: e.seq, seq: entry.seq, keysDestroyedNow: active.length });
    }
    if (ctx.json()) ctx.out(JSON.stringify({ results }));
    else
      for (const r of results)
        ctx.out(
          `confirmed the erasure at seq ${r.confirmed}: recorded authenticated at seq ${r.seq}; ${r.keysDestroyedNow} key(s) destroyed now`,
        );
    return 0;
  } finally {
    privacy.close();
  }
}

/**
 * The key store check of `verify`, `status` and `keys status`; a store that cannot be opened is a problem too.
 * It writes nothing: the store and its backup are opened read-only (a missing backup is reported, not re-created).
 */
export function keyStoreCheck(config: Config): KeyStoreCheck & { error?: string } {
  const storeThere = existsSync(config.privacy.keyStorePath);
  const backupThere = existsSync(config.privacy.keyStoreBackupPath);
  // Every reader refuses a store missing while its backup exists; the check says what to do about it.
  const orphanedBackup =
    !storeThere && backupThere
      ? [
          `the key store ${config.privacy.keyStorePath} is missing but its backup ${config.privacy.keyStoreBackupPath} exists: run \`activity-journal keys restore\``,
        ]
      : [];
  const withFiles = (c: KeyStoreCheck & { error?: string }): KeyStoreCheck & { error?: string } => {
    const problems = [...c.problems, ...orphanedBackup];
    return { ...c, ok: problems.length === 0, storePresent: storeThere, backupPresent: storeThere ? backupThere : null, problems };
  };
  const nothing: KeyStoreCheck = {
    ok: true,
    storePresent: storeThere,
    backupPresent: null,
    referenced: 0,
    missing: [],
    resurrected: [],
    unauthenticatedErasures: [],
    backupInStep: null,
    problems: [],
    notes: [],
  };
  if (!existsSync(config.journal.path)) return withFiles(nothing);
  const reader = JournalReader.open(config.journal.path, { check: true });
  try {
    // A missing store is compared as empty: every key the journal needs is then reported missing.
    if (!storeThere) return withFiles(checkKeyStore(reader.connection, null));
    let privacy;
    try {
      privacy = openKeyStoreForCheck(config.privacy);
    } catch (err) {
      const message = (err as Error).message;
      return withFiles({ ...nothing, ok: false, problems: [`the key store cannot be opened: ${message}`], error: message });
    }
    try {
      return withFiles(checkKeyStore(reader.connection, privacy?.keys ?? null));
    } finally {
      privacy?.close();
    }
  } finally {
    reader.close();
  }
}

export function describeCheck(config: Config, check: KeyStoreCheck): string[] {
  // A journal that never sealed anything has no key store yet: that is not a loss, and not worth two lines.
  if (!check.storePresent && check.referenced === 0 && check.ok) return ['key store: none yet (nothing sealed)'];
  const backup =
    check.backupPresent === false
      ? 'MISSING'
      : check.backupInStep === null
        ? 'not compared'
        : check.backupInStep
          ? 'in step'
          : 'NOT IN STEP';
  const lines = [
    `key store ${config.privacy.keyStorePath} (backup ${config.privacy.keyStoreBackupPath}): ${check.storePresent ? 'present' : 'MISSING'}; ${check.referenced} key(s) referenced by the journal; backup ${backup}`,
  ];
  if (check.ok) lines.push('key store: ok, every key the journal needs is present');
  for (const p of check.problems) lines.push(`KEY STORE PROBLEM: ${p}`);
  for (const n of check.notes) lines.push(`KEY STORE NOTE: ${n}`);
  return lines;
}

async function forget(ctx: PrivacyCommandContext, address: string, dryRun: boolean, reason: string): Promise<number> {
  const config = ctx.config();
  if (!existsSync(config.journal.path)) throw new UsageError(`no journal at ${config.journal.path}`);
  // A dry run creates nothing: without a key store, nothing was ever sealed for anyone.
  const privacy = dryRun ? openKeyStoreForCheck(config.privacy) : openWriterPrivacy(config);
  if (privacy === null) {
    if (ctx.json()) ctx.out(JSON.stringify({ dryRun, subjectHash: null, keys: 0, entries: 0, correlations: [] }));
    else ctx.out('dry run: there is no key store yet, so nothing is held under any key; nothing would be erased');
    return 0;
  }
  try {
    const reader = JournalReader.open(config.journal.path);
    let plan;
    try {
      plan = planForget(reader.connection, privacy.keys, address);
    } finally {
      reader.close();
    }
    const summary = {
      subjectHash: plan.subjectHash,
      keys: plan.toDestroy.length + plan.unrecorded.length,
      entries: plan.entries.length,
      correlations: plan.correlations,
    };
    if (plan.alreadyErased) {
      if (ctx.json()) ctx.out(JSON.stringify({ dryRun, alreadyErased: plan.alreadyErased, ...summary }));
      else
        ctx.out(
          `already erased on ${plan.alreadyErased.erasedAt} (privacy.erased at seq ${plan.alreadyErased.seq}); subject ${plan.subjectHash.slice(0, 16)}…: nothing to do`,
        );
      return 0;
    }
    if (dryRun) {
      if (ctx.json()) ctx.out(JSON.stringify({ dryRun: true, ...summary }));
      else {
        ctx.out(
          `dry run: would destroy ${summary.keys} key(s) of subject ${plan.subjectHash.slice(0, 16)}…, erasing ${plan.entries.length} entr${plan.entries.length === 1 ? 'y' : 'ies'} in ${plan.correlations.length} correlation(s):`,
        );
        for (const c of plan.correlations) ctx.out(`  ${c}`);
        if (summary.keys === 0) ctx.out('nothing is held under this address; forgetting it would only record the request');
        ctx.out('nothing was written');
      }
      return 0;
    }
    // Keys first: once they are gone nothing can bring the data back; the record follows, and a crash between
    // the two is completed by running forget again (the destroyed-but-unrecorded keys are found and recorded).
    privacy.keys.destroy(plan.toDestroy);
    const { entry } = await withJournal(config, (journal) =>
      journal.append({
        kind: 'privacy.erased',
        source: 'cli',
        actor: 'operator',
        correlationId: `privacy/${plan.subjectHash.slice(0, 32)}`,
        idempotencyKey: erasedKey(plan),
        payload: erasedPayload(plan, reason.trim(), privacy.keys),
      }),
    );
    const fromIndex = dropFromAuditIndex(
      config,
      privacy,
      address,
      plan.entries.filter((e) => e.kind === 'interaction.received').map((e) => e.seq),
    );
    const indexNote = fromIndex.walTruncated
      ? null
      : `the audit read index (${config.audit.indexPath}) is in use by another process: its rows are deleted, but its write-ahead log is overwritten only at its next checkpoint (stop the web process and run forget again to be sure now)`;
    if (ctx.json())
      ctx.out(
        JSON.stringify({
          dryRun: false,
          erasedSeq: entry.seq,
          erasedAt: entry.recordedAt,
          removedFromIndex: fromIndex.removed,
          indexWalTruncated: fromIndex.walTruncated,
          ...summary,
        }),
      );
    else {
      ctx.out(
        `erased: destroyed ${summary.keys} key(s) of subject ${plan.subjectHash.slice(0, 16)}…; ${plan.entries.length} entr${plan.entries.length === 1 ? 'y' : 'ies'} in ${plan.correlations.length} correlation(s) now read as "erased on ${entry.recordedAt}"`,
      );
      ctx.out(`recorded as privacy.erased at seq ${entry.seq} (the address is not in it: only its keyed hash)`);
      if (indexNote) ctx.out(`NOTE: ${indexNote}`);
    }
    return 0;
  } finally {
    privacy.close();
  }
}

/**
 * The audit read index keeps a keyed hash of each participant's address next to the interaction's seq, to filter
 * by contact; an erased interaction must not stay findable that way, and nothing of the person may stay in the
 * index's files. The index is derived data (rebuilt from the journal, where an erased payload has no
 * participants), so the person's rows and the erased interactions' contact rows are deleted, overwritten
 * (secure_delete) and the WAL truncated (ReadIndex.forget).
 */
function dropFromAuditIndex(
  config: Config,
  privacy: Privacy,
  address: string,
  seqs: readonly number[],
): { removed: number; walTruncated: boolean } {
  if (!existsSync(config.audit.indexPath)) return { removed: 0, walTruncated: true };
  const index = openConfiguredIndex(config, privacy);
  try {
    return index.forget(address, seqs);
  } finally {
    index.close();
  }
}
