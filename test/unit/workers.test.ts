/**
 * What a worker does with one job (jobs/process-job.ts), without Redis: plain job objects, the pipeline's real
 * stages over a real local journal (test/helpers/stages.ts), and handlers written here for the other queues.
 * A malformed payload, a permanent error and a journal refusal fail at once with a `job.failed` entry; the last
 * attempt's failure is journaled and handed back for BullMQ to record; an earlier one is handed back to be
 * retried; a stage past its deadline is aborted.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { UnrecoverableError } from 'bullmq';
import { tempDir } from '../helpers/tmp.ts';
import { email, stageHarness, type StageHarness } from '../helpers/stages.ts';
import { jobHandlers, processJob, type OtherHandlers } from '../../jobs/process-job.ts';
import { JOBS, type JobData, type JobRef, type QueueName } from '../../src/pipeline/job-catalog.ts';
import { StageTimeoutError } from '../../src/pipeline/errors/stage-timeout.error.ts';
import type { ActivitySource } from '../../src/pipeline/ports.ts';
import type { JournalEntry } from '../../src/journal/entry.ts';

/** A source that has the items named, and no others. */
const sourceOf = (...ids: string[]): ActivitySource => ({
  name: 'gmail',
  fetch: (sourceId) => Promise.resolve(ids.includes(sourceId) ? email(sourceId) : null),
});

let tmp: { dir: string; cleanup: () => void };
let h: StageHarness;
beforeEach(async () => {
  tmp = tempDir('aj-workers-');
  h = await stageHarness(tmp.dir, { sources: new Map([['gmail', sourceOf('m-1')]]) });
});
afterEach(async () => {
  vi.useRealTimers();
  await h.close();
  tmp.cleanup();
});

/** A job as BullMQ hands it to the processor: `attemptsMade` tries before this one, of `attempts`. */
const jobOf = (name: QueueName, data: unknown, o: { id?: string; attemptsMade?: number; attempts?: number } = {}): JobRef => ({
  id: o.id ?? `${name}-job-1`,
  name,
  data,
  attemptsMade: o.attemptsMade ?? 0,
  opts: { attempts: o.attempts ?? JOBS[name].attempts },
});

const SYNC: JobData<'sync-inbox'> = { connector: 'gmail', mailbox: 'sales@northwind-analytics.example' };
const ENTRY_ID = '0b6f3c52-4f0e-4d0b-9a57-1f2a3b4c5d6e';

/** The job.failed entries in the journal. */
const failures = async (): Promise<JournalEntry[]> => (await h.entries()).filter((e) => e.kind === 'job.failed');

/** The rejection of a promise that must reject. */
async function rejectionOf(work: Promise<unknown>): Promise<Error> {
  try {
    await work;
  } catch (err) {
    if (err instanceof Error) return err;
    throw new Error(`rejected with a non-Error: ${String(err)}`);
  }
  throw new Error('resolved, but a rejection was expected');
}

/** A handler that records what it was given and answers `result`. */
function recording<Q extends QueueName>(result: unknown = { done: true }) {
  const calls: { data: JobData<Q>; signal: AbortSignal; job: JobRef }[] = [];
  const handler = (data: JobData<Q>, signal: AbortSignal, job: JobRef): Promise<unknown> => {
    calls.push({ data, signal, job });
    return Promise.resolve(result);
  };
  return { calls, handler };
}

const failing = (err: Error) => (): Promise<unknown> => Promise.reject(err);

const run = <Q extends QueueName>(queue: Q, job: JobRef, given: OtherHandlers = {}, timeoutMs?: number): Promise<unknown> =>
  processJob(queue, job, { handlers: jobHandlers(h.pipeline, given), journal: h.journal, ...(timeoutMs ? { timeoutMs } : {}) });

