/** loadConfig reports every problem of the environment at once: schema problems and the checks after them. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { ConfigError } from '../../src/config/errors/config.error.ts';
import { crmLine } from '../../src/cli/supervisor.ts';

const base = { JOURNAL_PATH: '/tmp/aj-config/journal.sqlite' };

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadConfig({ ...base, ...env });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('the configuration was accepted');
}

describe('loadConfig', () => {
  it('lists WEB_LISTEN=nonsense together with values the schema refuses, and the other later checks', () => {
    const problems = problemsOf({
      WEB_LISTEN: 'nonsense',
      JOURNAL_SERVICE_LISTEN: 'also nonsense',
      REDIS_URL: 'http://localhost:6379',
      OPENAI_TIMEOUT_SECONDS: 'soon',
      LOG_LEVEL: 'loud',
      ARCHIVE_SCHEDULE: 'weekly-ish',
      JOURNAL_ANCHOR_URLS: 'ftp://anchor.example',
    });
    const named = problems.map((p) => p.split(':')[0]);
    expect(named.sort()).toEqual([
      'ARCHIVE_SCHEDULE',
      'JOURNAL_ANCHOR_URLS',
      'JOURNAL_SERVICE_LISTEN',
      'LOG_LEVEL',
      'OPENAI_TIMEOUT_SECONDS',
      'REDIS_URL',
      'WEB_LISTEN',
    ]);
    expect(problems).toContain('WEB_LISTEN: expected HOST:PORT, got "nonsense"');
    expect(problems.find((p) => p.startsWith('REDIS_URL'))).toMatch(/redis:\/\//);
  });

  it('says nothing about a default that stands in for a refused value', () => {
    // JOURNAL_MAX_PAYLOAD_BYTES is refused; the webhook limit is not then compared with its default.
    const problems = problemsOf({ JOURNAL_MAX_PAYLOAD_BYTES: 'lots', WEBHOOK_MAX_BODY_BYTES: '2000000', WEB_LISTEN: 'nonsense' });
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(['JOURNAL_MAX_PAYLOAD_BYTES', 'WEB_LISTEN']);
  });

  it('still accepts a good environment', () => {
    expect(loadConfig({ ...base, WEB_LISTEN: '0.0.0.0:9090' }).web.listen).toEqual({ kind: 'tcp', host: '0.0.0.0', port: 9090 });
  });
});

describe('the start-up banner', () => {
  it('says which CRM mode is on', () => {
    expect(crmLine(loadConfig({}))).toMatch(/^CRM: dry-run/);
    expect(crmLine(loadConfig({ HUBSPOT_ACCESS_TOKEN: 'pat-na1-00000000-0000-0000-0000-000000000000' }))).toBe(
      'CRM: HubSpot (writes for real)',
    );
  });
});
