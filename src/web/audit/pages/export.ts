/** The export page. */
import { esc, layout, type PageUser } from '../pages.ts';

export function exportPage(user: PageUser, canExport: boolean, error: string | null): string {
  if (!canExport) return layout('Export', user, '/audit/export', '<p>Exports need the reviewer or admin role.</p>');
  const csrf = `<input type="hidden" name="_csrf" value="${esc(user.csrf)}">`;
  const body = `${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}<p class="muted">JSON Lines: a header with the signed checkpoint and the journal's public key, then one line per entry with its payload and inclusion proof. Check it offline with <code>activity-journal verify-export FILE</code>. Exports are journaled.</p>
<fieldset><legend>By date range (recorded time)</legend><form method="post" action="/audit/export" class="filters">${csrf}<label>From <input type="date" name="from" required></label><label>Until (exclusive) <input type="date" name="until" required></label><button type="submit">Export</button></form></fieldset>
<fieldset><legend>One correlation</legend><form method="post" action="/audit/export" class="filters">${csrf}<label>Correlation id <input name="correlationId" required size="50"></label><button type="submit">Export</button></form></fieldset>`;
  return layout('Export', user, '/audit/export', body);
}
