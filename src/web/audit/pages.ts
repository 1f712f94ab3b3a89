/**
 * Server-rendered HTML of the audit UI: plain pages with labelled forms and tables, usable with the keyboard,
 * no client framework. Every value is escaped; the data comes from the same AuditService functions as the API.
 */
import { createHash } from 'node:crypto';
import type {
  TimelinePage,
  TimelineRow,
  TraceStep,
  TraceView,
  IntegrityView,
  ConnectorsView,
  ProofStatus,
} from '../../audit/audit-service.ts';
import type { Role } from '../../audit/users.ts';
import { CATEGORIES } from '../../journal/categories.ts';
import type { VerifyRun } from '../../audit/verify-runner.ts';

export function esc(value: unknown): string {
  const s = value === null || value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value);
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface PageUser {
  readonly id: string;
  readonly role: Role;
  readonly csrf: string;
}

const CSS = `
*{box-sizing:border-box}body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
a{color:#0b57d0}a:focus,button:focus,input:focus,select:focus,textarea:focus{outline:3px solid #f59e0b;outline-offset:1px}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:6px;z-index:9}
header{background:#1b1f24;color:#fff;padding:8px 20px;display:flex;gap:20px;align-items:center;flex-wrap:wrap}
header a{color:#fff;text-decoration:none;padding:4px 6px;border-radius:4px}header a[aria-current=page]{background:#3b4350}
header .who{margin-left:auto;font-size:13px}header form{display:inline}header button{font-size:13px}
main{max-width:1200px;margin:0 auto;padding:16px 20px}h1{font-size:22px;margin:8px 0 14px}
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{background:#eef1f4;font-weight:600}caption{text-align:left;padding:4px 0;color:#555}
form.filters{display:flex;flex-wrap:wrap;gap:10px;align-items:end;margin-bottom:12px;background:#fff;padding:10px;border:1px solid #e3e6ea}
label{display:flex;flex-direction:column;font-size:13px;gap:2px}input,select,textarea,button{font:inherit;padding:4px 6px}
button{cursor:pointer;border:1px solid #0b57d0;background:#0b57d0;color:#fff;border-radius:4px;padding:5px 12px}button.secondary{background:#fff;color:#0b57d0}
.badge{display:inline-block;padding:1px 7px;border-radius:10px;font-size:12px;background:#e3e6ea}.ok{background:#d1fae5;color:#065f46}.pending{background:#fef3c7;color:#92400e}.failed{background:#fee2e2;color:#991b1b}
ol.trace{list-style:none;padding:0}ol.trace>li{background:#fff;border:1px solid #e3e6ea;border-left:5px solid #94a3b8;margin:0 0 10px;padding:10px 14px}
ol.trace>li.received{border-left-color:#64748b}ol.trace>li.ai-decision{border-left-color:#7c3aed}ol.trace>li.rule-decision{border-left-color:#0891b2}ol.trace>li.crm-write{border-left-color:#ea580c}ol.trace>li.override{border-left-color:#dc2626}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:6px 0 0}dt{color:#555}dd{margin:0;word-break:break-word}
.muted{color:#666;font-size:13px}.error{background:#fee2e2;border:1px solid #fca5a5;padding:8px;margin-bottom:10px}.notice{background:#d1fae5;border:1px solid #6ee7b7;padding:8px;margin-bottom:10px}
fieldset{background:#fff;border:1px solid #e3e6ea;padding:10px 14px;margin:12px 0}progress{width:320px}
form.signin{max-width:340px;display:flex;flex-direction:column;gap:10px}
`;

/**
 * Every inline script a page may carry, by name: pages name one, never pass script text, so that the
 * Content-Security-Policy below (hashes of exactly these texts) allows them and nothing else.
 */
