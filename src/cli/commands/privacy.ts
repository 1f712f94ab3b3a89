/**
 * Privacy on the command line: `forget` (crypto-shredding of one data subject), `keys status|confirm-erasure|restore`
 * (the subject key store, its backup, and what the journal needs of it) and `privacy scan|contain` (personal data
 * an older version stored in clear). The address typed by the operator is never printed, logged or journaled:
 * only its keyed hash.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import type { Config } from '../../config/config.ts';
import { JournalReader } from '../../journal/reader.ts';
import { openWriterPrivacy } from '../../journal/configured-privacy.ts';
import {
  checkKeyStore,
  erasedKey,
  erasedPayload,
  erasuresOf,
  openKeyStoreForCheck,
  planForget,
  reapplyErasures,
  type Erasure,
  type ForgetPlan,
  type Privacy,
} from '../../journal/privacy.ts';
import { scanJournal } from '../../journal/containment.ts';
import { openConfiguredIndex } from '../../audit/configured-index.ts';
import { SubjectKeyStore } from '../../journal/key-store.ts';
import { loadMasterKey } from '../../journal/master-key.ts';
import { archiveCacheDir } from '../archive-cache.ts';
import type { CliContext } from '../context.ts';
import { withJournal } from '../journal-access.ts';
import { describeCheck, keyStoreCheck } from '../key-store-check.ts';
import { scanLines } from '../privacy-scan.ts';
import { UsageError } from '../usage-error.ts';

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const PHONE = /^\+?[\d\s().-]{6,20}$/;
const DEFAULT_REASON = 'erasure request of the data subject (GDPR Art. 17)';

/** What `forget` reports of its plan. */
interface ForgetSummary {
  subjectHash: string;
  keys: number;
  entries: number;
  correlations: readonly string[];
}

export function registerPrivacyCommands(program: Command, ctx: CliContext): void {
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
    .action((opts: { force?: boolean }) => restoreKeys(ctx, opts.force === true));

  registerPrivacyScanCommands(program, ctx);
}

function registerPrivacyScanCommands(program: Command, ctx: CliContext): void {
  const privacy = program.command('privacy').description('personal data that older versions stored in clear: scan for it, contain it');
  privacy
    .command('scan')
    .description(
      'list the entries whose stored payload holds personal data in clear (seq, kind, field names; never a value); exit 1 when any',
    )
    .action(() => {
      const config = ctx.config();
      ctx.setExit(scanCommand(ctx, config));
    });
  privacy
    .command('contain')
    .description(
      'archive closed months and drop the payloads the scan lists from archived segments (headers and hashes stay; journaled as segment.pruned, reason unsealed-personal-data), then rewrite the hot file',
    )
    .option('--dry-run', 'say what would be sealed, archived and contained; write nothing')
    .action((opts: { dryRun?: boolean }) => contain(ctx, opts.dryRun === true));
}

/** `privacy scan`: seqs, kinds and field names of what the journal holds in clear (never a value); 1 when any. */
function scanCommand(ctx: CliContext, config: Config): number {
  if (!existsSync(config.journal.path)) throw new UsageError(`no journal at ${config.journal.path}`);
  const report = scanJournal(config.journal.path, archiveCacheDir(config));
  if (ctx.json()) ctx.out(JSON.stringify({ journal: config.journal.path, exposed: report.findings.length, ...report }));
  else for (const line of scanLines(config.journal.path, report)) ctx.out(line);
  return report.findings.length > 0 ? 1 : 0;
}

/**
 * `privacy contain`: the archive run, whose containment step drops those payloads from archived segments, then
 * the hot file rewritten (src/journal/containment.ts); then the scan of what is still in clear.
 */
async function contain(ctx: CliContext, dryRun: boolean): Promise<void> {
  const config = ctx.config();
  if (!existsSync(config.journal.path)) throw new UsageError(`no journal at ${config.journal.path}`);
  const { archiveCommand } = await import('../archive.ts'); // the archive stores' clients (googleapis) only when used
  const code = await archiveCommand(config, { dryRun, json: ctx.json(), contain: true }, ctx);
  if (code !== 0) {
    ctx.setExit(code);
    return;
  }
  // What is still readable in clear afterwards (a dry run changed nothing: the scan as it is).
  const after = scanCommand(ctx, config);
  ctx.setExit(dryRun ? 0 : after);
}

