/**
 * What the journal needs from the application's configuration, declared here so that the journal depends on no
 * module above it: the application's `Config` (src/config/config.ts) satisfies these shapes, and a test, a bench
 * or another host can build them without it.
 */
import type { MasterKeySource } from './master-key.ts';

/** Where the journal service listens: a loopback host and port, or a Unix socket. */
export type Listen =
  { readonly kind: 'tcp'; readonly host: string; readonly port: number } | { readonly kind: 'unix'; readonly path: string };

/** The anchors a deployment names: directories (the embedded default is created on demand) and HTTP anchors. */
export interface AnchorSettings {
  readonly anchorDirs: readonly string[];
  /** True when the anchor directory is the embedded default (created on demand); configured ones must already exist. */
  readonly createAnchorDirs: boolean;
  readonly anchorUrls: readonly string[];
  readonly anchorToken: string | undefined;
}

/** The master key and the per-subject key store with its backup. */
export interface PrivacySettings extends MasterKeySource {
  readonly keyStorePath: string;
  readonly keyStoreBackupPath: string;
}

/** The journal file, its keys, limits, checkpoint cadence, anchors and retention policy. */
export interface JournalSettings extends AnchorSettings {
  readonly path: string;
  readonly keysDir: string;
  readonly maxPayloadBytes: number;
  readonly checkpointEveryEntries: number;
  readonly checkpointEveryMs: number;
  /** The retention policy file. */
  readonly retentionPath: string;
}

/** The journal service's address and (optionally configured) tokens. */
export interface ServiceSettings {
  readonly listen: Listen;
  readonly appendToken: string | undefined;
  readonly readToken: string | undefined;
}

/** Everything the journal service process needs. */
export interface JournalServiceSettings {
  readonly journal: JournalSettings;
  readonly service: ServiceSettings;
  readonly privacy: PrivacySettings;
}
