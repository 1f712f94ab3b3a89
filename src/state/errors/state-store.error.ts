/** The encrypted state store could not be read or written (a wrong key, a damaged file, a failed write). */
export class StateStoreError extends Error {
  readonly code = 'STATE_STORE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StateStoreError';
  }
}
