/**
 * `status`: the connected inboxes and polled forms (health, last sync, cursor), the journal (size, newest
 * checkpoint) and the key store check. Exit 1 when any of them needs attention.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../config/config.ts';
import { JournalReader } from '../../journal/reader.ts';
import type { CliContext } from '../context.ts';
import { describeCheck, keyStoreCheck } from '../key-store-check.ts';

interface InboxStatusLine {
  connector: string;
  mailbox: string;
  status: string;
  lastSyncAt: string | null;
  cursor: string | null;
  connectedAt: string;
}

interface FormStatusLine {
  connector: string;
  formId: string;
  status: string;
  lastPollAt: string | null;
  cursor: string | null;
}

/** The journal's size and newest checkpoint; null when there is no journal yet or it cannot be read (then `unreadable` says why). */
interface JournalStatus {
  journal: { entries: number; checkpoint: number | null } | null;
  unreadable: string | null;
}

export function registerStatusCommands(program: Command, ctx: CliContext): void {
  program
    .command('status')
    .description('connected inboxes (health, last sync, cursor) and the journal (size, newest checkpoint)')
    .action(() => status(ctx));
}

async function status(ctx: CliContext): Promise<void> {
  const config = ctx.config();
  const { inboxes, forms } = await connectorStatus(config);
  const { journal, unreadable } = journalStatus(config);
  // The check reads the journal too: not of one that cannot be read.
  const keyStore = unreadable === null ? keyStoreCheck(config) : null;
  if (ctx.json()) {
    ctx.out(JSON.stringify({ journal, ...(unreadable !== null ? { journalError: unreadable } : {}), inboxes, forms, keyStore }));
  } else {
    if (journal)
      ctx.out(
        `journal ${config.journal.path}: ${journal.entries} entr${journal.entries === 1 ? 'y' : 'ies'}; newest signed checkpoint: ${journal.checkpoint === null ? 'none yet' : `size ${journal.checkpoint}`}`,
      );
    else
      ctx.out(
        unreadable !== null
          ? `journal ${config.journal.path}: CANNOT BE READ: ${unreadable}`
          : `journal ${config.journal.path}: not created yet`,
      );
    for (const line of connectorLines(config, inboxes, forms)) ctx.out(line);
    if (keyStore) for (const line of describeCheck(config, keyStore)) ctx.out(line);
  }
  ctx.setExit(
    unreadable !== null || inboxes.some((i) => i.status !== 'ok') || forms.some((f) => f.status !== 'ok') || keyStore?.ok === false ? 1 : 0,
  );
}

async function connectorStatus(config: Config): Promise<{ inboxes: InboxStatusLine[]; forms: FormStatusLine[] }> {
  const [{ connectorStateSettings }, { openInboxStore }, { openFormPollStore }] = await Promise.all([
    import('../../../jobs/settings.ts'),
    import('../../../connectors/gmail/gmail.connector.ts'),
    import('../../../connectors/forms/forms.connector.ts'),
  ]);
  const inboxes = config.pipeline.gmail
    ? openInboxStore(connectorStateSettings(config))
        .list()
        .map((i) => ({
          connector: 'gmail',
          mailbox: i.mailbox,
          status: i.status,
          lastSyncAt: i.lastSyncAt,
          cursor: i.historyId,
          connectedAt: i.connectedAt,
        }))
    : [];
  const forms = (
    existsSync(join(config.pipeline.stateDir, 'form-polls.enc')) ? openFormPollStore(connectorStateSettings(config)).list() : []
  ).map((f) => ({
    connector: f.key.split('/')[0] ?? '',
    formId: f.key.split('/').slice(1).join('/'),
    status: f.status,
    lastPollAt: f.lastPollAt,
    cursor: f.cursor,
  }));
  return { inboxes, forms };
}

function journalStatus(config: Config): JournalStatus {
  // Size and checkpoint need no key store: the journal is read as stored. Not there is "not created yet";
  // there but unreadable is said as such (and exits 1), not mistaken for a journal not created yet.
  if (!existsSync(config.journal.path)) return { journal: null, unreadable: null };
  try {
    const reader = JournalReader.open(config.journal.path, { check: true });
    try {
      return { journal: { entries: reader.size(), checkpoint: reader.latestCheckpoint()?.checkpoint.treeSize ?? null }, unreadable: null };
    } finally {
      reader.close();
    }
  } catch (err) {
    return { journal: null, unreadable: (err as Error).message };
  }
}

function connectorLines(config: Config, inboxes: readonly InboxStatusLine[], forms: readonly FormStatusLine[]): string[] {
  const lines: string[] = [];
  if (!config.pipeline.gmail) lines.push('gmail: not configured (GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET)');
  else if (inboxes.length === 0) lines.push('gmail: no inbox connected (activity-journal connect gmail)');
  for (const i of inboxes)
    lines.push(
      `gmail ${i.mailbox}: ${i.status === 'ok' ? 'ok' : 'NEEDS CONSENT (run activity-journal connect gmail)'}; last sync ${i.lastSyncAt ?? 'never'}; history id ${i.cursor ?? '-'}`,
    );
  for (const f of forms)
    lines.push(
      `${f.connector} ${f.formId}: ${f.status === 'ok' ? 'ok' : f.connector === 'google-forms' ? `NEEDS CONSENT (run activity-journal connect google-forms ${f.formId})` : 'TOKEN REFUSED (set a valid HUBSPOT_ACCESS_TOKEN)'}; last poll ${f.lastPollAt ?? 'never'}; cursor ${f.cursor ?? '-'}`,
    );
  return lines;
}
