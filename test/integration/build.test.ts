/**
 * The compiled CLI and its staleness check, in a temp copy of the project: the bin runs dist/ while it matches the
 * sources; after an edit it runs the edited sources (through tsx) and says so on stderr; a rebuild makes it run
 * dist/ again, now with the edit. A stale build never runs silently.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tempDir } from '../helpers/tmp.ts';

const ROOT = resolve(import.meta.dirname, '../..');
let tmp: { dir: string; cleanup: () => void };

beforeAll(() => {
  tmp = tempDir('aj-build-');
  // cpSync keeps no mtimes: the copy's fingerprint is its own, as on a fresh clone.
  for (const p of ['src', 'jobs', 'connectors', 'bin', 'scripts', 'config', 'prompts', 'samples', 'package.json'])
    cpSync(join(ROOT, p), join(tmp.dir, p), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(tmp.dir, 'node_modules'));
});
afterAll(() => tmp.cleanup());

function run(file: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(tmp.dir, file), ...args], {
    cwd: tmp.dir,
    env: { ...process.env, JOURNAL_PATH: join(tmp.dir, 'data', 'journal.sqlite'), LOG_LEVEL: 'warn' },
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const NOTICE = /running the sources through tsx/;

describe('compiled CLI', () => {
  it('runs the sources, with a notice, before any build', () => {
    const r = run('bin/activity-journal.mjs', ['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Insert-only, tamper-evident journal');
    expect(r.stderr).toMatch(/no compiled build in dist\/.*running the sources through tsx/);
  });

  it('runs dist/ after a build, silently, and finds config/ from there', () => {
    expect(run('scripts/build.mjs', ['--quiet']).status).toBe(0);
    expect(existsSync(join(tmp.dir, 'dist', 'main.js'))).toBe(true);
    const r = run('bin/activity-journal.mjs', ['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Insert-only, tamper-evident journal');
    expect(r.stderr).toBe('');
    // A new journal records the retention policy of config/retention.json: found from dist/, not ../../ of a source file.
    const created = spawnSync(process.execPath, [join(tmp.dir, 'bin/activity-journal.mjs'), 'append'], {
      cwd: tmp.dir,
      input: '',
      env: { ...process.env, JOURNAL_PATH: join(tmp.dir, 'data', 'journal.sqlite'), LOG_LEVEL: 'warn' },
      encoding: 'utf8',
    });
    expect(created.status).toBe(0);
    const report = run('bin/activity-journal.mjs', ['retention', 'report', '--json']);
    expect(report.status).toBe(0);
    expect(report.stdout).toContain('"policyVersion"');
  });

  it('runs the edited sources, with a notice, after an edit; and dist/ again once rebuilt', () => {
    const main = join(tmp.dir, 'src/cli/main.ts');
    writeFileSync(
      main,
      readFileSync(main, 'utf8').replace("'Insert-only, tamper-evident journal", "'EDITED: insert-only, tamper-evident journal"),
    );
    const stale = run('bin/activity-journal.mjs', ['--help']);
    expect(stale.status).toBe(0);
    expect(stale.stdout).toContain('EDITED: insert-only');
    expect(stale.stderr).toMatch(/dist\/ is older than the sources.*running the sources through tsx/);
    expect(run('scripts/build.mjs', ['--quiet']).status).toBe(0);
    const rebuilt = run('bin/activity-journal.mjs', ['--help']);
    expect(rebuilt.stdout).toContain('EDITED: insert-only');
    expect(rebuilt.stderr).not.toMatch(NOTICE);
  });
});
