// A cheap fingerprint of the sources the compiled CLI (dist/) is built from: every file's path, size and mtime
// under src/, jobs/ and connectors/, plus package.json and the build script. Cheap enough (a few ms: stat
// calls, no reads) for bin/activity-journal.mjs to check on every run that dist/ is not stale. Plain
// JavaScript, so that the bin can use it before anything is compiled.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/** What the build reads: these directories (recursively) and these files, relative to the project root. */
export const SOURCE_DIRS = ['src', 'jobs', 'connectors'];
export const SOURCE_FILES = ['package.json', 'scripts/build.mjs', 'scripts/fingerprint.mjs'];
/** Where the build records the fingerprint of the sources it compiled. */
export const STAMP_FILE = 'dist/build-stamp.json';

function walk(dir, out) {
  let names;
  try {
    names = readdirSync(dir, { withFileTypes: true });
  } catch {
    return; // a missing directory fingerprints as empty
  }
  for (const d of names) {
    const p = join(dir, d.name);
    if (d.isDirectory()) walk(p, out);
    else if (d.isFile()) out.push(p);
  }
}

/** The fingerprint of the sources under `root`: changes when a file is edited (size or mtime), added, removed or renamed. */
export function sourceFingerprint(root) {
  const files = [];
  for (const d of SOURCE_DIRS) walk(join(root, d), files);
  for (const f of SOURCE_FILES) files.push(join(root, f));
  const hash = createHash('sha256');
  for (const f of files.map((p) => relative(root, p)).sort()) {
    let line;
    try {
      const s = statSync(join(root, f));
      line = `${f}\0${s.size}\0${s.mtimeMs}\n`;
    } catch {
      line = `${f}\0missing\n`;
    }
    hash.update(line);
  }
  return hash.digest('hex');
}

/** Whether dist/ was built from the sources as they are now: 'fresh', 'stale' (edited since) or 'missing' (never built). */
export function buildState(root) {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(join(root, STAMP_FILE), 'utf8'));
  } catch {
    return 'missing';
  }
  return stamp && stamp.fingerprint === sourceFingerprint(root) ? 'fresh' : 'stale';
}
