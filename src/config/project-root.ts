import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The project's root directory (the one holding package.json), found by walking up from `from`. The same code
 * runs from its source file (src/x/y.ts) and from the compiled bundle (dist/main.js, dist/chunks/*.js), at
 * different depths: paths to config/, prompts/, samples/ and bin/ are resolved against this, not `../..`.
 */
export function projectRoot(from: string = import.meta.dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export const PROJECT_ROOT = projectRoot();
