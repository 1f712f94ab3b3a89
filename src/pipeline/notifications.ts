/**
 * Notification delivery: the notify job's handler. The decide stage enqueues one job per (notification rule,
 * channel of its recipient group); this delivers it and journals every step under the interaction's correlation:
 *
 *   notification.attempted  (before handing the message to the channel: attempt n, what and to whom, sealed)
 *   notification.sent       (the channel accepted it: idempotency key notify/<entry>/<rule>/<channel>)
 *   notification.failed     (refused or failed: its code, retryable or not; the provider's words sealed)
 *
 * A retried job sends once: a job whose notification.sent is on the record does nothing. The one window left is
 * a crash between the provider accepting and our notification.sent: the retry sends again, with the same
 * delivery id (the e-mail's Message-ID, the webhook's Idempotency-Key), so a receiver can drop the duplicate;
 * Slack's incoming webhooks offer no such key, so there the window can show one duplicate message.
 *
 * Job data, logs and errors carry ids and codes only; addresses come from the rules, the text from the journaled
 * decision, at send time.
 */
import { createHash } from 'node:crypto';
import type { JournalClient } from '../journal/journal-client.ts';
import type { Logger } from '../config/logger.ts';
import { silentLogger } from '../config/logger.ts';
import { classificationOf } from './classification.ts';
import { isKind } from '../journal/entry-payload.ts';
import { notifyJobKey, type JobData } from './job-catalog.ts';
import type { Notifier, NotifyChannelName } from './ports.ts';
import type { Ruleset } from './rules.ts';
import { PermanentJobError } from './errors/permanent-job.error.ts';
import { NotifyRefusal, NotifyRetryError, refusalCode } from './errors/notify-refusal.error.ts';
import { RateLimitError } from './errors/rate-limit.error.ts';

export const NOTIFY_TEMPLATE = 'interaction-summary';
const SUMMARY_MAX = 500;

/** What a channel sends: built from the journaled decision when the job runs. */
export interface OutgoingMessage {
  /** Stable for one (interaction, rule, channel): the same on every attempt (Message-ID, Idempotency-Key). */
  readonly deliveryId: string;
  readonly subject: string;
  readonly text: string;
  readonly traceUrl: string;
  readonly entryId: string;
  readonly correlationId: string;
  readonly ruleId: string;
  readonly ruleVersion: string;
  readonly group: string;
  readonly category: string;
  readonly urgency: string;
  readonly summary: string;
}

export interface SendResult {
  /** What the provider answered (SMTP's reply, Slack's body); journaled sealed. */
  readonly providerReply?: string;
  /** E-mail recipients the server refused while it took the message for the others (journaled sealed). */
  readonly rejected?: readonly string[];
}

/** One configured way to reach a group. Throws NotifyRefusal when the provider refuses (retryable or not). */
export interface DeliveryChannel {
  readonly name: Exclude<NotifyChannelName, 'log'>;
  /** What the attempt records about the target: the addresses (sealed) or the variable naming the URL. */
  readonly target: { readonly to?: readonly string[]; readonly targetEnv?: string };
  send(message: OutgoingMessage, signal?: AbortSignal): Promise<SendResult>;
}

export interface NotificationsOptions {
  readonly journal: JournalClient;
  readonly rules: Ruleset;
  /** The configured channels by recipient group; a group with none is notified on the log channel (dry run). */
  readonly channels: ReadonlyMap<string, readonly DeliveryChannel[]>;
  /** The web server's public base URL: messages link to the audit UI's trace of the interaction. */
  readonly publicUrl: string;
  readonly logger?: Logger;
}

export class Notifications implements Notifier {
  private readonly log: Logger;
  constructor(private readonly options: NotificationsOptions) {
    this.log = (options.logger ?? silentLogger).child({ component: 'notifier' });
  }

  channelsFor(group: string): readonly NotifyChannelName[] {
    const list = this.options.channels.get(group) ?? [];
    return list.length > 0 ? list.map((c) => c.name) : ['log'];
  }

