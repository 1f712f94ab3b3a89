/**
 * The fingerprint bin/activity-journal.mjs checks before it runs dist/: any edit, addition, removal or rename
 * of a source file must make the build stale (else the developer's change would silently not run).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.ts';
import { buildState, sourceFingerprint, STAMP_FILE } from '../../scripts/fingerprint.mjs';

let tmp: { dir: string; cleanup: () => void };
beforeEach(() => {
  tmp = tempDir('aj-fingerprint-');
  for (const d of ['src/cli', 'jobs', 'connectors/x', 'scripts', 'test']) mkdirSync(join(tmp.dir, d), { recursive: true });
  for (const f of [
    'src/cli/main.ts',
    'jobs/main.ts',
    'connectors/x/a.ts',
    'package.json',
    'scripts/build.mjs',
    'scripts/fingerprint.mjs',
    'test/t.test.ts',
  ])
    writeFileSync(join(tmp.dir, f), `// ${f}\n`);
});
afterEach(() => tmp.cleanup());

function stamp(): void {
  mkdirSync(join(tmp.dir, 'dist'), { recursive: true });
  writeFileSync(join(tmp.dir, STAMP_FILE), JSON.stringify({ fingerprint: sourceFingerprint(tmp.dir) }));
}

describe('source fingerprint', () => {
  it('is the same for the same tree, and changes with every kind of edit of a source', () => {
    const f = (): string => sourceFingerprint(tmp.dir);
    const first = f();
    expect(f()).toBe(first);
    const seen = new Set([first]);
    const changed = (what: string): void => {
      const now = f();
      expect(seen.has(now), what).toBe(false);
      seen.add(now);
    };
    writeFileSync(join(tmp.dir, 'src/cli/main.ts'), '// edited, longer than before\n');
    changed('content and size');
    // Same size, new mtime (an editor saving a one-character change).
    writeFileSync(join(tmp.dir, 'src/cli/main.ts'), '// edited, longer than befor!\n');
    utimesSync(join(tmp.dir, 'src/cli/main.ts'), new Date(), new Date(Date.now() + 5_000));
    changed('mtime');
    writeFileSync(join(tmp.dir, 'connectors/x/new.ts'), '');
    changed('added file');
    renameSync(join(tmp.dir, 'connectors/x/new.ts'), join(tmp.dir, 'connectors/x/renamed.ts'));
    changed('renamed file');
    rmSync(join(tmp.dir, 'jobs/main.ts'));
    changed('removed file');
    writeFileSync(join(tmp.dir, 'package.json'), '{"dependencies":{}}\n');
    changed('package.json');
  });

  it('ignores files the build does not read (tests)', () => {
    const before = sourceFingerprint(tmp.dir);
    writeFileSync(join(tmp.dir, 'test/t.test.ts'), '// a test edited\n');
    writeFileSync(join(tmp.dir, 'test/other.test.ts'), '');
    expect(sourceFingerprint(tmp.dir)).toBe(before);
  });
});

describe('build state', () => {
  it('is missing without a build, fresh right after one, stale after an edit', () => {
    expect(buildState(tmp.dir)).toBe('missing');
    stamp();
    expect(buildState(tmp.dir)).toBe('fresh');
    writeFileSync(join(tmp.dir, 'src/cli/main.ts'), '// a developer edits the CLI\n');
    expect(buildState(tmp.dir)).toBe('stale');
    stamp();
    expect(buildState(tmp.dir)).toBe('fresh');
    writeFileSync(join(tmp.dir, STAMP_FILE), 'not json');
    expect(buildState(tmp.dir)).toBe('missing');
  });
});
