/**
 * The privacy layer the settings name: the master key (environment or file) and the subject key store
 * with its backup. Writers create what is missing on first use; readers only open what is there.
 */
import type { PrivacySettings } from './settings.ts';
import { openKeyStoreForCheck, Privacy } from './privacy.ts';
import type { JournalReader } from './reader.ts';

/** For processes that append: creates the master key file and the key store when they do not exist yet. */
export function openWriterPrivacy(config: { readonly privacy: PrivacySettings }): Privacy {
  return Privacy.open(config.privacy, { create: true });
}

/**
 * Makes `reader` open sealed payloads, when there is a key store to open them with (a journal that never
 * sealed anything has none). A wrong master key throws (MasterKeyError): nothing is decrypted with it.
 */
export function attachConfiguredPrivacy(reader: JournalReader, config: { readonly privacy: PrivacySettings }): JournalReader {
  const privacy = openKeyStoreForCheck(config.privacy);
  if (privacy) reader.attachPrivacy(privacy, { owned: true });
  // None yet: the first personal payload creates it, and the reader opens it then (a web process started on a
  // fresh install showed every interaction without subject, summary or category until restarted).
  else reader.attachPrivacyWhenPresent(() => openKeyStoreForCheck(config.privacy));
  return reader;
}
