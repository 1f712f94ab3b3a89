import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { anchorsFromConfig, DirectoryAnchor, HttpAnchor, originSlug, readAnchoredNotes, readPinnedKey } from '../../src/journal/anchors.ts';
import { signCheckpoint, verifySignedCheckpoint, type Checkpoint } from '../../src/journal/checkpoint.ts';
import { AnchorConflictError } from '../../src/journal/errors/anchor-conflict.error.ts';
import { AnchorPublishError } from '../../src/journal/errors/anchor-publish.error.ts';
import { loadOrCreateSigningKey, parseVerifierKey, type SigningKey } from '../../src/journal/keys.ts';

const ORIGIN = 'activity-journal/3f0e8a52-0d5e-4b0c-8f53-5b1f0b1f4e77';
const TOKEN = 'tok_5ecret-Bearer-value-0123456789';

let keyDir: string;
let key: SigningKey;
let tmp: string;

beforeAll(() => {
  keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'aj-'));
  key = loadOrCreateSigningKey(path.join(keyDir, 'keys'), ORIGIN);
});
afterAll(() => {
  fs.rmSync(keyDir, { recursive: true, force: true });
});
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aj-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function hash(label: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(label).digest());
}

function checkpoint(treeSize: number, fork = ''): Checkpoint {
  return {
    origin: ORIGIN,
    treeSize,
    rootHash: hash(`root ${treeSize}${fork}`),
    chainHead: hash(`chain ${treeSize}${fork}`),
    timestamp: '2024-05-01T12:00:00.000Z',
  };
}

function signed(treeSize: number, fork = ''): { note: string; cp: Checkpoint } {
  const cp = checkpoint(treeSize, fork);
  return { note: signCheckpoint(cp, key), cp };
}

describe('DirectoryAnchor', () => {
  it('writes a read-only file named by the zero-padded tree size', async () => {
    const anchor = new DirectoryAnchor(tmp);
    const { note, cp } = signed(42);
    const receipt = await anchor.publish(note, cp);
    const expected = path.join(tmp, originSlug(ORIGIN), '00000000000000000042.checkpoint');
    expect(receipt).toEqual({ anchor: `dir:${tmp}`, location: expected, alreadyPresent: false });
    expect(fs.readFileSync(expected, 'utf8')).toBe(note);
    expect(fs.statSync(expected).mode & 0o777).toBe(0o444);
    expect(fs.readdirSync(path.dirname(expected))).toEqual(['00000000000000000042.checkpoint']);
  });

  it('reports an identical re-publish as already present', async () => {
    const anchor = new DirectoryAnchor(tmp);
    const { note, cp } = signed(7);
    await anchor.publish(note, cp);
    const again = await anchor.publish(note, cp);
    expect(again.alreadyPresent).toBe(true);
  });

  it('never overwrites a different checkpoint at the same size and keeps the fork as evidence', async () => {
    const anchor = new DirectoryAnchor(tmp);
    const original = signed(7);
    const fork = signed(7, 'fork');
    const receipt = await anchor.publish(original.note, original.cp);

    const error: unknown = await anchor.publish(fork.note, fork.cp).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AnchorConflictError);
    const conflict = error as AnchorConflictError;
    expect(conflict.name).toBe('AnchorConflictError');
    expect(conflict.code).toBe('ANCHOR_CONFLICT');
    expect(conflict.message).toContain(receipt.location);
    expect(conflict.message).toContain('tree size 7');

    expect(fs.readFileSync(receipt.location, 'utf8')).toBe(original.note);
    const folder = path.dirname(receipt.location);
    const evidence = fs.readdirSync(folder).filter((f) => f.endsWith('.conflict'));
    expect(evidence).toHaveLength(1);
    expect(conflict.message).toContain(evidence[0]);
    expect(fs.readFileSync(path.join(folder, evidence[0] ?? ''), 'utf8')).toBe(fork.note);
    expect(readAnchoredNotes(tmp, ORIGIN)).toEqual([original.note]);
    expect(await anchor.latest(ORIGIN)).toBe(original.note);
  });

  it('returns the largest tree size numerically, and all notes in ascending order', async () => {
    const anchor = new DirectoryAnchor(tmp);
    expect(await anchor.latest(ORIGIN)).toBeNull();
    const notes = [10, 9, 2, 100].map((size) => signed(size));
    for (const { note, cp } of notes) await anchor.publish(note, cp);
    // A hand-copied, unpadded file name must still be ordered by its number.
    const folder = path.join(tmp, originSlug(ORIGIN));
    const extra = signed(11);
    fs.writeFileSync(path.join(folder, '11.checkpoint'), extra.note);
    fs.writeFileSync(path.join(folder, 'README'), 'not a checkpoint');

    const latest = await anchor.latest(ORIGIN);
    expect(verifySignedCheckpoint(latest ?? '', parseVerifierKey(key.verifierKey))?.treeSize).toBe(100);
    const sizes = readAnchoredNotes(tmp, ORIGIN).map((n) => verifySignedCheckpoint(n, parseVerifierKey(key.verifierKey))?.treeSize);
    expect(sizes).toEqual([2, 9, 10, 11, 100]);
    expect(await anchor.latest('activity-journal/other')).toBeNull();
    expect(readAnchoredNotes(tmp, 'activity-journal/other')).toEqual([]);
  });

  it('refuses a note that does not encode the given checkpoint', async () => {
    const anchor = new DirectoryAnchor(tmp);
    const error: unknown = await anchor.publish(signed(5).note, checkpoint(6)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AnchorPublishError);
    expect((error as AnchorPublishError).retryable).toBe(false);
    expect(fs.readdirSync(tmp)).toEqual([]);
  });

  it('does not create a missing anchor directory (an unmounted disk) and fails closed on read-back', async () => {
    const missing = path.join(tmp, 'not-mounted');
    const anchor = new DirectoryAnchor(missing);
    const { note, cp } = signed(1);
    const error: unknown = await anchor.publish(note, cp).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AnchorPublishError);
    expect((error as AnchorPublishError).retryable).toBe(true);
    expect((error as AnchorPublishError).code).toBe('ANCHOR_PUBLISH');
    expect(fs.existsSync(missing)).toBe(false);
    await expect(anchor.latest(ORIGIN)).rejects.toThrow(/not accessible/);
  });

  it('pins the verifier key once and refuses a different one', () => {
    const anchor = new DirectoryAnchor(tmp);
    expect(readPinnedKey(tmp, ORIGIN)).toBeNull();
    anchor.pinKey(ORIGIN, key.verifierKey);
    anchor.pinKey(ORIGIN, key.verifierKey);
    expect(readPinnedKey(tmp, ORIGIN)).toBe(key.verifierKey);

    const other = loadOrCreateSigningKey(path.join(tmp, 'other-keys'), ORIGIN);
    expect(() => anchor.pinKey(ORIGIN, other.verifierKey)).toThrow(AnchorConflictError);
    expect(readPinnedKey(tmp, ORIGIN)).toBe(key.verifierKey);
    anchor.pinKey('activity-journal/other', other.verifierKey);
    expect(readPinnedKey(tmp, 'activity-journal/other')).toBe(other.verifierKey);
  });

  it('keeps distinct origins in distinct, safe folders', () => {
    const slugs = ['a/b', 'a_b', 'a b', '../..', 'x'.repeat(300)].map(originSlug);
    expect(new Set(slugs).size).toBe(slugs.length);
    for (const slug of slugs) {
      expect(slug).toMatch(/^[A-Za-z0-9._-]+-[0-9a-f]{12}$/);
      expect(slug.length).toBeLessThanOrEqual(77);
    }
  });
});

