/**
 * Retention policies: which class each new entry is stamped with, and how long each class is kept.
 *
 * The class is a header field (`retentionClass`), so it is covered by the leaf hash, the chain and the seal: an
 * entry's promise cannot be rewritten later. A policy file maps kind + source to a class; a new policy version
 * is journaled (`retention.policy`) and applies to entries appended after it. An entry's retention is the
 * longest its class was given by any policy version from the one in force when it was appended onwards, so a
 * later version can lengthen a promise but never shorten it.
 */
import { readFileSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { z } from 'zod';
import { canonicalize } from './canonical.ts';
import { sha256Hex } from './sha256.ts';
import { KINDS, isEntryKind } from './kinds.ts';
import { CHANNELS, channelOfSource, writtenEntries, type WrittenEntry } from './source-catalog.ts';
import { CATEGORIES } from './categories.ts';
import { RetentionPolicyError } from './errors/retention-policy.error.ts';

const className = z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, 'a lower-case class name like "sales-2y"');

export const RetentionClassSchema = z.strictObject({
  /** Days after recordedAt; null keeps forever. */
  days: z
    .number()
    .int()
    .positive()
    .max(365 * 100)
    .nullable(),
  onExpiry: z.enum(['keep', 'drop-payload']).default('keep'),
  description: z.string().max(500).optional(),
});

export const RetentionPolicySchema = z
  .strictObject({
    $comment: z.string().optional(),
    version: z.number().int().positive(),
    classes: z.record(className, RetentionClassSchema),
    rules: z
      .array(
        z.strictObject({
          kind: z.string().min(1).max(128).optional(),
          /** Exact source, or a prefix ending in `*`. */
          source: z.string().min(1).max(129).optional(),
          /** Any of these sources (each exact, or a prefix ending in `*`). */
          sources: z.array(z.string().min(1).max(129)).min(1).max(1000).optional(),
          /** The interaction's channel (interaction.received: its payload's; other kinds: their source's, from the source catalogue). */
          channel: z.enum(CHANNELS).optional(),
          class: className,
        }),
      )
      .max(1000),
    /**
     * Classes a later decision raises an interaction to (`retention.assigned`), by the category it was classified
     * as: `{ "billing": "financial-7y" }`. A promise only grows: an assignment shorter than what the entry has is
     * without effect.
     */
    categories: z.partialRecord(z.enum(CATEGORIES), className).optional(),
  })
  .superRefine((p, ctx) => {
    p.rules.forEach((r, i) => {
      if (!(r.class in p.classes))
        ctx.addIssue({ code: 'custom', path: ['rules', i, 'class'], message: `class ${r.class} is not defined in classes` });
      if (r.kind !== undefined && !isEntryKind(r.kind))
        ctx.addIssue({ code: 'custom', path: ['rules', i, 'kind'], message: `unknown kind ${r.kind}` });
    });
    for (const [category, cls] of Object.entries(p.categories ?? {})) {
      if (cls !== undefined && !(cls in p.classes))
        ctx.addIssue({ code: 'custom', path: ['categories', category], message: `class ${cls} is not defined in classes` });
    }
    // Every kind's default class must exist: entries no rule matches fall back to it.
    const defaults = new Set(Object.values(KINDS).map((k) => k.defaultRetention));
    for (const d of defaults)
      if (!(d in p.classes)) ctx.addIssue({ code: 'custom', path: ['classes'], message: `class ${d} (a kind's default) must be defined` });
  });

export type RetentionClass = z.infer<typeof RetentionClassSchema>;
export type RetentionPolicyDoc = z.infer<typeof RetentionPolicySchema>;
export type RetentionRule = RetentionPolicyDoc['rules'][number];

/** A policy rule that decides no entry the product writes. */
export interface UnmatchedRule {
  /** Its position in `rules` (0-based). */
  readonly index: number;
  readonly rule: RetentionRule;
  readonly reason: string;
}

/** How a rule reads for a warning: `rules[0] {kind interaction.received, source forms*} -> marketing-90d`. */
export function describeRule(u: UnmatchedRule): string {
  const r = u.rule;
  const parts = [
    r.kind !== undefined ? `kind ${r.kind}` : null,
    r.source !== undefined ? `source ${r.source}` : null,
    r.sources ? `sources ${r.sources.join(',')}` : null,
    r.channel !== undefined ? `channel ${r.channel}` : null,
  ].filter((x) => x !== null);
  return `rules[${u.index}] {${parts.join(', ') || 'any entry'}} -> ${r.class}: ${u.reason}`;
}

