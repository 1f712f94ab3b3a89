import type { ArchiveStoreFailure } from '../archive-store.ts';

/** An archive store operation failed; `reason` says how (see ArchiveStoreFailure). */
export class ArchiveStoreError extends Error {
  readonly code = 'ARCHIVE_STORE';
  readonly reason: ArchiveStoreFailure;
  constructor(message: string, options?: { cause?: unknown; reason?: ArchiveStoreFailure }) {
    super(message, options);
    this.name = 'ArchiveStoreError';
    this.reason = options?.reason ?? 'invalid';
  }
}
