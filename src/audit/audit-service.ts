/**
 * What the audit UI and its JSON API show and do, as plain functions over the journal (read-only), the read
 * index and the journal client (for the entries the audit surface itself writes: overrides, sign-ins, exports).
 * The HTML pages and the JSON API both call these, so they cannot disagree.
 */
import { createHash } from 'node:crypto';
import type { JournalReader } from '../journal/reader.ts';
import type { JournalEntry } from '../journal/entry.ts';
import { filterKind, isKind } from '../journal/entry-payload.ts';
import type { JournalClient } from '../journal/journal-client.ts';
import { checkInclusionBundle } from '../journal/proof.ts';
import { parseVerifierKey, type Verifier } from '../journal/keys.ts';
import { ProofUnavailableError } from '../journal/errors/proof-unavailable.error.ts';
import type { Enqueue } from '../pipeline/ports.ts';
import { recordOverride, type OverrideRequest, type OverrideResult } from '../pipeline/override.ts';
import { OverrideError } from '../pipeline/errors/override.error.ts';
import type { IndexedInteraction, InteractionPage, InteractionQuery, ReadIndex, SourceSummary } from './read-index.ts';
import { writeExport, type ExportScope, type ExportSummary } from './export.ts';
import { erasedAt } from '../journal/privacy.ts';

export interface TimelineRow extends IndexedInteraction {
  /** From the journal entry (the index keeps no content). */
  readonly subject: string | null;
  readonly sourceId: string | null;
  /** The model's one-line summary. */
  readonly summary: string | null;
}

export interface TimelinePage {
  readonly rows: TimelineRow[];
  readonly next: number | null;
  /** How many match (first page only): exact up to 10,000, else capped. */
  readonly matches: InteractionPage['matches'];
}

export type ProofStatus =
  | { readonly status: 'ok' }
  | { readonly status: 'pending'; readonly reason: string }
  | { readonly status: 'failed'; readonly reason: string };

export interface TraceStep {
  readonly seq: number;
  readonly id: string;
  readonly kind: string;
  readonly step: 'received' | 'ai-decision' | 'rule-decision' | 'crm-write' | 'override' | 'other';
  readonly recordedAt: string;
  readonly actor: string;
  readonly source: string;
  readonly causationId: string | null;
  /** Human-readable facts of the step (never bodies or addresses). */
  readonly facts: Readonly<Record<string, unknown>>;
  readonly proof: ProofStatus;
}

export interface TraceView {
  readonly correlationId: string;
  readonly steps: readonly TraceStep[];
  readonly interaction: IndexedInteraction | null;
  readonly checkpointSize: number | null;
}

export interface AnchorStatus {
  readonly anchor: string;
  readonly ok: boolean;
  readonly treeSize: number;
  readonly at: string;
  /** Entries the newest checkpoint covers that this anchor has not confirmed. */
  readonly lag: number;
  readonly error: string | null;
}

export interface IntegrityView {
  readonly entries: number;
  readonly checkpoint: {
    readonly seq: number;
    readonly treeSize: number;
    readonly rootHash: string;
    readonly recordedAt: string | null;
    readonly uncovered: number;
  } | null;
  readonly anchors: readonly AnchorStatus[];
  readonly verifierKey: string | null;
}

export interface InboxStatus {
  readonly connector: string;
  readonly account: string;
  readonly status: string;
  readonly lastSyncAt: string | null;
  readonly cursor: string | null;
  readonly connectedAt: string | null;
}

export interface ConnectorsView {
  readonly inboxes: readonly InboxStatus[];
  /** Webhook providers with a configured secret. */
  readonly webhooks: readonly string[];
  readonly sources: readonly SourceSummary[];
  readonly gmailConfigured: boolean;
}

export interface AuditServiceDeps {
  readonly reader: JournalReader;
  readonly index: ReadIndex;
  readonly journal: JournalClient;
  readonly enqueue: Enqueue;
  readonly connectors: () => { inboxes: InboxStatus[]; webhooks: string[]; gmailConfigured: boolean };
  /** How long the index may lag the journal before a read catches it up (ms). */
  readonly refreshEveryMs?: number;
  readonly hubspotPortalId?: string | undefined;
}

