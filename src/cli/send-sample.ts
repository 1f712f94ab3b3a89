/**
 * `activity-journal send-sample`: the first-run walkthrough's one command. It signs one sample form submission
 * the way a form provider would (the generic form webhook's x-aj scheme, with FORMS_WEBHOOK_SECRET or the secret
 * the web server generated on its first start), posts it to the running web server, waits for the pipeline's
 * decision in the journal, and prints what was decided and where to see it in the audit UI.
 */
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/config.ts';
import { formsWebhookSecret } from '../../jobs/main.ts';
import { signV1 } from '../pipeline/webhook-signature.ts';
import { JournalReader } from '../journal/reader.ts';
import { findKind } from '../journal/entry-payload.ts';
import { attachConfiguredPrivacy } from '../journal/configured-privacy.ts';
import { firstUserLine } from './supervisor.ts';
import { UsageError } from './usage-error.ts';
import { SAMPLE_FORMS, type SampleKind } from './walkthrough.ts';

export interface SendSampleResult {
  readonly correlationId: string;
  readonly seq: number;
  readonly decision: { readonly category: string; readonly confidence: number; readonly provider: string } | null;
  readonly traceUrl: string;
  /** How to create the audit UI's first user, when it has none yet. */
  readonly firstUser: string | null;
}

/** The base URL of the local web server (WEB_LISTEN; a wildcard host is reached on loopback). */
export function localWebUrl(config: Config): string {
  const l = config.web.listen;
  if (l.kind !== 'tcp') throw new UsageError('WEB_LISTEN must be HOST:PORT');
  const host = l.host === '0.0.0.0' || l.host === '::' ? '127.0.0.1' : l.host.includes(':') ? `[${l.host}]` : l.host;
  return `http://${host}:${l.port}`;
}

export async function sendSample(
  config: Config,
  options: { kind: SampleKind; url?: string | undefined; waitMs: number },
): Promise<SendSampleResult> {
  const secret = formsWebhookSecret(config);
  if (!secret)
    throw new UsageError(
      'no form webhook secret yet: start the product first (npm start creates one on its first run), or set FORMS_WEBHOOK_SECRET',
    );
  const base = (options.url ?? localWebUrl(config)).replace(/\/$/, '');
  const sample = SAMPLE_FORMS[options.kind];
  const submissionId = `sample-${Date.now()}-${randomBytes(3).toString('hex')}`;
  const body = JSON.stringify({
    submissionId,
    form: sample.form,
    submittedAt: new Date().toISOString(),
    email: sample.email,
    name: sample.name,
    fields: sample.fields,
  });
  const ts = Math.floor(Date.now() / 1000);
  let res: Response;
  try {
    res = await fetch(`${base}/webhooks/forms`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-aj-timestamp': String(ts), 'x-aj-signature': signV1(secret, ts, body) },
      body,
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new UsageError(
      `nothing answered at ${base} (${(err as Error).name === 'TimeoutError' ? 'no answer within 10 s' : ((err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message)}): is the product running (npm start)? Use --url to point at another web server`,
    );
  }
  const answer = (await res.json().catch(() => ({}))) as { results?: { status: string; seq?: number }[]; error?: string };
  if (res.status === 401)
    throw new UsageError(
      `the web server at ${base} refused the signature: it runs with another FORMS_WEBHOOK_SECRET than this shell (${answer.error ?? ''})`,
    );
  if (res.status !== 200) throw new Error(`the web server at ${base} answered ${res.status}: ${answer.error ?? 'no reason given'}`);
  const seq = answer.results?.[0]?.seq;
  if (seq === undefined) throw new Error(`the submission was not taken in: ${JSON.stringify(answer.results ?? [])}`);
  const reader = attachConfiguredPrivacy(JournalReader.open(config.journal.path), config);
  try {
    const received = reader.bySeq(seq);
    if (!received) throw new Error(`entry #${seq} is not in ${config.journal.path}: is the web server at ${base} writing another journal?`);
    const decision = await waitForDecision(reader, received.correlationId, received.id, options.waitMs);
    return {
      correlationId: received.correlationId,
      seq,
      decision,
      traceUrl: `${config.web.webhooks.publicUrl.replace(/\/$/, '')}/audit/trace?correlationId=${encodeURIComponent(received.correlationId)}`,
      firstUser: firstUserLine(config),
    };
  } finally {
    reader.close();
  }
}

async function waitForDecision(
  reader: JournalReader,
  correlationId: string,
  entryId: string,
  waitMs: number,
): Promise<SendSampleResult['decision']> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const d = findKind(reader.byCorrelation(correlationId), 'ai.decision', (e) => e.causationId === entryId);
    if (d) {
      const category = d.payload.output?.category;
      return {
        category: typeof category === 'string' ? category : '?',
        confidence: d.payload.confidence ?? 0,
        provider: d.payload.provider ?? '?',
      };
    }
    if (Date.now() > deadline) return null;
    await new Promise((r) => setTimeout(r, 200));
  }
}
