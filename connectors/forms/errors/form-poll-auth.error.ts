/**
 * Permanent: the form provider refused our credential (HubSpot 401/403, Google invalid_grant). Retrying cannot
 * help; the form needs a new token or consent, and the poll is marked so until it gets one.
 */
export class FormPollAuthError extends Error {
  override readonly name = 'FormPollAuthError';
  readonly code = 'FORM_POLL_AUTH' as const;
  readonly permanent = true;
  readonly status: number | undefined;

  constructor(message: string, options: { cause?: unknown; status?: number } = {}) {
    super(message, { cause: options.cause });
    this.status = options.status;
  }
}
