// Before the integration tests spawn bin/activity-journal.mjs: compile dist/ from the sources as they are now
// (well under a second), so that the tests run the compiled CLI the product ships, not the tsx fallback.
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

export default function setup(): void {
  execFileSync(process.execPath, [resolve(import.meta.dirname, '../../scripts/build.mjs'), '--quiet'], { stdio: 'inherit' });
}