  /** One line per group for the start-up log: where its notifications go (no addresses, no URLs). */
  describe(): Record<string, string> {
    return Object.fromEntries(
      Object.keys(this.options.rules.recipients).map((g) => [
        g,
        (this.options.channels.get(g) ?? []).map((c) => c.name).join('+') || 'log (dry run: no channel configured)',
      ]),
    );
  }

  /** Delivers one notify job; `attempt` is 1 for the first try. */
  async deliver(
    job: JobData<'notify'>,
    attempt: number,
    signal?: AbortSignal,
  ): Promise<{ status: 'sent' | 'already-sent' | 'dry-run'; channel: NotifyChannelName }> {
    const { journal, rules } = this.options;
    const rule = rules.notifications.find((r) => r.id === job.ruleId);
    if (!rule) throw new PermanentJobError(`notification rule ${job.ruleId} is not in rules version ${rules.version}`);
    const group = rule.notify;
    const base = { channel: job.channel, recipient: group, ruleId: rule.id, ruleVersion: rules.version, template: NOTIFY_TEMPLATE };
    const common = {
      source: 'pipeline',
      actor: `notifier:${job.channel}`,
      correlationId: job.correlationId,
      causationId: job.entryId,
    } as const;
    const ids = { entryId: job.entryId, ruleId: rule.id, channel: job.channel, recipient: group };

    if (job.channel === 'log') {
      // No channel configured for the group: on the record as a dry run (the key is the one the inline notifier used).
      this.log.info({ ...ids, dryRun: true }, 'notification (dry run: no channel configured)');
      await journal.append({
        kind: 'notification.sent',
        ...common,
        idempotencyKey: `notify/${job.entryId}/${rule.id}`,
        payload: { ...base, dryRun: true },
      });
      return { status: 'dry-run', channel: 'log' };
    }
    const channel = (this.options.channels.get(group) ?? []).find((c) => c.name === job.channel);
    if (!channel) throw new PermanentJobError(`recipient group ${group} has no ${job.channel} channel configured here`);

    const sentKey = `notify/${job.entryId}/${rule.id}/${job.channel}`;
    if (await journal.byIdempotencyKey(sentKey)) {
      this.log.info({ ...ids, attempt }, 'notification already sent; not sending again');
      return { status: 'already-sent', channel: job.channel };
    }
    const message = await this.message(job, group, rule.description);
    const delivery = { entryId: job.entryId, attempt, deliveryId: message.deliveryId };
    await journal.append({
      kind: 'notification.attempted',
      ...common,
      idempotencyKey: `${sentKey}/attempt/${attempt}`,
      payload: {
        ...base,
        ...delivery,
        ...(channel.target.to ? { to: [...channel.target.to] } : {}),
        ...(channel.target.targetEnv ? { targetEnv: channel.target.targetEnv } : {}),
        subject: message.subject,
        text: message.text,
      },
    });
    let result: SendResult;
    try {
      result = await channel.send(message, signal);
    } catch (err) {
      const refusal =
        err instanceof NotifyRefusal
          ? err
          : new NotifyRefusal(
              refusalCode((err as { code?: unknown }).code ? String((err as { code?: unknown }).code) : (err as Error).name),
              true,
              (err as Error).message,
              undefined,
              { cause: err },
            );
      await journal.append({
        kind: 'notification.failed',
        ...common,
        // The attempt and what went wrong: a worker that died after journaling a failure re-runs the same attempt.
        idempotencyKey: `${sentKey}/failed/${attempt}/${createHash('sha256').update(`${refusal.code}\n${refusal.detail}`).digest('hex').slice(0, 16)}`,
        payload: {
          ...base,
          ...delivery,
          retryable: refusal.retryable,
          code: refusalCode(refusal.code),
          error: refusal.detail.slice(0, 4000),
          ...(refusal.retryAfterSeconds !== undefined ? { retryAfterSeconds: refusal.retryAfterSeconds } : {}),
        },
      });
      this.log.warn({ ...ids, attempt, code: refusal.code, retryable: refusal.retryable }, 'notification failed');
      const reason = `${job.channel} refused the notification: ${refusalCode(refusal.code)}`;
      if (!refusal.retryable) throw new PermanentJobError(reason, { cause: err });
      const after = refusal.retryAfterSeconds;
      // The channel said when (a Retry-After): a rate limit of this channel; only this job waits that long.
      if (after !== undefined)
        throw new RateLimitError(`${reason} (temporary; retried after the ${after} s it asked for)`, {
          provider: job.channel,
          retryAfterMs: after * 1000,
          cause: err,
        });
      throw new NotifyRetryError(`${reason} (temporary; retried with backoff)`, { cause: err });
    }
    // Refused recipients are on the record and said (a count, never an address); the message is not sent again
    // for them, which would send it twice to the others.
    const rejected = new Set((result.rejected ?? []).map((a) => a.toLowerCase()));
    const to = channel.target.to?.filter((a) => !rejected.has(a.toLowerCase()));
    await journal.append({
      kind: 'notification.sent',
      ...common,
      idempotencyKey: sentKey,
      payload: {
        ...base,
        dryRun: false,
        ...delivery,
        ...(to ? { to } : {}),
        ...(result.providerReply ? { providerReply: result.providerReply.slice(0, 2000) } : {}),
        ...(rejected.size > 0 ? { rejected: [...(result.rejected ?? [])] } : {}),
      },
    });
    if (rejected.size > 0)
      this.log.warn(
        { ...ids, attempt, accepted: to?.length ?? 0, rejected: rejected.size },
        'notification sent, but the mail server refused some recipients',
      );
    else this.log.info({ ...ids, attempt }, 'notification sent');
    return { status: 'sent', channel: job.channel };
  }

