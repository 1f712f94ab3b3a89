/** A job that can never succeed (malformed payload, missing entry, unknown source): do not retry it. */
export class PermanentJobError extends Error {
  readonly code = 'PERMANENT';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentJobError';
  }
}
