/** One line a person can read for each kind of entry; bodies and transcripts are never printed, only ids and outcomes. */
import type { JournalEntry } from '../journal/entry.ts';
import { droppedOf } from '../journal/dropped-payload.ts';
import { isJsonObject } from '../journal/json-object.ts';

type P = Record<string, unknown>;
// A value that is not there prints as "-", never as "undefined".
const j = (v: unknown): string => (v === undefined ? '-' : JSON.stringify(v));
const s = (v: unknown): string => (typeof v === 'string' ? v : j(v));

/**
 * Why this payload's personal fields are not there to print: erased (the subject was forgotten), unavailable (a
 * key is missing or the envelope does not open), or still sealed (no key store to open it); null when they are.
 */
function withheld(p: P): string | null {
  if (p.erased === true) return `erased on ${s(p.erasedAt).slice(0, 10)}`;
  if (typeof p.unavailable === 'string') return `unavailable (${p.unavailable})`;
  if (p.$sealed !== undefined) return 'sealed (no key store here to open it)';
  return null;
}

/**
 * An optional field, the one way every line prints one: `present(value)` when it is there; when the payload's
 * personal fields are withheld (above), `gone(why)` (e.g. "; reason erased on 2026-12-01"); else `absent`.
 */
function opt(p: P, key: string, present: (v: unknown) => string, gone: (why: string) => string = () => '', absent = ''): string {
  const v = p[key];
  if (v !== undefined && v !== null && v !== '') return present(v);
  const why = withheld(p);
  return why === null ? absent : gone(why);
}

/** The other interactions a call activity's write holds (its transcripts), by id. */
function held(p: P): string {
  const ids = Array.isArray(p.members)
    ? (p.members as { entryId?: unknown }[]).map((m) => m.entryId).filter((id) => typeof id === 'string' && id !== p.entryId)
    : [];
  return ids.length > 0 ? `; activity of ${s(p.entryId)}, also holding ${ids.map(s).join(', ')}` : '';
}

