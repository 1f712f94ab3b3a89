/**
 * Retention rules that decide nothing the product writes (a source no connector writes, a rule shadowed by an
 * earlier one) are warned about: by `activity-journal retention report` and when the journal service starts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.ts';
import { runCliSync, type CliResult } from '../helpers/cli.ts';
import { testConfig } from '../helpers/pipeline.ts';
import { tokensFor } from '../helpers/service.ts';
import { DEFAULT_RETENTION_PATH } from '../../src/config/config.ts';
import { startJournalService } from '../../src/journal/service/run.ts';
import type { Logger } from '../../src/config/logger.ts';
import { JournalWriter } from '../../src/journal/writer.ts';
import { RetentionPolicy } from '../../src/journal/retention.ts';

let tmp: { dir: string; cleanup: () => void };
let deadPolicyPath: string;

beforeEach(() => {
  tmp = tempDir('aj-retention-rules-');
  // The shipped policy with the version-1 rule put back in front: no source the product writes starts with "forms".
  const shipped = JSON.parse(readFileSync(DEFAULT_RETENTION_PATH, 'utf8')) as { version: number; rules: object[] };
  deadPolicyPath = join(tmp.dir, 'retention.json');
  writeFileSync(
    deadPolicyPath,
    JSON.stringify({
      ...shipped,
      version: shipped.version + 1,
      rules: [{ kind: 'interaction.received', source: 'forms*', class: 'marketing-90d' }, ...shipped.rules],
    }),
  );
});
afterEach(() => tmp.cleanup());

const WARNING = 'rules[0] {kind interaction.received, source forms*} -> marketing-90d: matches no source the product writes';

function capturingLogger(lines: { level: string; obj: object; msg: string }[]): Logger {
  const log =
    (level: string) =>
    (obj: object, msg = ''): void => {
      lines.push({ level, obj, msg });
    };
  const logger: Logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error'), child: () => logger };
  return logger;
}

describe('retention rules that match nothing the product writes', () => {
  it('retention report prints a warning for each, and none for the shipped policy', async () => {
    const env = {
      ...process.env,
      JOURNAL_PATH: join(tmp.dir, 'journal.sqlite'),
      LOG_LEVEL: 'warn',
      JOURNAL_APPEND_TOKEN: '',
      JOURNAL_READ_TOKEN: '',
      ARCHIVE_DIR: join(tmp.dir, 'cold'),
    };
    const cli = (args: string[], extra: NodeJS.ProcessEnv = {}): CliResult => runCliSync(args, { env: { ...env, ...extra } });
    // A journal to report on, written under the shipped policy.
    const writer = await JournalWriter.open({
      path: join(tmp.dir, 'journal.sqlite'),
      keysDir: join(tmp.dir, 'keys'),
      checkpointEveryMs: 0,
      retention: RetentionPolicy.load(DEFAULT_RETENTION_PATH),
    });
    await writer.close();
    const shipped = cli(['retention', 'report']);
    expect(shipped.status, shipped.stderr).toBe(0);
    expect(shipped.stdout).not.toContain('WARNING');
    const dead = cli(['retention', 'report'], { RETENTION_POLICY_PATH: deadPolicyPath });
    expect(dead.status, dead.stderr).toBe(0);
    expect(dead.stdout).toContain(`WARNING: retention policy 3: ${WARNING}`);
    const json = cli(['retention', 'report', '--json'], { RETENTION_POLICY_PATH: deadPolicyPath });
    expect((JSON.parse(json.stdout) as { warnings: string[] }).warnings).toEqual([`retention policy 3: ${WARNING}`]);
  }, 120_000);

  it('the journal service logs a warning for each at start-up (ids and class names only)', async () => {
    const tokens = tokensFor();
    const env = { JOURNAL_SERVICE_LISTEN: '127.0.0.1:0', JOURNAL_APPEND_TOKEN: tokens.appendToken, JOURNAL_READ_TOKEN: tokens.readToken };
    for (const [policyPath, expected] of [
      [DEFAULT_RETENTION_PATH, 0],
      [deadPolicyPath, 1],
    ] as const) {
      const lines: { level: string; obj: object; msg: string }[] = [];
      const config = testConfig(join(tmp.dir, `svc-${expected}`), { ...env, RETENTION_POLICY_PATH: policyPath });
      const running = await startJournalService(config, capturingLogger(lines));
      await running.close();
      const warnings = lines.filter((l) => l.level === 'warn' && l.msg.includes('retention policy rule'));
      expect(warnings).toHaveLength(expected);
      if (expected === 1)
        expect(warnings[0]).toEqual({
          level: 'warn',
          obj: { policyVersion: 3, rule: 0, class: 'marketing-90d' },
          msg: `retention policy rule decides nothing the product writes: ${WARNING}`,
        });
    }
  }, 120_000);
});