function restoreKeys(ctx: CliContext, force: boolean): void {
  const config = ctx.config();
  if (!existsSync(config.privacy.keyStoreBackupPath))
    throw new UsageError(
      `there is no key store backup at ${config.privacy.keyStoreBackupPath} to restore from${existsSync(config.privacy.keyStorePath) ? ' (the journal service re-creates it from the store when it starts)' : ''}`,
    );
  const before = keyStoreCheck(config);
  if (before.storePresent && before.ok && !force)
    throw new UsageError('the key store is present and complete; nothing to restore (pass --force to replace it with the backup anyway)');
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
      if (ctx.json()) ctx.out(JSON.stringify({ restoredFrom: config.privacy.keyStoreBackupPath, keys: fp.keys, reErased, check: after }));
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
}

/**
 * Confirms privacy.erased entries the key store does not authenticate (recorded before erasures were, or by
 * anyone holding the append credential): each confirmed one is carried out (its keys destroyed) and recorded
 * again, authenticated, so `keys restore` re-applies it. Review each first: confirming a forged one erases its
 * subject for good.
 */
async function confirmErasures(ctx: CliContext, seqs: readonly number[]): Promise<number> {
  const config = ctx.config();
  if (!existsSync(config.journal.path)) throw new UsageError(`no journal at ${config.journal.path}`);
  // It destroys keys: opened for writing (and a missing backup is re-created, as where the product writes).
  const privacy = openKeyStoreForCheck(config.privacy, { readOnly: false });
  if (privacy === null) throw new UsageError('there is no key store: nothing was ever sealed, so there is no erasure to confirm');
  try {
    const store = privacy.keys;
    const pending = unconfirmedErasures(config, store, seqs);
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

/** The unauthenticated privacy.erased entries at `seqs`; a seq that is not one is a UsageError. */
function unconfirmedErasures(config: Config, store: SubjectKeyStore, seqs: readonly number[]): Erasure[] {
  const reader = JournalReader.open(config.journal.path);
  try {
    const { unauthenticated } = erasuresOf(reader.connection, store);
    return seqs.map((seq) => {
      const e = unauthenticated.find((x) => x.seq === seq);
      if (!e) throw new UsageError(`seq ${seq} is not an unconfirmed privacy.erased entry (see \`activity-journal keys status\`)`);
      return e;
    });
  } finally {
    reader.close();
  }
}

async function forget(ctx: CliContext, address: string, dryRun: boolean, reason: string): Promise<number> {
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
    const summary: ForgetSummary = {
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
    if (dryRun) printDryRun(ctx, plan, summary);
    else await erase(ctx, config, privacy, address, plan, summary, reason);
    return 0;
  } finally {
    privacy.close();
  }
}

function printDryRun(ctx: CliContext, plan: ForgetPlan, summary: ForgetSummary): void {
  if (ctx.json()) {
    ctx.out(JSON.stringify({ dryRun: true, ...summary }));
    return;
  }
  ctx.out(
    `dry run: would destroy ${summary.keys} key(s) of subject ${plan.subjectHash.slice(0, 16)}…, erasing ${plan.entries.length} entr${plan.entries.length === 1 ? 'y' : 'ies'} in ${plan.correlations.length} correlation(s):`,
  );
  for (const c of plan.correlations) ctx.out(`  ${c}`);
  if (summary.keys === 0) ctx.out('nothing is held under this address; forgetting it would only record the request');
  ctx.out('nothing was written');
}

/** Carries a forget plan out: the keys destroyed, the erasure journaled, the person dropped from the audit index. */
async function erase(
  ctx: CliContext,
  config: Config,
  privacy: Privacy,
  address: string,
  plan: ForgetPlan,
  summary: ForgetSummary,
  reason: string,
): Promise<void> {
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
  if (ctx.json()) {
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
    return;
  }
  ctx.out(
    `erased: destroyed ${summary.keys} key(s) of subject ${plan.subjectHash.slice(0, 16)}…; ${plan.entries.length} entr${plan.entries.length === 1 ? 'y' : 'ies'} in ${plan.correlations.length} correlation(s) now read as "erased on ${entry.recordedAt}"`,
  );
  ctx.out(`recorded as privacy.erased at seq ${entry.seq} (the address is not in it: only its keyed hash)`);
  if (!fromIndex.walTruncated)
    ctx.out(
      `NOTE: the audit read index (${config.audit.indexPath}) is in use by another process: its rows are deleted, but its write-ahead log is overwritten only at its next checkpoint (stop the web process and run forget again to be sure now)`,
    );
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
