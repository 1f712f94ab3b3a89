/**
 * The master key that protects secrets at rest (OAuth tokens, subject keys) is missing, malformed, or is not
 * the key the data was written with. `reason` carries the decision; the message says what to do.
 */
export class MasterKeyError extends Error {
  readonly code = 'MASTER_KEY';

  constructor(
    readonly reason: 'MISSING' | 'MALFORMED' | 'WRONG_KEY' | 'TAMPERED',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'MasterKeyError';
  }
}
