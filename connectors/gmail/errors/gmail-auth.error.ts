/**
 * Permanent: the mailbox's grant is gone (revoked, expired or never given). Retrying cannot help; the inbox
 * needs consent again.
 */
export class GmailAuthError extends Error {
  override readonly name = 'GmailAuthError';
  readonly code = 'GMAIL_AUTH' as const;
  readonly permanent = true;
  /** HTTP status of the failed call, when there was one. */
  readonly status: number | undefined;

  constructor(message: string, options: { cause?: unknown; status?: number } = {}) {
    super(message, { cause: options.cause });
    this.status = options.status;
  }
}
