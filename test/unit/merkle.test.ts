import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CompactTree,
  EMPTY_ROOT,
  HASH_SIZE,
  consistencyProof,
  hashChildren,
  hashLeaf,
  inclusionProof,
  rootOf,
  verifyConsistency,
  verifyInclusion,
  type Hash,
  type NodeSource,
} from '../../src/journal/merkle.ts';

// ---------------------------------------------------------------------------------------------------------
// Reference implementation, written straight from RFC 6962 §2.1 and sharing no code with the module.
// ---------------------------------------------------------------------------------------------------------

function sha256(...parts: Uint8Array[]): Hash {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}
const refLeaf = (data: Uint8Array): Hash => sha256(Uint8Array.of(0), data);
const refNode = (l: Hash, r: Hash): Hash => sha256(Uint8Array.of(1), l, r);

/** The largest power of two strictly below n (n >= 2). */
function splitAt(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH over already-hashed leaves. */
function refMth(hashes: readonly Hash[]): Hash {
  if (hashes.length === 0) return sha256();
  if (hashes.length === 1) return hashes[0] as Hash;
  const k = splitAt(hashes.length);
  return refNode(refMth(hashes.slice(0, k)), refMth(hashes.slice(k)));
}

/** MTH(D[start:start+count]) supplied by the caller, so PATH/PROOF can run over a naive or a memoised tree. */
type RangeMth = (start: number, count: number) => Hash;

function refPath(m: number, n: number, mth: RangeMth, start = 0): Hash[] {
  if (n === 1) return [];
  const k = splitAt(n);
  return m < k ? [...refPath(m, k, mth, start), mth(start + k, n - k)] : [...refPath(m - k, n - k, mth, start + k), mth(start, k)];
}

function refProof(m: number, n: number, mth: RangeMth, start = 0, b = true): Hash[] {
  if (m === n) return b ? [] : [mth(start, m)];
  const k = splitAt(n);
  return m <= k
    ? [...refProof(m, k, mth, start, b), mth(start + k, n - k)]
    : [...refProof(m - k, n - k, mth, start + k, false), mth(start, k)];
}

/**
 * Which side each proof element sits on, bottom-up, per the RFC recursion ('L' = left sibling, 'R' = right
 * sibling; 'S' = the explicit seed of a consistency proof). A verifier's computation is determined by this
 * shape alone, so a proof checked against wrong sizes must fail exactly when the shapes differ. RFC 9162
 * proofs do not bind the size beyond that: a proof for (0, 3) also verifies as (0, 4), which is why sizes
 * are signed into tree heads rather than inferred from proofs.
 */
function inclusionShape(m: number, n: number): string {
  if (n === 1) return '';
  const k = splitAt(n);
  return m < k ? inclusionShape(m, k) + 'R' : inclusionShape(m - k, n - k) + 'L';
}
function consistencyShape(m: number, n: number, b = true): string {
  if (m === n) return b ? '' : 'S';
  const k = splitAt(n);
  return m <= k ? consistencyShape(m, k, b) + 'R' : consistencyShape(m - k, n - k, false) + 'L';
}

const hex = (h: Uint8Array): string => Buffer.from(h).toString('hex');
const hexes = (hs: readonly Uint8Array[]): string[] => hs.map(hex);
const fromHex = (s: string): Hash => Buffer.from(s, 'hex');

function leafData(i: number): Uint8Array {
  return Buffer.from(`entry #${i}`, 'utf8');
}

const MAX_LEAVES = 2048;
const LEAVES: readonly Hash[] = Array.from({ length: MAX_LEAVES }, (_, i) => refLeaf(leafData(i)));

/** Perfect-subtree hashes of LEAVES, memoised because the property tests ask for the same nodes over and over. */
const nodeMemo = new Map<string, Hash>();
function perfectNode(level: number, index: number): Hash {
  if (level === 0) return LEAVES[index] as Hash;
  const key = `${level}:${index}`;
  let h = nodeMemo.get(key);
  if (h === undefined) {
    h = refNode(perfectNode(level - 1, 2 * index), perfectNode(level - 1, 2 * index + 1));
    nodeMemo.set(key, h);
  }
  return h;
}

/** RFC MTH recursion over LEAVES, with perfect ranges served from the memo. */
const memoMth: RangeMth = (start, count) => {
  if (count === 0) return sha256();
  if ((count & (count - 1)) === 0 && start % count === 0) return perfectNode(Math.log2(count), start / count);
  const k = splitAt(count);
  return refNode(memoMth(start, k), memoMth(start + k, count - k));
};
const naiveMth: RangeMth = (start, count) => refMth(LEAVES.slice(start, start + count));

/** A NodeSource for the first `size` leaves that fails the test if asked for anything outside its contract. */
function sourceFor(size: number): NodeSource {
  return {
    node(level, index) {
      if (!Number.isInteger(level) || !Number.isInteger(index) || level < 0 || index < 0) {
        throw new Error(`malformed node request (${level}, ${index})`);
      }
      if ((index + 1) * 2 ** level > size) throw new Error(`node (${level}, ${index}) is not complete in a size-${size} tree`);
      return perfectNode(level, index);
    },
  };
}

function flipBit(h: Uint8Array, byte: number, bit: number): Uint8Array {
  const copy = new Uint8Array(h);
  copy[byte % copy.length] = (copy[byte % copy.length] as number) ^ (1 << bit);
  return copy;
}

// ---------------------------------------------------------------------------------------------------------
// 1. Shared test vectors.
// ---------------------------------------------------------------------------------------------------------

const VECTORS = path.resolve(import.meta.dirname, '../../../shared/specs/merkle-vectors');

function jsonFilesUnder(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) return jsonFilesUnder(p);
      return e.isFile() && e.name.endsWith('.json') ? [p] : [];
    })
    .sort();
}

