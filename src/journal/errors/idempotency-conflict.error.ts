/** The idempotency key is already in the journal with different content: a retry that is not a retry. */
export class IdempotencyConflictError extends Error {
  readonly code = 'IDEMPOTENCY_CONFLICT';
  constructor(
    readonly idempotencyKey: string,
    readonly existingSeq: number,
    readonly differingFields: readonly string[],
  ) {
    super(`idempotency key is already used by entry seq ${existingSeq} with a different ${differingFields.join(', ')}`);
    this.name = 'IdempotencyConflictError';
  }
}
