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

const className = z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, 'a lower-case class name like "sales-2y"');

export const RetentionClassSchema = z.strictObject({
  /** Days after recordedAt; null keeps forever. */
  days: z.number().int().positive().max(365 * 100).nullable(),
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
          class: className,
        }),
      )
      .max(1000),
  })
  .superRefine((p, ctx) => {
    p.rules.forEach((r, i) => {
      if (!(r.class in p.classes)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'class'], message: `class ${r.class} is not defined in classes` });
      if (r.kind !== undefined && !isEntryKind(r.kind)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'kind'], message: `unknown kind ${r.kind}` });
    });
    // Every kind's default class must exist: entries no rule matches fall back to it.
    const defaults = new Set(Object.values(KINDS).map((k) => k.defaultRetention));
    for (const d of defaults) if (!(d in p.classes)) ctx.addIssue({ code: 'custom', path: ['classes'], message: `class ${d} (a kind's default) must be defined` });
  });

export type RetentionClass = z.infer<typeof RetentionClassSchema>;
export type RetentionPolicyDoc = z.infer<typeof RetentionPolicySchema>;

export class RetentionPolicyError extends Error {
  readonly code = 'RETENTION_POLICY';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RetentionPolicyError';
  }
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
    if (!r.success) throw new RetentionPolicyError(`${where} is invalid: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
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

  /** The class for a new entry of `kind` from `source`: the first matching rule, else the kind's default. */
  classify(kind: string, source: string): string {
    for (const r of this.doc.rules) {
      if (r.kind !== undefined && r.kind !== kind) continue;
      if (r.source !== undefined && !(r.source.endsWith('*') ? source.startsWith(r.source.slice(0, -1)) : source === r.source)) continue;
      return r.class;
    }
    return isEntryKind(kind) ? KINDS[kind].defaultRetention : 'standard';
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
  const rows = db.prepare('SELECT version, seq, policy FROM retention_policies ORDER BY version').all() as { version: number; seq: number; policy: string }[];
  return rows.map((r) => ({ version: r.version, seq: r.seq, policy: RetentionPolicy.parse(JSON.parse(r.policy), `journaled retention policy version ${r.version}`) }));
}

const DAY_MS = 86_400_000;

/**
 * When an entry's retention ends (ms since epoch), or null for never: the longest its class was given by the
 * version in force at `seq` and every later version (a later version may lengthen, never shorten).
 */
export function expiryOf(entry: { seq: number; recordedAt: string; retentionClass: string }, history: readonly JournaledPolicy[]): { expiresAt: number | null; onExpiry: 'keep' | 'drop-payload' } {
  const sorted = [...history].sort((a, b) => a.seq - b.seq);
  let start = 0;
  for (let i = 0; i < sorted.length; i++) if ((sorted[i] as JournaledPolicy).seq < entry.seq) start = i;
  let days: number | null | undefined;
  let onExpiry: 'keep' | 'drop-payload' = 'keep';
  let known = false;
  for (const h of sorted.slice(start)) {
    const c = h.policy.classOf(entry.retentionClass);
    if (!c) continue;
    known = true;
    if (c.days === null) days = null;
    else if (days !== null) days = Math.max(days ?? 0, c.days);
    onExpiry = c.onExpiry; // the newest version says what happens at expiry
  }
  // A class no policy defines (e.g. stamped by a client) is kept: retention is never guessed short.
  if (!known || days === null || days === undefined) return { expiresAt: null, onExpiry: 'keep' };
  return { expiresAt: Date.parse(entry.recordedAt) + days * DAY_MS, onExpiry };
}
