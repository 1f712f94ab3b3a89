/**
 * Offline checking of an inclusion-proof bundle (as written by `activity-journal prove`): the entry header
 * hashes to the leaf, the leaf is in the tree whose root the checkpoint signs, and the checkpoint's signature
 * is good under the pinned key (or, failing that, the key the bundle names).
 */
import { createHash } from 'node:crypto';
import { canonicalize } from './canonical.ts';
import { canonicalHeader, type EntryHeader } from './entry.ts';
import { hashLeaf, verifyInclusion } from './merkle.ts';
import { parseVerifierKey, type Verifier } from './keys.ts';
import { verifySignedCheckpoint } from './checkpoint.ts';

export interface ProofCheck {
  readonly ok: boolean;
  readonly reason: string | null;
  readonly seq: number | null;
  readonly treeSize: number | null;
  /** Which key the signature was checked against, and whether it was pinned by the caller. */
  readonly verifierKey: string | null;
  readonly keyPinned: boolean;
}

export function checkInclusionBundle(bundle: unknown, pinned: Verifier | null): ProofCheck {
  const result = (ok: boolean, reason: string | null, extra: Partial<ProofCheck> = {}): ProofCheck => ({
    ok,
    reason,
    seq: null,
    treeSize: null,
    verifierKey: pinned?.verifierKey ?? null,
    keyPinned: pinned !== null,
    ...extra,
  });
  if (typeof bundle !== 'object' || bundle === null) return result(false, 'not a proof bundle');
  const b = bundle as Record<string, unknown>;
  if (b.format !== 'activity-journal/inclusion-proof/v1') return result(false, `unknown proof format ${JSON.stringify(b.format)}`);
  const { seq, treeSize, header, leafHash, proof, checkpoint, verifierKey } = b;
  if (
    typeof seq !== 'number' ||
    typeof treeSize !== 'number' ||
    typeof header !== 'object' ||
    header === null ||
    typeof leafHash !== 'string' ||
    !Array.isArray(proof) ||
    typeof checkpoint !== 'string'
  ) {
    return result(false, 'the bundle is missing fields (seq, treeSize, header, leafHash, proof, checkpoint)');
  }
  const extra = { seq, treeSize };
  let verifier = pinned;
  if (verifier === null) {
    if (typeof verifierKey !== 'string') return result(false, 'no key to check the checkpoint with: pass --public-key', extra);
    try {
      verifier = parseVerifierKey(verifierKey);
    } catch (err) {
      return result(false, `the bundle's verifier key is malformed: ${(err as Error).message}`, extra);
    }
  }
  const withKey = { ...extra, verifierKey: verifier.verifierKey };
  const cp = verifySignedCheckpoint(checkpoint, verifier);
  if (cp === null) return result(false, 'the checkpoint signature does not verify under the key', withKey);
  if (cp.treeSize !== treeSize) return result(false, `the checkpoint covers ${cp.treeSize} entries, the proof claims ${treeSize}`, withKey);
  const h = header as EntryHeader;
  if (h.seq !== seq) return result(false, 'the header seq differs from the proof seq', withKey);
  let leaf: Uint8Array;
  try {
    leaf = hashLeaf(Buffer.from(canonicalHeader(h), 'utf8'));
  } catch (err) {
    return result(false, `the header cannot be encoded: ${(err as Error).message}`, withKey);
  }
  if (Buffer.from(leaf).toString('base64') !== leafHash) return result(false, 'the header does not hash to the leaf hash', withKey);
  if ('payload' in b) {
    const payloadHash = createHash('sha256').update(canonicalize(b.payload), 'utf8').digest('hex');
    if (payloadHash !== h.payloadHash) return result(false, "the payload does not match the header's payloadHash", withKey);
  }
  const path = proof.map((p) => (typeof p === 'string' ? Buffer.from(p, 'base64') : new Uint8Array()));
  if (!verifyInclusion(seq, treeSize, leaf, path, cp.rootHash))
    return result(false, 'the inclusion proof does not lead to the signed root', withKey);
  return result(true, null, withKey);
}
