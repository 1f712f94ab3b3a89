/**
 * Whether an error is the journal refusing an entry's content (locally or through the service), as opposed to
 * failing to write it. A refusal is permanent: the same entry will be refused again, so a webhook answers it
 * with a 4xx and a job fails at once with the reason on the record, instead of being retried.
 */
import { EntryValidationError } from './entry-validation.error.ts';
import { IdempotencyConflictError } from './idempotency-conflict.error.ts';
import { JournalRequestError } from './journal-request.error.ts';

/** The refusal's code (e.g. INVALID_PAYLOAD, ENTRY_TOO_LARGE, IDEMPOTENCY_CONFLICT), or null when it is not one. */
export function journalRefusal(err: unknown): string | null {
  if (err instanceof EntryValidationError) return err.code;
  if (err instanceof IdempotencyConflictError) return 'IDEMPOTENCY_CONFLICT';
  if (err instanceof JournalRequestError && err.status >= 400 && err.status < 500 && !err.retryable) return err.code;
  return null;
}
