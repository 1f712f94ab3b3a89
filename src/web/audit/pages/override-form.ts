/** The approve-or-override form a decision carries (review queue, trace). */
import { CATEGORIES } from '../../../journal/categories.ts';
import { esc, type PageUser } from '../pages.ts';

export function overrideForm(user: PageUser, decisionId: string, current: string | null, compact: boolean): string {
  return `<form method="post" action="/audit/decisions/${esc(decisionId)}/override" class="${compact ? '' : 'override'}" aria-label="Approve or override decision ${esc(decisionId)}">
<input type="hidden" name="_csrf" value="${esc(user.csrf)}">
<label>New category <select name="category">${CATEGORIES.map((c) => `<option${c === current ? ' selected' : ''}>${c}</option>`).join('')}</select></label>
<label>Reason <textarea name="reason" rows="${compact ? 1 : 2}" cols="${compact ? 24 : 50}" required></textarea></label>
<button type="submit" name="action" value="override">Override</button> <button class="secondary" type="submit" name="action" value="approve">Approve</button></form>`;
}
