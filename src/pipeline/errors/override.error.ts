/** Why an override was refused; the code says what the caller can do about it. */
export type OverrideErrorCode = 'NOT_FOUND' | 'NOT_A_DECISION' | 'UNCHANGED' | 'INVALID';

export class OverrideError extends Error {
  override readonly name = 'OverrideError';
  constructor(
    readonly code: OverrideErrorCode,
    message: string,
  ) {
    super(message);
  }
}
