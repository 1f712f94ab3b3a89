/**
 * The docs describe what exists: every relative link of every markdown file resolves (and its #anchor names a
 * heading of the target), every backticked repository path names a file or folder that is there, and the README
 * stays short enough for a newcomer.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/config/project-root.ts';

const SKIP_DIRS = new Set(['node_modules', '.git', 'dist', 'data', 'coverage', '.bench-tmp']);

/** The repository's markdown files: tracked and new (not ignored) ones, by git; a walk of the tree without git. */
function markdownFiles(): string[] {
  try {
    const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z', '--', '*.md'], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
    });
    return out
      .split('\0')
      .filter((f) => f !== '' && !f.split('/').some((part) => SKIP_DIRS.has(part)))
      .filter((f) => existsSync(join(PROJECT_ROOT, f)));
  } catch {
    const found: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        if (SKIP_DIRS.has(name)) continue;
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (name.endsWith('.md')) found.push(relative(PROJECT_ROOT, path));
      }
    };
    walk(PROJECT_ROOT);
    return found;
  }
}

/** The text outside fenced code blocks, line by line (fenced lines become empty, so line numbers stay). */
function proseLines(text: string): string[] {
  let fence: string | null = null;
  return text.split('\n').map((line) => {
    const m = /^\s*(```+|~~~+)/.exec(line);
    if (m) {
      const marker = m[1] as string;
      if (fence === null) fence = marker.slice(0, 3);
      else if (marker.startsWith(fence)) fence = null;
      return '';
    }
    return fence === null ? line : '';
  });
}

/** GitHub's heading anchor: lower case, punctuation dropped (but - and _), spaces to hyphens; repeats get -1, -2... */
export function githubSlug(heading: string): string {
  const text = heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/[`*]/g, '')
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{N}\p{M}\- _]/gu, '').replace(/ /g, '-');
}

function anchorsOf(file: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const line of proseLines(readFileSync(file, 'utf8'))) {
    const m = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = githubSlug(m[1] as string);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** Inline code spans removed, so that `[x](y)` inside backticks is not taken for a link. */
function withoutCode(line: string): string {
  return line.replace(/(`+)[^`]*?\1/g, (s) => ' '.repeat(s.length));
}

interface Link {
  readonly file: string;
  readonly line: number;
  readonly target: string;
}

function linksOf(file: string): Link[] {
  const links: Link[] = [];
  proseLines(readFileSync(join(PROJECT_ROOT, file), 'utf8')).forEach((raw, i) => {
    const line = withoutCode(raw);
    for (const m of line.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g))
      links.push({ file, line: i + 1, target: m[1] as string });
    const ref = /^\s{0,3}\[[^\]]+\]:\s+<?(\S+?)>?(?:\s+"[^"]*")?\s*$/.exec(line);
    if (ref) links.push({ file, line: i + 1, target: ref[1] as string });
  });
  return links;
}

/** Why a link does not resolve, or null when it does. External links (a scheme, or //host) are not checked. */
function brokenLink(link: Link): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(link.target) || link.target.startsWith('//')) return null;
  const [pathPart, anchor] = link.target.split('#', 2) as [string, string | undefined];
  const path = decodeURIComponent(pathPart);
  const from = join(PROJECT_ROOT, link.file);
  const target = path === '' ? from : resolve(dirname(from), path);
  if (!target.startsWith(PROJECT_ROOT + '/') && target !== PROJECT_ROOT) return 'points outside the repository';
  if (!existsSync(target)) return 'no such file or directory';
  if (anchor !== undefined && anchor !== '' && target.endsWith('.md') && !anchorsOf(target).has(decodeURIComponent(anchor).toLowerCase()))
    return `no heading with the anchor #${anchor} in ${relative(PROJECT_ROOT, target)}`;
  return null;
}

const PATH_ROOTS = ['src', 'jobs', 'connectors', 'test', 'bench', 'config', 'docs', 'scripts', 'bin', 'prompts', 'samples'];
const PATH_PATTERN = new RegExp(`^(?:${PATH_ROOTS.join('|')})/[A-Za-z0-9._/-]*$`);

/** Backticked repository paths (`src/journal/writer.ts`, `jobs/`); templates such as `connectors/<name>/` are not paths. */
function codePathsOf(file: string): { line: number; path: string }[] {
  const paths: { line: number; path: string }[] = [];
  proseLines(readFileSync(join(PROJECT_ROOT, file), 'utf8')).forEach((line, i) => {
    for (const m of line.matchAll(/`([^`\s]+)`/g)) {
      const path = (m[1] as string).replace(/[.,;:]$/, '');
      if (PATH_PATTERN.test(path)) paths.push({ line: i + 1, path });
    }
  });
  return paths;
}

const FILES = markdownFiles();

describe('the documentation', () => {
  it('finds the markdown files', () => {
    expect(FILES).toContain('README.md');
    expect(FILES.length).toBeGreaterThan(5);
  });

  it('README.md is at most 300 lines', () => {
    const lines = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8').replace(/\n$/, '').split('\n').length;
    expect(lines).toBeLessThanOrEqual(300);
  });

  it('README.md gives the test command CI runs', () => {
    expect(readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8')).toMatch(/^npm test\b/m);
  });

  it('every relative link resolves, and every #anchor names a heading', () => {
    const broken = FILES.flatMap(linksOf)
      .map((l) => ({ l, why: brokenLink(l) }))
      .filter((b) => b.why !== null)
      .map(({ l, why }) => `${l.file}:${l.line}: (${l.target}) ${why}`);
    expect(broken).toEqual([]);
  });

  it('every backticked repository path exists', () => {
    const missing = FILES.flatMap((file) =>
      codePathsOf(file)
        .filter((p) => !existsSync(join(PROJECT_ROOT, p.path)))
        .map((p) => `${file}:${p.line}: ${p.path}`),
    );
    expect(missing).toEqual([]);
  });

  it('computes anchors as GitHub does', () => {
    expect(githubSlug('Five minutes from here: the first interaction in the audit UI')).toBe(
      'five-minutes-from-here-the-first-interaction-in-the-audit-ui',
    );
    expect(githubSlug('What `npm start` runs')).toBe('what-npm-start-runs');
    expect(githubSlug('Expiry (`onExpiry: drop-payload`)')).toBe('expiry-onexpiry-drop-payload');
    expect(githubSlug('Backups: what to keep apart')).toBe('backups-what-to-keep-apart');
  });
});
