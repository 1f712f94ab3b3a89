#!/usr/bin/env node
// Compiles the CLI (src/cli/main.ts and everything it imports, including jobs/ and connectors/) to plain
// JavaScript in dist/, so that a command does not pay for compiling TypeScript at run time. Run by `npm ci`
// (the `prepare` script) and before every integration test run (its global setup); `npm run build` by hand.
//
// esbuild, not tsc: it bundles (one file per lazily imported part instead of ~160 modules to resolve and
// read on every start) and takes well under a second, so it can run before every `npm test`; type checking
// stays `npm run typecheck`'s job. Dependencies stay in node_modules (packages: 'external').
//
// The fingerprint of the sources is recorded last (dist/build-stamp.json): bin/activity-journal.mjs runs
// dist/ only while it matches, and falls back to the sources through tsx otherwise.
import { build } from 'esbuild';
import { rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { sourceFingerprint, STAMP_FILE } from './fingerprint.mjs';

const root = resolve(import.meta.dirname, '..');
const outdir = join(root, 'dist');
// Taken before compiling: an edit made while the build runs makes the stamp stale, never a stale build fresh.
const fingerprint = sourceFingerprint(root);
const started = performance.now();
rmSync(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { main: 'src/cli/main.ts' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  chunkNames: 'chunks/[name]-[hash]',
  logLevel: 'warning',
});
writeFileSync(join(root, STAMP_FILE), JSON.stringify({ fingerprint, builtAt: new Date().toISOString() }) + '\n');
if (!process.argv.includes('--quiet')) process.stderr.write(`built dist/ in ${Math.round(performance.now() - started)} ms\n`);
