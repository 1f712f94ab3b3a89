/** The configuration is invalid: every problem at once, each naming its variable (never a secret's value). */
export class ConfigError extends Error {
  readonly code = 'CONFIG';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}\nSee .env.example for every variable.`);
    this.name = 'ConfigError';
  }
}
