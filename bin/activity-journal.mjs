#!/usr/bin/env node
// The activity-journal command line. TypeScript sources run through tsx: no build step to forget.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv);
