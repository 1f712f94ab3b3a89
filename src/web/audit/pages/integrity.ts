/** The integrity page: checkpoint, anchors, a verification run. */
import type { IntegrityView } from '../../../audit/audit-service.ts';
import type { VerifyRun } from '../../../audit/verify-runner.ts';
import { esc, layout, type PageUser } from '../pages.ts';

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
