import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';
import { checkpointBody, parseSignedCheckpoint, type Checkpoint } from './checkpoint.ts';
import { AnchorConflictError } from './errors/anchor-conflict.error.ts';
import { AnchorPublishError } from './errors/anchor-publish.error.ts';
import { createFileExclusively, fsyncDirectory, parseVerifierKey } from './keys.ts';

/** Where and whether an anchor stored a checkpoint. */
export interface AnchorReceipt {
  readonly anchor: string;
  readonly location: string;
  /** True when the anchor already held this exact note (a harmless re-publish). */
  readonly alreadyPresent: boolean;
}

/** A place outside the writer's reach where signed checkpoints are published. */
export interface Anchor {
  /** Kind and address, e.g. "dir:/mnt/other-disk/anchors" or "http:https://witness.example/add". */
  readonly name: string;
  /** Stores `note` (the signed form of `cp`); throws AnchorConflictError when a different note holds that slot. */
  publish(note: string, cp: Checkpoint): Promise<AnchorReceipt>;
  /** The newest checkpoint note this anchor holds for `origin`, or null; anchors that cannot be read back return null. */
  latest(origin: string): Promise<string | null>;
}

const CHECKPOINT_FILE = /^(\d+)\.checkpoint$/;
const PINNED_KEY_FILE = 'key.vkey';
const SIZE_DIGITS = 20;
const READ_ONLY = 0o444;

/** Folder name for `origin`: its safe characters (others become '_') plus a hash, so distinct origins never share a folder. */
export function originSlug(origin: string): string {
  const readable = origin.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64);
  const digest = createHash('sha256').update(origin, 'utf8').digest('hex').slice(0, 12);
  return `${readable}-${digest}`;
}

function checkpointFileName(treeSize: number): string {
  return `${String(treeSize).padStart(SIZE_DIGITS, '0')}.checkpoint`;
}

