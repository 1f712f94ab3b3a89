/** An append refused before anything was written: unknown kind, invalid header field or payload, oversized entry. */
export class EntryValidationError extends Error {
  readonly code: 'UNKNOWN_KIND' | 'INVALID_ENTRY' | 'INVALID_PAYLOAD' | 'ENTRY_TOO_LARGE' | 'INTERNAL_KIND' | 'ERASURE_UNAUTHENTICATED';
  /** Human-readable problems, each naming the field it is about. */
  readonly issues: readonly string[];
  constructor(code: EntryValidationError['code'], message: string, issues: readonly string[] = [], options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EntryValidationError';
    this.code = code;
    this.issues = issues;
  }
}
