/**
 * The per-subject key store cannot be used as asked: it is missing (while its backup or the journal says it
 * should exist), its backup could not be kept in step, a restore was refused, or a read-only store was asked
 * to change. `reason` carries the decision.
 */
export class KeyStoreError extends Error {
  readonly code = 'KEY_STORE';

  constructor(
    readonly reason: 'MISSING' | 'BACKUP_FAILED' | 'NOT_A_KEY_STORE' | 'RESTORE_REFUSED' | 'READ_ONLY',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'KeyStoreError';
  }
}