describe('dispatch', () => {
  it("hands the handler of the job's queue the payload as the catalog parsed it, the stage's signal and the job, and answers its result", async () => {
    const sync = recording<'sync-inbox'>({ synced: 3 });
    const notify = recording<'notify'>();
    const job = jobOf('sync-inbox', { ...SYNC });
    await expect(run('sync-inbox', job, { 'sync-inbox': sync.handler, notify: notify.handler })).resolves.toEqual({ synced: 3 });
    expect(sync.calls).toHaveLength(1);
    const [call] = sync.calls;
    expect(call?.data).toEqual(SYNC);
    expect(call?.job).toBe(job);
    expect(call?.signal.aborted).toBe(false);
    expect(notify.calls).toHaveLength(0);
    expect(await failures()).toEqual([]);
  });

  it("runs the pipeline's own stages for their queues: ingest journals the item and answers its entry, classify its decision", async () => {
    const ingested = await run('ingest', jobOf('ingest', { source: 'gmail', sourceId: 'm-1' }));
    const received = (await h.entries()).find((e) => e.kind === 'interaction.received');
    expect(ingested).toEqual({ status: 'accepted', entryId: received?.id });
    const [classify] = h.queues.of('classify');
    const classified = await run('classify', jobOf('classify', classify));
    const decision = (await h.entries()).find((e) => e.kind === 'ai.decision');
    expect(classified).toEqual({ decisionEntryId: decision?.id });
  });

  it('fails a job of a queue without a handler in this worker permanently, with the reason journaled', async () => {
    const job = jobOf('notify', {
      entryId: ENTRY_ID,
      seq: 1,
      correlationId: 'corr-1',
      decisionEntryId: ENTRY_ID,
      decisionSeq: 2,
      ruleId: 'billing-to-finance',
      channel: 'email',
    });
    const err = await rejectionOf(run('notify', job, { 'sync-inbox': recording<'sync-inbox'>().handler }));
    expect(err).toBeInstanceOf(UnrecoverableError);
    expect(err.message).toBe('PermanentJobError: no notify handler is configured in this worker (is the connector configured?)');
    const [failed, ...more] = await failures();
    expect(more).toEqual([]);
    expect(failed?.payload).toMatchObject({ queue: 'notify', finality: 'permanent', attempts: 1, entryId: ENTRY_ID });
  });
});

describe('a malformed payload', () => {
  it('fails at once (no retry), before any handler runs, with a job.failed entry that names the fields and not their values', async () => {
    const sync = recording<'sync-inbox'>();
    const job = jobOf(
      'sync-inbox',
      { connector: 'gmail', mailbox: 'ann.example@customer.example'.padEnd(400, 'x'), body: 'Dear Ann, my card is 4111 1111 1111 1111' },
      { id: 'sync-inbox-7' },
    );
    const err = await rejectionOf(run('sync-inbox', job, { 'sync-inbox': sync.handler }));
    expect(err).toBeInstanceOf(UnrecoverableError);
    expect(err.message).toMatch(/^invalid sync-inbox job payload: .*mailbox/);
    expect(err.message).toContain('body');
    expect(sync.calls).toEqual([]);

    const entries = await failures();
    expect(entries).toHaveLength(1);
    const [failed] = entries as [JournalEntry];
    expect(failed).toMatchObject({
      actor: 'worker:sync-inbox',
      correlationId: 'job/sync-inbox/sync-inbox-7',
      idempotencyKey: 'job-failed/sync-inbox/sync-inbox-7',
    });
    expect(failed.payload).toEqual({
      queue: 'sync-inbox',
      jobId: 'sync-inbox-7',
      attempts: 1,
      error: err.message,
      finality: 'invalid-payload',
    });
    const written = JSON.stringify(failed);
    for (const personal of ['ann.example', 'customer.example', 'Dear Ann', '4111']) expect(written).not.toContain(personal);
  });

  it("ties the failure to the job's interaction when the payload names it", async () => {
    const job = jobOf('classify', { entryId: ENTRY_ID, seq: -1, correlationId: 'corr-42' });
    await expect(run('classify', job)).rejects.toBeInstanceOf(UnrecoverableError);
    const [failed] = await failures();
    expect(failed).toMatchObject({ correlationId: 'corr-42', causationId: ENTRY_ID });
    expect(failed?.payload).toMatchObject({
      finality: 'invalid-payload',
      entryId: ENTRY_ID,
      error: expect.stringContaining('seq') as unknown,
    });
  });
});

describe('a permanent error', () => {
  it("a stage's PermanentJobError fails the job at once, attempts left or not, with the reason journaled", async () => {
    const job = jobOf('ingest', { source: 'gmail', sourceId: 'gone' }, { attemptsMade: 0, attempts: 8 });
    const err = await rejectionOf(run('ingest', job));
    expect(err).toBeInstanceOf(UnrecoverableError);
    expect(err.message).toBe('PermanentJobError: gmail no longer has item gone');
    const [failed, ...more] = await failures();
    expect(more).toEqual([]);
    expect(failed?.payload).toEqual({ queue: 'ingest', jobId: 'ingest-job-1', attempts: 1, error: err.message, finality: 'permanent' });
  });

  it('the journal refusing what the stage wrote is as permanent', async () => {
    const refusing: OtherHandlers['sync-inbox'] = () =>
      h.journal.appendReceived({ kind: 'no.such-kind', source: 'gmail', actor: 'x', correlationId: 'c', payload: {} });
    const err = await rejectionOf(
      run('sync-inbox', jobOf('sync-inbox', SYNC, { attemptsMade: 1, attempts: 5 }), { 'sync-inbox': refusing }),
    );
    expect(err).toBeInstanceOf(UnrecoverableError);
    expect(err.message).toMatch(/^EntryValidationError: /);
    const [failed] = await failures();
    expect(failed?.payload).toMatchObject({ finality: 'permanent', attempts: 2 });
  });
});

