import { sign, verify } from 'node:crypto';
import { CheckpointFormatError } from './errors/checkpoint-format.error.ts';
import { decodeCanonicalBase64, isValidKeyName, type SigningKey, type Verifier } from './keys.ts';

/** A signed statement of the journal's state: RFC 6962 tree size and root, plus the running chain head. */
export interface Checkpoint {
  /** Log identity; by convention the same string as the signing key name. */
  readonly origin: string;
  readonly treeSize: number;
  /** RFC 6962 Merkle tree root at `treeSize` (32 bytes). */
  readonly rootHash: Uint8Array;
  /** Running chain hash after entry `treeSize` (32 bytes). */
  readonly chainHead: Uint8Array;
  /** ISO 8601 UTC with milliseconds, e.g. 2024-05-01T12:00:00.000Z. */
  readonly timestamp: string;
}

/** One signature line of a signed note, not yet verified. */
export interface NoteSignature {
  readonly name: string;
  readonly keyId: Uint8Array;
  readonly signature: Uint8Array;
}

const HASH_BYTES = 32;
const SIGNATURE_PREFIX = '\u2014 ';
// Go's note.Open stops at 100; a checkpoint carries one signature, so anything near this is abuse.
const MAX_SIGNATURES = 100;
// Far above any real checkpoint; bounds the work done on hostile input read back from an anchor.
const MAX_NOTE_CHARS = 64 * 1024;
const TIMESTAMP_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const TREE_SIZE_PATTERN = /^(?:0|[1-9][0-9]*)$/;

function fail(message: string): never {
  throw new CheckpointFormatError(message);
}

function isCanonicalTimestamp(timestamp: string): boolean {
  if (!TIMESTAMP_PATTERN.test(timestamp)) return false;
  const time = Date.parse(timestamp);
  // Date.parse rolls 2024-02-30 over to March; only a round trip proves the calendar date exists.
  return Number.isFinite(time) && new Date(time).toISOString() === timestamp;
}

function checkpointProblem(cp: Checkpoint): string | null {
  if (!isValidKeyName(cp.origin))
    return `origin ${JSON.stringify(cp.origin)} must be non-empty with no '+', whitespace or control characters`;
  if (!Number.isSafeInteger(cp.treeSize) || cp.treeSize < 0) return `tree size ${cp.treeSize} is not a non-negative safe integer`;
  if (cp.rootHash.length !== HASH_BYTES) return `root hash has ${cp.rootHash.length} bytes, expected ${HASH_BYTES}`;
  if (cp.chainHead.length !== HASH_BYTES) return `chain head has ${cp.chainHead.length} bytes, expected ${HASH_BYTES}`;
  if (!isCanonicalTimestamp(cp.timestamp)) return `timestamp ${JSON.stringify(cp.timestamp)} is not ISO 8601 UTC with milliseconds`;
  return null;
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** tlog-checkpoint note text (origin, size, root, `chain …`, `time …`, newline-terminated); throws CheckpointFormatError if invalid. */
export function checkpointBody(cp: Checkpoint): string {
  const problem = checkpointProblem(cp);
  if (problem !== null) fail(`cannot encode checkpoint: ${problem}`);
  return `${cp.origin}\n${cp.treeSize}\n${base64(cp.rootHash)}\nchain ${base64(cp.chainHead)}\ntime ${cp.timestamp}\n`;
}

/** C2SP signed note of `text` (which must end in a newline) signed by `key`: text, blank line, signature line. */
export function signNote(text: string, key: SigningKey): string {
  if (!text.endsWith('\n')) fail('note text must end with a newline');
  if (!isValidKeyName(key.name)) fail(`invalid signer name ${JSON.stringify(key.name)}`);
  const signature = sign(null, Buffer.from(text, 'utf8'), key.privateKey);
  const encoded = Buffer.concat([key.keyId, signature]).toString('base64');
  return `${text}\n${SIGNATURE_PREFIX}${key.name} ${encoded}\n`;
}

/** The signed checkpoint note: {@link checkpointBody}, a blank line and `key`'s signature line. */
export function signCheckpoint(cp: Checkpoint, key: SigningKey): string {
  return signNote(checkpointBody(cp), key);
}

function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 && code !== 0x0a) return true;
  }
  return false;
}

interface ParsedNote {
  readonly text: string;
  readonly signatures: NoteSignature[];
}

