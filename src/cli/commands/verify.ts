/**
 * `verify`: every hash, the chain, the Merkle root, every signed checkpoint and the anchors, recomputed from the
 * journal file alone (src/journal/verify.ts); and the key store check.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../config/config.ts';
import { JournalReader } from '../../journal/reader.ts';
import { isKind } from '../../journal/entry-payload.ts';
import { verifyJournal, type AnchoredNote, type VerifyReport } from '../../journal/verify.ts';
import { readAnchoredNotes, readPinnedKey, originSlug } from '../../journal/anchors.ts';
import { parseVerifierKey, type Verifier } from '../../journal/keys.ts';
import { readSealKey } from '../../journal/identity.ts';
import type { CliContext } from '../context.ts';
import { describeCheck, keyStoreCheck } from '../key-store-check.ts';
import { collect } from '../options.ts';
import { write } from '../output.ts';
import { progressBar } from '../progress.ts';
import { UsageError } from '../usage-error.ts';

interface VerifyOpts {
  anchors: string[];
  progressLines?: boolean;
  includeArchives?: boolean;
}

/** The anchors the journal is checked against: their checkpoint notes and the key pinned in them. */
interface Anchors {
  readonly dirs: readonly string[];
  readonly notes: AnchoredNote[];
  readonly pinned: Verifier | null;
}

export function registerVerifyCommands(program: Command, ctx: CliContext): void {
  program
    .command('verify')
    .description('recompute every hash, the chain and the Merkle root; check every checkpoint and anchor')
    .option('--anchors <dir>', 'a directory anchor whose checkpoints the journal must be consistent with (repeatable)', collect, [])
    .option('--progress-lines', 'report progress as `progress DONE/TOTAL` lines on stderr (for the audit UI)')
    .option('--include-archives', 'also verify the archived segments (fetched from their store), from seq 0 on')
    .action(async (opts: VerifyOpts) => {
      ctx.setExit(await verifyCommand(ctx, ctx.config(), opts.anchors, opts.includeArchives === true, opts.progressLines === true));
    });
}

async function verifyCommand(
  ctx: CliContext,
  config: Config,
  anchorDirs: string[],
  includeArchives: boolean,
  progressLines: boolean,
): Promise<number> {
  // Verification needs the journal alone (no master key): hashes commit to sealed payloads as stored. It
  // writes nothing, not even SQLite's side files (`check`).
  const reader = JournalReader.open(config.journal.path, { check: true });
  try {
    const archives = includeArchives ? await (await import('../archive.ts')).attachArchives(config, reader) : undefined;
    const genesis = reader.bySeq(0);
    const origin = isKind(genesis, 'journal.created') ? (genesis.payload.origin ?? null) : null;
    const anchors = readAnchors(config, anchorDirs, origin);
    if (typeof anchors === 'string') return fail(ctx, 0, anchors);
    const bar = progressLines ? progressLinesTo(process.stderr) : ctx.json() ? { update() {}, done() {} } : progressBar('verifying');
    const report = verifyJournal(reader.connection, {
      sealKey: existsSync(config.journal.keysDir) ? readSealKey(config.journal.keysDir) : null,
      verifier: anchors.pinned,
      anchoredNotes: anchors.notes,
      onProgress: (d, t) => bar.update(d, t),
      ...(archives ? { archives } : {}),
    });
    bar.done();
    // A journal that verifies but whose key store lost keys it needs (or was rolled back over an erasure) is reported, loudly.
    const keys = keyStoreCheck(config);
    if (ctx.json()) ctx.out(JSON.stringify({ ...report, keyStore: keys }));
    else printReport(ctx, report, anchors.dirs.length > 0);
    if (!ctx.json()) for (const line of describeCheck(config, keys)) ctx.out(line);
    return report.ok && keys.ok ? 0 : 1;
  } finally {
    reader.close();
  }
}

/**
 * The explicit `--anchors`, else the configured directory anchors that exist; or, as a string, why the journal
 * is not consistent with an explicit one.
 */
function readAnchors(config: Config, anchorDirs: readonly string[], origin: string | null): Anchors | string {
  const dirs =
    anchorDirs.length > 0
      ? anchorDirs
      : config.journal.anchorDirs.filter((d) => origin !== null && existsSync(join(d, originSlug(origin))));
  const notes: AnchoredNote[] = [];
  let pinned: Verifier | null = null;
  for (const dir of anchorDirs) if (!existsSync(dir)) throw new UsageError(`--anchors ${dir}: no such directory`);
  for (const dir of dirs) {
    const found = origin === null ? [] : readAnchoredNotes(dir, origin);
    const key = origin === null ? null : readPinnedKey(dir, origin);
    // The writer pins its key in every directory anchor when it opens, so an explicit anchor that knows
    // nothing of this journal's origin means the file was replaced (its origin is the forger's) or the
    // directory is the wrong one. Either way the journal is not shown consistent with it.
    if (found.length === 0 && key === null && anchorDirs.includes(dir))
      return `anchor mismatch: ${dir} holds no checkpoint and no pinned key for this journal's origin ${origin ?? '(none: no journal.created entry)'}; the journal file was replaced, or this is not its anchor directory`;
    for (const note of found) notes.push({ source: `${dir} (size ${note.split('\n')[1] ?? '?'})`, note });
    if (key !== null) pinned = parseVerifierKey(key);
  }
  return { dirs, notes, pinned };
}

function printReport(ctx: CliContext, report: VerifyReport, anchorsChecked: boolean): void {
  if (!report.ok) {
    if (report.firstBadSeq !== null) ctx.out(`first bad entry: seq ${report.firstBadSeq}`);
    ctx.out(`reason: ${report.reason}`);
    return;
  }
  ctx.out(
    `ok: ${report.entries} entries intact (payload hashes, leaves, chain, Merkle tree${report.sealsChecked ? ', seals' : ''}); ${report.checkpointsChecked} signed checkpoint(s) match; ${report.anchorsChecked} anchored checkpoint(s) consistent`,
  );
  ctx.out(`root ${report.rootHash}\nchain head ${report.chainHead}`);
  if (!report.sealsChecked) ctx.err('note: seals not checked (no seal key in the keys directory)');
  if (!anchorsChecked) ctx.err('note: no anchors checked; pass --anchors DIR to catch truncation and file replacement');
  if (report.verifiedFrom > 0)
    ctx.err(
      `note: seq 1..${report.verifiedFrom - 1} are in archived segments, not checked now; pass --include-archives to verify them too`,
    );
}

/** Progress as `progress DONE/TOTAL` lines, at most five a second (the audit UI reads them). */
function progressLinesTo(stream: NodeJS.WriteStream): { update(done: number, total: number): void; done(): void } {
  let last = 0;
  return {
    update(done, total) {
      const now = Date.now();
      if (now - last < 200 && done < total) return;
      last = now;
      write(stream, `progress ${done}/${total}\n`);
    },
    done() {},
  };
}

function fail(ctx: CliContext, firstBadSeq: number, reason: string): number {
  if (ctx.json()) ctx.out(JSON.stringify({ ok: false, firstBadSeq, reason }));
  else ctx.out(`first bad entry: seq ${firstBadSeq}\nreason: ${reason}`);
  return 1;
}
