/** The journal file cannot be used as it is: not a journal, too new, locked by another writer, or unreadable. */
export class JournalFileError extends Error {
  readonly code: 'NOT_A_JOURNAL' | 'SCHEMA_TOO_NEW' | 'EMPTY' | 'LOCKED' | 'UNREADABLE' | 'KEY_MISMATCH';
  constructor(code: JournalFileError['code'], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'JournalFileError';
    this.code = code;
  }
}