const SCRIPTS = {
  integrityVerify: `const f=document.getElementById('verify'),s=document.getElementById('verify-status'),p=document.getElementById('verify-progress');
f.addEventListener('submit',async(e)=>{e.preventDefault();const r=await fetch('/api/v1/integrity/verify',{method:'POST',headers:{'x-csrf-token':f._csrf.value}});const run=await r.json();poll(run.id);});
async function poll(id){const r=await fetch('/api/v1/integrity/verify/'+encodeURIComponent(id));const run=await r.json();p.value=run.total>0?run.done/run.total:0;
s.textContent=run.state==='running'?'verifying: '+run.done+' of '+run.total+' entries':run.state==='ok'?'ok: '+run.report.entries+' entries intact; '+run.report.checkpointsChecked+' checkpoint(s), '+run.report.anchorsChecked+' anchored checkpoint(s) consistent':'NOT intact: '+((run.report&&run.report.reason)||run.error);
if(run.state==='running')setTimeout(()=>poll(id),300);}`,
} as const;
export type ScriptName = keyof typeof SCRIPTS;

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/**
 * The audit UI's CSP: no 'unsafe-inline' anywhere; the one stylesheet and the known scripts are allowed by
 * their SHA-256 (computed here from the very text the pages emit), so an injected <script> or style does not run.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `style-src ${sha256(CSS)}`,
  `script-src ${Object.values(SCRIPTS).map(sha256).join(' ')}`,
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** The headers every audit answer carries (the audit plugin's and the 404 page of an unknown /audit address). */
export const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'content-security-policy': CONTENT_SECURITY_POLICY,
} as const;

const NAV: readonly [string, string][] = [
  ['/audit/timeline', 'Timeline'],
  ['/audit/review', 'Review queue'],
  ['/audit/integrity', 'Integrity'],
  ['/audit/connectors', 'Connectors'],
  ['/audit/export', 'Export'],
];

export function layout(title: string, user: PageUser | null, current: string, body: string, script: ScriptName | null = null): string {
  const nav = user
    ? `<nav aria-label="Audit pages">${NAV.map(([href, label]) => `<a href="${href}"${href === current ? ' aria-current="page"' : ''}>${label}</a>`).join('')}</nav>
       <span class="who">Signed in as <strong>${esc(user.id)}</strong> (${esc(user.role)})
       <form method="post" action="/audit/logout"><input type="hidden" name="_csrf" value="${esc(user.csrf)}"><button class="secondary" type="submit">Sign out</button></form></span>`
    : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)} · activity-journal audit</title><style>${CSS}</style></head>
