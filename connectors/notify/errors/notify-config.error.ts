/** A notification variable is set but unusable (not a URL, not https…); the message names the variable, never its value. */
export class NotifyConfigError extends Error {
  readonly code = 'INVALID_NOTIFY_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'NotifyConfigError';
  }
}
