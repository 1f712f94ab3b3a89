/** A stage ran past its deadline; the job is retried (its appends are idempotent). */
export class StageTimeoutError extends Error {
  readonly code = 'STAGE_TIMEOUT';
  constructor(
    readonly stage: string,
    readonly timeoutMs: number,
  ) {
    super(`the ${stage} stage did not finish within ${timeoutMs} ms`);
    this.name = 'StageTimeoutError';
  }
}