<body><a class="skip" href="#main">Skip to content</a><header><strong>activity-journal audit</strong>${nav}</header>
<main id="main"><h1>${esc(title)}</h1>${body}</main>${script ? `<script>${SCRIPTS[script]}</script>` : ''}</body></html>`;
}

export function loginPage(csrf: string, next: string, error: string | null): string {
  return layout(
    'Sign in',
    null,
    '',
    `${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/audit/login" class="signin">
<input type="hidden" name="_csrf" value="${esc(csrf)}"><input type="hidden" name="next" value="${esc(next)}">
<label>User name <input name="username" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form>`,
  );
}

function proofBadge(p: ProofStatus): string {
  if (p.status === 'ok')
    return '<span class="badge ok" title="the inclusion proof against the newest signed checkpoint checks out">proof ok</span>';
  if (p.status === 'pending') return `<span class="badge pending" title="${esc(p.reason)}">not yet checkpointed</span>`;
  return `<span class="badge failed" title="${esc(p.reason)}">proof FAILED: ${esc(p.reason)}</span>`;
}

function qs(params: Record<string, string | number | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') u.set(k, String(v));
  return u.toString();
}

function select(name: string, label: string, options: readonly string[], value: string | undefined): string {
  return `<label>${esc(label)} <select name="${name}"><option value="">any</option>${options.map((o) => `<option${o === value ? ' selected' : ''}>${esc(o)}</option>`).join('')}</select></label>`;
}

export interface TimelineFilters {
  source?: string | undefined;
  channel?: string | undefined;
  category?: string | undefined;
  contact?: string | undefined;
  from?: string | undefined;
  until?: string | undefined;
}

function rowsTable(rows: readonly TimelineRow[], caption: string, actions: (r: TimelineRow) => string = () => ''): string {
  if (rows.length === 0) return '<p>Nothing matches.</p>';
  return `<table><caption>${esc(caption)}</caption><thead><tr><th scope="col">seq</th><th scope="col">occurred</th><th scope="col">source</th><th scope="col">kind</th><th scope="col">subject</th><th scope="col">category</th><th scope="col">confidence</th><th scope="col">review</th><th scope="col">trace</th>${rows.some((r) => actions(r) !== '') ? '<th scope="col">decide</th>' : ''}</tr></thead><tbody>
${rows
  .map(
    (
      r,
    ) => `<tr><td>${r.seq}</td><td>${esc(r.occurredAt.replace('T', ' ').slice(0, 16))}</td><td>${esc(r.source)}</td><td>${esc(r.channel)} ${esc(r.direction)}</td>
<td>${esc(r.subject ?? r.sourceId ?? '')}${r.summary ? `<div class="muted">${esc(r.summary)}</div>` : ''}</td>
<td>${esc(r.category ?? '—')}${r.category !== r.modelCategory && r.modelCategory ? ` <span class="badge" title="the model said ${esc(r.modelCategory)}">overridden</span>` : ''}</td>
<td>${r.confidence === null ? '—' : r.confidence.toFixed(2)}</td><td>${r.reviewState === 'none' ? '' : `<span class="badge ${r.reviewState === 'pending' ? 'pending' : 'ok'}">${esc(r.reviewState)}</span>`}</td>
<td><a href="/audit/trace?${qs({ correlationId: r.correlationId })}" aria-label="Trace of seq ${r.seq}">trace</a></td>${actions(r) ? `<td>${actions(r)}</td>` : ''}</tr>`,
  )
  .join('\n')}</tbody></table>`;
}

/** "1,234 interactions match" on a first page; past the count's cap, "10,000+". */
function matchesLine(page: TimelinePage, noun: string): string {
  if (!page.matches) return '';
  const n = `${page.matches.count.toLocaleString('en-US')}${page.matches.capped ? '+' : ''}`;
  return `<p class="muted" id="matches">${n} ${noun}${page.matches.count === 1 && !page.matches.capped ? '' : 's'} match</p>`;
}

export function timelinePage(
  user: PageUser,
  f: TimelineFilters,
  page: TimelinePage,
  sources: readonly string[],
  error: string | null,
): string {
  const filters = `<form class="filters" method="get" action="/audit/timeline" role="search" aria-label="Filter the timeline">
${select('source', 'Source', sources, f.source)}${select('channel', 'Kind', ['email', 'call', 'form'], f.channel)}${select('category', 'Category', CATEGORIES, f.category)}
<label>Contact (email or phone) <input name="contact" value="${esc(f.contact ?? '')}" autocomplete="off"></label>
<label>From <input type="date" name="from" value="${esc(f.from ?? '')}"></label><label>Until <input type="date" name="until" value="${esc(f.until ?? '')}"></label>
<button type="submit">Filter</button> <a href="/audit/timeline">Clear</a></form>`;
  const more = page.next !== null ? `<p><a href="/audit/timeline?${qs({ ...f, before: page.next })}" rel="next">Older →</a></p>` : '';
  return layout(
    'Timeline',
    user,
    '/audit/timeline',
    `${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}${filters}${matchesLine(page, 'interaction')}${rowsTable(page.rows, 'Interactions, newest first')}${more}`,
  );
}

function overrideForm(user: PageUser, decisionId: string, current: string | null, compact: boolean): string {
  return `<form method="post" action="/audit/decisions/${esc(decisionId)}/override" class="${compact ? '' : 'override'}" aria-label="Approve or override decision ${esc(decisionId)}">
<input type="hidden" name="_csrf" value="${esc(user.csrf)}">
<label>New category <select name="category">${CATEGORIES.map((c) => `<option${c === current ? ' selected' : ''}>${c}</option>`).join('')}</select></label>
<label>Reason <textarea name="reason" rows="${compact ? 1 : 2}" cols="${compact ? 24 : 50}" required></textarea></label>
<button type="submit" name="action" value="override">Override</button> <button class="secondary" type="submit" name="action" value="approve">Approve</button></form>`;
}

export function reviewPage(user: PageUser, page: TimelinePage, canOverride: boolean, notice: string | null): string {
  const body = `${notice ? `<p class="notice" role="status">${esc(notice)}</p>` : ''}<p class="muted">Decisions the rules routed to review (model failure, low confidence, sensitive category) that no one has approved or overridden yet. An approval or an override is a new journal entry; nothing is edited.</p>
${matchesLine(page, 'decision')}${rowsTable(page.rows, 'Waiting for review, newest first', (r) => (canOverride && r.decisionId ? overrideForm(user, r.decisionId, r.category, true) : ''))}
${page.next !== null ? `<p><a href="/audit/review?before=${page.next}" rel="next">Older →</a></p>` : ''}`;
  return layout('Review queue', user, '/audit/review', body);
}

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

/** The page for an /audit address that does not exist (signed in or not: it names no data). */
export function notFoundPage(path: string): string {
  return layout(
    'Not found',
    null,
    '',
    `<p class="error" role="alert">There is no page at <code>${esc(path.slice(0, 200))}</code>.</p><p>The audit UI's pages: <a href="/audit/timeline">timeline</a>, <a href="/audit/review">review queue</a>, <a href="/audit/connectors">connectors</a>, <a href="/audit/integrity">integrity</a>, <a href="/audit/export">export</a>.</p>`,
  );
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

