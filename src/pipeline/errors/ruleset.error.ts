/** The rules file cannot be read or is not a valid ruleset (every problem listed, each with its path). */
export class RulesetError extends Error {
  readonly code = 'INVALID_RULESET';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RulesetError';
  }
}
