/**
 * The html suite: our HTML-to-text converter (connectors/gmail/html-to-text.ts), on the shared MIME corpus and on
 * deep nesting, against the `html-to-text` package when it is installed (the comparison that decided to keep ours,
 * issue 17; skipped with a note when the package is absent).
 *
 *  1. Corpus: every corpus message with an HTML body (parsed by postal-mime, as connectors/gmail/mime.ts does):
 *     conversion time (median of RUNS, after a warm-up) and whether the text a person reads survives: the corpus
 *     test's spot checks ("Freundliche Grüße" sits outside <html> in mailparser-spam, "Good Morning;" after
 *     </html> in mailparser-mixed). The package runs twice: as shipped, and configured to match ours (whole
 *     document, no link targets, no images, no word wrap, <head> skipped).
 *  2. Deep nesting: the deepest of DEPTHS each converter survives (the MIME test feeds 200,000 nested <div>s).
 *  3. Cold import: a fresh `node` importing the package, minus `node -e 0` (medians of IMPORT_RUNS). Ours has no
 *     dependencies and is bundled into the Gmail chunk of dist/.
 * Ratios are package time over ours, in the same run, on the same inputs.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import PostalMime from 'postal-mime';
import { htmlToText } from '../connectors/gmail/html-to-text.ts';
import { fmtFixed, median, now, secondsSince, table, type Suite, type SuiteContext, type SuiteResult } from './suite.ts';

const CORPUS = resolve(import.meta.dirname, '../../shared/specs/mime-corpus');
const RUNS = 9;
const IMPORT_RUNS = 7;
const DEPTHS = [1_000, 10_000, 200_000] as const;
/** Corpus file -> a phrase its converted HTML must keep (the corpus test's spot checks, where they read the HTML). */
const MUST_KEEP: Readonly<Record<string, string>> = {
  'mailparser-spam.eml': 'Freundliche Grüße',
  'mailparser-mixed.eml': 'Good Morning;',
  'mailparser-htmllargecallstack.eml': '||Alerts||',
};

type Convert = (html: string) => string;

interface Converter {
  readonly name: string;
  readonly convert: Convert;
}

/** The package's converters, or the reason there are none. */
async function packageConverters(): Promise<Converter[] | string> {
  // A specifier in a variable: this file type-checks and runs whether or not the package is installed.
  const specifier = 'html-to-text';
  let mod: { compile(options: object): Convert };
  try {
    mod = (await import(specifier)) as typeof mod;
  } catch {
    return 'html-to-text is not installed: comparison skipped';
  }
  const shipped = mod.compile({});
  const matched = mod.compile({
    wordwrap: false,
    baseElements: { selectors: [], returnDomByDefault: true },
    selectors: [
      { selector: 'a', options: { ignoreHref: true } },
      { selector: 'img', format: 'skip' },
      { selector: 'hr', format: 'block' },
      { selector: 'head', format: 'skip' },
    ],
  });
  return [
    { name: 'html-to-text (as shipped)', convert: shipped },
    { name: 'html-to-text (configured like ours)', convert: matched },
  ];
}

function timeMs(fn: () => unknown): number {
  fn();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = now();
    fn();
    times.push(secondsSince(t) * 1000);
  }
  return median(times);
}

function deepest(convert: Convert): number {
  let survived = 0;
  for (const depth of DEPTHS) {
    const html = '<style>p{}</style><script>alert(1)</script>' + '<div>'.repeat(depth) + 'deep &amp; fine&#33;' + '</div>'.repeat(depth);
    try {
      if (convert(html).trim() !== 'deep & fine!') break;
      survived = depth;
    } catch {
      break;
    }
  }
  return survived;
}