describe('a retryable error', () => {
  it('is handed back as it is for BullMQ to retry, with nothing journaled, while attempts remain', async () => {
    const down = new Error('HubSpot answered 503');
    const err = await rejectionOf(
      run('sync-inbox', jobOf('sync-inbox', SYNC, { attemptsMade: 3, attempts: 5 }), { 'sync-inbox': failing(down) }),
    );
    expect(err).toBe(down);
    expect(await failures()).toEqual([]);
  });

  it('on the last attempt is journaled as attempts-exhausted and handed back as it is (not made unrecoverable)', async () => {
    const down = new Error('HubSpot answered 503');
    const job = jobOf('sync-inbox', SYNC, { id: 'sync-inbox-9', attemptsMade: 4, attempts: 5 });
    const err = await rejectionOf(run('sync-inbox', job, { 'sync-inbox': failing(down) }));
    expect(err).toBe(down);
    expect(err).not.toBeInstanceOf(UnrecoverableError);
    const [failed, ...more] = await failures();
    expect(more).toEqual([]);
    expect(failed?.payload).toEqual({
      queue: 'sync-inbox',
      jobId: 'sync-inbox-9',
      attempts: 5,
      error: 'Error: HubSpot answered 503',
      finality: 'attempts-exhausted',
    });
  });

  it('a job without an attempts option has one attempt', async () => {
    const job: JobRef = { id: 'one-shot', name: 'sync-inbox', data: SYNC, attemptsMade: 0, opts: {} };
    await expect(run('sync-inbox', job, { 'sync-inbox': failing(new Error('flaky')) })).rejects.toThrow('flaky');
    expect((await failures()).map((e) => (e.payload as { finality: string }).finality)).toEqual(['attempts-exhausted']);
  });
});

describe('the stage deadline', () => {
  it("aborts the stage's signal and fails the attempt with StageTimeoutError, even when the stage ignores the signal", async () => {
    let seen: AbortSignal | undefined;
    const hangs: OtherHandlers['sync-inbox'] = (_data, signal) => {
      seen = signal;
      return new Promise<never>(() => undefined);
    };
    const started = Date.now();
    const err = await rejectionOf(
      run('sync-inbox', jobOf('sync-inbox', SYNC, { attemptsMade: 0, attempts: 5 }), { 'sync-inbox': hangs }, 30),
    );
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(err).toBeInstanceOf(StageTimeoutError);
    expect(err).toMatchObject({ stage: 'sync-inbox', timeoutMs: 30 });
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toBe(err);
    expect(await failures()).toEqual([]);
  });

  it('on the last attempt journals the timeout as attempts-exhausted', async () => {
    const hangs: OtherHandlers['sync-inbox'] = () => new Promise<never>(() => undefined);
    const err = await rejectionOf(
      run('sync-inbox', jobOf('sync-inbox', SYNC, { attemptsMade: 4, attempts: 5 }), { 'sync-inbox': hangs }, 30),
    );
    expect(err).toBeInstanceOf(StageTimeoutError);
    const [failed] = await failures();
    expect(failed?.payload).toMatchObject({
      finality: 'attempts-exhausted',
      error: 'StageTimeoutError: the sync-inbox stage did not finish within 30 ms',
    });
  });

  it("is the catalog's timeout of the queue when none is given", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let seen: AbortSignal | undefined;
    const hangs: OtherHandlers['sync-inbox'] = (_data, signal) => {
      seen = signal;
      return new Promise<never>(() => undefined);
    };
    const work = run('sync-inbox', jobOf('sync-inbox', SYNC, { attemptsMade: 0, attempts: 5 }), { 'sync-inbox': hangs });
    const outcome = rejectionOf(work);
    await vi.advanceTimersByTimeAsync(JOBS['sync-inbox'].timeoutMs - 1);
    expect(seen?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(seen?.aborted).toBe(true);
    await expect(outcome).resolves.toMatchObject({ name: 'StageTimeoutError', timeoutMs: JOBS['sync-inbox'].timeoutMs });
  });

  it('is cleared when the stage finishes in time (a finished job is not aborted afterwards)', async () => {
    const sync = recording<'sync-inbox'>();
    await run('sync-inbox', jobOf('sync-inbox', SYNC), { 'sync-inbox': sync.handler }, 20);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(sync.calls[0]?.signal.aborted).toBe(false);
  });
});