function sourceMatches(pattern: string, source: string): boolean {
  return pattern.endsWith('*') ? source.startsWith(pattern.slice(0, -1)) : source === pattern;
}

function ruleMatches(r: RetentionRule, e: { kind: string; source: string; channel?: string | undefined }): boolean {
  if (r.kind !== undefined && r.kind !== e.kind) return false;
  if (r.source !== undefined && !sourceMatches(r.source, e.source)) return false;
  if (r.sources !== undefined && !r.sources.some((s) => sourceMatches(s, e.source))) return false;
  if (r.channel !== undefined && r.channel !== e.channel) return false;
  return true;
}

/** A parsed policy with its content hash (over the canonical JSON without `$comment`). */
export class RetentionPolicy {
  readonly sha256: string;
  readonly canonical: string;
  private constructor(readonly doc: RetentionPolicyDoc) {
    const { $comment: _comment, ...rest } = doc;
    this.canonical = canonicalize(rest);
    this.sha256 = sha256Hex(this.canonical);
  }

  static parse(value: unknown, where = 'retention policy'): RetentionPolicy {
    const r = RetentionPolicySchema.safeParse(value);
    if (!r.success)
      throw new RetentionPolicyError(`${where} is invalid: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    return new RetentionPolicy(r.data);
  }

  static load(path: string): RetentionPolicy {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new RetentionPolicyError(`cannot read the retention policy ${path}: ${(err as Error).message}`, { cause: err });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new RetentionPolicyError(`the retention policy ${path} is not JSON: ${(err as Error).message}`, { cause: err });
    }
    return RetentionPolicy.parse(json, path);
  }

  get version(): number {
    return this.doc.version;
  }

  has(cls: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.doc.classes, cls);
  }

  classOf(cls: string): RetentionClass | null {
    return this.has(cls) ? (this.doc.classes[cls] as RetentionClass) : null;
  }

  /**
   * The class for a new entry of `kind` from `source` (and `channel`, for an interaction): the first matching
   * rule, else the kind's default. Without a channel, the source catalogue's channel for the source is used.
   */
  classify(kind: string, source: string, channel?: string): string {
    const i = this.ruleFor({ kind, source, channel: channel ?? channelOfSource(source) });
    if (i !== null) return (this.doc.rules[i] as RetentionRule).class;
    return isEntryKind(kind) ? KINDS[kind].defaultRetention : 'standard';
  }

  /** The index of the first rule matching the entry, or null. */
  private ruleFor(e: { kind: string; source: string; channel?: string | undefined }): number | null {
    const i = this.doc.rules.findIndex((r) => ruleMatches(r, e));
    return i < 0 ? null : i;
  }

  /**
   * Rules that decide nothing the product writes (per the source catalogue): rules that match no (kind, source,
   * channel) it writes, and rules every match of which an earlier rule already decides (first match wins).
   */
  unmatchedRules(written: readonly WrittenEntry[] = writtenEntries()): UnmatchedRule[] {
    const out: UnmatchedRule[] = [];
    this.doc.rules.forEach((r, index) => {
      const matched = written.filter((w) => ruleMatches(r, w));
      if (matched.length === 0) {
        out.push({ index, rule: r, reason: 'matches no source the product writes' });
        return;
      }
      if (matched.every((w) => this.ruleFor(w) !== index))
        out.push({ index, rule: r, reason: 'every entry it matches is decided by an earlier rule' });
    });
    return out;
  }

  /** The class an interaction classified as `category` is raised to (`categories`), or null. */
  classForCategory(category: string): string | null {
    const c = (this.doc.categories as Record<string, string | undefined> | undefined)?.[category];
    return c ?? null;
  }

  /** The payload of the `retention.policy` entry that journals this version. */
  entryPayload(): { version: number; sha256: string; policy: string } {
    return { version: this.version, sha256: this.sha256, policy: this.canonical };
  }
}

/** One journaled policy version, as the writer keeps it in `retention_policies`. */
export interface JournaledPolicy {
  readonly version: number;
  /** Seq of the `retention.policy` entry: the version applies to entries after it. */
  readonly seq: number;
  readonly policy: RetentionPolicy;
}

/** Every policy version the journal recorded (`retention_policies`), oldest first; [] for a journal from before retention. */
export function journaledPolicies(db: Database.Database): JournaledPolicy[] {
  const has = db.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'retention_policies'`).get();
  if (!has) return [];
  const rows = db.prepare('SELECT version, seq, policy FROM retention_policies ORDER BY version').all() as {
    version: number;
    seq: number;
    policy: string;
  }[];
  return rows.map((r) => ({
    version: r.version,
    seq: r.seq,
    policy: RetentionPolicy.parse(JSON.parse(r.policy), `journaled retention policy version ${r.version}`),
  }));
}

const DAY_MS = 86_400_000;

/** A later raise of an entry's retention (`retention.assigned`), as `retention_assignments` keeps it. */
export interface RetentionAssignment {
  /** Seq of the retention.assigned entry: the policy version in force there and later ones say how long its class is. */
  readonly seq: number;
  /** Seq of the entry whose promise it raises. */
  readonly targetSeq: number;
  readonly retentionClass: string;
}

/** Every retention assignment the journal recorded, by the seq of the entry it raises (empty before migration 4). */
export function retentionAssignments(db: Database.Database): Map<number, RetentionAssignment[]> {
  const out = new Map<number, RetentionAssignment[]>();
  const has = db.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'retention_assignments'`).get();
  if (!has) return out;
  for (const r of db.prepare('SELECT assigned_seq, target_seq, retention_class FROM retention_assignments ORDER BY assigned_seq').all() as {
    assigned_seq: number;
    target_seq: number;
    retention_class: string;
  }[]) {
    const list = out.get(r.target_seq) ?? [];
    list.push({ seq: r.assigned_seq, targetSeq: r.target_seq, retentionClass: r.retention_class });
    out.set(r.target_seq, list);
  }
  return out;
}

export interface Expiry {
  /** When retention ends (ms since epoch), null for never. */
  readonly expiresAt: number | null;
  readonly onExpiry: 'keep' | 'drop-payload';
  /** The class whose promise is the longest: the header's, or one a retention.assigned raised it to. */
  readonly retentionClass: string;
}

/**
 * When an entry's retention ends (ms since epoch), or null for never: the longest promise it was ever given.
 * Its header class counts by the version in force at `seq` and every later version (a later version may
 * lengthen, never shorten); each `retention.assigned` for it counts its class by the versions from the one in
 * force at the assignment onwards, measured from the entry's own recordedAt. The longest wins (a tie keeps the
 * payload), so an assignment to a shorter class has no effect: a promise only grows.
 */
export function expiryOf(
  entry: { seq: number; recordedAt: string; retentionClass: string },
  history: readonly JournaledPolicy[],
  assignments: readonly Pick<RetentionAssignment, 'seq' | 'retentionClass'>[] = [],
): Expiry {
  let best = classExpiry(entry.retentionClass, entry.seq, entry.recordedAt, history);
  for (const a of assignments) {
    const e = classExpiry(a.retentionClass, a.seq, entry.recordedAt, history);
    if (longer(e, best)) best = e;
  }
  return best;
}

function longer(a: Expiry, b: Expiry): boolean {
  if (b.expiresAt === null) return false;
  if (a.expiresAt === null) return true;
  if (a.expiresAt !== b.expiresAt) return a.expiresAt > b.expiresAt;
  return a.onExpiry === 'keep' && b.onExpiry !== 'keep';
}

function classExpiry(retentionClass: string, seq: number, recordedAt: string, history: readonly JournaledPolicy[]): Expiry {
  const sorted = [...history].sort((a, b) => a.seq - b.seq);
  let start = 0;
  for (let i = 0; i < sorted.length; i++) if ((sorted[i] as JournaledPolicy).seq < seq) start = i;
  let days: number | null | undefined;
  let onExpiry: 'keep' | 'drop-payload' = 'keep';
  let known = false;
  for (const h of sorted.slice(start)) {
    const c = h.policy.classOf(retentionClass);
    if (!c) continue;
    known = true;
    if (c.days === null) days = null;
    else if (days !== null) days = Math.max(days ?? 0, c.days);
    onExpiry = c.onExpiry; // the newest version says what happens at expiry
  }
  // A class no policy defines (e.g. stamped by a client) is kept: retention is never guessed short.
  if (!known || days === null || days === undefined) return { expiresAt: null, onExpiry: 'keep', retentionClass };
  return { expiresAt: Date.parse(recordedAt) + days * DAY_MS, onExpiry, retentionClass };
}