/** Splits a signed note into its text and signature lines per C2SP signed-note; throws CheckpointFormatError. */
function parseNote(note: string): ParsedNote {
  if (typeof note !== 'string') fail('note is not a string');
  if (note.length > MAX_NOTE_CHARS) fail(`note is longer than ${MAX_NOTE_CHARS} characters`);
  if (hasControlCharacter(note)) fail('note contains a control character other than newline');
  if (/\p{Surrogate}/u.test(note)) fail('note is not well-formed Unicode');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) fail('note has no blank line before its signatures');
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (block.length === 0) fail('note has no signature');
  if (!block.endsWith('\n')) fail('note does not end with a newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) fail(`note has more than ${MAX_SIGNATURES} signatures`);
  const signatures = lines.map((line, index) => {
    if (!line.startsWith(SIGNATURE_PREFIX)) fail(`signature line ${index + 1} does not start with an em dash and a space`);
    const rest = line.slice(SIGNATURE_PREFIX.length);
    const space = rest.indexOf(' ');
    if (space < 0) fail(`signature line ${index + 1} has no signature after the key name`);
    const name = rest.slice(0, space);
    if (!isValidKeyName(name)) fail(`signature line ${index + 1} has an invalid key name`);
    const bytes = decodeCanonicalBase64(rest.slice(space + 1));
    // Four bytes of key id plus at least one byte of signature, as in Go's note.Open.
    if (bytes === null || bytes.length < 5) fail(`signature line ${index + 1} does not hold a base64 key id and signature`);
    return { name, keyId: new Uint8Array(bytes.subarray(0, 4)), signature: new Uint8Array(bytes.subarray(4)) };
  });
  return { text, signatures };
}

function decodeHash(text: string, what: string): Uint8Array {
  const bytes = decodeCanonicalBase64(text);
  if (bytes === null) fail(`${what} is not canonical base64`);
  if (bytes.length !== HASH_BYTES) fail(`${what} has ${bytes.length} bytes, expected ${HASH_BYTES}`);
  return new Uint8Array(bytes);
}

function parseCheckpointText(text: string): Checkpoint {
  const lines = text.slice(0, -1).split('\n');
  if (lines.length !== 5) fail(`checkpoint has ${lines.length} lines, expected origin, size, root, chain and time`);
  const [origin = '', sizeText = '', rootText = '', chainLine = '', timeLine = ''] = lines;
  if (!isValidKeyName(origin)) fail('checkpoint origin is empty or contains whitespace, "+" or control characters');
  if (!TREE_SIZE_PATTERN.test(sizeText)) fail('checkpoint tree size is not a canonical decimal number');
  const treeSize = Number(sizeText);
  if (!Number.isSafeInteger(treeSize)) fail('checkpoint tree size is too large');
  const rootHash = decodeHash(rootText, 'checkpoint root hash');
  if (!chainLine.startsWith('chain ')) fail('checkpoint fourth line is not "chain <base64>"');
  const chainHead = decodeHash(chainLine.slice('chain '.length), 'checkpoint chain head');
  if (!timeLine.startsWith('time ')) fail('checkpoint fifth line is not "time <ISO timestamp>"');
  const timestamp = timeLine.slice('time '.length);
  if (!isCanonicalTimestamp(timestamp)) fail('checkpoint time is not an ISO 8601 UTC timestamp with milliseconds');
  const checkpoint = { origin, treeSize, rootHash, chainHead, timestamp };
  // One encoding per checkpoint: anything we accept is byte-for-byte what checkpointBody writes.
  if (checkpointBody(checkpoint) !== text) fail('checkpoint text is not in canonical form');
  return checkpoint;
}

/** Parses a signed checkpoint note without verifying it; throws CheckpointFormatError on any deviation from {@link signCheckpoint}'s format. */
export function parseSignedCheckpoint(note: string): { checkpoint: Checkpoint; signatures: NoteSignature[] } {
  const { text, signatures } = parseNote(note);
  return { checkpoint: parseCheckpointText(text), signatures };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

function verifyParsed(parsed: ParsedNote, verifier: Verifier): boolean {
  const mine = parsed.signatures.filter((s) => s.name === verifier.name && sameBytes(s.keyId, verifier.keyId));
  if (mine.length === 0) return false;
  const message = Buffer.from(parsed.text, 'utf8');
  // C2SP: a failing signature from a known key rejects the whole note, even if another line from it verifies.
  return mine.every((s) => {
    try {
      return verify(null, message, verifier.publicKey, s.signature);
    } catch {
      return false;
    }
  });
}

/** The text of `note` when it carries a valid signature by `verifier` (name and key id matching), else null; never throws. */
export function verifyNote(note: string, verifier: Verifier): string | null {
  try {
    const parsed = parseNote(note);
    return verifyParsed(parsed, verifier) ? parsed.text : null;
  } catch {
    return null;
  }
}

/** The checkpoint in `note` when it is well-formed and validly signed by `verifier`, else null; never throws. */
export function verifySignedCheckpoint(note: string, verifier: Verifier): Checkpoint | null {
  try {
    const parsed = parseNote(note);
    const checkpoint = parseCheckpointText(parsed.text);
    return verifyParsed(parsed, verifier) ? checkpoint : null;
  } catch {
    return null;
  }
}