export function integrityPage(user: PageUser, view: IntegrityView, canVerify: boolean, run: VerifyRun | null): string {
  const cp = view.checkpoint;
  const anchors =
    view.anchors.length === 0
      ? '<p>No anchor has confirmed a checkpoint yet.</p>'
      : `<table><caption>Anchors (newest attempt each)</caption><thead><tr><th scope="col">anchor</th><th scope="col">status</th><th scope="col">checkpoint size</th><th scope="col">lag (entries)</th><th scope="col">when</th></tr></thead><tbody>${view.anchors
          .map(
            (a) =>
              `<tr><td>${esc(a.anchor)}</td><td><span class="badge ${a.ok ? 'ok' : 'failed'}">${a.ok ? 'ok' : 'failing'}</span>${a.error ? ` ${esc(a.error)}` : ''}</td><td>${a.treeSize}</td><td>${a.lag}</td><td>${esc(a.at)}</td></tr>`,
          )
          .join('')}</tbody></table>`;
  const verify = canVerify
    ? `<fieldset><legend>Verify the whole journal now</legend><p class="muted">Recomputes every hash, the chain and the Merkle root, and checks every checkpoint and anchor (as <code>activity-journal verify</code>).</p>
<form id="verify" method="post" action="/audit/integrity/verify"><input type="hidden" name="_csrf" value="${esc(user.csrf)}"><button type="submit">Verify now</button></form>
<p id="verify-status" role="status" aria-live="polite">${run ? esc(runText(run)) : ''}</p><progress id="verify-progress" max="1" value="${run && run.total > 0 ? run.done / run.total : 0}" aria-label="verification progress"></progress></fieldset>`
    : '';
  const body = `<dl><dt>entries</dt><dd>${view.entries}</dd>
<dt>newest checkpoint</dt><dd>${cp ? `size ${cp.treeSize} (seq ${cp.seq}, ${esc(cp.recordedAt)}), root <code>${esc(cp.rootHash)}</code>; ${cp.uncovered} newer entr${cp.uncovered === 1 ? 'y' : 'ies'} not yet covered` : 'none yet'}</dd>
<dt>checkpoint key</dt><dd><code>${esc(view.verifierKey ?? '')}</code></dd></dl>${anchors}${verify}`;
  return layout('Integrity', user, '/audit/integrity', body, canVerify ? 'integrityVerify' : null);
}

