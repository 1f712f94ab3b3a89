import type { Config } from '../config/config.ts';

/** Where downloaded archived segments are kept (decompressed, read-only use). Apart from archive.ts: using it loads no archive store client. */
export function archiveCacheDir(config: Config): string {
  return `${config.journal.path}.archive-cache`;
}