function errorCode(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

/** Paths of the checkpoint files among `entries` of `folder`, ascending by tree size. */
function listCheckpointFiles(folder: string, entries: readonly string[]): string[] {
  return (
    entries
      .map((entry) => ({ entry, match: CHECKPOINT_FILE.exec(entry) }))
      .filter((item): item is { entry: string; match: RegExpExecArray } => item.match !== null)
      .map(({ entry, match }) => ({ entry, size: BigInt(match[1] ?? '0') }))
      // Numeric, not lexical: a hand-copied "9.checkpoint" must still sort below "10.checkpoint".
      .sort((a, b) => (a.size < b.size ? -1 : a.size > b.size ? 1 : 0))
      .map(({ entry }) => path.join(folder, entry))
  );
}

function readDirOrEmpty(folder: string): string[] {
  try {
    return fs.readdirSync(folder);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return [];
    throw error;
  }
}

/** Every checkpoint note anchored in `dir` for `origin`, ascending by tree size. */
export function readAnchoredNotes(dir: string, origin: string): string[] {
  const folder = path.join(dir, originSlug(origin));
  return listCheckpointFiles(folder, readDirOrEmpty(folder)).map((file) => fs.readFileSync(file, 'utf8'));
}

/** The verifier key pinned in `dir` for `origin`, or null when none was pinned. */
export function readPinnedKey(dir: string, origin: string): string | null {
  try {
    return fs.readFileSync(path.join(dir, originSlug(origin), PINNED_KEY_FILE), 'utf8').trim();
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return null;
    throw error;
  }
}

/** Anchor on a directory out of the writer's reach; files are created exclusively, read-only, and never replaced. */
export class DirectoryAnchor implements Anchor {
  readonly name: string;
  private readonly dir: string;

  constructor(dir: string) {
    this.dir = path.resolve(dir);
    this.name = `dir:${this.dir}`;
  }

  /**
   * Writes `<dir>/<slug>/<size>.checkpoint` exclusively; alreadyPresent when the same bytes are there.
   * Throws AnchorConflictError when different bytes are, AnchorPublishError on I/O failure.
   */
  publish(note: string, cp: Checkpoint): Promise<AnchorReceipt> {
    // Synchronous I/O inside: checkpoints are rare and the exclusive-create helper is shared with the key store.
    return new Promise((resolve) => resolve(this.publishSync(note, cp)));
  }

  /**
   * The note with the largest tree size anchored for `origin`, or null when none was.
   * Unlike the interface's lenient default, I/O errors and a missing anchor directory throw:
   * a silently unreadable anchor would let truncation of the journal go unnoticed.
   */
  async latest(origin: string): Promise<string | null> {
    await this.assertDirectory();
    const folder = path.join(this.dir, originSlug(origin));
    let entries: string[];
    try {
      entries = await fs.promises.readdir(folder);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return null;
      throw error;
    }
    const newest = listCheckpointFiles(folder, entries).at(-1);
    return newest === undefined ? null : fs.promises.readFile(newest, 'utf8');
  }

  /** Pins the verifier key of `origin` once (`<dir>/<slug>/key.vkey`); throws AnchorConflictError if another key is pinned. */
  pinKey(origin: string, vkey: string): void {
    const canonical = parseVerifierKey(vkey).verifierKey;
    const file = path.join(this.originFolderSync(origin), PINNED_KEY_FILE);
    if (createFileExclusively(file, `${canonical}\n`, READ_ONLY)) return;
    const pinned = fs.readFileSync(file, 'utf8').trim();
    if (pinned !== canonical) {
      throw new AnchorConflictError(
        `${this.name} pins verifier key ${pinned} for ${origin} (${file}), refusing to pin a different key ${canonical}`,
      );
    }
  }

  private publishSync(note: string, cp: Checkpoint): AnchorReceipt {
    // Filing a note under another checkpoint's size would corrupt the anchor's index; refuse before touching disk.
    if (checkpointBody(parseSignedCheckpoint(note).checkpoint) !== checkpointBody(cp)) {
      throw new AnchorPublishError(`${this.name}: the note does not encode checkpoint ${cp.origin} at size ${cp.treeSize}`, {
        retryable: false,
      });
    }
    const file = path.join(this.originFolderSync(cp.origin), checkpointFileName(cp.treeSize));
    const bytes = Buffer.from(note, 'utf8');
    let created: boolean;
    let identical: boolean;
    try {
      created = createFileExclusively(file, bytes, READ_ONLY);
      identical = created || fs.readFileSync(file).equals(bytes);
    } catch (cause) {
      throw new AnchorPublishError(`${this.name}: could not write ${file}`, { retryable: true, cause });
    }
    if (identical) return { anchor: this.name, location: file, alreadyPresent: !created };
    const evidence = this.keepConflictingNote(file, note);
    throw new AnchorConflictError(
      `${this.name} already holds a different checkpoint for ${cp.origin} at tree size ${cp.treeSize} (${file}); ` +
        `the new checkpoint for tree size ${cp.treeSize}${evidence === null ? '' : ` was kept as ${evidence}`} ` +
        'is a fork of the anchored history and was not written over it',
    );
  }

  /** Keeps the rejected note next to the anchored one: two signed notes at one size are the proof of a fork. */
  private keepConflictingNote(file: string, note: string): string | null {
    const digest = createHash('sha256').update(note, 'utf8').digest('hex').slice(0, 16);
    const evidence = file.replace(/\.checkpoint$/, `.${digest}.conflict`);
    try {
      createFileExclusively(evidence, note, READ_ONLY);
      return evidence;
    } catch {
      // Best effort: the conflict itself is reported whether or not the evidence could be saved.
      return null;
    }
  }

  private async assertDirectory(): Promise<void> {
    let stat: fs.Stats;
    try {
      stat = await fs.promises.stat(this.dir);
    } catch (cause) {
      throw new Error(`anchor directory ${this.dir} is not accessible (is the disk mounted?)`, { cause });
    }
    if (!stat.isDirectory()) throw new Error(`anchor path ${this.dir} is not a directory`);
  }

  private originFolderSync(origin: string): string {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(this.dir);
    } catch (cause) {
      // Never create the anchor root: on an unmounted disk that would silently write to the writer's own disk.
      throw new AnchorPublishError(`anchor directory ${this.dir} is not accessible (is the disk mounted?)`, { retryable: true, cause });
    }
    if (!stat.isDirectory()) throw new AnchorPublishError(`anchor path ${this.dir} is not a directory`, { retryable: false });
    const folder = path.join(this.dir, originSlug(origin));
    try {
      fs.mkdirSync(folder);
      fsyncDirectory(this.dir);
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') {
        throw new AnchorPublishError(`${this.name}: could not create ${folder}`, { retryable: true, cause: error });
      }
    }
    return folder;
  }
}

/** Options of {@link HttpAnchor}. */
export interface HttpAnchorOptions {
  readonly url: string;
  /** Sent as `authorization: Bearer <token>`; never included in errors. */
  readonly token?: string;
  /** Per request, default 5000. */
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
}

const DEFAULT_TIMEOUT_MS = 5000;
const MAX_DETAIL_CHARS = 200;

