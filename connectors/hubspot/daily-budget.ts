/**
 * HubSpot's daily API limit as this process sees it: the budget the last answer's headers reported
 * (X-HubSpot-RateLimit-Daily / -Daily-Remaining), kept until the day it belongs to ends (midnight in the account's
 * time zone), and spent on a 429 DAILY until HubSpot's reset. Writes stop while fewer calls than the reserve
 * are left: they leave as the pipeline's RateLimitError (limit `daily`), which the crm-batch queue turns into
 * BullMQ's rate limit of the whole queue.
 */
import type { AppendInput } from '../../src/journal/entry.ts';
import { RateLimitError } from '../../src/pipeline/errors/rate-limit.error.ts';
import { dailyBudgetFrom, msUntilDailyReset, type DailyBudget } from './hubspot.http.ts';

/** HubSpot's daily limit is reached (a 429 DAILY, or the tracked budget is down to the reserve); ids only in the message. */
export function dailyLimitError(resetInMs: number): RateLimitError {
  return new RateLimitError(`HubSpot's daily API limit is reached; writes resume in ${Math.ceil(resetInMs / 60_000)} min`, {
    provider: 'hubspot',
    limit: 'daily',
    retryAfterMs: resetInMs,
  });
}

export interface DailyBudgetOptions {
  /** Stop writing when fewer calls than this are left today. */
  readonly reserve: number;
  /** The account's time zone (IANA): the day ends at midnight there. */
  readonly timeZone: string;
  readonly now: () => number;
}

export class DailyBudgetGuard {
  private budget: DailyBudget = { limit: null, remaining: null, observedAt: null, resetsAt: null };

  constructor(private readonly o: DailyBudgetOptions) {}

  current(): DailyBudget {
    return this.budget;
  }

  /** Reads the budget from a call's headers (an answer without them leaves it as it was). */
  observe(headers: Readonly<Record<string, string>>): void {
    const b = dailyBudgetFrom(headers, new Date(this.o.now()).toISOString(), this.o.timeZone);
    if (b) this.budget = b;
  }

  /** Milliseconds until the daily reset: midnight in the account's time zone. */
  msUntilReset(): number {
    return msUntilDailyReset(new Date(this.o.now()), this.o.timeZone);
  }

  /** Throws the daily RateLimitError when a batch of `items` (6 calls per 100 at most) would eat into the reserve. */
  check(items: number): void {
    const now = this.o.now();
    const resetsAt = this.budget.resetsAt === null ? null : Date.parse(this.budget.resetsAt);
    // A budget of a day that has ended says nothing about today: the next answer's headers will tell.
    if (resetsAt !== null && resetsAt <= now) {
      this.budget = { limit: this.budget.limit, remaining: null, observedAt: this.budget.observedAt, resetsAt: null };
      return;
    }
    if (this.budget.remaining !== null && this.budget.remaining < this.o.reserve + Math.ceil(items / 100) * 6) {
      throw dailyLimitError(resetsAt !== null ? Math.max(1000, resetsAt - now) : this.msUntilReset());
    }
  }

  /**
   * The connector.health entry that records a daily pause of `resetInMs` from now (`why`: what HubSpot answered),
   * and when the pause ends. Journal it, then `spend` the budget until then.
   */
  pauseRecord(resetInMs: number, why: string): { health: AppendInput; until: string } {
    const now = this.o.now();
    const day = new Date(now).toISOString().slice(0, 10);
    const until = new Date(now + resetInMs).toISOString();
    return {
      until,
      health: {
        kind: 'connector.health',
        source: 'hubspot',
        actor: 'crm:hubspot',
        correlationId: 'crm/health',
        // One record per pause: a second daily limit on the same day is another event, not a conflicting copy.
        idempotencyKey: `crm/health/daily/${day}/${until}`,
        payload: {
          connector: 'hubspot',
          status: 'degraded',
          reason: `${why}: writes pause until ${until} (the daily reset: midnight ${this.o.timeZone}, the account time zone HUBSPOT_TIME_ZONE)`,
          windowStart: new Date(now).toISOString(),
          windowEnd: until,
        },
      },
    };
  }

  /** Spent until HubSpot's reset (Retry-After when it says, else midnight): then the budget is unknown again. */
  spend(until: string, resetInMs: number): RateLimitError {
    this.budget = { ...this.budget, remaining: 0, resetsAt: until };
    return dailyLimitError(resetInMs);
  }
}
