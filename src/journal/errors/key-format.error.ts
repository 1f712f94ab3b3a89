/** Thrown when a key name, verifier key, key file or secret file is not in the expected format. */
export class KeyFormatError extends Error {
  readonly code = 'KEY_FORMAT';

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'KeyFormatError';
  }
}
