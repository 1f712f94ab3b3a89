/**
 * `activity-journal crm drift` end to end: interactions mirrored by the real pipeline to the HubSpot fake, an
 * activity edited by hand in HubSpot, the command finds it (exit 1), and `--repair` writes it back (exit 0), on
 * the record.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.ts';
import { runCli, type CliResult } from '../helpers/cli.ts';
import { waitFor } from '../helpers/wait.ts';
import { REDIS_URL, allEntries, drained, generatedInteractions, inProcessPipeline, obliterate, uniquePrefix } from '../helpers/pipeline.ts';
import { startHubSpotFake, type HubSpotFake } from '../fakes/hubspot.fake.ts';
import { createHubSpotClient } from '../../connectors/hubspot/hubspot.http.ts';

const TOKEN = 'pat-na1-drift-cli-token';
let tmp: { dir: string; cleanup: () => void };
let fake: HubSpotFake;
let cliPrefix: string;
beforeEach(async () => {
  tmp = tempDir('aj-drift-cli-');
  fake = await startHubSpotFake({ accessToken: TOKEN });
  cliPrefix = uniquePrefix();
});
afterEach(async () => {
  await fake.close();
  await obliterate(cliPrefix);
  tmp.cleanup();
});

describe('activity-journal crm drift', () => {
  it('reports a hand-edited activity and repairs it, on the record', async () => {
    const env = {
      HUBSPOT_ACCESS_TOKEN: TOKEN,
      HUBSPOT_BASE_PATH: fake.baseUrl,
      HUBSPOT_BATCH_WINDOW_MS: '100',
      HUBSPOT_DEAL_RULE: 'none' as const,
    };
    const p = await inProcessPipeline(tmp.dir, {}, env);
    try {
      for (const ix of generatedInteractions(5, 'drift')) await p.runtime.pipeline.intake(ix);
      await waitFor(() => fake.objects('emails').length, { what: 'all 5 emails mirrored', until: (n) => n >= 5, timeoutMs: 60_000 });
      await drained(p.prefix);
    } finally {
      await p.stop();
    }
    const target = fake.objects('emails')[2];
    await createHubSpotClient({ accessToken: TOKEN, basePath: fake.baseUrl }).crm.objects.emails.basicApi.update(target?.id as string, {
      properties: { hs_email_subject: 'changed in HubSpot' },
    });

    // Asynchronously: the fake answers from this process.
    const run = (...args: string[]): Promise<CliResult> =>
      runCli(['--journal', p.path, '--json', 'crm', 'drift', ...args], {
        env: { ...process.env, ...env, REDIS_URL, QUEUE_PREFIX: cliPrefix, LOG_LEVEL: 'silent' },
      });
    const report = await run();
    expect(report.status, report.stderr).toBe(1);
    const r = JSON.parse(report.stdout) as {
      checked: number;
      changed: number;
      items: { entryId: string; fields: { field: string; actual: string }[] }[];
    };
    expect(r.checked).toBe(5);
    expect(r.changed).toBe(1);
    expect(r.items[0]?.entryId).toBe(target?.properties['journal_entry_id']);
    expect(r.items[0]?.fields).toEqual([expect.objectContaining({ field: 'hs_email_subject', actual: 'changed in HubSpot' })]);

    const repair = await run('--repair');
    expect(repair.status, repair.stderr).toBe(0);
    expect(fake.objects('emails').find((o) => o.id === target?.id)?.properties['hs_email_subject']).not.toBe('changed in HubSpot');
    expect(fake.objects('emails')).toHaveLength(5);
    const restored = allEntries(p.path).filter((e) => e.kind === 'state.changed' && e.actor === 'crm:drift-repair');
    expect(restored.map((e) => (e.payload as { field: string; from: unknown }).field)).toEqual(['hs_email_subject']);
    expect((await run()).status).toBe(0);
  });
});
