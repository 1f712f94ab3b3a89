/** One line a person can read for each kind of entry; bodies and transcripts are never printed, only ids and outcomes. */
import type { JournalEntry } from '../journal/entry.ts';
import { droppedOf } from '../journal/dropped-payload.ts';

type P = Record<string, unknown>;
const j = (v: unknown): string => JSON.stringify(v);
const s = (v: unknown): string => (typeof v === 'string' ? v : j(v));

const DESCRIBE: Record<string, (p: P) => string> = {
  'interaction.received': (p) => `${s(p.direction)} ${s(p.channel)} ${s(p.sourceId)}${p.threadId ? ` in thread ${s(p.threadId)}` : ''}${p.subject ? ` "${s(p.subject)}"` : ''}, ${Array.isArray(p.participants) ? p.participants.length : 0} participant(s)`,
  'ai.decision': (p) => {
    const out = p.output as { category?: string; summary?: string } | null;
    const what = out ? ` → ${s(out.category)}: ${s(out.summary)}` : p.error ? ` → ${s(p.error)}` : '';
    return `${s(p.outcome)} by ${s(p.provider)}/${s(p.model)}, prompt ${s(p.promptId)}@${s(p.promptVersion)}, confidence ${j(p.confidence)}${p.reviewRequired ? ', needs review' : ''}${what}`;
  },
  'rule.decision': (p) => `rule ${s(p.ruleId)}@${s(p.ruleVersion)} → ${s(p.outcome)}${p.reason ? ` (${s(p.reason)})` : ''}`,
  'crm.write': (p) => `${s(p.method)} ${s(p.path)} → ${s(p.status)} in ${s(p.durationMs)} ms${p.dryRun ? ' (dry run)' : ''}`,
  'crm.write_failed': (p) => `${s(p.method)} ${s(p.path)} → ${s(p.status)} failed: ${s(p.error)}`,
  'state.changed': (p) => `${s(p.entity)} ${s(p.field)}: ${j(p.from)} → ${j(p.to)}`,
  'human.override': (p) => `overrides ${s(p.supersedes)}: ${s(p.field)} ${j(p.from)} → ${j(p.to)} because ${j(p.reason)}`,
  'audit.login': (p) => `audit UI sign-in ${s(p.outcome)}${p.userId ? ` as ${s(p.userId)}` : ''} (${s(p.reason)})`,
  'audit.exported': (p) => `exported ${s(p.entries)} entr(ies) by ${s(p.scope)} with proofs against checkpoint ${s(p.treeSize)}`,
  'connector.cursor_advanced': (p) => `${s(p.connector)}/${s(p.account)} cursor ${j(p.from)} → ${j(p.to)}`,
  'connector.health': (p) => `${s(p.connector)} ${s(p.status)}: ${s(p.reason)}`,
  'webhook.rejected': (p) => `${s(p.endpoint)} answered ${s(p.status)}: ${s(p.reason)}`,
  'job.failed': (p) => `${s(p.queue)} job ${s(p.jobId)} failed for good after ${s(p.attempts)} attempt(s) (${s(p.finality)}): ${s(p.error)}`,
  'notification.sent': (p) => `notified ${s(p.recipient)} via ${s(p.channel)} (rule ${s(p.ruleId)}@${s(p.ruleVersion)})${p.dryRun ? ', dry run' : ''}`,
  'journal.created': (p) => `journal ${s(p.journalId)} created; checkpoints signed by ${s(p.verifierKey)}`,
  checkpoint: (p) => `signed checkpoint of ${s(p.treeSize)} entries`,
  'privacy.erased': (p) => `subject ${s(p.subjectHash).slice(0, 16)}… forgotten: ${Array.isArray(p.keyIds) ? p.keyIds.length : 0} key(s) destroyed, ${s(p.entries)} entr(ies) in ${s(p.correlations)} correlation(s) (${s(p.reason)})`,
  'segment.pruned': (p) => p.reason === 'unsealed-personal-data' ? `segment ${s(p.segmentId)}: ${s(p.entries)} payload(s) holding personal data in clear contained; pruned copy ${s(p.generation)} at ${s(p.location)}` : `segment ${s(p.segmentId)}: ${s(p.entries)} expired payload(s) dropped by retention policy ${s(p.policyVersion)}; pruned copy ${s(p.generation)} at ${s(p.location)}`,
  'retention.assigned': (p) => `retention of entry #${s(p.entrySeq)} (${s(p.entryId)}) raised to ${s(p.retentionClass)} by ${s(p.rule)} of retention policy ${s(p.policyVersion)}`,
  'checkpoint.anchored': (p) => `checkpoint ${s(p.treeSize)} ${p.ok ? 'anchored' : 'NOT anchored'} at ${s(p.anchor)}${p.error ? `: ${s(p.error)}` : ''}`,
};

export function describeEntry(e: JournalEntry): string {
  const dropped = droppedOf(e.payload);
  if (dropped && (e.payload as { $dropped: { reason?: unknown } }).$dropped.reason === 'unsealed-personal-data') return `payload dropped on ${dropped.at.slice(0, 10)}: it held personal data in clear, written by an older version (class ${e.retentionClass})`;
  if (dropped) return `payload dropped on ${dropped.at.slice(0, 10)} by retention policy ${dropped.policyVersion} (class ${e.retentionClass})`;
  const p = (e.payload ?? {}) as P;
  // The personal part of a forgotten subject's entry is gone; what stays in clear is still described.
  const erased = p.erased === true ? `[personal data erased on ${s(p.erasedAt)}] ` : typeof p.unavailable === 'string' ? `[personal data unavailable: ${s(p.unavailable)}] ` : '';
  const f = DESCRIBE[e.kind];
  if (f) return erased + f(p);
  const text = erased + j(p);
  return text.length > 200 ? text.slice(0, 197) + '...' : text;
}
