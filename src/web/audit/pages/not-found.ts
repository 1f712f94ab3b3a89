/** The audit UI's page for an address that does not exist. */
import { esc, layout } from '../pages.ts';

/** The page for an /audit address that does not exist (signed in or not: it names no data). */
export function notFoundPage(path: string): string {
  return layout(
    'Not found',
    null,
    '',
    `<p class="error" role="alert">There is no page at <code>${esc(path.slice(0, 200))}</code>.</p><p>The audit UI's pages: <a href="/audit/timeline">timeline</a>, <a href="/audit/review">review queue</a>, <a href="/audit/connectors">connectors</a>, <a href="/audit/integrity">integrity</a>, <a href="/audit/export">export</a>.</p>`,
  );
}