interface Recorded {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

describe('HttpAnchor', () => {
  let server: http.Server;
  let base: string;
  const requests: Recorded[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        const route = new URL(req.url ?? '/', 'http://localhost');
        if (route.pathname === '/slow') return; // never answers
        if (route.pathname === '/ok') {
          if (req.method === 'POST') return res.writeHead(201).end('stored');
          const origin = route.searchParams.get('origin');
          if (origin === ORIGIN) return res.writeHead(200, { 'content-type': 'text/plain' }).end('the note');
          return res.writeHead(404).end();
        }
        if (route.pathname === '/conflict') return res.writeHead(409).end(`fork detected for ${req.headers.authorization ?? ''}`);
        if (route.pathname === '/busy') return res.writeHead(429).end();
        if (route.pathname === '/bad') return res.writeHead(400).end();
        if (route.pathname === '/moved') return res.writeHead(302, { location: '/ok' }).end();
        // Echoes the credentials, as a careless server might: they must not reach our error messages.
        return res.writeHead(500).end(`internal error, auth=${req.headers.authorization ?? ''}`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  beforeEach(() => {
    requests.length = 0;
  });

  async function publishError(url: string, timeoutMs?: number): Promise<Error> {
    const anchor = new HttpAnchor(timeoutMs === undefined ? { url, token: TOKEN } : { url, token: TOKEN, timeoutMs });
    const { note, cp } = signed(3);
    const error: unknown = await anchor.publish(note, cp).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    const message = inspect(error, { depth: 10 });
    expect(message).not.toContain(TOKEN);
    return error as Error;
  }

  it('POSTs the note as UTF-8 text with the bearer token', async () => {
    const anchor = new HttpAnchor({ url: `${base}/ok`, token: TOKEN });
    expect(anchor.name).toBe(`http:${base}/ok`);
    const { note, cp } = signed(3);
    const receipt = await anchor.publish(note, cp);
    expect(receipt).toEqual({ anchor: `http:${base}/ok`, location: `${base}/ok`, alreadyPresent: false });
    expect(requests).toHaveLength(1);
    const [request] = requests;
    expect(request?.method).toBe('POST');
    expect(request?.body).toBe(note);
    expect(request?.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(request?.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('sends no authorization header without a token', async () => {
    const { note, cp } = signed(3);
    await new HttpAnchor({ url: `${base}/ok` }).publish(note, cp);
    expect(requests[0]?.headers.authorization).toBeUndefined();
  });

  it('maps 409 to AnchorConflictError', async () => {
    const error = await publishError(`${base}/conflict`);
    expect(error).toBeInstanceOf(AnchorConflictError);
    expect(error.message).toContain('409');
    expect(error.message).toContain('[redacted]');
  });

  it('maps 5xx and 429 to retryable AnchorPublishError with the status', async () => {
    const failed = await publishError(`${base}/fail`);
    expect(failed).toBeInstanceOf(AnchorPublishError);
    expect((failed as AnchorPublishError).status).toBe(500);
    expect((failed as AnchorPublishError).retryable).toBe(true);

    const busy = await publishError(`${base}/busy`);
    expect((busy as AnchorPublishError).status).toBe(429);
    expect((busy as AnchorPublishError).retryable).toBe(true);
  });

  it('maps other 4xx and redirects to non-retryable AnchorPublishError', async () => {
    const bad = await publishError(`${base}/bad`);
    expect((bad as AnchorPublishError).status).toBe(400);
    expect((bad as AnchorPublishError).retryable).toBe(false);

    const moved = await publishError(`${base}/moved`);
    expect((moved as AnchorPublishError).status).toBe(302);
    expect((moved as AnchorPublishError).retryable).toBe(false);
    expect(requests.map((r) => r.url)).not.toContain('/ok');
  });

  it('times out as a retryable error without a status', async () => {
    const started = Date.now();
    const error = await publishError(`${base}/slow`, 150);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(error).toBeInstanceOf(AnchorPublishError);
    expect(error.message).toContain('150 ms');
    expect((error as AnchorPublishError).status).toBeUndefined();
    expect((error as AnchorPublishError).retryable).toBe(true);
  });

  it('treats a refused connection as a retryable network error', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const error = await publishError(`http://127.0.0.1:${port}/add`);
    expect(error).toBeInstanceOf(AnchorPublishError);
    expect((error as AnchorPublishError).retryable).toBe(true);
    expect(error.message).toContain('network error');
  });

  it('scrubs the token from errors thrown by a custom fetch', async () => {
    const leaky: typeof fetch = (_input, init) => Promise.reject(new Error(`boom ${JSON.stringify(init?.headers)}`));
    const anchor = new HttpAnchor({ url: `${base}/ok`, token: TOKEN, fetch: leaky });
    const { note, cp } = signed(3);
    const error: unknown = await anchor.publish(note, cp).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AnchorPublishError);
    expect(inspect(error, { depth: 10 })).not.toContain(TOKEN);
  });

  it('refuses credentials embedded in the URL without echoing them', () => {
    const url = `${base.replace('http://', 'http://user:pa55word@')}/ok`;
    expect(() => new HttpAnchor({ url })).toThrow(TypeError);
    try {
      new HttpAnchor({ url });
    } catch (error) {
      expect((error as Error).message).not.toContain('pa55word');
    }
  });

  it('reads back with GET ?origin=, returning null on 404 and on errors', async () => {
    const anchor = new HttpAnchor({ url: `${base}/ok`, token: TOKEN });
    expect(await anchor.latest(ORIGIN)).toBe('the note');
    expect(requests[0]?.method).toBe('GET');
    expect(requests[0]?.url).toBe(`/ok?origin=${encodeURIComponent(ORIGIN)}`);
    expect(requests[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(await anchor.latest('activity-journal/unknown')).toBeNull();
    expect(await new HttpAnchor({ url: `${base}/fail` }).latest(ORIGIN)).toBeNull();
    expect(await new HttpAnchor({ url: `${base}/slow`, timeoutMs: 100 }).latest(ORIGIN)).toBeNull();
  });

  it('rejects unusable options without echoing the token', () => {
    expect(() => new HttpAnchor({ url: 'ftp://example.com/' })).toThrow(TypeError);
    expect(() => new HttpAnchor({ url: 'not a url' })).toThrow(TypeError);
    expect(() => new HttpAnchor({ url: `${base}/ok`, timeoutMs: 0 })).toThrow(TypeError);
    const badToken = 'line\nbreak-secret';
    expect(() => new HttpAnchor({ url: `${base}/ok`, token: badToken })).toThrow(TypeError);
    try {
      new HttpAnchor({ url: `${base}/ok`, token: badToken });
    } catch (error) {
      expect((error as Error).message).not.toContain('secret');
    }
  });
});

describe('anchorsFromConfig', () => {
  it('builds one anchor per distinct, non-blank entry, sharing the token', async () => {
    const anchors = anchorsFromConfig([tmp, ` ${tmp} `, ''], ['https://witness.example/add', '  '], { token: TOKEN });
    expect(anchors.map((a) => a.name)).toEqual([`dir:${tmp}`, 'http:https://witness.example/add']);
    expect(anchors[0]).toBeInstanceOf(DirectoryAnchor);
    expect(anchors[1]).toBeInstanceOf(HttpAnchor);
    expect(inspect(anchors, { depth: 10 })).not.toContain(TOKEN);
    expect(anchorsFromConfig([], [])).toEqual([]);
    const { note, cp } = signed(1);
    expect((await anchors[0]!.publish(note, cp)).alreadyPresent).toBe(false);
  });
});