/** JSON.parse, except that integer literals too long for a double arrive as strings, to become BigInts. */
function parseExact(text: string): Record<string, unknown> {
  const quoted = text.replace(/(?<=[:[,]\s*)(-?\d{16,})(?=\s*[,\]}])/g, '"$1"');
  const value: unknown = JSON.parse(quoted);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('vector is not an object');
  return value as Record<string, unknown>;
}

function u64Field(v: Record<string, unknown>, name: string): number | bigint {
  const x = v[name];
  if (typeof x === 'number' && Number.isSafeInteger(x)) return x;
  if (typeof x === 'string' && /^\d+$/.test(x)) return BigInt(x);
  throw new Error(`${name}: not an integer: ${String(x)}`);
}

function hashField(v: Record<string, unknown>, name: string): Uint8Array {
  return b64(v[name], name);
}

function b64(x: unknown, name: string): Uint8Array {
  if (typeof x !== 'string') throw new Error(`${name}: not a base64 string`);
  const bytes = Buffer.from(x, 'base64');
  // Buffer.from skips characters it does not understand, so insist the text round-trips.
  if (bytes.toString('base64') !== x) throw new Error(`${name}: not canonical base64: ${x}`);
  return bytes;
}

function proofField(v: Record<string, unknown>): Uint8Array[] | null {
  const x = v.proof;
  if (x === null) return null;
  if (!Array.isArray(x)) throw new Error('proof: neither null nor an array');
  return x.map((e: unknown, i) => b64(e, `proof[${i}]`));
}

function wantErr(v: Record<string, unknown>): boolean {
  if (typeof v.wantErr !== 'boolean') throw new Error('wantErr: not a boolean');
  return v.wantErr;
}

const big = (x: number | bigint): bigint => BigInt(x);

