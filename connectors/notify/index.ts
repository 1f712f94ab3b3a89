/**
 * The notification channels configured here, per recipient group of the rules: e-mail when SMTP_HOST is set,
 * Slack when the group's webhook URL variable is set, the signed webhook when its URL and secret variables are.
 * A group without any is notified on the log channel (dry run), as before delivery existed.
 */
import type { Ruleset } from '../../src/pipeline/rules.ts';
import type { DeliveryChannel } from '../../src/pipeline/notifications.ts';
import { SmtpChannel, smtpTransport, type SmtpSettings } from './smtp.channel.ts';
import { SlackChannel } from './slack.channel.ts';
import { WebhookChannel } from './webhook.channel.ts';
import { NotifyConfigError } from './errors/notify-config.error.ts';

export { SmtpChannel, smtpTransport, smtpRefusal } from './smtp.channel.ts';
export type { SmtpSettings } from './smtp.channel.ts';
export { SlackChannel } from './slack.channel.ts';
export { WebhookChannel, notificationSignature, SIGNATURE_HEADER, TIMESTAMP_HEADER } from './webhook.channel.ts';

function httpUrl(name: string, value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new NotifyConfigError(`${name}: not a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new NotifyConfigError(`${name}: expected an https:// URL`);
  return value;
}

/** What delivery can use: SMTP (null without SMTP_HOST), and the secrets the rules name by variable. */
export interface NotifySettings {
  readonly smtp: SmtpSettings | null;
  /** The value of an environment variable named in the rules (Slack webhook URLs, webhook URLs and secrets). */
  readonly secret: (name: string) => string | undefined;
}

/** The channels of every group; throws (naming the variable, never its value) when a set variable is unusable. */
export async function configuredChannels(
  settings: NotifySettings,
  rules: Ruleset,
): Promise<{ channels: Map<string, DeliveryChannel[]>; close: () => void }> {
  const { smtp, secret } = settings;
  const groups = Object.entries(rules.recipients);
  const transport = smtp && groups.some(([, g]) => g.email) ? await smtpTransport(smtp) : null;
  const channels = new Map<string, DeliveryChannel[]>();
  for (const [name, g] of groups) {
    const list: DeliveryChannel[] = [];
    if (g.email && transport && smtp) list.push(new SmtpChannel(transport, smtp.from, g.email.to));
    const slackUrl = g.slack ? secret(g.slack.webhookUrlEnv) : undefined;
    if (g.slack && slackUrl) list.push(new SlackChannel(httpUrl(g.slack.webhookUrlEnv, slackUrl), g.slack.webhookUrlEnv));
    if (g.webhook) {
      const url = secret(g.webhook.urlEnv);
      const key = secret(g.webhook.secretEnv);
      if (url && !key)
        throw new NotifyConfigError(
          `${g.webhook.secretEnv}: recipient group ${name}'s webhook (${g.webhook.urlEnv}) needs its signing secret`,
        );
      if (url && key) {
        if (key.length < 16) throw new NotifyConfigError(`${g.webhook.secretEnv}: must be at least 16 characters`);
        list.push(new WebhookChannel(httpUrl(g.webhook.urlEnv, url), key, g.webhook.urlEnv));
      }
    }
    channels.set(name, list);
  }
  return { channels, close: () => transport?.close() };
}
