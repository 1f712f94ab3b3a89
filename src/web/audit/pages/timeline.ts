/** The timeline page: every interaction, filtered and paged. */
import type { TimelinePage, TimelineRow } from '../../../audit/audit-service.ts';
import { CATEGORIES } from '../../../journal/categories.ts';
import { esc, layout, matchesLine, qs, select, type PageUser } from '../pages.ts';

export interface TimelineFilters {
  source?: string | undefined;
  channel?: string | undefined;
  category?: string | undefined;
  contact?: string | undefined;
  from?: string | undefined;
  until?: string | undefined;
}

export function rowsTable(rows: readonly TimelineRow[], caption: string, actions: (r: TimelineRow) => string = () => ''): string {
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
