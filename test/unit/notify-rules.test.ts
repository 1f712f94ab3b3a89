/**
 * Recipient groups as rules data: validated at load time (an unknown group, a secret written in clear), and
 * resolved into channels by what the environment configures (nothing configured: the log channel, dry run).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.ts';
import { DEFAULT_RULES_PATH, loadConfig } from '../../src/config/config.ts';
import { loadRuleset } from '../../src/pipeline/rules.ts';
import { RulesetError } from '../../src/pipeline/errors/ruleset.error.ts';
import { Notifications } from '../../src/pipeline/notifications.ts';
import type { LocalJournalClient } from '../../src/journal/local-client.ts';
import { configuredChannels } from '../../connectors/notify/index.ts';
import { NotifyConfigError } from '../../connectors/notify/errors/notify-config.error.ts';

let tmp: { dir: string; cleanup: () => void } | null = null;
afterEach(() => {
  tmp?.cleanup();
  tmp = null;
});

function rulesWith(change: (r: Record<string, unknown>) => void): string {
  tmp ??= tempDir('aj-notify-rules-');
  const rules = JSON.parse(readFileSync(DEFAULT_RULES_PATH, 'utf8')) as Record<string, unknown>;
  change(rules);
  const path = join(tmp.dir, `rules-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(rules));
  return path;
}

describe('recipient groups in the rules', () => {
  it('the shipped rules name a group for every notification rule', () => {
    const rules = loadRuleset(DEFAULT_RULES_PATH);
    for (const n of rules.notifications) expect(Object.keys(rules.recipients)).toContain(n.notify);
  });

  it('refuses, at load time, a notification rule whose group is not defined', () => {
    const path = rulesWith((r) => {
      (r.notifications as { notify: string }[])[0] = { ...(r.notifications as { notify: string }[])[0], notify: 'sales-tema' };
    });
    expect(() => loadRuleset(path)).toThrow(RulesetError);
    expect(() => loadRuleset(path)).toThrow(/contact-sales-form notifies "sales-tema", which is not a group/);
  });

  it('refuses a secret written in clear where an environment variable name belongs', () => {
    const path = rulesWith((r) => {
      (r.recipients as Record<string, unknown>)['sales-team'] = {
        slack: { webhookUrlEnv: 'https://hooks.slack.com/services/T0/B0/secret' },
      };
    });
    expect(() => loadRuleset(path)).toThrow(/recipients\.sales-team\.slack\.webhookUrlEnv: an environment variable name/);
  });
});

describe('configured channels', () => {
  const journal = null as unknown as LocalJournalClient;

  it('with nothing configured, every group is notified on the log channel (dry run), and says so', async () => {
    const rules = loadRuleset(DEFAULT_RULES_PATH);
    const { channels } = await configuredChannels(loadConfig({}).pipeline.notify, rules);
    const n = new Notifications({ journal, rules, channels, publicUrl: 'http://127.0.0.1:8080' });
    expect(n.channelsFor('sales-team')).toEqual(['log']);
    expect(n.channelsFor('support-on-call')).toEqual(['log']);
    expect(n.describe()['sales-team']).toMatch(/dry run/);
  });

  it('uses each channel whose settings are in the environment', async () => {
    const rules = loadRuleset(DEFAULT_RULES_PATH);
    const config = loadConfig({
      SMTP_HOST: '127.0.0.1',
      SLACK_SALES_WEBHOOK_URL: 'https://hooks.slack.example/services/T/B/x',
      SUPPORT_ONCALL_WEBHOOK_URL: 'https://pager.example/hook',
      SUPPORT_ONCALL_WEBHOOK_SECRET: 'a-secret-of-24-characters',
    });
    const { channels, close } = await configuredChannels(config.pipeline.notify, rules);
    const n = new Notifications({ journal, rules, channels, publicUrl: 'http://127.0.0.1:8080' });
    expect(n.channelsFor('sales-team')).toEqual(['email', 'slack']);
    expect(n.channelsFor('support-on-call')).toEqual(['webhook']);
    close();
  });

  it('refuses a webhook without its signing secret, naming the variable and never a value', async () => {
    const rules = loadRuleset(DEFAULT_RULES_PATH);
    const config = loadConfig({ SUPPORT_ONCALL_WEBHOOK_URL: 'https://pager.example/hook?token=t0ps3cret' });
    const err = await configuredChannels(config.pipeline.notify, rules).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotifyConfigError);
    expect(String((err as Error).message)).toMatch(/SUPPORT_ONCALL_WEBHOOK_SECRET/);
    expect(String((err as Error).message)).not.toMatch(/t0ps3cret/);
  });

  it('asks for SMTP_USER and SMTP_PASSWORD together', () => {
    expect(() => loadConfig({ SMTP_HOST: 'smtp.example', SMTP_USER: 'aj' })).toThrow(/SMTP_USER and SMTP_PASSWORD: set both/);
  });
});
