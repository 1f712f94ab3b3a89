import { describe, expect, it } from 'vitest';
import {
  droppedOf,
  droppedPayload,
  droppedPayloadProblem,
  indexPrunes,
  parseDroppedPayload,
  pruneRecordOf,
} from '../../src/journal/dropped-payload.ts';
import { RetentionPolicy, type JournaledPolicy } from '../../src/journal/retention.ts';
import { DEFAULT_RETENTION_PATH } from '../../src/config/config.ts';

const history: JournaledPolicy[] = [{ version: 1, seq: 1, policy: RetentionPolicy.load(DEFAULT_RETENTION_PATH) }];
const at = '2026-05-15T12:00:00.000Z';
const marker = droppedPayload({ at, policyVersion: 1 });
const row = (
  seq: number,
  cls: string,
  recordedAt = '2026-01-10T09:00:00.000Z',
): { seq: number; recorded_at: string; retention_class: string; payload: string } => ({
  seq,
  recorded_at: recordedAt,
  retention_class: cls,
  payload: marker,
});
const record = pruneRecordOf(
  40,
  JSON.stringify({
    segmentId: '2026-01',
    dropped: [
      [3, 4],
      [7, 7],
    ],
    droppedAt: at,
    policyVersion: 1,
  }),
);

describe('dropped payload markers', () => {
  it('round-trips only the exact canonical marker', () => {
    expect(marker).toBe('{"$dropped":{"at":"2026-05-15T12:00:00.000Z","policyVersion":1}}');
    expect(parseDroppedPayload(marker)).toEqual({ at, policyVersion: 1 });
    expect(parseDroppedPayload('{"$dropped": {"at":"2026-05-15T12:00:00.000Z","policyVersion":1}}')).toBeNull();
    expect(parseDroppedPayload('{"$dropped":{"at":"2026-05-15T12:00:00.000Z","policyVersion":1},"text":"x"}')).toBeNull();
    expect(parseDroppedPayload('{"$dropped":{"at":"yesterday","policyVersion":1}}')).toBeNull();
    expect(droppedOf(JSON.parse(marker))).toEqual({ at, policyVersion: 1 });
    expect(droppedOf({ channel: 'form' })).toBeNull();
  });

  it('accepts a listed drop of an expired drop-payload entry and nothing else', () => {
    const listed = indexPrunes(record ? [record] : []);
    expect([...listed.keys()]).toEqual([3, 4, 7]);
    expect(droppedPayloadProblem(row(3, 'marketing-90d'), listed.get(3), history)).toBeNull();
    expect(droppedPayloadProblem(row(5, 'marketing-90d'), listed.get(5), history)).toMatch(/no segment\.pruned entry lists this seq/);
    expect(droppedPayloadProblem(row(4, 'financial-7y'), listed.get(4), history)).toMatch(/class financial-7y keeps payloads/);
    expect(droppedPayloadProblem(row(7, 'marketing-90d', '2026-04-01T00:00:00.000Z'), listed.get(7), history)).toMatch(
      /keeps it until 2026-06-30/,
    );
    expect(droppedPayloadProblem({ ...row(3, 'marketing-90d'), payload: '{"channel":"form"}' }, listed.get(3), history)).toBe(
      'the payload does not match its hash',
    );
    expect(
      droppedPayloadProblem(
        { ...row(3, 'marketing-90d'), payload: droppedPayload({ at: '2026-05-16T00:00:00.000Z', policyVersion: 1 }) },
        listed.get(3),
        history,
      ),
    ).toMatch(/differs from the segment\.pruned entry at seq 40/);
    // A policy version journaled after the prune does not count for it.
    expect(
      droppedPayloadProblem(
        row(3, 'marketing-90d'),
        listed.get(3),
        history.map((h) => ({ ...h, seq: 50 })),
      ),
    ).toMatch(/keeps payloads/);
  });
});
