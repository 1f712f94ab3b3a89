/** The journal service refused a request (4xx: do not retry) or could not be reached (retryable). */
export class JournalRequestError extends Error {
  readonly issues: readonly string[] | undefined;
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown; issues?: readonly string[] | undefined },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'JournalRequestError';
    this.issues = options?.issues;
  }
}
