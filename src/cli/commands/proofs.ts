/**
 * Reading the journal and proving what it holds: `trace` (one correlation's entries), `prove` (an inclusion
 * proof of one entry) and `verify-proof` (checking one offline); `checkpoint` and `public-key`, the signed
 * checkpoint and the key such proofs are checked against.
 */
import type { Command } from 'commander';
import { readFileSync, writeFileSync } from 'node:fs';
import { checkInclusionBundle } from '../../journal/proof.ts';
import { JournalFileError } from '../../journal/errors/journal-file.error.ts';
import type { JournalEntry } from '../../journal/entry.ts';
import { isKind } from '../../journal/entry-payload.ts';
import type { CliContext, CliOutput } from '../context.ts';
import { describeEntry } from '../describe.ts';
import { openReader, withWriterOrService } from '../journal-access.ts';
import { pinnedKey, wholeNumber } from '../options.ts';
import { terminalSafe } from '../terminal-text.ts';
import { UsageError } from '../usage-error.ts';

interface ProveOpts {
  out?: string;
  includePayload?: boolean;
}

export function registerProofCommands(program: Command, ctx: CliContext): void {
  program
    .command('trace')
    .description('the entries of one correlation, in order')
    .argument('<correlationId>')
    .action((correlationId: string) => trace(ctx, correlationId));

  program
    .command('prove')
    .description('an inclusion proof of one entry against the newest checkpoint (JSON)')
    .argument('<seq>', 'entry seq')
    .option('--out <file>', 'write the proof to a file instead of stdout')
    .option('--include-payload', 'include the payload (it may hold personal data)')
    .action((seqText: string, opts: ProveOpts) => prove(ctx, seqText, opts));

  program
    .command('verify-proof')
    .description('check an inclusion proof offline (exit 0 valid, 1 invalid)')
    .argument('<file>')
    .option('--public-key <vkey>', "the journal's checkpoint key to trust (from `activity-journal public-key`)")
    .action((file: string, opts: { publicKey?: string }) => verifyProof(ctx, file, opts.publicKey));

  program
    .command('checkpoint')
    .description('write a signed checkpoint now and publish it to the anchors')
    .action(() => checkpoint(ctx));

  program
    .command('public-key')
    .description("print the journal's checkpoint verifier key (C2SP signed-note format)")
    .action(() => publicKey(ctx));
}

async function trace(ctx: CliContext, correlationId: string): Promise<void> {
  const reader = openReader(ctx.config());
  try {
    const { attachArchives } = await import('../archive.ts');
    await attachArchives(ctx.config(), reader);
    const entries = reader.byCorrelation(correlationId);
    if (ctx.json()) for (const e of entries) ctx.out(JSON.stringify(e));
    else printTrace(ctx, correlationId, entries);
    if (entries.length === 0) ctx.setExit(1);
  } finally {
    reader.close();
  }
}

function printTrace(io: CliOutput, correlationId: string, entries: readonly JournalEntry[]): void {
  if (entries.length === 0) {
    io.out(`no entries for correlation ${correlationId}`);
    return;
  }
  io.out(`correlation ${correlationId}: ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}`);
  for (const e of entries) {
    // One line each: a newline inside a value (a subject, an actor) must not forge a line of its own.
    io.out(
      terminalSafe(
        `#${e.seq}  ${e.recordedAt}  ${e.kind}  (source ${e.source}, actor ${e.actor}${e.causationId ? `, caused by ${e.causationId}` : ''})`,
        { singleLine: true },
      ),
    );
    io.out(`      ${terminalSafe(describeEntry(e), { singleLine: true })}`);
  }
}

function prove(ctx: CliContext, seqText: string, opts: ProveOpts): void {
  const seq = wholeNumber(seqText, 'seq');
  const reader = openReader(ctx.config());
  try {
    // A seq the journal never had is a misuse (exit 2), not a proof that failed.
    const size = reader.size();
    if (seq >= size)
      throw new UsageError(
        `no entry at seq ${seq}: the journal holds seq 0 to ${size - 1} (activity-journal trace <correlationId> shows the seqs of a correlation)`,
      );
    const bundle = reader.proveInclusion(seq, { includePayload: opts.includePayload === true });
    const text = JSON.stringify(bundle, null, 2);
    if (opts.out) {
      writeFileSync(opts.out, text + '\n');
      ctx.err(`inclusion proof of seq ${seq} against checkpoint of size ${bundle.treeSize} written to ${opts.out}`);
    } else ctx.out(text);
  } finally {
    reader.close();
  }
}

function verifyProof(ctx: CliContext, file: string, publicKey: string | undefined): void {
  let bundle: unknown;
  try {
    bundle = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  } catch (err) {
    throw new UsageError(`cannot read a proof from ${file}: ${(err as Error).message}`);
  }
  const check = checkInclusionBundle(bundle, pinnedKey(publicKey));
  if (ctx.json()) ctx.out(JSON.stringify(check));
  else if (check.ok) {
    ctx.out(`ok: entry seq ${check.seq} is included in the signed checkpoint of ${check.treeSize} entries`);
    if (!check.keyPinned)
      ctx.err('note: the signature was checked against the key named in the file; pass --public-key to pin the key you trust');
  } else ctx.out(`invalid proof: ${check.reason}`);
  ctx.setExit(check.ok ? 0 : 1);
}

async function checkpoint(ctx: CliContext): Promise<void> {
  const config = ctx.config();
  const r = await withWriterOrService(
    config,
    async (writer) => {
      const c = await writer.checkpoint();
      return { seq: c.seq, treeSize: c.checkpoint.treeSize, note: c.note, created: c.created };
    },
    (client) => client.checkpoint(),
  );
  if (ctx.json()) ctx.out(JSON.stringify(r));
  else
    ctx.out(
      `${r.created ? 'checkpoint written' : 'no new entries; newest checkpoint re-published'}: size ${r.treeSize} (entry seq ${r.seq})\n\n${r.note}`,
    );
}

function publicKey(ctx: CliContext): void {
  const reader = openReader(ctx.config());
  try {
    const genesis = reader.bySeq(0);
    if (!isKind(genesis, 'journal.created')) throw new JournalFileError('UNREADABLE', 'the journal has no journal.created entry');
    const { verifierKey, origin } = genesis.payload;
    // Never dropped (permanent retention, no personal data): a genesis without its key is not one the journal wrote.
    if (verifierKey === undefined) throw new JournalFileError('UNREADABLE', 'the journal.created entry holds no verifier key');
    ctx.out(ctx.json() ? JSON.stringify({ verifierKey, origin }) : verifierKey);
  } finally {
    reader.close();
  }
}
