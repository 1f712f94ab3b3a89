/** One line a person can read for each kind of entry; bodies and transcripts are never printed, only ids and outcomes. */
import type { JournalEntry } from '../journal/entry.ts';

type P = Record<string, unknown>;
const j = (v: unknown): string => JSON.stringify(v);
const s = (v: unknown): string => (typeof v === 'string' ? v : j(v));

const DESCRIBE: Record<string, (p: P) => string> = {
  'interaction.received': (p) => `${s(p.direction)} ${s(p.channel)} ${s(p.sourceId)}${p.threadId ? ` in thread ${s(p.threadId)}` : ''}, ${Array.isArray(p.participants) ? p.participants.length : 0} participant(s)`,
  'ai.decision': (p) => `${s(p.outcome)}: ${s(p.model)} with prompt ${s(p.promptId)}@${s(p.promptVersion)}, confidence ${j(p.confidence)}${p.reviewRequired ? ', sent to review' : ''}`,
  'rule.decision': (p) => `rule ${s(p.ruleId)}@${s(p.ruleVersion)} → ${s(p.outcome)}${p.reason ? ` (${s(p.reason)})` : ''}`,
  'crm.write': (p) => `${s(p.method)} ${s(p.path)} → ${s(p.status)} in ${s(p.durationMs)} ms${p.dryRun ? ' (dry run)' : ''}`,
  'crm.write_failed': (p) => `${s(p.method)} ${s(p.path)} → ${s(p.status)} failed: ${s(p.error)}`,
  'state.changed': (p) => `${s(p.entity)} ${s(p.field)}: ${j(p.from)} → ${j(p.to)}`,
  'human.override': (p) => `overrides ${s(p.supersedes)}: ${s(p.field)} ${j(p.from)} → ${j(p.to)} because ${j(p.reason)}`,
  'connector.cursor_advanced': (p) => `${s(p.connector)}/${s(p.account)} cursor ${j(p.from)} → ${j(p.to)}`,
  'connector.health': (p) => `${s(p.connector)} ${s(p.status)}: ${s(p.reason)}`,
  'webhook.rejected': (p) => `${s(p.endpoint)} answered ${s(p.status)}: ${s(p.reason)}`,
  checkpoint: (p) => `signed checkpoint of ${s(p.treeSize)} entries`,
  'checkpoint.anchored': (p) => `checkpoint ${s(p.treeSize)} ${p.ok ? 'anchored' : 'NOT anchored'} at ${s(p.anchor)}${p.error ? `: ${s(p.error)}` : ''}`,
};

export function describeEntry(e: JournalEntry): string {
  const p = (e.payload ?? {}) as P;
  const f = DESCRIBE[e.kind];
  if (f) return f(p);
  const text = j(p);
  return text.length > 200 ? text.slice(0, 197) + '...' : text;
}
