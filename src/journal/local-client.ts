/**
 * A JournalClient in the journal service's own process (and for tools run while the service is down):
 * appends go to the writer, reads to a read-only connection.
 */
import type { AppendInput, JournalEntry } from './entry.ts';
import type { JournalClient } from './journal-client.ts';
import type { JournalReader, KindQuery } from './reader.ts';
import type { AppendResult, JournalWriter } from './writer.ts';

export class LocalJournalClient implements JournalClient {
  constructor(
    private readonly writer: JournalWriter,
    private readonly reader: JournalReader,
  ) {}

  append(input: AppendInput): Promise<AppendResult> {
    return this.writer.append(input);
  }
  appendBatch(inputs: readonly AppendInput[]): Promise<AppendResult[]> {
    return this.writer.appendBatch(inputs);
  }
  appendReceived(input: unknown): Promise<AppendResult> {
    return this.writer.appendReceived(input);
  }
  bySeq(seq: number): Promise<JournalEntry | null> {
    return Promise.resolve(this.reader.bySeq(seq));
  }
  range(fromSeq: number, limit: number): Promise<JournalEntry[]> {
    return Promise.resolve(this.reader.range(fromSeq, limit));
  }
  byCorrelation(correlationId: string): Promise<JournalEntry[]> {
    return Promise.resolve(this.reader.byCorrelation(correlationId));
  }
  byKind(query: KindQuery): Promise<JournalEntry[]> {
    return Promise.resolve(this.reader.byKind(query));
  }
  byIdempotencyKey(key: string): Promise<JournalEntry | null> {
    return Promise.resolve(this.reader.byIdempotencyKey(key));
  }
  async close(): Promise<void> {
    this.reader.close();
    await this.writer.close();
  }
}
