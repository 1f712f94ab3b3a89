/**
 * RFC 6962 / RFC 9162 Merkle tree primitives: leaf and node hashing, proof generation over stored perfect
 * subtrees, proof verification, and the incremental left-edge ("compact range") tree that the journal
 * appends to.
 *
 * Generation and CompactTree work on JS numbers (sizes < 2^53). Verification takes numbers or bigints
 * and is exact over the whole uint64 range, because proofs and sizes arrive from outside and an
 * attacker chooses them.
 *
 * JS bitwise operators truncate to 32 bits, so size and index arithmetic on numbers goes through the
 * helpers below (division by powers of two) rather than `>>`, `&` or `^`.
 */
import { createHash } from 'node:crypto';

/** A SHA-256 digest; always HASH_SIZE bytes. */
export type Hash = Uint8Array;

/** Length in bytes of every hash in the tree. */
export const HASH_SIZE = 32;

const LEAF_PREFIX = new Uint8Array([0x00]);
const NODE_PREFIX = new Uint8Array([0x01]);
const MAX_U64 = (1n << 64n) - 1n;

/** MTH of the empty tree: SHA-256 of the empty string. Treat as read-only. */
export const EMPTY_ROOT: Hash = createHash('sha256').digest();

/** SHA-256(0x00 || data): the RFC 6962 leaf hash. */
export function hashLeaf(data: Uint8Array): Hash {
  return createHash('sha256').update(LEAF_PREFIX).update(data).digest();
}

/** SHA-256(0x01 || left || right): the RFC 6962 interior node hash. */
export function hashChildren(left: Hash, right: Hash): Hash {
  return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();
}

// ---------------------------------------------------------------------------------------------------------
// Verification (RFC 9162 §2.1.3.2, §2.1.4.2). Everything here returns false rather than throwing: the
// inputs are untrusted, and a verifier that can be made to throw is a verifier that can be made to crash.
// ---------------------------------------------------------------------------------------------------------

/**
 * RFC 9162 §2.1.3.2 inclusion check of `leafHash` at `leafIndex` in the tree of `treeSize` leaves with root
 * `root`; false (never a throw) on any malformed input, including non-32-byte hashes and sizes outside uint64.
 */
export function verifyInclusion(
  leafIndex: number | bigint,
  treeSize: number | bigint,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[] | null | undefined,
  root: Uint8Array,
): boolean {
  try {
    const index = toU64(leafIndex);
    const size = toU64(treeSize);
    if (index === null || size === null || index >= size) return false;
    if (!isHash(leafHash) || !isHash(root)) return false;
    const path = proofArray(proof);
    if (path === null) return false;

    // The proof splits into an "inner" part (siblings below the level where the paths to the leaf and to
    // the last leaf meet) and a "border" part (left siblings on the right border above it), so its length
    // is fixed by (index, size). Checking it is what stops an interior node, together with a shortened
    // path, from passing as a leaf: the hashes alone would line up.
    const inner = bitLength(index ^ (size - 1n));
    const border = popCount(index >> BigInt(inner));
    if (path.length !== inner + border) return false;

    let h: Hash = leafHash;
    for (let i = 0; i < inner; i++) {
      const sibling = path[i] as Hash;
      h = ((index >> BigInt(i)) & 1n) === 0n ? hashChildren(h, sibling) : hashChildren(sibling, h);
    }
    for (let i = inner; i < path.length; i++) h = hashChildren(path[i] as Hash, h);
    return bytesEqual(h, root);
  } catch {
    return false;
  }
}

/**
 * RFC 9162 §2.1.4.2 check that the tree of `size2` leaves with root `root2` extends the tree of `size1`
 * leaves with root `root1`; false (never a throw) on malformed input. Policy, as the shared vectors demand:
 * size1 == 0 is always false (a proof from the empty tree proves nothing), and size1 == size2 is true only
 * for an empty/absent proof and byte-equal roots (compared as given, whatever their length).
 */
