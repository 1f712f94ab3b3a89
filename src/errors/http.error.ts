/**
 * A request refused with an HTTP status, thrown by a handler and turned into the answer by its server's error
 * handler: the journal service answers `{ error: { code, message, issues? } }`, the audit UI and API answer
 * `{ error: message }` (or an HTML page). A leaf module: it imports nothing, so every layer may throw it.
 */
export class HttpError extends Error {
  constructor(
    /** The HTTP status of the answer (4xx: the request is at fault; 5xx: the server is). */
    readonly status: number,
    /** A stable, machine-readable name of the refusal (e.g. `NOT_FOUND`, `BAD_QUERY`). */
    readonly code: string,
    message: string,
    /** Human-readable problems, each naming the field it is about. */
    readonly issues?: readonly string[],
  ) {
    super(message);
    this.name = 'HttpError';
  }
}
