/** Options of {@link AnchorPublishError}: the HTTP status if a response arrived, and whether trying again later may succeed. */
export interface AnchorPublishErrorOptions extends ErrorOptions {
  readonly status?: number | undefined;
  readonly retryable: boolean;
}

/** Thrown when a checkpoint could not be published to an anchor; `retryable` says whether a later attempt may succeed. */
export class AnchorPublishError extends Error {
  readonly code = 'ANCHOR_PUBLISH';
  /** HTTP status of the anchor's answer; undefined when no answer arrived (network error, timeout, local I/O). */
  readonly status: number | undefined;
  readonly retryable: boolean;

  constructor(message: string, options: AnchorPublishErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AnchorPublishError';
    this.status = options.status;
    this.retryable = options.retryable;
  }
}
