/**
 * The layering docs/architecture.md describes, checked on every import (static and dynamic) of the sources:
 * a layer imports only layers below it. dpdm (in `npm run lint`) catches cycles; this catches a module reaching up.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/config/project-root.ts';

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? tsFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** Every relative module a file imports, as a path relative to the project root. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^import\s+)'(\.{1,2}\/[^']+)'/gm)].map((m) => m[1] as string);
  return specifiers.map((s) => relative(PROJECT_ROOT, resolve(dirname(file), s)));
}

/** For each layer (a folder), the folders it must not import from. */
const FORBIDDEN: Record<string, readonly string[]> = {
  'src/journal': ['src/pipeline', 'src/audit', 'src/web', 'src/cli', 'src/config/config.ts', 'src/state', 'jobs', 'connectors'],
  'src/pipeline': ['src/audit', 'src/web', 'src/cli', 'src/config/config.ts', 'jobs', 'connectors'],
  'src/audit': ['src/web', 'src/cli', 'jobs', 'connectors'],
  connectors: ['src/web', 'src/cli', 'src/config/config.ts', 'jobs'],
  jobs: ['src/web', 'src/cli'],
  'src/errors': ['src', 'jobs', 'connectors'],
};

describe('layering', () => {
  for (const [layer, forbidden] of Object.entries(FORBIDDEN)) {
    it(`${layer} imports nothing from ${forbidden.join(', ')}`, () => {
      const files = tsFiles(join(PROJECT_ROOT, layer));
      expect(files.length).toBeGreaterThan(0);
      const offending = files.flatMap((file) =>
        importsOf(file)
          .filter((target) => !target.startsWith(`${layer}/`) && forbidden.some((f) => target === f || target.startsWith(`${f}/`)))
          .map((target) => `${relative(PROJECT_ROOT, file)} -> ${target}`),
      );
      expect(offending).toEqual([]);
    });
  }

  it('sees the imports it checks (a module importing upwards would be caught)', () => {
    const sample = join(PROJECT_ROOT, 'jobs', 'main.ts');
    expect(importsOf(sample)).toContain('src/pipeline/pipeline.ts');
  });
});
