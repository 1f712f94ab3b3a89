/** A webhook body over the limit, measured and hashed while it was drained (up to a cap). */
export class BodyTooLargeError extends Error {
  /** The HTTP status of the refusal (fastify reads `statusCode` off the errors it is handed). */
  readonly statusCode = 413;
  constructor(
    readonly sizeBytes: number,
    readonly sha256: string,
    /** True when the sender sent more than the drain cap: size and hash then cover the first sizeBytes bytes. */
    readonly truncated: boolean,
  ) {
    super('the body is over the limit');
    this.name = 'BodyTooLargeError';
  }
}