export function runText(run: VerifyRun): string {
  if (run.state === 'running') return `verifying: ${run.done} of ${run.total} entries`;
  if (run.state === 'ok') return `ok: verified at ${run.finishedAt ?? ''}`;
  const reason = run.report?.reason;
  return `NOT intact: ${typeof reason === 'string' ? reason : (run.error ?? '')}`;
}

export function connectorsPage(user: PageUser, view: ConnectorsView): string {
  const inboxes = !view.gmailConfigured
    ? '<p>Gmail is not configured (GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET).</p>'
    : view.inboxes.length === 0
      ? '<p>No inbox connected (<code>activity-journal connect gmail</code>).</p>'
      : `<table><caption>Inboxes</caption><thead><tr><th scope="col">inbox</th><th scope="col">status</th><th scope="col">last sync</th><th scope="col">cursor</th><th scope="col">connected</th></tr></thead><tbody>${view.inboxes
          .map(
            (i) =>
              `<tr><td>${esc(i.connector)} ${esc(i.account)}</td><td><span class="badge ${i.status === 'ok' ? 'ok' : 'failed'}">${i.status === 'ok' ? 'ok' : 'needs consent'}</span></td><td>${esc(i.lastSyncAt ?? 'never')}</td><td>${esc(i.cursor ?? '—')}</td><td>${esc(i.connectedAt ?? '')}</td></tr>`,
          )
          .join(
            '',
          )}</tbody></table><p class="muted">Coverage against the mailbox itself: <code>activity-journal reconcile gmail MAILBOX --report-only</code>.</p>`;
  const sources =
    view.sources.length === 0
      ? '<p>No interaction journaled yet.</p>'
      : `<table><caption>Sources in the journal</caption><thead><tr><th scope="col">source</th><th scope="col">interactions</th><th scope="col">newest occurred</th><th scope="col">newest received</th></tr></thead><tbody>${view.sources
          .map(
            (s) =>
              `<tr><td>${esc(s.source)}</td><td>${s.interactions}</td><td>${esc(s.lastOccurredAt ?? '')}</td><td>${esc(s.lastRecordedAt ?? '')}</td></tr>`,
          )
          .join('')}</tbody></table>`;
  const hooks = `<p>Webhook sources with a configured secret: ${view.webhooks.length === 0 ? 'none' : view.webhooks.map((w) => `<code>/webhooks/${esc(w)}</code>`).join(', ')}.</p>`;
  return layout('Connectors', user, '/audit/connectors', `${inboxes}${hooks}${sources}`);
}

export function exportPage(user: PageUser, canExport: boolean, error: string | null): string {
  if (!canExport) return layout('Export', user, '/audit/export', '<p>Exports need the reviewer or admin role.</p>');
  const csrf = `<input type="hidden" name="_csrf" value="${esc(user.csrf)}">`;
  const body = `${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}<p class="muted">JSON Lines: a header with the signed checkpoint and the journal's public key, then one line per entry with its payload and inclusion proof. Check it offline with <code>activity-journal verify-export FILE</code>. Exports are journaled.</p>
<fieldset><legend>By date range (recorded time)</legend><form method="post" action="/audit/export" class="filters">${csrf}<label>From <input type="date" name="from" required></label><label>Until (exclusive) <input type="date" name="until" required></label><button type="submit">Export</button></form></fieldset>
<fieldset><legend>One correlation</legend><form method="post" action="/audit/export" class="filters">${csrf}<label>Correlation id <input name="correlationId" required size="50"></label><button type="submit">Export</button></form></fieldset>`;
  return layout('Export', user, '/audit/export', body);
}
