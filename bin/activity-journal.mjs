#!/usr/bin/env node
// The activity-journal command line. TypeScript sources run through tsx: no build step to forget.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
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