export class AuditService {
  private lastRefresh = 0;
  private verifier: Verifier | null = null;
  constructor(private readonly deps: AuditServiceDeps) {}

  /** Folds new journal entries into the index (at most every refreshEveryMs, unless forced). */
  refresh(force = false): void {
    const now = Date.now();
    if (!force && now - this.lastRefresh < (this.deps.refreshEveryMs ?? 500)) return;
    this.lastRefresh = now;
    this.deps.index.catchUp(this.deps.reader);
  }

  timeline(q: InteractionQuery): TimelinePage {
    this.refresh();
    return this.hydrate(this.deps.index.query(q));
  }

  /** Decisions the rules routed to review and no one has approved or overridden yet. */
  reviewQueue(q: Omit<InteractionQuery, 'reviewState'>): TimelinePage {
    return this.timeline({ ...q, reviewState: 'pending' });
  }

  /** The review queue's size and its oldest item (for the review backlog metrics). */
  reviewBacklog(): { count: number; oldestRecordedAt: string | null } {
    this.refresh();
    return this.deps.index.reviewBacklog();
  }

  decision(decisionId: string): IndexedInteraction | null {
    this.refresh();
    return this.deps.index.byDecisionId(decisionId);
  }

  trace(correlationId: string): TraceView {
    this.refresh();
    const entries = this.deps.reader.byCorrelation(correlationId);
    const cp = this.deps.reader.latestCheckpoint();
    const received = entries.find((e) => e.kind === 'interaction.received');
    return {
      correlationId,
      steps: entries.map((e) => this.step(e)),
      interaction: received ? this.deps.index.byEntryId(received.id) : null,
      checkpointSize: cp?.checkpoint.treeSize ?? null,
    };
  }

  /** Approves or overrides a decision by its entry id; the new entry is journaled and the mirror re-driven. */
  async override(decisionId: string, req: Omit<OverrideRequest, 'decisionEntryId' | 'decisionSeq'>): Promise<OverrideResult> {
    const row = this.decision(decisionId);
    if (!row || row.decisionSeq === null) throw new OverrideError('NOT_FOUND', `no decision ${decisionId} in the journal`);
    const result = await recordOverride(this.deps, { ...req, decisionEntryId: decisionId, decisionSeq: row.decisionSeq });
    this.refresh(true);
    return result;
  }

  integrity(): IntegrityView {
    const { reader } = this.deps;
    const entries = reader.size();
    const cp = reader.latestCheckpoint();
    const cpEntry = cp ? reader.bySeq(cp.seq) : null;
    const anchored = reader.byKind({ kind: 'checkpoint.anchored', afterSeq: Math.max(-1, (cp?.seq ?? 0) - 50_000) });
    // An anchoring outcome whose payload was dropped (retention) says nothing about its anchor.
    const outcomes = filterKind(anchored, 'checkpoint.anchored').flatMap((e) => ('$dropped' in e.payload ? [] : [{ e, p: e.payload }]));
    const newest = new Map<string, (typeof outcomes)[number]>();
    for (const o of outcomes) newest.set(o.p.anchor, o);
    const anchors: AnchorStatus[] = [...newest.values()].map(({ e, p }) => {
      const lastOk = [...outcomes].reverse().find((x) => x.p.anchor === p.anchor && x.p.ok);
      const confirmed = lastOk ? lastOk.p.treeSize : 0;
      return {
        anchor: p.anchor,
        ok: p.ok,
        treeSize: p.treeSize,
        at: e.recordedAt,
        lag: Math.max(0, (cp?.checkpoint.treeSize ?? 0) - confirmed),
        error: p.error ?? null,
      };
    });
    const genesis = reader.bySeq(0);
    return {
      entries,
      checkpoint: cp
        ? {
            seq: cp.seq,
            treeSize: cp.checkpoint.treeSize,
            rootHash: Buffer.from(cp.checkpoint.rootHash).toString('base64'),
            recordedAt: cpEntry?.recordedAt ?? null,
            uncovered: Math.max(0, entries - cp.checkpoint.treeSize),
          }
        : null,
      anchors,
      verifierKey: isKind(genesis, 'journal.created') ? (genesis.payload.verifierKey ?? null) : null,
    };
  }

