/**
 * The port every other part of the product uses to reach the journal: append and read, nothing else.
 * There is deliberately no update or delete.
 */
import type { AppendInput, JournalEntry } from './entry.ts';
import type { AppendResult } from './writer.ts';
import type { KindQuery } from './reader.ts';

export interface JournalClient {
  /** Appends one entry; returns the existing entry (duplicate: true) when its idempotency key was already appended. */
  append(input: AppendInput): Promise<AppendResult>;
  /** Appends entries atomically: all of them, or none. */
  appendBatch(inputs: readonly AppendInput[]): Promise<AppendResult[]>;
  /**
   * Appends one entry as it arrived from outside the program (a line of a file, a request body): untyped, and
   * validated by the journal like every append. Code that builds its entries uses `append`, which the types check.
   */
  appendReceived(input: unknown): Promise<AppendResult>;
  /** One entry, or null when there is none at that seq. */
  bySeq(seq: number): Promise<JournalEntry | null>;
  /** Entries from `fromSeq` on, in order. */
  range(fromSeq: number, limit: number): Promise<JournalEntry[]>;
  /** The entries of one correlation, in order. */
  byCorrelation(correlationId: string): Promise<JournalEntry[]>;
  byKind(query: KindQuery): Promise<JournalEntry[]>;
  byIdempotencyKey(key: string): Promise<JournalEntry | null>;
  close(): Promise<void>;
}
