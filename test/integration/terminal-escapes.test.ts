/**
 * A Gmail subject is written by whoever sends the mail: control characters in it must not reach the terminal of
 * the operator who runs `activity-journal trace` (ESC ] 0 retitles the window, ESC [2J clears the screen).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.ts';
import { runCliSync, type CliResult } from '../helpers/cli.ts';
import { loadConfig, type Config } from '../../src/config/config.ts';
import { JournalWriter } from '../../src/journal/writer.ts';
import { openWriterPrivacy } from '../../src/journal/configured-privacy.ts';

let tmp: { dir: string; cleanup: () => void };
let env: NodeJS.ProcessEnv;
let config: Config;
beforeEach(() => {
  tmp = tempDir('aj-escapes-');
  env = {
    ...process.env,
    JOURNAL_PATH: join(tmp.dir, 'data', 'journal.sqlite'),
    LOG_LEVEL: 'warn',
    JOURNAL_APPEND_TOKEN: '',
    JOURNAL_READ_TOKEN: '',
    JOURNAL_MASTER_KEY: '',
    JOURNAL_MASTER_KEY_FILE: '',
    KEY_STORE_PATH: '',
    KEY_STORE_BACKUP: '',
  };
  config = loadConfig({ JOURNAL_PATH: env.JOURNAL_PATH, LOG_LEVEL: 'silent' });
});
afterEach(() => tmp.cleanup());

const cli = (args: string[]): CliResult => runCliSync(args, { env });

describe('terminal escapes in journal content', () => {
  it('trace prints a hostile subject with its control characters escaped; --json stays JSON with the exact value', async () => {
    const subject = 'Invoice \u001b]0;pwned\u0007 due\u001b[2J\nforged line';
    const privacy = openWriterPrivacy(config);
    const writer = await JournalWriter.open({ path: config.journal.path, keysDir: config.journal.keysDir, checkpointEveryMs: 0, privacy });
    try {
      await writer.append({
        kind: 'interaction.received',
        source: 'gmail',
        actor: 'connector:gmail',
        correlationId: 'email-thread/gmail/esc',
        idempotencyKey: 'interaction/gmail/esc',
        payload: {
          channel: 'email',
          sourceId: 'esc-1',
          direction: 'inbound',
          occurredAt: '2026-11-01T09:00:00Z',
          participants: [{ role: 'from', address: 'mallory@attacker.example' }],
          subject,
          text: 'hi',
        },
      });
    } finally {
      await writer.close();
      privacy.close();
    }
    const human = cli(['trace', 'email-thread/gmail/esc']);
    expect(human.status, human.stderr).toBe(0);
    expect([...human.stdout].filter((c) => c === '\u001b' || c === '\u0007')).toEqual([]);
    expect(human.stdout).toContain('Invoice \\u001b]0;pwned\\u0007 due\\u001b[2J\\u000aforged line');
    // The subject's newline did not start a line of its own.
    expect(human.stdout.split('\n').some((l) => l.startsWith('forged line'))).toBe(false);

    const json = cli(['--json', 'trace', 'email-thread/gmail/esc']);
    expect(json.status, json.stderr).toBe(0);
    expect([...json.stdout].filter((c) => c === '\u001b' || c === '\u0007')).toEqual([]);
    const entry = JSON.parse(json.stdout.trim()) as { payload: { subject: string } };
    expect(entry.payload.subject).toBe(subject);
  });
});
