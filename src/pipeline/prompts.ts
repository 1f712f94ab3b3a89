/**
 * Prompts are versioned files (`prompts/<id>/<version>.md`). A decision records the prompt's id, version and the
 * SHA-256 of its bytes, so "which instructions did the model get?" has an exact answer.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Prompt } from './classification.ts';
import { PROJECT_ROOT } from '../config/project-root.ts';

export const DEFAULT_PROMPTS_DIR = resolve(PROJECT_ROOT, 'prompts');

export function loadPrompt(id: string, version: string, dir: string = DEFAULT_PROMPTS_DIR): Prompt {
  if (!/^[a-z0-9-]+$/.test(id) || !/^v[0-9]+$/.test(version)) throw new Error(`invalid prompt reference ${id}@${version}`);
  const bytes = readFileSync(join(dir, id, `${version}.md`));
  return { id, version, hash: createHash('sha256').update(bytes).digest('hex'), instructions: bytes.toString('utf8') };
}
