/**
 * Our retry policy for HubSpot calls (the SDK's own is off), in one place:
 * - every call goes through the request gate shared by every worker (the gate of the crm-batch job running it,
 *   else the adapter's own);
 * - a 429 TEN_SECONDLY_ROLLING pauses every sender at once (the gate's halt), is journaled, and is retried;
 * - a 429 DAILY spends the daily budget until HubSpot's reset, journals connector.health, and throws the
 *   pipeline's RateLimitError (limit `daily`);
 * - a 5xx or network failure of an idempotent call backs off and retries, then throws; a create is never sent
 *   twice here (its caller searches for it first on the next attempt).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { JournalClient } from '../../src/journal/journal-client.ts';
import type { Logger } from '../../src/config/logger.ts';
import type { RequestGate } from '../../src/pipeline/ports.ts';
import { HubSpotCallError } from './errors/hubspot-call.error.ts';
import { call, type CallRecord } from './hubspot.http.ts';
import type { DailyBudgetGuard } from './daily-budget.ts';
import { callEntry } from './journal-entries.ts';

export interface CallPolicyOptions {
  readonly journal: JournalClient;
  readonly log: Logger;
  readonly budget: DailyBudgetGuard;
  /** The gate of calls made outside a `paced` run. */
  readonly gate?: RequestGate | undefined;
  /** Tries for a 5xx / network failure before the error is thrown. */
  readonly serverRetries: number;
  readonly backoffMs: number;
  readonly now: () => number;
  /** Told of every call (success or failure), after the budget has read its headers. */
  readonly onCall: (record: CallRecord) => void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class CallPolicy {
  private readonly gateOfCall = new AsyncLocalStorage<RequestGate>();

  constructor(private readonly o: CallPolicyOptions) {}

  /** Runs `run` with its calls paced by `gate` (a crm-batch job's), or the default gate without one. */
  paced<T>(gate: RequestGate | undefined, run: () => Promise<T>): Promise<T> {
    return gate ? this.gateOfCall.run(gate, run) : run();
  }

  /** One call under our policy: through the shared gate; 429 secondly → pause everyone and retry; 5xx → back off. */
  async send<T>(
    method: CallRecord['method'],
    path: string,
    run: () => Promise<{ httpStatusCode: number; headers: unknown; data: T }>,
    idempotent = true,
  ): Promise<{ data: T; record: CallRecord }> {
    const retries = this.o.serverRetries;
    let serverFailures = 0;
    let rateLimited = 0;
    const gate = this.gateOfCall.getStore() ?? this.o.gate;
    for (;;) {
      await gate?.acquire();
      try {
        return await call(
          {
            now: this.o.now,
            onCall: (r, h) => {
              this.o.budget.observe(h);
              this.o.onCall(r);
            },
          },
          method,
          path,
          run,
        );
      } catch (err) {
        if (!(err instanceof HubSpotCallError)) throw err;
        if (err.kind === 'rate-limit-secondly' && rateLimited < 20) {
          rateLimited++;
          const wait = err.retryAfterMs ?? 1000;
          this.o.log.warn(
            { path, waitMs: wait, correlationId: err.record.correlationId },
            'HubSpot TEN_SECONDLY_ROLLING limit: pausing the queue, then retrying',
          );
          // Pause first (every worker stops sending at once), then record: the journal append takes time that
          // other senders would otherwise spend on requests HubSpot refuses.
          const resumeAt = this.o.now() + wait;
          await gate?.halt(wait);
          await this.o.journal.append(callEntry('crm/rate-limit', err.record, { purpose: 'rate-limited' }, err.message, true));
          await sleep(Math.max(0, resumeAt - this.o.now()));
          continue;
        }
        if (err.kind === 'rate-limit-daily') {
          // Retry-After when HubSpot sends one; else the daily reset, midnight in the account's time zone.
          const resetInMs = err.retryAfterMs ?? this.o.budget.msUntilReset();
          await gate?.halt(resetInMs);
          await this.o.journal.append(callEntry('crm/rate-limit', err.record, { purpose: 'rate-limited' }, err.message, true));
          const why =
            err.retryAfterMs === null
              ? `HubSpot answered 429 DAILY without Retry-After`
              : `HubSpot answered 429 DAILY with Retry-After ${Math.round(err.retryAfterMs / 1000)} s`;
          const { health, until } = this.o.budget.pauseRecord(resetInMs, why);
          await this.o.journal.append(health);
          throw this.o.budget.spend(until, resetInMs);
        }
        // A create that failed on the way back (5xx, no answer) may have happened: it is not sent again here; the
        // next attempt searches for it first (writeBySearch). A 429 is refused before anything is written.
        if ((err.kind === 'server' || err.kind === 'network') && idempotent && serverFailures + 1 < retries) {
          serverFailures++;
          const wait = this.o.backoffMs * 2 ** (serverFailures - 1) * (0.75 + Math.random() / 2);
          this.o.log.warn(
            { path, status: err.record.status, attempt: serverFailures, waitMs: Math.round(wait) },
            'HubSpot server error: backing off',
          );
          await this.o.journal.append(callEntry('crm/server-errors', err.record, { purpose: 'server-error' }, err.message, true));
          await sleep(wait);
          continue;
        }
        throw err;
      }
    }
  }
}
