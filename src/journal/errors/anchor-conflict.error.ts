/** Thrown when an anchor already holds a different checkpoint or key for the same slot: evidence of a fork, never to be overwritten. */
export class AnchorConflictError extends Error {
  readonly code = 'ANCHOR_CONFLICT';

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'AnchorConflictError';
  }
}
