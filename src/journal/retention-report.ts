/**
 * `activity-journal retention report`: per class, what hot storage holds and when its oldest entry expires;
 * what was archived; when the next segment can be sealed.
 */
import type Database from 'better-sqlite3';
import { describeRule, expiryOf, journaledPolicies, retentionAssignments, type RetentionPolicy } from './retention.ts';
import { monthOf } from './segments.ts';

export { journaledPolicies };

export interface ClassReport {
  readonly retentionClass: string;
  readonly days: number | null;
  readonly onExpiry: 'keep' | 'drop-payload' | null;
  readonly hotEntries: number;
  readonly hotPayloadBytes: number;
  readonly oldestRecordedAt: string | null;
  /** When the oldest hot entry's retention ends (null: never, or no entry). */
  readonly oldestExpiresAt: string | null;
  /** Hot entries whose retention has ended and whose class drops payloads: dropped once their segment is archived. */
  readonly expiredHot: number;
  /** Payloads of archived entries already dropped by expiry (segment.pruned). */
  readonly droppedPayloads: number;
  /** Hot entries of this class whose promise a retention.assigned raised to a longer class. */
  readonly raisedHot: number;
}

export interface RetentionReport {
  readonly policyVersion: number | null;
  readonly classes: readonly ClassReport[];
  readonly segments: {
    readonly sealed: number;
    readonly archived: number;
    readonly archivedEntries: number;
    readonly archivedBytes: number;
  };
  /** The first closed month not sealed yet, or the open month and when it closes. */
  readonly nextSeal: { readonly period: string; readonly sealableFrom: string; readonly dueNow: boolean } | null;
  /** Rules of the configured policy that decide nothing the product writes (see RetentionPolicy.unmatchedRules). */
  readonly warnings: readonly string[];
}

export function retentionReport(db: Database.Database, now: number, current: RetentionPolicy | null): RetentionReport {
  const history = journaledPolicies(db);
  const assignments = retentionAssignments(db);
  const latest = history[history.length - 1]?.policy ?? current;
  const rows = db
    .prepare(
      'SELECT retention_class AS c, count(*) AS n, sum(length(payload)) AS bytes, min(recorded_at) AS oldest FROM entries GROUP BY retention_class ORDER BY retention_class',
    )
    .all() as { c: string; n: number; bytes: number; oldest: string }[];
  const names = new Set<string>([...Object.keys(latest?.doc.classes ?? {}), ...rows.map((r) => r.c)]);
  const dropped: Record<string, number> = {};
  if (db.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'pruned_segments'`).get()) {
    for (const p of db.prepare('SELECT dropped_by_class FROM pruned_segments').all() as { dropped_by_class: string }[]) {
      for (const [c, n] of Object.entries(JSON.parse(p.dropped_by_class) as Record<string, number>)) dropped[c] = (dropped[c] ?? 0) + n;
    }
  }
  const classes: ClassReport[] = [...names].sort().map((name) => {
    const r = rows.find((x) => x.c === name);
    const cls = latest?.classOf(name) ?? null;
    let oldestExpiresAt: string | null = null;
    if (r) {
      const first = db.prepare('SELECT seq, recorded_at FROM entries WHERE retention_class = ? ORDER BY seq LIMIT 1').get(name) as {
        seq: number;
        recorded_at: string;
      };
      const e = expiryOf({ seq: first.seq, recordedAt: first.recorded_at, retentionClass: name }, history, assignments.get(first.seq));
      oldestExpiresAt = e.expiresAt === null ? null : new Date(e.expiresAt).toISOString();
    }
    let expiredHot = 0;
    if (r && history.some((h) => h.policy.classOf(name)?.onExpiry === 'drop-payload')) {
      for (const x of db
        .prepare('SELECT seq, recorded_at FROM entries WHERE retention_class = ? AND seq > 0')
        .iterate(name) as IterableIterator<{ seq: number; recorded_at: string }>) {
        const e = expiryOf({ seq: x.seq, recordedAt: x.recorded_at, retentionClass: name }, history, assignments.get(x.seq));
        if (e.onExpiry === 'drop-payload' && e.expiresAt !== null && e.expiresAt <= now) expiredHot++;
      }
    }
    let raisedHot = 0;
    if (r && assignments.size > 0) {
      for (const x of db
        .prepare('SELECT seq, recorded_at FROM entries WHERE retention_class = ? AND seq > 0')
        .iterate(name) as IterableIterator<{ seq: number; recorded_at: string }>) {
        const a = assignments.get(x.seq);
        if (a && expiryOf({ seq: x.seq, recordedAt: x.recorded_at, retentionClass: name }, history, a).retentionClass !== name) raisedHot++;
      }
    }
    return {
      retentionClass: name,
      days: cls?.days ?? null,
      onExpiry: cls?.onExpiry ?? null,
      hotEntries: r?.n ?? 0,
      hotPayloadBytes: r?.bytes ?? 0,
      oldestRecordedAt: r?.oldest ?? null,
      oldestExpiresAt,
      expiredHot,
      droppedPayloads: dropped[name] ?? 0,
      raisedHot,
    };
  });
  const hasSegments = db.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'segments'`).get();
  const seg = hasSegments
    ? (db
        .prepare(
          `SELECT (SELECT count(*) FROM segments) AS sealed, (SELECT count(*) FROM archived_ranges) AS archived,
         (SELECT coalesce(sum(to_seq - from_seq + 1), 0) FROM archived_ranges) AS entries`,
        )
        .get() as { sealed: number; archived: number; entries: number })
    : { sealed: 0, archived: 0, entries: 0 };
  let archivedBytes = 0;
  for (const e of db.prepare(`SELECT payload FROM entries WHERE kind = 'segment.archived'`).all() as { payload: string }[])
    archivedBytes += (JSON.parse(e.payload) as { compressedBytes: number }).compressedBytes;
  const lastSealed = hasSegments ? (db.prepare('SELECT max(to_seq) AS m FROM segments').get() as { m: number | null }).m : null;
  const next = db.prepare('SELECT recorded_at FROM entries WHERE seq > ? ORDER BY seq LIMIT 1').get(lastSealed ?? -1) as
    { recorded_at: string } | undefined;
  let nextSeal: RetentionReport['nextSeal'] = null;
  if (next) {
    const period = monthOf(next.recorded_at);
    nextSeal = { period: period.id, sealableFrom: period.end, dueNow: Date.parse(period.end) <= now };
  }
  const warnings =
    (current ?? latest)?.unmatchedRules().map((u) => `retention policy ${(current ?? latest)?.version ?? '?'}: ${describeRule(u)}`) ?? [];
  return {
    policyVersion: latest?.version ?? null,
    warnings,
    classes,
    segments: { sealed: seg.sealed, archived: seg.archived, archivedEntries: seg.entries, archivedBytes },
    nextSeal,
  };
}