const DESCRIBE: Record<string, (p: P) => string> = {
  'interaction.received': (p) =>
    `${s(p.direction)} ${s(p.channel)} ${s(p.sourceId)}${opt(p, 'threadId', (v) => ` in thread ${s(v)}`)}${opt(p, 'subject', (v) => ` "${s(v)}"`)}, ${opt(
      p,
      'participants',
      (v) => `${Array.isArray(v) ? v.length : 0} participant(s)`,
      (why) => `participants ${why}`,
      '0 participant(s)',
    )}`,
  'ai.decision': (p) => {
    const out = p.output as { category?: string; summary?: string } | null | undefined;
    const what = out
      ? ` → ${s(out.category)}: ${s(out.summary)}`
      : opt(
          p,
          'error',
          (v) => ` → ${s(v)}`,
          (why) => ` → output ${why}`,
        );
    return `${s(p.outcome)} by ${s(p.provider)}/${s(p.model)}, prompt ${s(p.promptId)}@${s(p.promptVersion)}, confidence ${j(p.confidence)}${p.reviewRequired ? ', needs review' : ''}${what}`;
  },
  'rule.decision': (p) =>
    `rule ${s(p.ruleId)}@${s(p.ruleVersion)} → ${s(p.outcome)}${opt(
      p,
      'reason',
      (v) => ` (${s(v)})`,
      (why) => ` (reason ${why})`,
    )}`,
  'crm.write': (p) => `${s(p.method)} ${s(p.path)} → ${s(p.status)} in ${s(p.durationMs)} ms${p.dryRun ? ' (dry run)' : ''}${held(p)}`,
  'crm.write_failed': (p) =>
    `${s(p.method)} ${s(p.path)} → ${s(p.status)} failed${opt(
      p,
      'error',
      (v) => `: ${s(v)}`,
      (why) => ` (error ${why})`,
    )}`,
  'state.changed': (p) =>
    `${s(p.entity)} ${s(p.field)}: ${withheld(p) !== null && p.from === undefined && p.to === undefined ? `changed (values ${withheld(p)})` : `${j(p.from)} → ${j(p.to)}`}`,
  'human.override': (p) =>
    `overrides ${s(p.supersedes)}: ${s(p.field)} ${j(p.from)} → ${j(p.to)}${opt(
      p,
      'reason',
      (v) => ` because ${j(v)}`,
      (why) => `; reason ${why}`,
    )}`,
  'audit.login': (p) => `audit UI sign-in ${s(p.outcome)}${opt(p, 'userId', (v) => ` as ${s(v)}`)}${opt(p, 'reason', (v) => ` (${s(v)})`)}`,
  'audit.exported': (p) => `exported ${s(p.entries)} entr(ies) by ${s(p.scope)} with proofs against checkpoint ${s(p.treeSize)}`,
  'connector.cursor_advanced': (p) => `${s(p.connector)}/${s(p.account)} cursor ${j(p.from)} → ${j(p.to)}`,
  'connector.health': (p) => `${s(p.connector)} ${s(p.status)}${opt(p, 'reason', (v) => `: ${s(v)}`)}`,
  'webhook.rejected': (p) => `${s(p.endpoint)} answered ${s(p.status)}${opt(p, 'reason', (v) => `: ${s(v)}`)}`,
  'job.failed': (p) =>
    `${s(p.queue)} job ${s(p.jobId)} failed for good after ${s(p.attempts)} attempt(s) (${s(p.finality)})${opt(
      p,
      'error',
      (v) => `: ${s(v)}`,
      (why) => `; error ${why}`,
    )}`,
  'notification.sent': (p) =>
    `notified ${s(p.recipient)} via ${s(p.channel)} (rule ${s(p.ruleId)}@${s(p.ruleVersion)})${p.dryRun ? ', dry run' : ''}`,
  'notification.attempted': (p) => `notifying ${s(p.recipient)} via ${s(p.channel)}, attempt ${s(p.attempt)} (rule ${s(p.ruleId)})`,
  'notification.failed': (p) =>
    `notifying ${s(p.recipient)} via ${s(p.channel)} failed (${s(p.code)}, ${p.retryable ? 'will retry' : 'permanent'}; attempt ${s(p.attempt)})`,
  'journal.created': (p) => `journal ${s(p.journalId)} created; checkpoints signed by ${s(p.verifierKey)}`,
  checkpoint: (p) => `signed checkpoint of ${s(p.treeSize)} entries`,
  'privacy.erased': (p) =>
    `subject ${s(p.subjectHash).slice(0, 16)}… forgotten: ${Array.isArray(p.keyIds) ? p.keyIds.length : 0} key(s) destroyed, ${s(p.entries)} entr(ies) in ${s(p.correlations)} correlation(s)${opt(p, 'reason', (v) => ` (${s(v)})`)}`,
  'segment.pruned': (p) =>
    p.reason === 'unsealed-personal-data'
      ? `segment ${s(p.segmentId)}: ${s(p.entries)} payload(s) holding personal data in clear contained; pruned copy ${s(p.generation)} at ${s(p.location)}`
      : `segment ${s(p.segmentId)}: ${s(p.entries)} expired payload(s) dropped by retention policy ${s(p.policyVersion)}; pruned copy ${s(p.generation)} at ${s(p.location)}`,
  'retention.assigned': (p) =>
    `retention of entry #${s(p.entrySeq)} (${s(p.entryId)}) raised to ${s(p.retentionClass)} by ${s(p.rule)} of retention policy ${s(p.policyVersion)}`,
  'checkpoint.anchored': (p) =>
    `checkpoint ${s(p.treeSize)} ${p.ok ? 'anchored' : 'NOT anchored'} at ${s(p.anchor)}${opt(p, 'error', (v) => `: ${s(v)}`)}`,
};

export function describeEntry(e: JournalEntry): string {
  const dropped = droppedOf(e.payload);
  if (dropped && isJsonObject(e.payload) && isJsonObject(e.payload.$dropped) && e.payload.$dropped.reason === 'unsealed-personal-data')
    return `payload dropped on ${dropped.at.slice(0, 10)}: it held personal data in clear, written by an older version (class ${e.retentionClass})`;
  if (dropped)
    return `payload dropped on ${dropped.at.slice(0, 10)} by retention policy ${dropped.policyVersion} (class ${e.retentionClass})`;
  const p: P = isJsonObject(e.payload) ? e.payload : {};
  // The personal part of a forgotten subject's entry is gone; what stays in clear is still described.
  const erased =
    p.erased === true
      ? `[personal data erased on ${s(p.erasedAt)}] `
      : typeof p.unavailable === 'string'
        ? `[personal data unavailable: ${s(p.unavailable)}] `
        : '';
  const f = DESCRIBE[e.kind];
  if (f) return erased + f(p);
  const text = erased + j(p);
  return text.length > 200 ? text.slice(0, 197) + '...' : text;
}