export function verifyConsistency(
  size1: number | bigint,
  size2: number | bigint,
  root1: Uint8Array,
  root2: Uint8Array,
  proof: readonly Uint8Array[] | null | undefined,
): boolean {
  try {
    const m = toU64(size1);
    const n = toU64(size2);
    if (m === null || n === null || m === 0n || m > n) return false;
    const path = proofArray(proof);
    if (path === null) return false;
    if (!(root1 instanceof Uint8Array) || !(root2 instanceof Uint8Array)) return false;
    if (m === n) return path.length === 0 && bytesEqual(root1, root2);
    if (!isHash(root1) || !isHash(root2) || path.length === 0) return false;

    // Same inner/border split as an inclusion proof of leaf m-1 in the size-n tree, except that the
    // lowest `shift` levels lie inside the perfect subtree ending at m, whose root is the proof's seed
    // (given explicitly, or implied as root1 when m is a power of two and that subtree is the old tree).
    const shift = trailingZeros(m);
    const inner = bitLength((m - 1n) ^ (n - 1n)) - shift;
    const border = popCount((m - 1n) >> BigInt(inner + shift));
    const mask = (m - 1n) >> BigInt(shift);
    const seededByRoot1 = m === 1n << BigInt(shift);
    const start = seededByRoot1 ? 0 : 1;
    if (path.length !== start + inner + border) return false;
    const seed = seededByRoot1 ? root1 : (path[0] as Hash);

    // h1 rebuilds the old root (only left siblings contribute), h2 the new root (all siblings do).
    let h1: Hash = seed;
    let h2: Hash = seed;
    for (let i = 0; i < inner; i++) {
      const sibling = path[start + i] as Hash;
      if (((mask >> BigInt(i)) & 1n) === 1n) {
        h1 = hashChildren(sibling, h1);
        h2 = hashChildren(sibling, h2);
      } else {
        h2 = hashChildren(h2, sibling);
      }
    }
    for (let i = start + inner; i < path.length; i++) {
      const sibling = path[i] as Hash;
      h1 = hashChildren(sibling, h1);
      h2 = hashChildren(sibling, h2);
    }
    return bytesEqual(h1, root1) && bytesEqual(h2, root2);
  } catch {
    return false;
  }
}

function toU64(x: unknown): bigint | null {
  if (typeof x === 'bigint') return x >= 0n && x <= MAX_U64 ? x : null;
  // Integral doubles above 2^53 are still exact integers, so they convert without loss; 2^64 itself is
  // representable as a double and is caught by the range check.
  if (typeof x === 'number' && Number.isInteger(x) && x >= 0) {
    const b = BigInt(x);
    return b <= MAX_U64 ? b : null;
  }
  return null;
}

function isHash(x: unknown): x is Hash {
  return x instanceof Uint8Array && x.length === HASH_SIZE;
}

/** null/undefined mean "no proof" (valid where none is needed); anything but an array of hashes is rejected. */
function proofArray(proof: unknown): readonly Hash[] | null {
  if (proof === null || proof === undefined) return [];
  if (!Array.isArray(proof)) return null;
  const arr = proof as readonly unknown[];
  for (let i = 0; i < arr.length; i++) if (!isHash(arr[i])) return null;
  return arr as readonly Hash[];
}

