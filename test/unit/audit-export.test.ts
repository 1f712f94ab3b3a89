/**
 * Exports and their offline check: a correlation or a date range with a proof per entry; a dropped line, a
 * changed payload, a foreign checkpoint or the wrong pinned key all fail; a non-export is a usage error.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.ts';
import { JournalWriter } from '../../src/journal/writer.ts';
import { JournalReader } from '../../src/journal/reader.ts';
import { parseVerifierKey } from '../../src/journal/keys.ts';
import { checkExport, writeExport } from '../../src/audit/export.ts';
import { NotAnExportError } from '../../src/audit/errors/not-an-export.error.ts';
import { ExportError } from '../../src/audit/errors/export.error.ts';
import { stateChange } from '../helpers/entries.ts';

let tmp: { dir: string; cleanup: () => void };
beforeEach(() => {
  tmp = tempDir('aj-export-');
});
afterEach(() => tmp.cleanup());

async function exportOf(reader: JournalReader, scope: Parameters<typeof writeExport>[1]): Promise<string[]> {
  const lines: string[] = [];
  await writeExport(reader, scope, (l) => void lines.push(l));
  return lines;
}

describe('exports', () => {
  it('export a correlation or a range with proofs that check out, and fail when anything is changed', async () => {
    const path = join(tmp.dir, 'j.sqlite');
    const writer = await JournalWriter.open({ path, keysDir: join(tmp.dir, 'keys'), checkpointEveryMs: 0 });
    const reader = JournalReader.open(path);
    await expect(exportOf(reader, { kind: 'correlation', correlationId: 'c-1' })).rejects.toThrow(ExportError);
    for (let i = 0; i < 6; i++) await writer.append(stateChange(`k-${i}`, i % 2 === 0 ? 'c-1' : 'c-2', `v${i}`));
    await writer.checkpoint();
    await writer.append(stateChange('k-late', 'c-1', 'late'));

    const lines = await exportOf(reader, { kind: 'correlation', correlationId: 'c-1' });
    const header = JSON.parse(lines[0] as string) as { entries: number; notYetCovered: number; verifierKey: string };
    expect(header).toMatchObject({ entries: 3, notYetCovered: 1 });
    const text = lines.join('\n') + '\n';
    expect(checkExport(text, parseVerifierKey(header.verifierKey))).toMatchObject({ ok: true, entries: 3, keyPinned: true });

    const range = await exportOf(reader, { kind: 'range', from: '2000-01-01T00:00:00Z', until: '2100-01-01T00:00:00Z' });
    expect((JSON.parse(range[0] as string) as { entries: number }).entries).toBe(reader.latestCheckpoint()?.checkpoint.treeSize);
    expect(checkExport(range.join('\n'), null).ok).toBe(true);
    const none = await exportOf(reader, { kind: 'range', from: '2000-01-01T00:00:00Z', until: '2000-01-02T00:00:00Z' });
    expect((JSON.parse(none[0] as string) as { entries: number }).entries).toBe(0);

    // A dropped line.
    expect(
      checkExport([lines[0], lines[1], lines[2]].join('\n'), null)
        .failures.map((f) => f.reason)
        .join(),
    ).toContain('announces 3 entries');
    // A changed payload.
    const changed = lines.map((l, i) => (i === 2 ? l.replace(/"to":"v\d"/, '"to":"forged"') : l));
    expect(changed[2]).not.toBe(lines[2]);
    const c = checkExport(changed.join('\n'), null);
    expect(c.ok).toBe(false);
    expect(c.failures[0]).toMatchObject({ line: 3, reason: expect.stringContaining('payload does not match') as unknown });
    // Another journal's key pinned.
    const otherWriter = await JournalWriter.open({
      path: join(tmp.dir, 'other.sqlite'),
      keysDir: join(tmp.dir, 'keys2'),
      checkpointEveryMs: 0,
    });
    await otherWriter.checkpoint();
    const otherReader = JournalReader.open(join(tmp.dir, 'other.sqlite'));
    const foreignKey = (otherReader.bySeq(0)?.payload as { verifierKey: string }).verifierKey;
    expect(checkExport(text, parseVerifierKey(foreignKey)).ok).toBe(false);
    otherReader.close();
    await otherWriter.close();
    // Not an export at all.
    expect(() => checkExport('{"format":"something-else"}\n', null)).toThrow(NotAnExportError);
    expect(() => checkExport('', null)).toThrow(NotAnExportError);
    reader.close();
    await writer.close();
  });
});