/** Anchor on an HTTP witness: POSTs notes to `url` (2xx ok, 409 conflict, else AnchorPublishError) and reads back with GET. */
export class HttpAnchor implements Anchor {
  readonly name: string;
  readonly #url: string;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(options: HttpAnchorOptions) {
    const url = new URL(options.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError(`HTTP anchor URL must use http or https, got ${url.protocol}`);
    }
    // fetch refuses such URLs at every call; failing here also keeps the password out of names and logs.
    if (url.username !== '' || url.password !== '') {
      throw new TypeError(`HTTP anchor URL for ${url.host} must not embed credentials; pass a bearer token instead`);
    }
    // Printable ASCII only: fetch would otherwise throw, and some of its errors echo the header value.
    if (options.token !== undefined && !/^[\x21-\x7e]+$/.test(options.token)) {
      throw new TypeError('HTTP anchor token must be non-empty printable ASCII without spaces');
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new TypeError(`HTTP anchor timeout must be positive, got ${timeoutMs}`);
    this.#url = options.url;
    this.#token = options.token;
    this.#timeoutMs = timeoutMs;
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.name = `http:${options.url}`;
  }

  /** POSTs `note` as text/plain; resolves with a receipt on 2xx, throws AnchorConflictError on 409, AnchorPublishError otherwise. */
  async publish(note: string, cp: Checkpoint): Promise<AnchorReceipt> {
    const what = `checkpoint ${cp.origin} at tree size ${cp.treeSize}`;
    let response: Response;
    try {
      response = await this.#fetch(this.#url, {
        method: 'POST',
        headers: this.#headers({ 'content-type': 'text/plain; charset=utf-8' }),
        body: note,
        // A followed redirect would turn the POST into a GET and might carry the token to another host.
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (cause) {
      const timedOut = cause instanceof Error && (cause.name === 'TimeoutError' || cause.name === 'AbortError');
      const reason = timedOut ? `no answer within ${this.#timeoutMs} ms` : 'network error';
      throw new AnchorPublishError(`${this.name}: ${reason} while publishing ${what}`, { retryable: true, cause: this.#scrub(cause) });
    }
    if (response.status >= 200 && response.status < 300) {
      await response.body?.cancel().catch(() => undefined);
      return { anchor: this.name, location: this.#url, alreadyPresent: false };
    }
    const detail = await this.#detail(response);
    if (response.status === 409) {
      throw new AnchorConflictError(`${this.name} rejected ${what} as conflicting with what it holds (HTTP 409)${detail}`);
    }
    const status = response.status;
    const retryable = status === 408 || status === 429 || status >= 500;
    const hint = status >= 300 && status < 400 ? ' (redirects are not followed; configure the final URL)' : '';
    throw new AnchorPublishError(`${this.name} refused ${what}: HTTP ${status}${hint}${detail}`, { status, retryable });
  }

  /** `GET url?origin=…`: the body on 200, null on 404 and on any error (a write-only witness is still useful). */
  async latest(origin: string): Promise<string | null> {
    const separator = this.#url.includes('?') ? '&' : '?';
    try {
      const response = await this.#fetch(`${this.#url}${separator}origin=${encodeURIComponent(origin)}`, {
        method: 'GET',
        headers: this.#headers({ accept: 'text/plain' }),
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      if (response.status === 200) return await response.text();
      await response.body?.cancel().catch(() => undefined);
      return null;
    } catch {
      return null;
    }
  }

  #headers(extra: Record<string, string>): Record<string, string> {
    return this.#token === undefined ? extra : { ...extra, authorization: `Bearer ${this.#token}` };
  }

  /** A short, single-line, token-free excerpt of the response body for error messages. */
  async #detail(response: Response): Promise<string> {
    let text: string;
    try {
      text = await response.text();
    } catch {
      return '';
    }
    const excerpt = this.#redact(text.replace(/\s+/g, ' ').trim()).slice(0, MAX_DETAIL_CHARS);
    return excerpt === '' ? '' : `: ${excerpt}`;
  }

  #redact(text: string): string {
    return this.#token === undefined ? text : text.split(this.#token).join('[redacted]');
  }

  /** The cause, or a redacted stand-in when anything in it (e.g. from a custom fetch) mentions the token. */
  #scrub(cause: unknown): unknown {
    if (this.#token === undefined || !inspect(cause, { depth: 5 }).includes(this.#token)) return cause;
    return new Error(this.#redact(cause instanceof Error ? cause.message : String(cause)));
  }
}

/** One DirectoryAnchor per directory and one HttpAnchor per URL (blank and duplicate entries skipped), sharing `opts.token`. */
export function anchorsFromConfig(dirs: readonly string[], urls: readonly string[], opts?: { token?: string }): Anchor[] {
  const unique = (items: readonly string[]): string[] => [...new Set(items.map((item) => item.trim()).filter((item) => item !== ''))];
  const token = opts?.token;
  return [
    ...unique(dirs).map((dir) => new DirectoryAnchor(dir)),
    ...unique(urls).map((url) => new HttpAnchor(token === undefined ? { url } : { url, token })),
  ];
}
