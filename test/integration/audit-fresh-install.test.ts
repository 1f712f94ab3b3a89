/**
 * Issue 15, finding 1: on a fresh install the web process starts before the key store exists (the first
 * personal payload creates it). Its reader must pick the key store up when it appears, and the read index must
 * rebuild the rows it folded without it: the timeline shows subject, summary and category, and the category and
 * contact filters find the interaction, without a restart.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.ts';
import { loadConfig, type Config } from '../../src/config/config.ts';
import { JournalWriter } from '../../src/journal/writer.ts';
import { JournalReader } from '../../src/journal/reader.ts';
import { LocalJournalClient } from '../../src/journal/local-client.ts';
import { openWriterPrivacy } from '../../src/journal/configured-privacy.ts';
import { createAuditSurface } from '../../src/web/audit-surface.ts';
import { openConfiguredIndex } from '../../src/audit/configured-index.ts';
import { silentLogger } from '../../src/config/logger.ts';

let tmp: { dir: string; cleanup: () => void };
let config: Config;
beforeEach(() => {
  tmp = tempDir('aj-fresh-audit-');
  config = loadConfig({ JOURNAL_PATH: join(tmp.dir, 'data', 'journal.sqlite'), LOG_LEVEL: 'silent' });
});
afterEach(() => tmp.cleanup());

describe('the audit surface on a fresh install', () => {
  it('opens payloads sealed after it started: subject, summary, category and the filters, without a restart', async () => {
    const privacy = openWriterPrivacy(config);
    const writer = await JournalWriter.open({ path: config.journal.path, keysDir: config.journal.keysDir, checkpointEveryMs: 0, privacy });
    const journal = new LocalJournalClient(writer, JournalReader.open(config.journal.path));
    expect(existsSync(config.privacy.keyStorePath)).toBe(false); // nothing personal yet: no key store
    const surface = createAuditSurface(config, {
      journal,
      enqueue: () => Promise.resolve(),
      connectors: () => ({ inboxes: [], webhooks: [], gmailConfigured: false }),
      logger: silentLogger,
    });
    try {
      expect(surface.service.timeline({}).rows).toEqual([]);
      const correlationId = 'email-thread/gmail/fresh-1';
      const { entry } = await writer.append({
        kind: 'interaction.received',
        source: 'gmail',
        actor: 'connector:gmail',
        correlationId,
        idempotencyKey: 'interaction/gmail/fresh-1',
        payload: {
          channel: 'email',
          sourceId: 'fresh-1',
          direction: 'inbound',
          occurredAt: '2026-12-01T09:00:00Z',
          participants: [
            { role: 'from', address: 'pat@prospect.example' },
            { role: 'to', address: 'sales@northwind.example' },
          ],
          subject: 'Invoice 4411 is wrong',
          text: 'Please correct the invoice.',
        },
      });
      await writer.append({
        kind: 'ai.decision',
        source: 'pipeline',
        actor: 'classifier:offline',
        correlationId,
        causationId: entry.id,
        idempotencyKey: `decision/${entry.id}/p@1`,
        payload: {
          inputEntryId: entry.id,
          inputHash: 'a'.repeat(64),
          promptId: 'p',
          promptVersion: '1',
          promptHash: 'b'.repeat(64),
          provider: 'offline',
          model: 'rules',
          outcome: 'ok',
          output: { category: 'billing', summary: 'Pat says invoice 4411 is wrong' },
          confidence: 0.9,
          tokens: null,
          latencyMs: 1,
          requestId: null,
          attempts: 1,
        },
      });
      expect(existsSync(config.privacy.keyStorePath)).toBe(true);
      // The first read after the key store appeared attaches it; the next one rebuilds what was folded without it.
      surface.service.refresh(true);
      surface.service.refresh(true);
      const [row] = surface.service.timeline({}).rows;
      expect(row).toMatchObject({ subject: 'Invoice 4411 is wrong', summary: 'Pat says invoice 4411 is wrong', category: 'billing' });
      expect(surface.service.timeline({ category: 'billing' }).rows).toHaveLength(1);
      expect(surface.service.timeline({ contact: 'pat@prospect.example' }).rows).toHaveLength(1);
    } finally {
      surface.close();
      await journal.close();
    }
  });

  it('rebuilds an index that a reader without the key store folded (rows without categories), once a reader has it', async () => {
    const privacy = openWriterPrivacy(config);
    const writer = await JournalWriter.open({ path: config.journal.path, keysDir: config.journal.keysDir, checkpointEveryMs: 0, privacy });
    const correlationId = 'email-thread/gmail/blind-1';
    const { entry } = await writer.append({
      kind: 'interaction.received',
      source: 'gmail',
      actor: 'connector:gmail',
      correlationId,
      idempotencyKey: 'interaction/gmail/blind-1',
      payload: {
        channel: 'email',
        sourceId: 'blind-1',
        direction: 'inbound',
        occurredAt: '2026-12-01T09:00:00Z',
        participants: [{ role: 'from', address: 'lee@prospect.example' }],
        subject: 'Quote',
        text: 'Send a quote.',
      },
    });
    await writer.append({
      kind: 'ai.decision',
      source: 'pipeline',
      actor: 'classifier:offline',
      correlationId,
      causationId: entry.id,
      idempotencyKey: `decision/${entry.id}/p@1`,
      payload: {
        inputEntryId: entry.id,
        inputHash: 'a'.repeat(64),
        promptId: 'p',
        promptVersion: '1',
        promptHash: 'b'.repeat(64),
        provider: 'offline',
        model: 'rules',
        outcome: 'ok',
        output: { category: 'new_lead', summary: 'Lee wants a quote' },
        confidence: 0.9,
        tokens: null,
        latencyMs: 1,
        requestId: null,
        attempts: 1,
      },
    });
    // Folded by a reader that cannot open payloads, under the production contact key.
    const blind = JournalReader.open(config.journal.path);
    const index = openConfiguredIndex(config, privacy);
    index.catchUp(blind);
    expect(index.query({ category: 'new_lead' }).rows).toEqual([]);
    index.close();
    blind.close();
    const journal = new LocalJournalClient(writer, JournalReader.open(config.journal.path));
    const surface = createAuditSurface(config, {
      journal,
      enqueue: () => Promise.resolve(),
      connectors: () => ({ inboxes: [], webhooks: [], gmailConfigured: false }),
      logger: silentLogger,
    });
    try {
      expect(surface.service.timeline({ category: 'new_lead' }).rows).toHaveLength(1);
      expect(surface.service.timeline({ contact: 'lee@prospect.example' }).rows).toHaveLength(1);
    } finally {
      surface.close();
      await journal.close();
      privacy.close();
    }
  });
});