describe('shared vectors: inclusion', () => {
  const files = jsonFilesUnder(path.join(VECTORS, 'inclusion'));

  it('reads a non-empty set of files', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  for (const file of files) {
    it(path.relative(VECTORS, file), () => {
      const v = parseExact(fs.readFileSync(file, 'utf8'));
      const idx = u64Field(v, 'leafIdx');
      const size = u64Field(v, 'treeSize');
      const args = [hashField(v, 'leafHash'), proofField(v), hashField(v, 'root')] as const;
      const want = !wantErr(v);
      expect(verifyInclusion(idx, size, ...args)).toBe(want);
      expect(verifyInclusion(big(idx), big(size), ...args)).toBe(want);
    });
  }
});

describe('shared vectors: consistency', () => {
  const files = jsonFilesUnder(path.join(VECTORS, 'consistency'));

  it('reads a non-empty set of files', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  for (const file of files) {
    it(path.relative(VECTORS, file), () => {
      const v = parseExact(fs.readFileSync(file, 'utf8'));
      const size1 = u64Field(v, 'size1');
      const size2 = u64Field(v, 'size2');
      const args = [hashField(v, 'root1'), hashField(v, 'root2'), proofField(v)] as const;
      const want = !wantErr(v);
      expect(verifyConsistency(size1, size2, ...args)).toBe(want);
      expect(verifyConsistency(big(size1), big(size2), ...args)).toBe(want);
    });
  }
});

describe('vector loading', () => {
  it('keeps uint64 literals exact', () => {
    const v = parseExact('{"a": 18446744073709551615, "b": [9007199254740993, 5], "c": "12345678901234567"}');
    expect(u64Field(v, 'a')).toBe(18446744073709551615n);
    expect(v.b).toEqual(['9007199254740993', 5]);
    expect(v.c).toBe('12345678901234567');
  });
});

// ---------------------------------------------------------------------------------------------------------
// 2. Against the reference tree.
// ---------------------------------------------------------------------------------------------------------

describe('hashing', () => {
  it('matches the RFC 6962 leaf and node definitions', () => {
    expect(HASH_SIZE).toBe(32);
    expect(hex(EMPTY_ROOT)).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    for (const data of [new Uint8Array(0), Uint8Array.of(0), leafData(7), new Uint8Array(1000).fill(0xab)]) {
      expect(hex(hashLeaf(data))).toBe(hex(refLeaf(data)));
    }
    const [a, b] = [refLeaf(leafData(1)), refLeaf(leafData(2))];
    expect(hex(hashChildren(a, b))).toBe(hex(refNode(a, b)));
    expect(hex(hashChildren(a, b))).not.toBe(hex(hashChildren(b, a)));
  });
});

describe('reference tree, sizes 1..70', () => {
  const MAX = 70;
  const leaves = LEAVES.slice(0, MAX);

  it('CompactTree root and completed nodes match the naive tree after every append', () => {
    const tree = new CompactTree();
    expect(tree.size).toBe(0);
    expect(hex(tree.root())).toBe(hex(refMth([])));
    for (let j = 0; j < MAX; j++) {
      const completed = tree.append(leaves[j] as Hash);
      const size = j + 1;
      expect(tree.size).toBe(size);
      expect(hex(tree.root())).toBe(hex(refMth(leaves.slice(0, size))));

      const expected: Hash[] = [];
      for (let width = 2; size % width === 0; width *= 2) expected.push(refMth(leaves.slice(size - width, size)));
      expect(hexes(completed)).toEqual(hexes(expected));

      // The frontier is the same as what a rebuild from stored nodes or from the saved frontier gives.
      const frontier = tree.frontier();
      expect(frontier).toHaveLength(size.toString(2).replaceAll('0', '').length);
      const rebuilt = CompactTree.fromNodeSource(size, sourceFor(size));
      expect(hexes(rebuilt.frontier())).toEqual(hexes(frontier));
      expect(hex(new CompactTree(size, frontier).root())).toBe(hex(tree.root()));
      expect(hex(rootOf(size, sourceFor(size)))).toBe(hex(tree.root()));
    }
  });

  it('rootOf(0) is the empty root', () => {
    expect(hex(rootOf(0, sourceFor(0)))).toBe(hex(EMPTY_ROOT));
  });

  it('inclusionProof equals the naive PATH and verifies', () => {
    for (let n = 1; n <= MAX; n++) {
      const root = refMth(leaves.slice(0, n));
      for (let i = 0; i < n; i++) {
        const proof = inclusionProof(i, n, sourceFor(n));
        expect(hexes(proof), `PATH(${i}, D[${n}])`).toEqual(hexes(refPath(i, n, naiveMth)));
        expect(verifyInclusion(i, n, leaves[i] as Hash, proof, root)).toBe(true);
      }
    }
  });

  it('consistencyProof equals the naive PROOF and verifies', () => {
    for (let n = 1; n <= MAX; n++) {
      const root2 = refMth(leaves.slice(0, n));
      for (let m = 1; m <= n; m++) {
        const proof = consistencyProof(m, n, sourceFor(n));
        expect(hexes(proof), `PROOF(${m}, D[${n}])`).toEqual(hexes(refProof(m, n, naiveMth)));
        expect(verifyConsistency(m, n, refMth(leaves.slice(0, m)), root2, proof)).toBe(true);
      }
    }
  });

  it('clone is independent of the original', () => {
    const a = new CompactTree();
    for (let j = 0; j < 5; j++) a.append(leaves[j] as Hash);
    const b = a.clone();
    b.append(leaves[5] as Hash);
    expect(a.size).toBe(5);
    expect(hex(a.root())).toBe(hex(refMth(leaves.slice(0, 5))));
    expect(hex(b.root())).toBe(hex(refMth(leaves.slice(0, 6))));
  });

  it('does not alias caller buffers or the hashes it hands out', () => {
    const tree = new CompactTree();
    const scratch = new Uint8Array(leaves[0] as Hash);
    tree.append(scratch);
    scratch.fill(0);
    expect(hex(tree.root())).toBe(hex(refMth(leaves.slice(0, 1))));
    tree.root().fill(1);
    tree.frontier()[0]?.fill(2);
    const completed = tree.append(leaves[1] as Hash);
    completed[0]?.fill(3);
    expect(hex(tree.root())).toBe(hex(refMth(leaves.slice(0, 2))));
    tree.root().fill(4);
    tree.clone().root().fill(5);
    expect(hex(tree.root())).toBe(hex(refMth(leaves.slice(0, 2))));
    new CompactTree().root().fill(6);
    expect(hex(EMPTY_ROOT)).toBe(hex(refMth([])));
  });

  it('rejects bad arguments with RangeError', () => {
    const src = sourceFor(8);
    expect(() => inclusionProof(8, 8, src)).toThrow(RangeError);
    expect(() => inclusionProof(-1, 8, src)).toThrow(RangeError);
    expect(() => inclusionProof(0.5, 8, src)).toThrow(RangeError);
    expect(() => inclusionProof(0, 0, src)).toThrow(RangeError);
    expect(() => inclusionProof(0, Number.NaN, src)).toThrow(RangeError);
    expect(() => consistencyProof(0, 8, src)).toThrow(RangeError);
    expect(() => consistencyProof(5, 4, src)).toThrow(RangeError);
    expect(() => consistencyProof(1, 2 ** 53, src)).toThrow(RangeError);
    expect(consistencyProof(8, 8, src)).toEqual([]);
    expect(() => rootOf(-1, src)).toThrow(RangeError);
    expect(() => new CompactTree(3, [LEAVES[0] as Hash])).toThrow(RangeError);
    expect(() => new CompactTree(1, [new Uint8Array(31)])).toThrow(RangeError);
    expect(() => new CompactTree(-1, [])).toThrow(RangeError);
    expect(() => new CompactTree().append(new Uint8Array(33))).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------------------
// 3. Properties.
// ---------------------------------------------------------------------------------------------------------

const RUNS = { numRuns: 300 };
const sizeAndIndex = fc.integer({ min: 1, max: 2000 }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n - 1 })));
const sizes = fc.integer({ min: 1, max: 2000 }).chain((n) => fc.tuple(fc.integer({ min: 1, max: n }), fc.constant(n)));
const bitFlip = fc.record({ which: fc.nat(), byte: fc.integer({ min: 0, max: HASH_SIZE - 1 }), bit: fc.integer({ min: 0, max: 7 }) });

describe('properties: inclusion', () => {
  it('generated proofs equal PATH and verify, with numbers and bigints', () => {
    fc.assert(
      fc.property(sizeAndIndex, ([n, i]) => {
        const proof = inclusionProof(i, n, sourceFor(n));
        const root = memoMth(0, n);
        expect(hexes(proof)).toEqual(hexes(refPath(i, n, memoMth)));
        expect(verifyInclusion(i, n, LEAVES[i] as Hash, proof, root)).toBe(true);
        expect(verifyInclusion(BigInt(i), BigInt(n), LEAVES[i] as Hash, proof, root)).toBe(true);
      }),
      RUNS,
    );
  });

  it('a single flipped bit anywhere fails', () => {
    fc.assert(
      fc.property(sizeAndIndex, bitFlip, ([n, i], { which, byte, bit }) => {
        const proof = inclusionProof(i, n, sourceFor(n));
        const leaf = LEAVES[i] as Hash;
        const root = memoMth(0, n);
        const target = which % (proof.length + 2);
        if (target < proof.length) {
          const bad = proof.slice();
          bad[target] = flipBit(proof[target] as Hash, byte, bit);
          expect(verifyInclusion(i, n, leaf, bad, root)).toBe(false);
        } else if (target === proof.length) {
          expect(verifyInclusion(i, n, flipBit(leaf, byte, bit), proof, root)).toBe(false);
        } else {
          expect(verifyInclusion(i, n, leaf, proof, flipBit(root, byte, bit))).toBe(false);
        }
      }),
      RUNS,
    );
  });

  it('a wrong index fails; a wrong size fails unless it gives the proof the same shape', () => {
    fc.assert(
      fc.property(sizeAndIndex, ([n, i]) => {
        const proof = inclusionProof(i, n, sourceFor(n));
        const leaf = LEAVES[i] as Hash;
        const root = memoMth(0, n);
        expect(verifyInclusion(i + 1, n, leaf, proof, root)).toBe(false);
        expect(verifyInclusion(i - 1, n, leaf, proof, root)).toBe(false);
        // Index - 1 wrapped around as uint64, as the shared vectors do it.
        expect(verifyInclusion((BigInt(i) - 1n) & 0xffff_ffff_ffff_ffffn, n, leaf, proof, root)).toBe(false);
        expect(verifyInclusion(i ^ 2, n, leaf, proof, root)).toBe(false);
        for (const n2 of [n - 1, n + 1, n * 2, Math.floor(n / 2)]) {
          const same = i < n2 && inclusionShape(i, n2) === inclusionShape(i, n);
          expect(verifyInclusion(i, n2, leaf, proof, root), `size ${n} -> ${n2}`).toBe(same);
        }
        expect(verifyInclusion(i, n, leaf, [...proof, root], root)).toBe(false);
        expect(verifyInclusion(i, n, leaf, [root, ...proof], root)).toBe(false);
        if (proof.length > 0) {
          expect(verifyInclusion(i, n, leaf, proof.slice(1), root)).toBe(false);
          // The interior node one level up, passed off as the leaf with the rest of the path: it hashes to
          // the right root, so only the length the (index, size) pair dictates can reject it.
          const p0 = proof[0] as Hash;
          const lifted = inclusionShape(i, n).startsWith('L') ? refNode(p0, leaf) : refNode(leaf, p0);
          expect(verifyInclusion(i, n, lifted, proof.slice(1), root)).toBe(false);
        }
      }),
      RUNS,
    );
  });
});

describe('properties: consistency', () => {
  it('generated proofs equal PROOF and verify, with numbers and bigints', () => {
    fc.assert(
      fc.property(sizes, ([m, n]) => {
        const proof = consistencyProof(m, n, sourceFor(n));
        const [r1, r2] = [memoMth(0, m), memoMth(0, n)];
        expect(hexes(proof)).toEqual(hexes(refProof(m, n, memoMth)));
        expect(verifyConsistency(m, n, r1, r2, proof)).toBe(true);
        expect(verifyConsistency(BigInt(m), BigInt(n), r1, r2, proof)).toBe(true);
      }),
      RUNS,
    );
  });

  it('a single flipped bit anywhere fails', () => {
    fc.assert(
      fc.property(sizes, bitFlip, ([m, n], { which, byte, bit }) => {
        const proof = consistencyProof(m, n, sourceFor(n));
        const [r1, r2] = [memoMth(0, m), memoMth(0, n)];
        const target = which % (proof.length + 2);
        if (target < proof.length) {
          const bad = proof.slice();
          bad[target] = flipBit(proof[target] as Hash, byte, bit);
          expect(verifyConsistency(m, n, r1, r2, bad)).toBe(false);
        } else if (target === proof.length) {
          expect(verifyConsistency(m, n, flipBit(r1, byte, bit), r2, proof)).toBe(false);
        } else {
          expect(verifyConsistency(m, n, r1, flipBit(r2, byte, bit), proof)).toBe(false);
        }
      }),
      RUNS,
    );
  });

  it('wrong sizes fail unless they give the proof the same shape; tampered proofs fail', () => {
    fc.assert(
      fc.property(sizes, ([m, n]) => {
        const proof = consistencyProof(m, n, sourceFor(n));
        const [r1, r2] = [memoMth(0, m), memoMth(0, n)];
        const variants: [number, number][] = [
          [m - 1, n],
          [m + 1, n],
          [m ^ 2, n],
          [m, n - 1],
          [m, n + 1],
          [m, n * 2],
          [m, Math.floor(n / 2)],
        ];
        for (const [a, b] of variants) {
          const same = a >= 1 && a <= b && consistencyShape(a, b) === consistencyShape(m, n);
          expect(verifyConsistency(a, b, r1, r2, proof), `(${m}, ${n}) -> (${a}, ${b})`).toBe(same);
        }
        if (m < n) {
          expect(verifyConsistency(m, n, r2, r1, proof)).toBe(false);
          expect(verifyConsistency(m, n, r1, r2, [])).toBe(false);
          expect(verifyConsistency(m, n, r1, r2, null)).toBe(false);
          expect(verifyConsistency(m, n, r1, r2, proof.slice(0, -1))).toBe(false);
        }
        expect(verifyConsistency(m, n, r1, r2, [...proof, r2])).toBe(false);
        expect(verifyConsistency(m, n, r1, r2, [r1, ...proof])).toBe(false);
        // Seed and its first sibling folded into one node, as if the old tree's last subtree were taller.
        const shape = consistencyShape(m, n);
        if (shape.startsWith('S') && proof.length >= 2) {
          const [seed, sib] = [proof[0] as Hash, proof[1] as Hash];
          const folded = shape[1] === 'L' ? refNode(sib, seed) : refNode(seed, sib);
          expect(verifyConsistency(m, n, r1, r2, [folded, ...proof.slice(2)])).toBe(false);
        }
      }),
      RUNS,
    );
  });
});

describe('properties: verifiers never throw', () => {
  const nums = fc.oneof(
    fc.integer({ min: -5, max: 5000 }),
    fc.integer(),
    fc.double(),
    fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, 2 ** 53, 2 ** 64, 2 ** 64 - 2 ** 11, Number.MAX_VALUE),
    fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
    fc.constantFrom(0n, 1n, 2n ** 64n - 1n, 2n ** 64n, 2n ** 63n, -1n),
  );
  const bytes = fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ minLength: 32, maxLength: 32 }));
  const proofs = fc.oneof(
    fc.constant(null),
    fc.constant(undefined),
    fc.array(bytes, { maxLength: 70 }),
    fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { maxLength: 70 }),
  );
  const junk = fc.anything();
  // Deliberately outside the declared types: the verifiers are called on parsed, untrusted input.
  const any = <T>(x: unknown): T => x as T;

  it('for typed garbage', () => {
    fc.assert(
      fc.property(nums, nums, bytes, proofs, bytes, (a, b, h1, p, h2) => {
        expect(typeof verifyInclusion(a, b, h1, p, h2)).toBe('boolean');
        expect(typeof verifyConsistency(a, b, h1, h2, p)).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });

  it('for untyped garbage', () => {
    const anyOf = fc.oneof(junk, nums, bytes, proofs);
    fc.assert(
      fc.property(anyOf, anyOf, anyOf, anyOf, anyOf, (a, b, c, d, e) => {
        expect(typeof verifyInclusion(any(a), any(b), any(c), any(d), any(e))).toBe('boolean');
        expect(typeof verifyConsistency(any(a), any(b), any(c), any(d), any(e))).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });

  it('for hostile arrays', () => {
    const h = LEAVES[0] as Hash;
    const throwing = new Proxy([h], {
      get(target, key, receiver) {
        if (key === '0') throw new Error('boom');
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
    const sparse: Hash[] = [h];
    sparse[2] = h;
    for (const p of [throwing, sparse, any<Hash[]>('not an array'), any<Hash[]>({ length: 1, 0: h })]) {
      expect(verifyInclusion(1, 3, h, p, h)).toBe(false);
      expect(verifyConsistency(1, 3, h, h, p)).toBe(false);
    }
  });

  it('rejects sizes beyond uint64 and negative or fractional numbers', () => {
    const h = LEAVES[0] as Hash;
    expect(verifyInclusion(0, 1, h, [], h)).toBe(true);
    expect(verifyInclusion(0n, 1n, h, null, h)).toBe(true);
    for (const bad of [-1, -1n, 0.5, Number.NaN, 2n ** 64n]) {
      expect(verifyInclusion(bad, 1, h, [], h)).toBe(false);
      expect(verifyInclusion(0, bad, h, [], h)).toBe(false);
      expect(verifyConsistency(bad, 1, h, h, [])).toBe(false);
      expect(verifyConsistency(1, bad, h, h, [])).toBe(false);
    }
  });

  it('refuses trees of 2^64 leaves or more even when the hashes line up', () => {
    const leaf = LEAVES[0] as Hash;
    const sibling = LEAVES[1] as Hash;
    // Leaf 2^64 of a (2^64 + 1)-leaf tree would be the last leaf with one left sibling: a well-formed proof
    // in every respect except the size.
    expect(verifyInclusion(2n ** 64n, 2n ** 64n + 1n, leaf, [sibling], refNode(sibling, leaf))).toBe(false);
    expect(verifyInclusion(0, 2n ** 64n, leaf, [], leaf)).toBe(false);
    expect(verifyConsistency(2n ** 64n, 2n ** 64n, leaf, leaf, [])).toBe(false);
    expect(verifyConsistency(2 ** 64, 2 ** 64, leaf, leaf, [])).toBe(false);
  });

  it('is exact at the top of the uint64 range', () => {
    // The last leaf of a (2^64 - 1)-leaf tree has 63 left siblings on the right border and nothing else;
    // doubles cannot tell 2^64 - 2 from its neighbours, so this only passes with exact arithmetic.
    const maxSize = 2n ** 64n - 1n;
    const leaf = LEAVES[0] as Hash;
    const proof = LEAVES.slice(1, 64);
    const root = proof.reduce((acc, sibling) => refNode(sibling, acc), leaf);
    expect(verifyInclusion(maxSize - 1n, maxSize, leaf, proof, root)).toBe(true);
    expect(verifyInclusion(maxSize - 2n, maxSize, leaf, proof, root)).toBe(false);
    expect(verifyInclusion(maxSize - 1n, maxSize - 1n, leaf, proof, root)).toBe(false);
    expect(verifyInclusion(maxSize, maxSize, leaf, proof, root)).toBe(false);
    expect(verifyInclusion(2 ** 64 - 2 ** 11, 2 ** 64, leaf, proof, root)).toBe(false);
    expect(verifyConsistency(maxSize - 1n, maxSize, leaf, root, LEAVES.slice(0, 64))).toBe(false);
  });

  it('takes integral doubles above 2^53 at their exact value', () => {
    // A tree of 2^62 + 1024 leaves is a perfect 2^62 half plus a perfect 1024 part; leaf 2^62 opens the
    // latter, so its path is 10 right siblings inside that part and then the left half. Both sizes are
    // exactly representable doubles.
    const [index, size] = [2 ** 62, 2 ** 62 + 1024];
    const leaf = LEAVES[0] as Hash;
    const right = LEAVES.slice(1, 11);
    const leftHalf = LEAVES[11] as Hash;
    const root = refNode(
      leftHalf,
      right.reduce((acc, sibling) => refNode(acc, sibling), leaf),
    );
    const proof = [...right, leftHalf];
    expect(verifyInclusion(index, size, leaf, proof, root)).toBe(true);
    expect(verifyInclusion(BigInt(index), BigInt(size), leaf, proof, root)).toBe(true);
    expect(verifyInclusion(BigInt(index) + 1n, BigInt(size), leaf, proof, root)).toBe(false);
    expect(verifyInclusion(index, size + 1024, leaf, proof, root)).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------------------
// 4. The RFC 6962 example tree (as used by Certificate Transparency implementations).
// ---------------------------------------------------------------------------------------------------------

describe('RFC 6962 test tree', () => {
  const inputs = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
  const leaves = inputs.map((s) => hashLeaf(fromHex(s)));
  const roots = [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
    '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
    'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
    '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
  ];

  it('has the published roots for the first 1 and all 8 leaves', () => {
    expect(hex(refMth(leaves.slice(0, 1)))).toBe('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
    expect(hex(refMth(leaves))).toBe('5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328');
  });

  it('CompactTree reproduces every intermediate root', () => {
    const tree = new CompactTree();
    leaves.forEach((leaf, i) => {
      tree.append(leaf);
      expect(hex(tree.root()), `size ${i + 1}`).toBe(roots[i]);
    });
  });
});
