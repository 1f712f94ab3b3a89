/** A proof that cannot be made: no checkpoint yet, an entry not yet covered, sizes out of range. */
export class ProofUnavailableError extends Error {
  readonly code = 'PROOF_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProofUnavailableError';
  }
}
