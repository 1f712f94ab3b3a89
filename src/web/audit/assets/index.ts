/**
 * Every stylesheet and inline script the audit pages may carry. Pages name a script, never pass script text, so
 * that the Content-Security-Policy (hashes of exactly these texts, pages.ts) allows them and nothing else. Each
 * page keeps its own in a file here; this file only gathers them (no imports of page code: no cycles).
 */
import * as base from './base.ts';
import * as exportAssets from './export.ts';
import * as integrity from './integrity.ts';
import * as quality from './quality.ts';
import * as review from './review.ts';
import * as timeline from './timeline.ts';
import * as trace from './trace.ts';

export const CSS = [base.css, review.css, timeline.css, trace.css, quality.css, exportAssets.css].filter((c) => c !== '').join('\n');

export const SCRIPTS = {
  ...integrity.scripts,
  ...review.scripts,
  ...timeline.scripts,
  ...trace.scripts,
  ...quality.scripts,
  ...exportAssets.scripts,
} as const;
export type ScriptName = keyof typeof SCRIPTS;