  connectors(): ConnectorsView {
    this.refresh();
    return { ...this.deps.connectors(), sources: this.deps.index.sources() };
  }

  /** Streams an export and journals that it was made (by whom: the actor, `user:<id>` or `cli`). */
  async export(scope: ExportScope, actor: string, write: (line: string) => void | Promise<void>): Promise<ExportSummary> {
    const summary = await writeExport(this.deps.reader, scope, write);
    const h = summary.header;
    await this.deps.journal.append({
      kind: 'audit.exported',
      source: actor === 'cli' ? 'cli' : 'audit-ui',
      actor,
      correlationId: 'audit/exports',
      idempotencyKey: `export/${actor}/${h.exportedAt}/${createHash('sha256').update(JSON.stringify(scope)).digest('hex').slice(0, 16)}`,
      payload: {
        scope: scope.kind,
        ...(scope.kind === 'range'
          ? { from: new Date(scope.from).toISOString(), until: new Date(scope.until).toISOString() }
          : { correlationHash: summary.correlationHash as string }),
        entries: h.entries,
        treeSize: h.treeSize,
        format: h.format,
      },
    });
    return summary;
  }

  /** A link to the CRM record, when the portal id is configured and the write names an object. */
  hubspotLink(objectType: string | undefined, objectId: string): string | null {
    const portal = this.deps.hubspotPortalId;
    if (!portal) return null;
    const typeIds: Record<string, string> = {
      emails: '0-49',
      calls: '0-48',
      notes: '0-46',
      contacts: '0-1',
      companies: '0-2',
      deals: '0-3',
    };
    const t = objectType ? typeIds[objectType] : undefined;
    return t ? `https://app.hubspot.com/contacts/${encodeURIComponent(portal)}/record/${t}/${encodeURIComponent(objectId)}` : null;
  }

  private hydrate(page: InteractionPage): TimelinePage {
    const rows = page.rows.map((r) => {
      const e = this.deps.reader.bySeq(r.seq);
      const p = isKind(e, 'interaction.received') ? e.payload : undefined;
      const d = r.decisionSeq !== null ? this.deps.reader.bySeq(r.decisionSeq) : null;
      const summary = isKind(d, 'ai.decision') ? d.payload.output?.summary : undefined;
      return {
        ...r,
        subject: p?.subject ?? null,
        sourceId: p?.sourceId ?? null,
        summary: typeof summary === 'string' ? summary : null,
      };
    });
    return { rows, next: page.next, matches: page.matches };
  }

  private proofOf(seq: number): ProofStatus {
    try {
      if (!this.verifier) {
        const g = this.deps.reader.bySeq(0);
        const key = isKind(g, 'journal.created') ? g.payload.verifierKey : undefined;
        if (!key) return { status: 'failed', reason: 'the journal has no genesis entry' };
        this.verifier = parseVerifierKey(key);
      }
      const check = checkInclusionBundle(this.deps.reader.proveInclusion(seq), this.verifier);
      return check.ok ? { status: 'ok' } : { status: 'failed', reason: check.reason ?? 'invalid' };
    } catch (err) {
      if (err instanceof ProofUnavailableError) return { status: 'pending', reason: err.message };
      return { status: 'failed', reason: (err as Error).message };
    }
  }

  /** A step, with `erasedAt` among its facts when its subject was forgotten (shown as "erased on <date>"). */
  private step(e: JournalEntry): TraceStep {
    const step = this.stepOf(e);
    const when = erasedAt(e.payload);
    return when === null ? step : { ...step, facts: { ...step.facts, erasedAt: when } };
  }

