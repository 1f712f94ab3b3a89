/** The review queue. */
import type { TimelinePage } from '../../../audit/audit-service.ts';
import { esc, layout, matchesLine, type PageUser } from '../pages.ts';
import { overrideForm } from './override-form.ts';
import { rowsTable } from './timeline.ts';

export function reviewPage(user: PageUser, page: TimelinePage, canOverride: boolean, notice: string | null): string {
  const body = `${notice ? `<p class="notice" role="status">${esc(notice)}</p>` : ''}<p class="muted">Decisions the rules routed to review (model failure, low confidence, sensitive category) that no one has approved or overridden yet. An approval or an override is a new journal entry; nothing is edited.</p>
${matchesLine(page, 'decision')}${rowsTable(page.rows, 'Waiting for review, newest first', (r) => (canOverride && r.decisionId ? overrideForm(user, r.decisionId, r.category, true) : ''))}
${page.next !== null ? `<p><a href="/audit/review?before=${page.next}" rel="next">Older →</a></p>` : ''}`;
  return layout('Review queue', user, '/audit/review', body);
}
