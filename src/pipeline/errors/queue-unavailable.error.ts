/**
 * The queues' Redis did not take a command in time (down, unreachable or hung). What was journaled before stays
 * journaled; the caller answers 503 with Retry-After (a provider retries, and the lost-job re-drive picks the
 * journaled interaction up once Redis answers again).
 */
export class QueueUnavailableError extends Error {
  readonly code = 'QUEUE_UNAVAILABLE';
  readonly statusCode = 503;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'QueueUnavailableError';
  }
}
