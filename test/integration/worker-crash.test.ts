/**
 * A worker process killed with SIGKILL in the middle of a run, then restarted: nothing is lost and nothing is
 * duplicated. Real processes: the journal service, the worker, Redis; the model is the fake OpenAI server,
 * slowed down so that the kill lands while work is in flight.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { exitOf, spawnCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { waitFor } from '../helpers/wait.ts';
import { startService, type ServiceProcess } from '../helpers/service.ts';
import { REDIS_URL, allEntries, drained, generatedInteractions, obliterate, testConfig, uniquePrefix } from '../helpers/pipeline.ts';
import { startFakeOpenAi, type FakeOpenAi } from '../fakes/openai.fake.ts';
import { startPipeline } from '../../jobs/main.ts';
import { silentLogger } from '../../src/config/logger.ts';
import type { JournalEntry } from '../../src/journal/entry.ts';

let tmp: { dir: string; cleanup: () => void };
let fake: FakeOpenAi;
let svc: ServiceProcess | null = null;
let prefix: string;
beforeEach(async () => {
  tmp = tempDir('aj-worker-crash-');
  fake = await startFakeOpenAi();
  prefix = uniquePrefix();
});
afterEach(async () => {
  await svc?.stop();
  svc = null;
  await fake.close();
  await obliterate(prefix);
  tmp.cleanup();
});

function startWorker(env: NodeJS.ProcessEnv): { child: ChildProcess; exited: Promise<number | null> } {
  const child = spawnCli(['worker'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  return { child, exited: exitOf(child) };
}

const payload = (e: JournalEntry): Record<string, unknown> => e.payload as Record<string, unknown>;

describe('a worker killed mid-run', () => {
  it('loses nothing and duplicates nothing after a restart', async () => {
    fake.setDefault({ kind: 'ok', latencyMs: 40 });
    svc = await startService(tmp.dir);
    const env: NodeJS.ProcessEnv = {
      ...svc.env,
      REDIS_URL,
      QUEUE_PREFIX: prefix,
      OPENAI_API_KEY: 'sk-test-0123456789abcdef',
      OPENAI_BASE_URL: fake.baseURL,
      OPENAI_MAX_RETRIES: '0',
      MODEL_CONCURRENCY: '4',
      JOB_LOCK_SECONDS: '2',
      CRM_BATCH_LOCK_SECONDS: '2',
      SHUTDOWN_DEADLINE_SECONDS: '5',
      LOG_LEVEL: 'error',
    };
    // The test is the producer (as a webhook receiver would be); workers run in their own process.
    const producer = await startPipeline(testConfig(tmp.dir, { ...env, JOURNAL_PATH: env.JOURNAL_PATH as string }), silentLogger, {
      prefix,
      queues: [],
    });
    const items = generatedInteractions(300, 'crash');
    for (const ix of items) await producer.pipeline.intake(ix);

    const first = startWorker(env);
    // Wait until some, but not all, decisions are on the record, then kill the worker outright.
    await waitFor(() => allEntries(env.JOURNAL_PATH as string).filter((e) => e.kind === 'ai.decision').length, {
      what: 'the worker to record 40 decisions',
      until: (done) => done >= 40,
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    first.child.kill('SIGKILL');
    await first.exited;
    const atKill = allEntries(env.JOURNAL_PATH as string).filter((e) => e.kind === 'crm.write').length;
    expect(atKill).toBeLessThan(items.length);

    const second = startWorker(env);
    await drained(prefix, 90_000);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0); // graceful shutdown
    await producer.close();

    const entries = allEntries(env.JOURNAL_PATH as string);
    const received = entries.filter((e) => e.kind === 'interaction.received');
    expect(received).toHaveLength(items.length);
    const count = (kind: string, f: (e: JournalEntry) => boolean = () => true): Map<string, number> => {
      const m = new Map<string, number>();
      for (const e of entries) if (e.kind === kind && f(e)) m.set(e.correlationId, (m.get(e.correlationId) ?? 0) + 1);
      return m;
    };
    const decisions = count('ai.decision', (e) => payload(e).outcome !== 'failed');
    const mirrorRules = count('rule.decision', (e) => (payload(e).evaluated as { section: string }).section === 'mirror');
    const writes = count('crm.write');
    for (const r of received) {
      expect(decisions.get(r.correlationId)).toBe(1);
      expect(mirrorRules.get(r.correlationId)).toBe(1);
      expect(writes.get(r.correlationId) ?? 0).toBeLessThanOrEqual(1);
    }
    expect(entries.filter((e) => e.kind === 'job.failed')).toHaveLength(0);
    expect(fake.requests.every((r) => r.valid)).toBe(true);
  });
});
