/** The retention policy file cannot be read, does not parse, or is not a valid policy. */
export class RetentionPolicyError extends Error {
  readonly code = 'RETENTION_POLICY';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RetentionPolicyError';
  }
}