function coldImportMs(): number | undefined {
  const run = (args: string[]): number => {
    const t = now();
    const r = spawnSync(process.execPath, args, { cwd: resolve(import.meta.dirname, '..'), stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}`);
    return secondsSince(t) * 1000;
  };
  try {
    const base: number[] = [];
    const lib: number[] = [];
    for (let i = 0; i < IMPORT_RUNS; i++) {
      base.push(run(['-e', '0']));
      lib.push(run(['--input-type=module', '-e', "await import('html-to-text')"]));
    }
    return median(lib) - median(base);
  } catch {
    return undefined;
  }
}

export const htmlSuite: Suite = {
  name: 'html',
  description: 'HTML to text on the MIME corpus and deep nesting, ours against the html-to-text package',
  async run(ctx: SuiteContext): Promise<SuiteResult> {
    const bodies: { file: string; html: string }[] = [];
    for (const file of readdirSync(CORPUS)
      .filter((f) => f.endsWith('.eml'))
      .sort()) {
      const email = await PostalMime.parse(readFileSync(resolve(CORPUS, file)), {
        forceRfc822Attachments: true,
        attachmentEncoding: 'arraybuffer',
      });
      if (email.html !== undefined) bodies.push({ file, html: email.html });
    }
    const pkg = await packageConverters();
    const converters: Converter[] = [{ name: 'ours', convert: htmlToText }, ...(typeof pkg === 'string' ? [] : pkg)];

    const perFile: Record<string, Record<string, { ms: number; chars: number; keeps?: boolean }>> = {};
    const rows: string[][] = [];
    for (const { file, html } of bodies) {
      perFile[file] = {};
      for (const c of converters) {
        let out: string;
        try {
          out = c.convert(html);
        } catch (err) {
          ctx.progress(`html: ${c.name} threw on ${file}: ${err instanceof Error ? err.message : String(err)}`);
          continue;
        }
        const must = MUST_KEEP[file];
        const figure = {
          ms: timeMs(() => c.convert(html)),
          chars: out.length,
          ...(must !== undefined ? { keeps: out.includes(must) } : {}),
        };
        perFile[file][c.name] = figure;
        rows.push([
          `${file} (${html.length} chars)`,
          c.name,
          fmtFixed(figure.ms, 3),
          String(figure.chars),
          figure.keeps === undefined ? '' : figure.keeps ? 'yes' : 'NO',
        ]);
      }
      ctx.progress(`html: ${file} done`);
    }
    const totals = Object.fromEntries(
      converters.map((c) => [c.name, Object.values(perFile).reduce((sum, f) => sum + (f[c.name]?.ms ?? NaN), 0)]),
    );
    const ours = totals['ours'] ?? NaN;
    const ratios = Object.fromEntries(converters.filter((c) => c.name !== 'ours').map((c) => [c.name, (totals[c.name] ?? NaN) / ours]));
    const depth = Object.fromEntries(converters.map((c) => [c.name, deepest(c.convert)]));
    const importMs = typeof pkg === 'string' ? undefined : coldImportMs();

    const text = [
      'html to text (medians of ' + RUNS + ' runs per corpus body)',
      table(['corpus body', 'converter', 'ms', 'chars out', 'keeps spot check'], rows),
      '',
      table(
        ['converter', 'corpus total ms', 'x ours', 'deepest nesting survived'],
        converters.map((c) => [
          c.name,
          fmtFixed(totals[c.name] ?? NaN, 2),
          c.name === 'ours' ? '1.00' : fmtFixed(ratios[c.name] ?? NaN, 2),
          String(depth[c.name] ?? 0),
        ]),
      ),
      typeof pkg === 'string'
        ? pkg
        : `cold import of html-to-text: ${importMs === undefined ? 'not measured' : `${fmtFixed(importMs, 0)} ms`} over node -e 0 (medians of ${IMPORT_RUNS}); ours: no dependencies`,
    ].join('\n');
    return { text, data: { perFile, totalsMs: totals, ratioOverOurs: ratios, deepestNesting: depth, coldImportMs: importMs ?? null } };
  },
};
