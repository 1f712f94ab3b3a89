/** A value that has no RFC 8785 canonical form (NaN, a lone surrogate, a Date, a cycle...). */
export class CanonicalEncodingError extends Error {
  readonly code = 'CANONICAL_ENCODING';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CanonicalEncodingError';
  }
}