  private stepOf(e: JournalEntry): TraceStep {
    const p = (e.payload ?? {}) as Record<string, unknown>;
    const base = {
      seq: e.seq,
      id: e.id,
      kind: e.kind,
      recordedAt: e.recordedAt,
      actor: e.actor,
      source: e.source,
      causationId: e.causationId,
      proof: this.proofOf(e.seq),
    };
    switch (e.kind) {
      case 'interaction.received': {
        const parts = Array.isArray(p.participants) ? (p.participants as { address: string }[]) : [];
        const domains = [...new Set(parts.map((x) => (x.address.includes('@') ? x.address.split('@')[1] : 'phone')))];
        return {
          ...base,
          step: 'received',
          facts: {
            channel: p.channel,
            direction: p.direction,
            sourceId: p.sourceId,
            subject: p.subject ?? null,
            occurredAt: p.occurredAt,
            participants: parts.length,
            domains,
          },
        };
      }
      case 'ai.decision': {
        const out = p.output as { category?: string; summary?: string; urgency?: string; intent?: string } | null | undefined;
        return {
          ...base,
          step: 'ai-decision',
          facts: {
            outcome: p.outcome,
            model: `${String(p.provider)}/${String(p.model)}`,
            prompt: `${String(p.promptId)}@${String(p.promptVersion)}`,
            promptHash: p.promptHash,
            confidence: p.confidence,
            category: out?.category ?? null,
            summary: out?.summary ?? null,
            intent: out?.intent ?? null,
            urgency: out?.urgency ?? null,
            redactions: p.redactions ?? [],
            truncatedTo: p.truncatedTo ?? null,
            reviewRequired: p.reviewRequired ?? false,
            requestId: p.requestId,
            error: p.error ?? null,
          },
        };
      }
      case 'rule.decision': {
        const ev = (p.evaluated ?? {}) as Record<string, unknown>;
        return {
          ...base,
          step: 'rule-decision',
          facts: {
            rule: `${String(p.ruleId)}@${String(p.ruleVersion)}`,
            section: ev.section ?? null,
            inputs: Object.fromEntries(Object.entries(ev).filter(([k]) => k !== 'section' && k !== 'participantHashes')),
            outcome: p.outcome,
            reason: p.reason ?? null,
          },
        };
      }
      case 'crm.write':
      case 'crm.write_failed': {
        const ids = Array.isArray(p.objectIds) ? (p.objectIds as string[]) : [];
        const objectType = typeof p.objectType === 'string' ? p.objectType : undefined;
        const props = (p.properties ?? {}) as Record<string, unknown>;
        const body = [props.hs_email_text, props.hs_call_body, props.hs_note_body].find((x): x is string => typeof x === 'string');
        const category = body ? (/^Category: (\S+)/m.exec(body)?.[1] ?? null) : null;
        // A call activity also holds its transcripts: the other interactions it was written for.
        const holds = Array.isArray(p.members)
          ? (p.members as { entryId?: unknown }[])
              .map((m) => m.entryId)
              .filter((id): id is string => typeof id === 'string' && id !== p.entryId)
          : [];
        return {
          ...base,
          step: 'crm-write',
          facts: {
            request: `${String(p.method)} ${String(p.path)}`,
            status: p.status,
            dryRun: p.dryRun ?? false,
            objectType: objectType ?? null,
            activityOf: typeof p.entryId === 'string' ? p.entryId : null,
            holds,
            category,
            objects: ids.map((id) => ({ id, link: this.hubspotLink(objectType, id) })),
            error: p.error ?? null,
          },
        };
      }
      case 'human.override':
        return {
          ...base,
          step: 'override',
          facts: {
            user: e.actor.replace(/^user:/, ''),
            supersedes: p.supersedes,
            field: p.field,
            from: p.from,
            to: p.to,
            reason: p.reason,
          },
        };
      default:
        return { ...base, step: 'other', facts: { kind: e.kind } };
    }
  }
}
