/** One line a person can read for each kind of entry; bodies and transcripts are never printed, only ids and outcomes. */
import type { JournalEntry } from '../journal/entry.ts';

type P = Record<string, unknown>;
const j = (v: unknown): string => JSON.stringify(v);

const DESCRIBE: Record<string, (p: P) => string> = {
  'interaction.received': (p) => `${String(p.direction)} ${String(p.channel)} ${String(p.sourceId)}${p.threadId ? ` in thread ${String(p.threadId)}` : ''}, ${Array.isArray(p.participants) ? p.participants.length : 0} participant(s)`,
  'ai.decision': (p) => `${String(p.outcome)}: ${String(p.model)} with prompt ${String(p.promptId)}@${String(p.promptVersion)}, confidence ${j(p.confidence)}${p.reviewRequired ? ', sent to review' : ''}`,
  'rule.decision': (p) => `rule ${String(p.ruleId)}@${String(p.ruleVersion)} → ${String(p.outcome)}${p.reason ? ` (${String(p.reason)})` : ''}`,
  'crm.write': (p) => `${String(p.method)} ${String(p.path)} → ${String(p.status)} in ${String(p.durationMs)} ms${p.dryRun ? ' (dry run)' : ''}`,
  'crm.write_failed': (p) => `${String(p.method)} ${String(p.path)} → ${String(p.status)} failed: ${String(p.error)}`,
  'state.changed': (p) => `${String(p.entity)} ${String(p.field)}: ${j(p.from)} → ${j(p.to)}`,
  'human.override': (p) => `overrides ${String(p.supersedes)}: ${String(p.field)} ${j(p.from)} → ${j(p.to)} because ${j(p.reason)}`,
  'connector.cursor_advanced': (p) => `${String(p.connector)}/${String(p.account)} cursor ${j(p.from)} → ${j(p.to)}`,
  'connector.health': (p) => `${String(p.connector)} ${String(p.status)}: ${String(p.reason)}`,
  'webhook.rejected': (p) => `${String(p.endpoint)} answered ${String(p.status)}: ${String(p.reason)}`,
  checkpoint: (p) => `signed checkpoint of ${String(p.treeSize)} entries`,
  'checkpoint.anchored': (p) => `checkpoint ${String(p.treeSize)} ${p.ok ? 'anchored' : 'NOT anchored'} at ${String(p.anchor)}${p.error ? `: ${String(p.error)}` : ''}`,
};

export function describeEntry(e: JournalEntry): string {
  const p = (e.payload ?? {}) as P;
  const f = DESCRIBE[e.kind];
  if (f) return f(p);
  const text = j(p);
  return text.length > 200 ? text.slice(0, 197) + '...' : text;
}
