#!/usr/bin/env node
// The activity-journal command line. It runs the compiled JavaScript in dist/ (built by `npm ci`, by every
// integration test run and by `npm run build`) while dist/ was built from the sources as they are now; after an
// edit to src/, jobs/ or connectors/ (or with no build at all) it runs the sources through tsx instead, saying so
// in one line on stderr: a stale build never runs. The check is a few ms of stat calls (scripts/fingerprint.mjs).
import { fileURLToPath } from 'node:url';
import { buildState } from '../scripts/fingerprint.mjs';

const state = buildState(fileURLToPath(new URL('..', import.meta.url)));
let main;
if (state === 'fresh') ({ main } = await import('../dist/main.js'));
else {
  process.stderr.write(
    `activity-journal: ${state === 'missing' ? 'no compiled build in dist/' : 'dist/ is older than the sources'}; running the sources through tsx (slower start; \`npm run build\` compiles them)\n`,
  );
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
const code = await main(process.argv);
process.exitCode = code;
// A finished command must end even if a client library keeps an idle connection or timer alive
// (googleapis, ioredis). Exit only once our own output has drained into its pipe (or its reader went away:
// a destroyed stream never drains, see src/cli/output.ts).
const drained = (s) => s.destroyed || s.writableLength === 0;
const finish = () => {
  if (drained(process.stdout) && drained(process.stderr)) process.exit(code);
  else setTimeout(finish, 200).unref();
};
setTimeout(finish, 2000).unref();
