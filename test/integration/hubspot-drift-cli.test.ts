/**
 * `activity-journal crm drift` end to end: interactions mirrored by the real pipeline to the HubSpot fake, an
 * activity edited by hand in HubSpot, the command finds it (exit 1), and `--repair` writes it back (exit 0), on
 * the record.
 */
import { spawn } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.ts';
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
      const deadline = Date.now() + 60_000;
      while (fake.objects('emails').length < 5) {
        if (Date.now() > deadline) throw new Error(`mirrored ${fake.objects('emails').length} of 5`);
        await new Promise((r) => setTimeout(r, 100));
      }
      await drained(p.prefix);
    } finally {
      await p.stop();
    }
    const target = fake.objects('emails')[2];
    await createHubSpotClient({ accessToken: TOKEN, basePath: fake.baseUrl }).crm.objects.emails.basicApi.update(target?.id as string, {
      properties: { hs_email_subject: 'changed in HubSpot' },
    });

    // Asynchronously: the fake answers from this process.
    const run = (...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, ['bin/activity-journal.mjs', '--journal', p.path, '--json', 'crm', 'drift', ...args], {
          env: { ...process.env, ...env, REDIS_URL, QUEUE_PREFIX: cliPrefix, LOG_LEVEL: 'silent' },
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.once('exit', (status) => resolve({ status, stdout, stderr }));
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
