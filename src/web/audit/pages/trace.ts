/** The trace of one correlation: every step, with its facts and its proof. */
import type { TraceStep, TraceView } from '../../../audit/audit-service.ts';
import { esc, layout, proofBadge, type PageUser } from '../pages.ts';
import { overrideForm } from './override-form.ts';

/** A step's fact list: values escaped (objects as JSON), empty ones left out; `html` rows are markup already. */
class FactList {
  readonly rows: [string, string][] = [];
  add(k: string, v: unknown): void {
    if (v !== null && v !== undefined && v !== '') this.rows.push([k, typeof v === 'string' ? esc(v) : esc(JSON.stringify(v))]);
  }
  html(k: string, markup: string): void {
    this.rows.push([k, markup]);
  }
}

type Facts = Record<string, unknown>;

function receivedFacts(f: Facts, list: FactList): void {
  list.add('channel', `${String(f.channel)} ${String(f.direction)}`);
  list.add('source id', f.sourceId);
  list.add('subject', f.subject);
  list.add('occurred', f.occurredAt);
  list.add('participants', `${String(f.participants)} (${(f.domains as string[]).join(', ')})`);
}

function aiDecisionFacts(f: Facts, list: FactList): void {
  list.add('outcome', f.outcome);
  list.add('model', f.model);
  list.add('prompt version', f.prompt);
  list.add('confidence', typeof f.confidence === 'number' ? f.confidence.toFixed(2) : f.confidence);
  list.add('category', f.category);
  list.add('summary', f.summary);
  list.add('redactions', (f.redactions as { rule: string; count: number }[]).map((r) => `${r.rule} ×${r.count}`).join(', ') || 'none');
  list.add('truncated to', f.truncatedTo);
  list.add('needs review', f.reviewRequired ? 'yes' : null);
  list.add('error', f.error);
}

function ruleDecisionFacts(f: Facts, list: FactList): void {
  list.add('rule', f.rule);
  list.add('section', f.section);
  list.add('inputs', f.inputs);
  list.add('outcome', f.outcome);
  list.add('reason', f.reason);
}

function crmWriteFacts(f: Facts, list: FactList): void {
  list.add('request', f.request);
  list.add('status', `${String(f.status)}${f.dryRun ? ' (dry run: nothing sent)' : ''}`);
  list.add('category written', f.category);
  if (Array.isArray(f.holds) && f.holds.length > 0) {
    list.add('activity of', f.activityOf);
    list.add('also holds', (f.holds as string[]).join(', '));
  }
  const objects = f.objects as { id: string; link: string | null }[];
  if (objects.length > 0)
    list.html(
      'objects',
      objects.map((o) => (o.link ? `<a href="${esc(o.link)}" rel="noreferrer">${esc(o.id)}</a>` : esc(o.id))).join(', '),
    );
  list.add('error', f.error);
}

function overrideFacts(f: Facts, list: FactList): void {
  list.add('by', f.user);
  list.add('supersedes', f.supersedes);
  list.add('change', `${String(f.field)}: ${JSON.stringify(f.from)} → ${JSON.stringify(f.to)}`);
  list.add('reason', f.reason);
}

/** A trace step's facts as a definition list, by the kind of step. */
function facts(step: TraceStep): string {
  const f = step.facts as Facts;
  const list = new FactList();
  if (typeof f.erasedAt === 'string') list.add('personal data', `erased on ${f.erasedAt}`);
  switch (step.step) {
    case 'received':
      receivedFacts(f, list);
      break;
    case 'ai-decision':
      aiDecisionFacts(f, list);
      break;
    case 'rule-decision':
      ruleDecisionFacts(f, list);
      break;
    case 'crm-write':
      crmWriteFacts(f, list);
      break;
    case 'override':
      overrideFacts(f, list);
      break;
    default:
      list.add('kind', step.kind);
  }
  return `<dl>${list.rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('')}</dl>`;
}

const STEP_TITLES: Record<TraceStep['step'], string> = {
  received: 'Received',
  'ai-decision': 'AI decision',
  'rule-decision': 'Rule decision',
  'crm-write': 'CRM write',
  override: 'Human override',
  other: 'Entry',
};

/** /audit/trace without a correlation: what it needs, and a field to give it. */
export function traceFinderPage(user: PageUser): string {
  const body = `<p>A trace shows everything the journal holds under one <strong>correlation id</strong>: the interaction, its decision, the rules applied, the CRM writes, notifications and overrides, each with its proof.</p>
<form method="get" action="/audit/trace"><label>Correlation id <input name="correlationId" required maxlength="512" size="60" placeholder="form/webform/contact-sales-1234"></label> <button type="submit">Show the trace</button></form>
<p>Correlation ids are in the <a href="/audit/timeline">timeline</a>, the <a href="/audit/review">review queue</a>, <code>send-sample</code>'s output and <code>activity-journal trace</code>.</p>`;
  return layout('Trace', user, '', body);
}

export function tracePage(user: PageUser, view: TraceView, canOverride: boolean, notice: string | null, error: string | null): string {
  const decision = view.interaction?.decisionId ?? null;
  const steps = view.steps
    .map(
      (s) =>
        `<li class="${s.step}" id="seq-${s.seq}"><strong>${STEP_TITLES[s.step]}</strong> · seq ${s.seq} · ${esc(s.kind)} · ${esc(s.recordedAt)} · by ${esc(s.actor)} ${proofBadge(s.proof)}${facts(s)}</li>`,
    )
    .join('\n');
  const form =
    decision && canOverride
      ? `<fieldset><legend>Approve or override the decision</legend>${overrideForm(user, decision, view.interaction?.category ?? null, false)}</fieldset>`
      : '';
  const body = `${notice ? `<p class="notice" role="status">${esc(notice)}</p>` : ''}${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<p class="muted">Correlation <code>${esc(view.correlationId)}</code>; proofs against the newest signed checkpoint (${view.checkpointSize === null ? 'none yet' : `${view.checkpointSize} entries`}).
${view.interaction ? ` Category in force: <strong>${esc(view.interaction.category ?? '—')}</strong>.` : ''}</p>
${view.steps.length === 0 ? '<p>No entries under this correlation.</p>' : `<ol class="trace">${steps}</ol>`}${form}`;
  return layout('Trace', user, '', body);
}
