/**
 * Several Prometheus text expositions as one: the web server's /metrics gives its own metrics, the worker's and
 * the journal service's in one scrape. Every series carries its process label, so no two sources share a
 * series; what they share are metric families (`process_cpu_seconds_total` from each process), and the text
 * format wants each family once, its HELP and TYPE first and all its samples together.
 */

interface Family {
  help: string | null;
  type: string | null;
  readonly samples: string[];
}

const HEADER = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*)(?: (.*))?$/;
const SAMPLE_NAME = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/;
/** Sample suffixes that belong to the family without them (histograms and summaries). */
const SUFFIXES = ['_bucket', '_sum', '_count', '_created', '_total'];

export function mergeExpositions(texts: readonly string[]): string {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (!f) {
      f = { help: null, type: null, samples: [] };
      families.set(name, f);
    }
    return f;
  };
  for (const text of texts) {
    // The family the following samples belong to, and whether this source's samples of it are kept (a source
    // that declares a family with another type than the first source did is left out of it).
    let current: string | null = null;
    let keep = true;
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const header = HEADER.exec(line);
      if (header) {
        const [, what, name, rest] = header as unknown as [string, 'HELP' | 'TYPE', string, string | undefined];
        const f = family(name);
        current = name;
        if (what === 'HELP') {
          f.help ??= rest ?? '';
          keep = true;
        } else {
          const type = rest ?? 'untyped';
          keep = f.type === null || f.type === type;
          f.type ??= type;
        }
        continue;
      }
      if (line.startsWith('#')) continue;
      const sampleName = SAMPLE_NAME.exec(line)?.[1];
      if (!sampleName) continue;
      const owner: string = current !== null && belongsTo(sampleName, current) ? current : sampleName;
      if (owner !== current) {
        current = owner;
        keep = true;
      }
      if (keep) family(owner).samples.push(line);
    }
  }
  const out: string[] = [];
  for (const [name, f] of families) {
    if (f.help !== null) out.push(`# HELP ${name} ${f.help}`);
    if (f.type !== null) out.push(`# TYPE ${name} ${f.type}`);
    out.push(...f.samples);
  }
  return out.length > 0 ? `${out.join('\n')}\n` : '';
}

function belongsTo(sample: string, familyName: string): boolean {
  if (sample === familyName) return true;
  return SUFFIXES.some((s) => sample === familyName + s);
}
