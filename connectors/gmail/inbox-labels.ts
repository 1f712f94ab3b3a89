/**
 * Label filters per inbox: each inbox may carry its own include/exclude lists (kept with it in the encrypted
 * inbox store); an inbox without its own uses the defaults from the configuration. Every change is journaled
 * as `state.changed` (entity `inbox/gmail/<mailbox>`, field `labels`, from → to), the way `inbox.connected`
 * names the inbox.
 */
import type { JournalClient } from '../../src/journal/journal-client.ts';
import type { GmailInboxStore, LabelFilter } from './inbox-store.ts';

/** What an inbox's filter is and where it comes from. */
export interface EffectiveLabels extends LabelFilter {
  readonly source: 'inbox' | 'default';
}

export function effectiveLabels(store: GmailInboxStore, mailbox: string, defaults: LabelFilter): EffectiveLabels {
  const own = store.record(mailbox)?.labels;
  return own
    ? { include: own.include, exclude: own.exclude, source: 'inbox' }
    : { include: defaults.include, exclude: defaults.exclude, source: 'default' };
}

/** A comma list of label ids as typed on the command line: trimmed, empty items dropped, duplicates removed. */
export function parseLabelList(value: string): string[] {
  return [
    ...new Set(
      value
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x.length > 0),
    ),
  ];
}

export interface LabelChange {
  readonly include?: readonly string[];
  readonly exclude?: readonly string[];
  /** Drop the inbox's own settings and go back to the defaults. */
  readonly reset?: boolean;
}

/**
 * Applies a change to an inbox's label filter (fields not given keep their current effective value) and journals
 * it. Nothing is journaled when nothing changes. Throws when the inbox is not connected.
 */
export async function changeInboxLabels(
  deps: { store: GmailInboxStore; journal: JournalClient; defaults: LabelFilter; actor: string; now?: () => Date },
  mailbox: string,
  change: LabelChange,
): Promise<{ before: EffectiveLabels; after: EffectiveLabels; changed: boolean }> {
  const { store, journal, defaults } = deps;
  if (!store.record(mailbox)) throw new Error(`${mailbox} is not a connected inbox`);
  const before = effectiveLabels(store, mailbox, defaults);
  const next: LabelFilter | null = change.reset
    ? null
    : { include: [...(change.include ?? before.include)], exclude: [...(change.exclude ?? before.exclude)] };
  const after: EffectiveLabels = next
    ? { ...next, source: 'inbox' }
    : { include: defaults.include, exclude: defaults.exclude, source: 'default' };
  const changed = before.source !== after.source || !sameList(before.include, after.include) || !sameList(before.exclude, after.exclude);
  if (!changed) return { before, after, changed };
  const at = (deps.now ?? (() => new Date()))().toISOString();
  // Journal first: a change on the record that failed to persist is repaired by running the command again;
  // a persisted change missing from the record would be an unexplained change in what is taken in.
  await journal.append({
    kind: 'state.changed',
    source: 'gmail',
    actor: deps.actor,
    correlationId: `inbox/gmail/${mailbox}`,
    idempotencyKey: `labels/gmail/${mailbox}/${at}`,
    payload: { entity: `inbox/gmail/${mailbox}`, field: 'labels', from: asJson(before), to: asJson(after) },
  });
  await store.setLabels(mailbox, next);
  return { before, after, changed };
}

function asJson(l: EffectiveLabels): { include: string[]; exclude: string[]; source: string } {
  return { include: [...l.include], exclude: [...l.exclude], source: l.source };
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
