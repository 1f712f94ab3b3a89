/** A sealed payload field does not authenticate (altered ciphertext, tag, iv or key list) or is malformed. */
export class SealedPayloadError extends Error {
  readonly code = 'SEALED_PAYLOAD';

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SealedPayloadError';
  }
}
