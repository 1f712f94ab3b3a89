/** The connectors page: inboxes, webhook sources, sources in the journal. */
import type { ConnectorsView } from '../../../audit/audit-service.ts';
import { esc, layout, type PageUser } from '../pages.ts';

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
