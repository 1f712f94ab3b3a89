/**
 * Gmail's per-user quota in units (messages.get 5, messages.list 5, history.list 2, getProfile 1), spent from a
 * token bucket that refills continuously, so a backfill paces itself instead of running into 429s.
 */
export const GMAIL_UNITS = { get: 5, list: 5, history: 2, profile: 1 } as const;

export class QuotaBucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly unitsPerMinute: number,
    private readonly now: () => number = Date.now,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {
    this.tokens = unitsPerMinute;
    this.last = now();
  }

  /** Waits until `units` can be spent, then spends them. */
  async take(units: number): Promise<void> {
    for (;;) {
      const t = this.now();
      this.tokens = Math.min(this.unitsPerMinute, this.tokens + ((t - this.last) * this.unitsPerMinute) / 60_000);
      this.last = t;
      if (this.tokens >= units) {
        this.tokens -= units;
        return;
      }
      await this.sleep(Math.ceil(((units - this.tokens) * 60_000) / this.unitsPerMinute));
    }
  }
}
