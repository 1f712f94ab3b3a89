/**
 * Server-rendered HTML of the audit UI: plain pages with labelled forms and tables, usable with the keyboard,
 * no client framework. Every value is escaped; the data comes from the same AuditService functions as the API.
 */
import { createHash } from 'node:crypto';
import type { ProofStatus, TimelinePage } from '../../audit/audit-service.ts';
import type { Role } from '../../audit/users.ts';
import { CSS, SCRIPTS, type ScriptName } from './assets/index.ts';

export function esc(value: unknown): string {
  const s = value === null || value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value);
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface PageUser {
  readonly id: string;
  readonly role: Role;
  readonly csrf: string;
}

export type { ScriptName };
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

export function proofBadge(p: ProofStatus): string {
  if (p.status === 'ok')
    return '<span class="badge ok" title="the inclusion proof against the newest signed checkpoint checks out">proof ok</span>';
  if (p.status === 'pending') return `<span class="badge pending" title="${esc(p.reason)}">not yet checkpointed</span>`;
  return `<span class="badge failed" title="${esc(p.reason)}">proof FAILED: ${esc(p.reason)}</span>`;
}

export function qs(params: Record<string, string | number | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') u.set(k, String(v));
  return u.toString();
}

export function select(name: string, label: string, options: readonly string[], value: string | undefined): string {
  return `<label>${esc(label)} <select name="${name}"><option value="">any</option>${options.map((o) => `<option${o === value ? ' selected' : ''}>${esc(o)}</option>`).join('')}</select></label>`;
}

/** "1,234 interactions match" on a first page; past the count's cap, "10,000+". */
export function matchesLine(page: TimelinePage, noun: string): string {
  if (!page.matches) return '';
  const n = `${page.matches.count.toLocaleString('en-US')}${page.matches.capped ? '+' : ''}`;
  return `<p class="muted" id="matches">${n} ${noun}${page.matches.count === 1 && !page.matches.capped ? '' : 's'} match</p>`;
}
