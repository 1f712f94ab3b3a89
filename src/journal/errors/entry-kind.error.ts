/** An entry read as one kind is of another (a caller asked payloadOf for the wrong kind). */
export class EntryKindError extends Error {
  readonly code = 'WRONG_KIND';

  constructor(
    readonly expected: readonly string[],
    readonly actual: string,
    readonly entryId: string,
  ) {
    super(`entry ${entryId} is a ${actual}, not ${expected.length === 1 ? `a ${expected[0] ?? ''}` : `one of ${expected.join(', ')}`}`);
    this.name = 'EntryKindError';
  }
}
