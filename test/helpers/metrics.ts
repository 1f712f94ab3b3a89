/** Reading Prometheus text in tests: one sample's value, and what makes an exposition invalid. */

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;

/** The labels of a sample line's `{...}` (values unescaped). */
function labelsOf(inside: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!inside) return out;
  for (const m of inside.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
    out[m[1] as string] = (m[2] as string).replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
  return out;
}

/** The value of the sample named `name` whose labels are exactly `labels` (null: no such sample). */
export function sample(text: string, name: string, labels: Record<string, string>): number | null {
  const want = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.entries(labelsOf(m[2])).sort(([a], [b]) => a.localeCompare(b));
    if (JSON.stringify(have) === JSON.stringify(want)) return Number(m[3]);
  }
  return null;
}

/** What breaks the text format: a family declared twice, its samples not together, a series given twice. */
export function familiesAreWellFormed(text: string): string[] {
  const problems: string[] = [];
  const declared = new Map<string, number>();
  const closed = new Set<string>();
  const series = new Set<string>();
  let current: string | null = null;
  for (const line of text.split('\n')) {
    const header = /^# (HELP|TYPE) (\S+)/.exec(line);
    if (header) {
      const key = `${header[1]} ${header[2]}`;
      declared.set(key, (declared.get(key) ?? 0) + 1);
      if (declared.get(key) === 2) problems.push(`${key} declared twice`);
      if (current !== null && current !== header[2]) closed.add(current);
      current = header[2] as string;
      continue;
    }
    const m = LINE.exec(line);
    if (!m) continue;
    const name = m[1] as string;
    const family =
      current !== null &&
      (name === current ||
        (/_(bucket|sum|count|created|total)$/.test(name) && name.replace(/_(bucket|sum|count|created|total)$/, '') === current))
        ? current
        : name;
    if (family !== current) {
      if (current !== null) closed.add(current);
      current = family;
    }
    if (closed.has(family)) problems.push(`${family}: samples not together (${line})`);
    const id = `${name}{${Object.entries(labelsOf(m[2]))
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}=${v}`)
      .join(',')}}`;
    if (series.has(id)) problems.push(`${id} given twice`);
    series.add(id);
  }
  return problems;
}