  /** The message, from the journaled decision: which interaction (a link to its trace), its category and summary. */
  private async message(job: JobData<'notify'>, group: string, description: string | undefined): Promise<OutgoingMessage> {
    const { journal, rules } = this.options;
    const entry = await journal.bySeq(job.seq);
    if (!isKind(entry, 'interaction.received') || entry.id !== job.entryId)
      throw new PermanentJobError(`journal entry seq ${job.seq} is not the interaction ${job.entryId}`);
    const decision = await journal.bySeq(job.decisionSeq);
    if (!isKind(decision, 'ai.decision') || decision.id !== job.decisionEntryId)
      throw new PermanentJobError(`journal entry seq ${job.decisionSeq} is not the decision ${job.decisionEntryId}`);
    if (!decision.payload.output)
      throw new PermanentJobError(`the decision ${decision.id} has no readable output (erased?): nothing to notify about`);
    const output = classificationOf(decision);
    const channelOf = entry.payload.channel ?? 'interaction';
    const summary = output.summary.length > SUMMARY_MAX ? `${output.summary.slice(0, SUMMARY_MAX - 1)}…` : output.summary;
    const traceUrl = `${this.options.publicUrl.replace(/\/$/, '')}/audit/trace?${new URLSearchParams({ correlationId: job.correlationId }).toString()}`;
    const title = description ?? `Notification ${job.ruleId}`;
    const subject = `${title.replace(/\.$/, '')}: ${output.category} ${channelOf}`.slice(0, 200);
    const text = [
      summary,
      '',
      `Category: ${output.category}, urgency: ${output.urgency}. Rule ${job.ruleId}@${rules.version}, for ${group}.`,
      `Trace: ${traceUrl}`,
    ].join('\n');
    return {
      deliveryId: notifyJobKey(job.entryId, job.ruleId, job.channel),
      subject,
      text,
      traceUrl,
      entryId: entry.id,
      correlationId: job.correlationId,
      ruleId: job.ruleId,
      ruleVersion: rules.version,
      group,
      category: output.category,
      urgency: output.urgency,
      summary,
    };
  }
}
