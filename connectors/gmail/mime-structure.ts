/**
 * A light scan of a message's MIME tree, alongside postal-mime, for what postal-mime does not report: the root
 * report type and the parts it could only decode by guessing (unknown transfer encodings or charsets; postal-mime
 * silently falls back to windows-1252 or passes the bytes through). Iterative with an explicit stack and bounded
 * by depth and part count, so hostile nesting costs neither stack nor unbounded time.
 */

const MAX_DEPTH = 64;
const MAX_PARTS = 10_000;
const KNOWN_TRANSFER_ENCODINGS = new Set(['', '7bit', '8bit', 'binary', 'base64', 'quoted-printable']);

export interface UndecodablePart {
  readonly mimeType: string;
  readonly reason: 'transfer-encoding' | 'charset' | 'too-deep' | 'too-many-parts';
}

export interface MimeStructure {
  /** The root Content-Type (lower-case type/subtype), 'text/plain' when absent. */
  readonly rootType: string;
  /** The root's `report-type` parameter, lower-case, when the root is multipart/report. */
  readonly reportType: string | undefined;
  /** Every leaf type met (lower-case), for report detection below the root. */
  readonly partTypes: ReadonlySet<string>;
  readonly undecodable: readonly UndecodablePart[];
}

interface ContentType {
  readonly type: string;
  readonly params: ReadonlyMap<string, string>;
}

function parseContentType(value: string | undefined, fallback: string): ContentType {
  if (value === undefined) return { type: fallback, params: new Map() };
  const semi = value.indexOf(';');
  const type = (semi === -1 ? value : value.slice(0, semi)).trim().toLowerCase();
  const params = new Map<string, string>();
  const rest = semi === -1 ? '' : value.slice(semi + 1);
  // name=value or name="quoted value", separated by ';'
  const re = /([a-zA-Z0-9*_.-]+)\s*=\s*(?:"([^"]*)"|([^;\s]*))/g;
  for (let m = re.exec(rest); m !== null; m = re.exec(rest)) {
    const name = (m[1] ?? '').toLowerCase();
    if (!params.has(name)) params.set(name, m[2] ?? m[3] ?? '');
  }
  return { type: type.includes('/') ? type : fallback, params };
}

/** Headers of the part that starts at `start`: unfolded, lower-case names; and where its body starts. */
function readHeaders(src: string, start: number, end: number): { headers: Map<string, string>; bodyStart: number } {
  const headers = new Map<string, string>();
  let pos = start;
  let current: { name: string; value: string } | null = null;
  const flush = (): void => {
    if (current !== null && !headers.has(current.name)) headers.set(current.name, current.value);
    current = null;
  };
  while (pos < end) {
    let eol = src.indexOf('\n', pos);
    if (eol === -1 || eol > end) eol = end;
    let line = src.slice(pos, eol);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    pos = eol + 1;
    if (line === '') {
      flush();
      return { headers, bodyStart: Math.min(pos, end) };
    }
    if ((line.startsWith(' ') || line.startsWith('\t')) && current !== null) {
      current.value += ' ' + line.trim();
      continue;
    }
    flush();
    const colon = line.indexOf(':');
    if (colon > 0) current = { name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1).trim() };
  }
  flush();
  return { headers, bodyStart: end };
}

/** The [start, end) ranges of the parts of a multipart body delimited by `boundary`. */
function splitMultipart(src: string, start: number, end: number, boundary: string): Array<[number, number]> {
  const delimiter = '--' + boundary;
  const ranges: Array<[number, number]> = [];
  let partStart = -1;
  let pos = start;
  while (pos < end) {
    let eol = src.indexOf('\n', pos);
    if (eol === -1 || eol > end) eol = end;
    if (src.startsWith(delimiter, pos)) {
      const after = src.slice(pos + delimiter.length, eol).trimEnd();
      const closing = after.startsWith('--');
      if (after === '' || closing) {
        if (partStart !== -1) {
          // The line break before a delimiter belongs to the delimiter.
          let partEnd = pos;
          if (partEnd > partStart && src[partEnd - 1] === '\n') partEnd--;
          if (partEnd > partStart && src[partEnd - 1] === '\r') partEnd--;
          ranges.push([partStart, partEnd]);
        }
        if (closing) return ranges;
        partStart = eol + 1;
      }
    }
    pos = eol + 1;
  }
  // No closing delimiter: keep what we have, including an unterminated last part.
  if (partStart !== -1 && partStart < end) ranges.push([partStart, end]);
  return ranges;
}

function charsetDecodable(charset: string): boolean {
  const candidates = [charset, charset.replace(/^x-/, ''), charset.replace(/[_\s]/g, '-')];
  for (const c of candidates) {
    try {
      new TextDecoder(c);
      return true;
    } catch {
      // try the next spelling
    }
  }
  return false;
}

export function scanMimeStructure(raw: Uint8Array): MimeStructure {
  const src = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1');
  const undecodable: UndecodablePart[] = [];
  const partTypes = new Set<string>();
  let rootType = 'text/plain';
  let reportType: string | undefined;
  let parts = 0;

  const stack: Array<{ start: number; end: number; depth: number; defaultType: string }> = [
    { start: 0, end: src.length, depth: 0, defaultType: 'text/plain' },
  ];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === undefined) break;
    parts++;
    if (parts > MAX_PARTS) {
      undecodable.push({ mimeType: 'multipart/mixed', reason: 'too-many-parts' });
      break;
    }
    const { headers, bodyStart } = readHeaders(src, node.start, node.end);
    const ct = parseContentType(headers.get('content-type'), node.defaultType);
    const cte = (headers.get('content-transfer-encoding') ?? '')
      .replace(/\(.*?\)/g, '')
      .trim()
      .toLowerCase();
    if (node.depth === 0) {
      rootType = ct.type;
      if (ct.type === 'multipart/report') reportType = ct.params.get('report-type')?.toLowerCase();
    }
    if (ct.type.startsWith('multipart/') && ct.params.get('boundary')) {
      if (node.depth >= MAX_DEPTH) {
        undecodable.push({ mimeType: ct.type, reason: 'too-deep' });
        continue;
      }
      const childDefault = ct.type === 'multipart/digest' ? 'message/rfc822' : 'text/plain';
      const children = splitMultipart(src, bodyStart, node.end, ct.params.get('boundary') ?? '');
      // Pushed in reverse so parts are visited in document order.
      for (let k = children.length - 1; k >= 0; k--) {
        const child = children[k];
        if (child !== undefined) stack.push({ start: child[0], end: child[1], depth: node.depth + 1, defaultType: childDefault });
      }
      continue;
    }
    partTypes.add(ct.type);
    if (!KNOWN_TRANSFER_ENCODINGS.has(cte)) {
      undecodable.push({ mimeType: ct.type, reason: 'transfer-encoding' });
      continue;
    }
    const charset = ct.params.get('charset')?.trim().toLowerCase();
    if (ct.type.startsWith('text/') && charset !== undefined && charset !== '' && !charsetDecodable(charset)) {
      undecodable.push({ mimeType: ct.type, reason: 'charset' });
    }
  }
  return { rootType, reportType, partTypes, undecodable };
}