/** A copy that owns its bytes: Buffer#slice would return a view of the same memory. */
function copyHash(h: Uint8Array): Hash {
  return Buffer.from(h);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function bitLength(x: bigint): number {
  return x === 0n ? 0 : x.toString(2).length;
}

function popCount(x: bigint): number {
  let count = 0;
  for (const c of x.toString(2)) if (c === '1') count++;
  return count;
}

function trailingZeros(x: bigint): number {
  let n = 0;
  while (x > 0n && (x & 1n) === 0n) {
    x >>= 1n;
    n++;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------------------
// Generation from stored perfect subtrees (RFC 6962 §2.1.1, §2.1.2).
// ---------------------------------------------------------------------------------------------------------

/**
 * Where proof generation gets hashes of perfect subtrees: node(level, index) is the root of leaves
 * [index*2^level, (index+1)*2^level); level 0 is the leaf hash. Only nodes of complete (perfect) subtrees
 * that lie within the current tree are ever asked for.
 */
export interface NodeSource {
  node(level: number, index: number): Hash;
}

/** MTH of the first `size` leaves (EMPTY_ROOT for 0); throws RangeError if size is not a safe non-negative integer. */
export function rootOf(size: number, src: NodeSource): Hash {
  checkSize(size, 'size');
  if (size === 0) return copyHash(EMPTY_ROOT);
  return rangeRoot(0, size, src);
}

/** RFC 6962 §2.1.1 PATH(leafIndex, D[treeSize]), bottom sibling first; throws RangeError unless 0 <= leafIndex < treeSize. */
export function inclusionProof(leafIndex: number, treeSize: number, src: NodeSource): Hash[] {
  checkSize(treeSize, 'treeSize');
  checkSize(leafIndex, 'leafIndex');
  if (leafIndex >= treeSize) throw new RangeError(`leafIndex ${leafIndex} is not below treeSize ${treeSize}`);

  // Walk down from the root, noting each sibling; the proof lists them bottom-up, hence the reverse.
  const path: Hash[] = [];
  let start = 0;
  let m = leafIndex;
  let n = treeSize;
  while (n > 1) {
    const k = splitPoint(n);
    if (m < k) {
      path.push(rangeRoot(start + k, n - k, src));
      n = k;
    } else {
      path.push(rangeRoot(start, k, src));
      start += k;
      m -= k;
      n -= k;
    }
  }
  return path.reverse();
}

/** RFC 6962 §2.1.2 PROOF(size1, D[size2]); [] when size1 == size2; throws RangeError unless 0 < size1 <= size2. */
export function consistencyProof(size1: number, size2: number, src: NodeSource): Hash[] {
  checkSize(size1, 'size1');
  checkSize(size2, 'size2');
  if (size1 === 0 || size1 > size2) throw new RangeError(`need 0 < size1 <= size2, got ${size1} and ${size2}`);

  // SUBPROOF(m, D[start:start+n], b) unrolled; nodes are found top-down and emitted bottom-up.
  const path: Hash[] = [];
  let start = 0;
  let m = size1;
  let n = size2;
  let wholeOldTree = true;
  while (m !== n) {
    const k = splitPoint(n);
    if (m <= k) {
      path.push(rangeRoot(start + k, n - k, src));
      n = k;
    } else {
      path.push(rangeRoot(start, k, src));
      start += k;
      m -= k;
      n -= k;
      wholeOldTree = false;
    }
  }
  // The verifier already holds the old root, so it is left out exactly when this subtree is the old tree.
  if (!wholeOldTree) path.push(rangeRoot(start, m, src));
  return path.reverse();
}

/**
 * MTH of leaves [start, start+count) where start is a multiple of the smallest power of two >= count: the
 * range is then the perfect subtrees of count's binary decomposition, combined right to left.
 */
function rangeRoot(start: number, count: number, src: NodeSource): Hash {
  let h: Hash | undefined;
  let end = start + count;
  let rest = count;
  while (rest > 0) {
    const width = lowestBit(rest);
    const level = log2(width);
    end -= width;
    const node = src.node(level, end / width);
    h = h === undefined ? node : hashChildren(node, h);
    rest -= width;
  }
  if (h === undefined) throw new RangeError('empty range has no subtree root');
  return h;
}

/** The largest power of two strictly below n (n >= 2): where RFC 6962 splits D[n]. */
function splitPoint(n: number): number {
  return 2 ** (bitLengthNum(n - 1) - 1);
}

function checkSize(x: number, name: string): void {
  if (!Number.isSafeInteger(x) || x < 0) throw new RangeError(`${name} must be a non-negative safe integer, got ${x}`);
}

const TWO_32 = 2 ** 32;

function bitLengthNum(x: number): number {
  const hi = Math.floor(x / TWO_32);
  return hi > 0 ? 64 - Math.clz32(hi) : 32 - Math.clz32(x >>> 0);
}

/** Largest power of two dividing x (x > 0). */
function lowestBit(x: number): number {
  const lo = x % TWO_32;
  if (lo !== 0) return (lo & -lo) >>> 0;
  const hi = x / TWO_32;
  return ((hi & -hi) >>> 0) * TWO_32;
}

/** log2 of a power of two. */
function log2(p: number): number {
  return bitLengthNum(p) - 1;
}

function popCountNum(x: number): number {
  return popCount32(x >>> 0) + popCount32(Math.floor(x / TWO_32));
}

function popCount32(v: number): number {
  v -= (v >>> 1) & 0x55555555;
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

// ---------------------------------------------------------------------------------------------------------
// The incremental tree.
// ---------------------------------------------------------------------------------------------------------

/**
 * The left edge of the tree: roots of the perfect subtrees covering [0, size), largest first, one per set
 * bit of size. O(log n) hashing per append and per root. Hashes handed in are copied where kept, and hashes
 * handed out are never internal references, so callers may reuse or mutate their buffers freely.
 */
export class CompactTree {
  #size: number;
  readonly #frontier: Hash[];

  /** Builds from a known size and frontier (largest subtree first); throws RangeError unless frontier has popcount(size) 32-byte hashes. */
  constructor(size = 0, frontier: readonly Hash[] = []) {
    checkSize(size, 'size');
    const want = popCountNum(size);
    if (frontier.length !== want) {
      throw new RangeError(`frontier of a size-${size} tree has ${want} hashes, got ${frontier.length}`);
    }
    this.#size = size;
    this.#frontier = frontier.map((h, i) => {
      if (!isHash(h)) throw new RangeError(`frontier[${i}] is not a ${HASH_SIZE}-byte hash`);
      return copyHash(h);
    });
  }

  /** Rebuilds the frontier of a size-`size` tree from stored perfect-subtree nodes. */
  static fromNodeSource(size: number, src: NodeSource): CompactTree {
    checkSize(size, 'size');
    const frontier: Hash[] = [];
    let offset = 0;
    for (let level = bitLengthNum(size) - 1; level >= 0; level--) {
      const width = 2 ** level;
      if (Math.floor(size / width) % 2 === 1) {
        frontier.push(src.node(level, offset / width));
        offset += width;
      }
    }
    return new CompactTree(size, frontier);
  }

  /** Number of leaves. */
  get size(): number {
    return this.#size;
  }

  /** A copy of the frontier, largest subtree first. */
  frontier(): Hash[] {
    return this.#frontier.map(copyHash);
  }

  /**
   * Appends a leaf hash; returns the perfect-subtree roots this append completed at levels 1..k, level 1
   * first, i.e. node(l, sizeAfter/2^l - 1) for every l >= 1 with 2^l dividing sizeAfter. Throws RangeError
   * for a hash that is not 32 bytes or a tree that would outgrow 2^53 - 1.
   */
  append(leafHash: Hash): Hash[] {
    if (!isHash(leafHash)) throw new RangeError(`leaf hash must be ${HASH_SIZE} bytes`);
    if (this.#size >= Number.MAX_SAFE_INTEGER) throw new RangeError('tree is full');
    const completed: Hash[] = [];
    // Each trailing one bit of the old size is a same-height subtree on the frontier that the new node
    // now pairs with; a fresh leaf that is only stored (even old size) is copied so the caller keeps its buffer.
    let s = this.#size;
    let h: Hash = s % 2 === 1 ? leafHash : copyHash(leafHash);
    while (s % 2 === 1) {
      h = hashChildren(this.#frontier.pop() as Hash, h);
      completed.push(h);
      s = (s - 1) / 2;
    }
    this.#frontier.push(h);
    this.#size++;
    // The completed nodes are also referenced by the frontier (the last one); hand out copies of those only.
    const last = completed.length - 1;
    if (last >= 0) completed[last] = copyHash(completed[last] as Hash);
    return completed;
  }

  /** MTH of the current tree; EMPTY_ROOT when empty. The result is a fresh buffer. */
  root(): Hash {
    const f = this.#frontier;
    let i = f.length - 1;
    if (i < 0) return copyHash(EMPTY_ROOT);
    let h = f[i] as Hash;
    if (i === 0) return copyHash(h);
    while (i > 0) h = hashChildren(f[--i] as Hash, h);
    return h;
  }

  /** An independent copy. */
  clone(): CompactTree {
    // Internal hashes are never mutated in place, so the copy can share them.
    const copy = new CompactTree();
    copy.#size = this.#size;
    copy.#frontier.push(...this.#frontier);
    return copy;
  }
}
