/**
 * The audit read index the configuration names (AUDIT_INDEX_PATH), with its contact key: the one place that
 * opens it for the web process, the audit commands and `forget`, so they all key contacts alike.
 *
 * The contact key is the key store's subject-hash key (a contact is indexed under the same keyed hash that names
 * the subject in the key store, in envelopes and in privacy.erased): no second secret, and an erasure names the
 * rows to drop. A journal that has no key store yet (nothing was ever sealed) gets a key derived from the master
 * key under its own label, the master key created as `npm start` would. The index records which key it was built
 * under (a keyed check value) and rebuilds itself when that changes, e.g. once the key store comes into being.
 */
import type { Config } from '../config/config.ts';
import { loadMasterKey } from '../journal/master-key.ts';
import type { Privacy } from '../journal/privacy.ts';
import { keyedContactHasher, ReadIndex, type ContactHasher, type IndexLimits } from './read-index.ts';

/** The purpose label of the index key derived from the master key (used only while there is no key store). */
export const INDEX_KEY_PURPOSE = 'audit-index/contact-hash';

/** How the configured index keys contacts: the key store's subject hash, else an HMAC under a master-key-derived key. */
export function configuredContactHasher(config: Config, privacy: Privacy | null | (() => Privacy | null)): ContactHasher {
  const current = typeof privacy === 'function' ? privacy : () => privacy;
  let fallback: ContactHasher | null = null;
  // Asked on every use: a reader that attaches the key store later (a fresh install) hashes under it from then
  // on, and the index sees the key change (its check value) and rebuilds.
  return (address) => {
    const keys = current()?.openedKeys ?? null;
    if (keys) return keys.subjectHash(address);
    fallback ??= keyedContactHasher(loadMasterKey(config.privacy, { create: true }).key.derive(INDEX_KEY_PURPOSE));
    return fallback(address);
  };
}

/**
 * Opens (creating) the configured read index. `privacy` is the layer the caller reads the journal through
 * (`reader.attachedPrivacy`) or forgets with.
 */
export function openConfiguredIndex(config: Config, privacy: Privacy | null | (() => Privacy | null), limits: IndexLimits = {}): ReadIndex {
  const current = typeof privacy === 'function' ? privacy : () => privacy;
  // Without a key store there is nothing an erasure could name, and nothing to check one with.
  const erasureAuthentic: IndexLimits['erasureAuthentic'] = (p) => current()?.openedKeys?.erasureAuthentic(p) ?? true;
  return ReadIndex.open(config.audit.indexPath, configuredContactHasher(config, current), { erasureAuthentic, ...limits });
}
