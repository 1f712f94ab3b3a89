/**
 * The pipeline's stages as plain functions over ports: intake → classify → decide → mirror. Each stage appends
 * to the journal before it hands on, with an idempotency key derived from its input, so a retried or
 * redelivered job adds nothing, and a crash anywhere is repaired by running the job again.
 */
import { createHmac } from 'node:crypto';
import type { JournalClient } from '../journal/journal-client.ts';
import type { JournalEntry } from '../journal/entry.ts';
import { isKind, type EntryOf } from '../journal/entry-payload.ts';
import { isJsonObject } from '../journal/json-object.ts';
import type { PayloadOf } from '../journal/kinds.ts';
import type { Logger } from '../config/logger.ts';
import { silentLogger } from '../config/logger.ts';
import {
  ClassificationSchema,
  classificationProblems,
  recordedDecision,
  type Classifier,
  type ClassifierResult,
  type Prompt,
} from './classification.ts';
import { ClassifierError } from './errors/classifier.error.ts';
import { PermanentJobError } from './errors/permanent-job.error.ts';
import {
  InteractionSchema,
  callOf,
  correlationIdFor,
  interactionFromEntry,
  interactionKey,
  interactionPayload,
  type Interaction,
} from './interaction.ts';
import { minimise, type MinimiseOptions } from './minimise.ts';
import { evaluateExclusions, evaluateMirror, evaluateNotifications, evaluateReview, type Ruleset } from './rules.ts';
import type {
  ActivitySource,
  AssociationOverride,
  CrmClient,
  DecisionCache,
  Enqueue,
  MirrorPlan,
  Notifier,
  NotifyChannelName,
} from './ports.ts';
import { notifyJobKey, type JobData } from './job-catalog.ts';
import { buildCallPlan, buildMirrorPlan, type CallPart, type PlanOverride } from './mirror-plan.ts';
import { effectiveAssociations, effectiveCategory } from './override.ts';
import type { RetentionPolicy } from '../journal/retention.ts';
import { modelSeconds, secondsSince } from '../metrics/registry.ts';

export interface PipelineDeps {
  readonly journal: JournalClient;
  /** The configured classifier (the OpenAI adapter, or the offline rules when no model is configured). */
  readonly classifier: Classifier;
  /** The offline rules, used when the model fails. */
  readonly fallback: Classifier;
  readonly prompt: Prompt;
  readonly rules: Ruleset;
  readonly minimise: MinimiseOptions;
  readonly crm: CrmClient;
  readonly notifier: Notifier;
  readonly cache: DecisionCache;
  readonly enqueue: Enqueue;
  readonly sources?: ReadonlyMap<string, ActivitySource>;
  /** Key for the keyed hashes that stand in for identifiers of excluded interactions. */
  readonly identifierKey: Buffer;
  readonly classifyTimeoutMs?: number;
  /**
   * The retention policy whose `categories` raise an interaction's retention once it is classified (a billing
   * interaction to financial-7y): decide journals a `retention.assigned` for it. Without one, nothing is raised.
   */
  readonly retention?: RetentionPolicy;
  readonly logger?: Logger;
}

export type IntakeOutcome =
  | { readonly status: 'accepted'; readonly entry: JournalEntry; readonly duplicate: boolean }
  | { readonly status: 'excluded'; readonly ruleId: string; readonly entry: JournalEntry };

export type DecisionOutcome = 'ok' | 'cached' | 'fallback';

export class Pipeline {
  private readonly log: Logger;
  constructor(private readonly deps: PipelineDeps) {
    this.log = (deps.logger ?? silentLogger).child({ component: 'pipeline' });
  }

  /**
   * Takes an interaction in: excluded ones leave only a rule.decision with keyed hashes of their identifiers;
   * the others are journaled as interaction.received and handed to classify. Resolves after the journal commit,
   * so a webhook may answer 2xx when this returns.
   */
  async intake(raw: Interaction): Promise<IntakeOutcome> {
    // Connectors see broken encodings; a lone surrogate has no canonical JSON form, so it becomes U+FFFD here.
    const parsed = InteractionSchema.safeParse(wellFormed(raw));
    if (!parsed.success)
      throw new PermanentJobError(`invalid interaction: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const ix = parsed.data;
    const { journal, rules } = this.deps;
    const excluded = evaluateExclusions(rules, { interaction: ix });
    if (excluded) {
      const sourceHash = this.hashId(`${ix.source}/${ix.sourceId}`);
      const { entry } = await journal.append({
        kind: 'rule.decision',
        source: ix.source,
        actor: 'rules',
        correlationId: `excluded/${sourceHash.slice(0, 32)}`,
        idempotencyKey: `exclusion/${sourceHash}/${rules.version}`,
        occurredAt: ix.occurredAt,
        payload: {
          ruleId: excluded.ruleId,
          ruleVersion: rules.version,
          evaluated: {
            section: 'exclusions',
            channel: ix.channel,
            direction: ix.direction,
            sourceIdHash: sourceHash,
            participantHashes: ix.participants.map((p) => this.hashId(p.address.toLowerCase())),
          },
          outcome: 'excluded',
          reason: excluded.description ?? `excluded by rule ${excluded.ruleId}`,
        },
      });
      return { status: 'excluded', ruleId: excluded.ruleId, entry };
    }
    const correlationId = correlationIdFor(ix);
    const received = await journal.append({
      kind: 'interaction.received',
      source: ix.source,
      actor: `connector:${ix.source}`,
      correlationId,
      idempotencyKey: interactionKey(ix),
      occurredAt: ix.occurredAt,
      payload: interactionPayload(ix),
    });
    const entry = received.entry;
    await journal.append({
      kind: 'rule.decision',
      source: 'pipeline',
      actor: 'rules',
      correlationId,
      causationId: entry.id,
      idempotencyKey: `rules/${entry.id}/${rules.version}/exclusions`,
      payload: {
        ruleId: 'exclusions',
        ruleVersion: rules.version,
        inputEntryId: entry.id,
        evaluated: { section: 'exclusions', rules: rules.exclusions.map((r) => r.id), channel: ix.channel, direction: ix.direction },
        outcome: 'included',
        reason: 'no exclusion rule matched',
      },
    });
    await this.deps.enqueue('classify', { entryId: entry.id, seq: entry.seq, correlationId }, entry.id);
    return { status: 'accepted', entry, duplicate: received.duplicate };
  }

  /** Whether an item of a source is on the record: journaled, excluded by a rule (found by its keyed hash), or not. */
  async accounted(source: string, sourceId: string): Promise<'received' | 'excluded' | null> {
    if (await this.deps.journal.byIdempotencyKey(interactionKey({ source, sourceId }))) return 'received';
    const hash = this.hashId(`${source}/${sourceId}`);
    const chain = await this.deps.journal.byCorrelation(`excluded/${hash.slice(0, 32)}`);
    return chain.some((e) => e.kind === 'rule.decision') ? 'excluded' : null;
  }

  /** Ingest stage: fetch an item from its source by id and take it in. */
  async ingest(job: JobData<'ingest'>): Promise<IntakeOutcome> {
    const source = this.deps.sources?.get(job.source);
    if (!source) throw new PermanentJobError(`no source named ${job.source} is configured`);
    const ix = await source.fetch(job.sourceId, job.account);
    if (ix === null) throw new PermanentJobError(`${job.source} no longer has item ${job.sourceId}`);
    return this.intake(ix);
  }

  /** Classify stage: one ai.decision per interaction and prompt version (or a failed one and its fallback). */
  async classify(job: JobData<'classify'>, signal?: AbortSignal): Promise<JournalEntry> {
    const { journal, prompt } = this.deps;
    const entry = await this.interactionEntry(job);
    const ix = interactionFromEntry(entry);
    const key = `decision/${entry.id}/${prompt.id}@${prompt.version}`;
    const done = await journal.byIdempotencyKey(key);
    if (done) {
      await this.handOn('decide', job, done);
      return done;
    }
    const m = minimise(ix, this.deps.minimise);
    const base = {
      inputEntryId: entry.id,
      inputHash: m.inputHash,
      promptId: prompt.id,
      promptVersion: prompt.version,
      promptHash: prompt.hash,
      redactions: m.redactions,
      ...(m.truncatedTo !== null ? { truncatedTo: m.truncatedTo } : {}),
    };
    const common = { kind: 'ai.decision', source: 'pipeline', correlationId: job.correlationId, causationId: entry.id } as const;

    const cached = await this.cachedDecision(m.inputHash);
    if (cached) {
      const p = cached.payload;
      const { entry: decision } = await journal.append({
        ...common,
        actor: `classifier:${p.provider}`,
        idempotencyKey: key,
        payload: {
          ...base,
          provider: p.provider,
          model: p.model,
          outcome: 'cached',
          output: p.output,
          confidence: p.confidence,
          tokens: null,
          latencyMs: 0,
          requestId: null,
          attempts: 0,
          reusedEntryId: cached.id,
          reviewRequired: false,
        },
      });
      await this.handOn('decide', job, decision);
      return decision;
    }

    const { classifier, fallback } = this.deps;
    let result: ClassifierResult;
    // Model latency: the call alone, answered or failed (an answer that fails our checks was still an answer).
    const called = process.hrtime.bigint();
    let answered = false;
    try {
      const timeout = AbortSignal.timeout(this.deps.classifyTimeoutMs ?? 60_000);
      result = await classifier.classify(m.input, prompt, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
      answered = true;
      modelSeconds.observe({ provider: classifier.provider, model: classifier.model, outcome: 'ok' }, secondsSince(called));
      const problems = classificationProblems(ClassificationSchema.parse(result.output));
      if (problems.length > 0)
        throw new ClassifierError('INVALID_OUTPUT', `the classification is out of bounds: ${problems.join('; ')}`, {
          attempts: result.attempts,
          requestId: result.requestId,
        });
    } catch (err) {
      // A shutdown is not a model failure: let the job be retried.
      if (signal?.aborted) throw err;
      if (!answered)
        modelSeconds.observe({ provider: classifier.provider, model: classifier.model, outcome: 'failed' }, secondsSince(called));
      const failure =
        err instanceof ClassifierError
          ? err
          : new ClassifierError('PROVIDER_ERROR', `the classifier failed: ${(err as Error).name}`, { attempts: 1 }, { cause: err });
      this.log.warn(
        { entryId: entry.id, code: failure.code, provider: classifier.provider },
        'classifier failed; falling back to the offline rules',
      );
      const { entry: failed } = await journal.append({
        ...common,
        actor: `classifier:${classifier.provider}`,
        idempotencyKey: `${key}/failed`,
        payload: {
          ...base,
          provider: classifier.provider,
          model: classifier.model,
          outcome: 'failed',
          output: null,
          confidence: null,
          tokens: null,
          latencyMs: failure.details.latencyMs ?? 0,
          requestId: failure.details.requestId ?? null,
          attempts: failure.details.attempts,
          error: `${failure.code}: ${failure.message}`.slice(0, 2000),
          reviewRequired: true,
        },
      });
      const fellBack = process.hrtime.bigint();
      const offline = await fallback.classify(m.input, prompt);
      modelSeconds.observe({ provider: offline.provider, model: offline.model, outcome: 'ok' }, secondsSince(fellBack));
      const { entry: decision } = await journal.append({
        ...common,
        actor: `classifier:${offline.provider}`,
        idempotencyKey: key,
        payload: {
          ...base,
          provider: offline.provider,
          model: offline.model,
          outcome: 'fallback',
          output: offline.output,
          confidence: offline.output.confidence,
          tokens: null,
          latencyMs: offline.latencyMs,
          requestId: null,
          attempts: offline.attempts,
          reviewRequired: true,
          replacesEntryId: failed.id,
        },
      });
      await this.handOn('decide', job, decision);
      return decision;
    }
    const { entry: decision } = await journal.append({
      ...common,
      actor: `classifier:${result.provider}`,
      idempotencyKey: key,
      payload: {
        ...base,
        provider: result.provider,
        model: result.model,
        outcome: 'ok',
        output: result.output,
        confidence: result.output.confidence,
        tokens: result.tokens,
        latencyMs: result.latencyMs,
        requestId: result.requestId,
        attempts: result.attempts,
        reviewRequired: false,
      },
    });
    await this.deps.cache.set(prompt.hash, m.inputHash, decision.seq);
    await this.handOn('decide', job, decision);
    return decision;
  }

  /** Decide stage: mirror or not, review or not, and who to notify; each a rule.decision on the record. */
  async decide(job: JobData<'decide'>): Promise<{ mirror: boolean; review: boolean; notified: string[] }> {
    const { journal, rules } = this.deps;
    const entry = await this.interactionEntry(job);
    const decision = await this.decisionEntry(job);
    const ix = interactionFromEntry(entry);
    const d = recordedDecision(decision);
    const facts = { interaction: ix, classification: d.output, decisionOutcome: d.outcome };
    const evaluated = {
      category: d.output.category,
      confidence: d.output.confidence,
      urgency: d.output.urgency,
      decisionOutcome: d.outcome,
      channel: ix.channel,
      direction: ix.direction,
    };
    const mirror = evaluateMirror(rules, facts);
    const review = evaluateReview(rules, facts);
    const notifications = evaluateNotifications(rules, facts);
    const decisionOf = (
      section: string,
      ruleId: string,
      outcome: string,
      reason: string | undefined,
      extra: Record<string, string[]> = {},
    ): Parameters<JournalClient['append']>[0] => ({
      kind: 'rule.decision',
      source: 'pipeline',
      actor: 'rules',
      correlationId: job.correlationId,
      causationId: decision.id,
      idempotencyKey: `rules/${entry.id}/${rules.version}/${section}`,
      payload: {
        ruleId,
        ruleVersion: rules.version,
        inputEntryId: decision.id,
        evaluated: { section, ...evaluated, ...extra },
        outcome,
        ...(reason ? { reason } : {}),
      },
    });
    // The channels each notification goes out on are part of its decision (the re-drive reads them). A decide
    // run again keeps the channels it recorded, even if the configuration changed since (and a decision recorded
    // before delivery jobs existed, without channels, stands as the dry run it was).
    const planned = await Promise.all(
      notifications.map(async (n) => {
        const earlier = await journal.byIdempotencyKey(`rules/${entry.id}/${rules.version}/notify/${n.ruleId}`);
        const recorded = isKind(earlier, 'rule.decision') ? earlier.payload.evaluated?.channels : undefined;
        if (earlier && !Array.isArray(recorded)) return { ...n, channels: [] as NotifyChannelName[], extra: {} };
        const channels = (Array.isArray(recorded) ? recorded : this.deps.notifier.channelsFor(n.notify)) as NotifyChannelName[];
        return { ...n, channels, extra: { channels: [...channels] } };
      }),
    );
    await journal.appendBatch([
      decisionOf('mirror', mirror.ruleId, mirror.outcome, mirror.description),
      decisionOf('review', review.ruleId, review.outcome, review.description),
      ...planned.map((n) => decisionOf(`notify/${n.ruleId}`, n.ruleId, `notify:${n.notify}`, undefined, n.extra)),
      ...this.retentionRaise(entry, decision, d.output.category, job.correlationId),
    ]);
    // Delivery is a job per (rule, channel): a failing channel retries on its own, without deciding again.
    for (const n of planned) {
      for (const channel of n.channels) {
        await this.deps.enqueue(
          'notify',
          {
            entryId: entry.id,
            seq: entry.seq,
            correlationId: job.correlationId,
            decisionEntryId: decision.id,
            decisionSeq: decision.seq,
            ruleId: n.ruleId,
            channel,
          },
          notifyJobKey(entry.id, n.ruleId, channel),
        );
      }
    }
    if (mirror.outcome === 'mirror') await this.deps.enqueue('mirror', job, entry.id);
    return { mirror: mirror.outcome === 'mirror', review: review.outcome === 'review', notified: notifications.map((n) => n.notify) };
  }

  /**
   * The retention.assigned that raises the interaction's promise when the policy gives its category a class
   * (`categories`), e.g. billing → financial-7y; none when it gives none or the entry already has that class. The
   * journal keeps the longest promise, so an assignment shorter than the entry's class changes nothing.
   */
  private retentionRaise(
    entry: JournalEntry,
    decision: JournalEntry,
    category: string,
    correlationId: string,
  ): Parameters<JournalClient['append']>[0][] {
    const policy = this.deps.retention;
    const cls = policy?.classForCategory(category) ?? null;
    if (!policy || cls === null || cls === entry.retentionClass) return [];
    return [
      {
        kind: 'retention.assigned',
        source: 'pipeline',
        actor: 'rules',
        correlationId,
        causationId: decision.id,
        idempotencyKey: `retention/${entry.id}/${cls}`,
        payload: {
          entryId: entry.id,
          entrySeq: entry.seq,
          retentionClass: cls,
          rule: `categories.${category}`,
          policyVersion: policy.version,
          decisionEntryId: decision.id,
        },
      },
    ];
  }

  /**
   * Mirror stage: exactly one CRM activity per interaction, a call's transcripts on their call's (a transcript's
   * mirror writes the call's plan, now with its section). The CRM client journals every call.
   */
  async mirror(job: JobData<'mirror'>): Promise<void> {
    await this.deps.crm.mirror(
      await this.planFor({
        entryId: job.entryId,
        entrySeq: job.seq,
        correlationId: job.correlationId,
        decisionEntryId: job.decisionEntryId,
        decisionSeq: job.decisionSeq,
      }),
    );
  }

  /**
   * The plan of one interaction, built from the journal: what the mirror stage and the batched HubSpot writer
   * (jobs/crm-batch/, which keeps only these ids in Redis) both write. The one place a plan is made. For a call
   * or a transcript it is the plan of the whole call (callPlanFor): its entry ids are the call's anchor's.
   */
  async planFor(ref: {
    entryId: string;
    entrySeq: number;
    correlationId: string;
    decisionEntryId: string;
    decisionSeq: number;
  }): Promise<MirrorPlan> {
    const job = {
      entryId: ref.entryId,
      seq: ref.entrySeq,
      correlationId: ref.correlationId,
      decisionEntryId: ref.decisionEntryId,
      decisionSeq: ref.decisionSeq,
    };
    const entry = await this.interactionEntry(job);
    const decision = await this.decisionEntry(job);
    // A reviewer's newest category override wins over the model's, and an association override over the matching
    // rule (overrides re-drive the mirror).
    const chain = await this.deps.journal.byCorrelation(job.correlationId);
    const ix = interactionFromEntry(entry);
    // A call and its transcripts are one call activity: any of them plans the whole call.
    if (callOf(ix) !== null) return this.callPlanFor(entry, ix, decision, chain);
    const { override, category } = effectiveCategory(decision, chain);
    const plan = buildMirrorPlan(ix, entry, decision, override ? { entryId: override.id, category } : null);
    const associations = effectiveAssociations(decision, chain);
    return associations ? { ...plan, associationOverride: associations } : plan;
  }

  /**
   * The plan of the call `entry` is (or is a transcript of): one activity for the call's interactions of the same
   * source in this correlation, anchored on the first of them journaled (see buildCallPlan). A part's section is
   * built from its newest decision (the job's, for the interaction the job is about) once that decision is to be
   * mirrored (the mirror rule said so, or a reviewer's override re-drove it): an undecided part, or one the rules
   * keep out of the CRM, adds nothing until its own mirror runs. The plan's decision is the anchor's when the
   * activity carries it, else the job's. The newest association override of any carried decision applies.
   */
  private callPlanFor(entry: JournalEntry, ix: Interaction, decision: EntryOf<'ai.decision'>, chain: readonly JournalEntry[]): MirrorPlan {
    const call = callOf(ix);
    const inputOf = (d: EntryOf<'ai.decision'>): string | undefined => d.payload.inputEntryId;
    const group = chain
      .filter(
        (e) =>
          e.kind === 'interaction.received' && e.source === entry.source && isInteractionPayload(e.payload) && callOf(e.payload) === call,
      )
      .sort((a, b) => a.seq - b.seq);
    if (!group.some((e) => e.id === entry.id)) group.push(entry);
    const newestDecision = (entryId: string): EntryOf<'ai.decision'> | null => {
      let newest: EntryOf<'ai.decision'> | null = null;
      for (const e of chain) {
        if (
          isKind(e, 'ai.decision') &&
          e.payload.inputEntryId === entryId &&
          e.payload.outcome !== 'failed' &&
          typeof e.payload.output === 'object' &&
          e.payload.output !== null &&
          (newest === null || e.seq > newest.seq)
        )
          newest = e;
      }
      return newest;
    };
    const mirrored = (d: JournalEntry): boolean => {
      let rule: EntryOf<'rule.decision'> | null = null;
      for (const e of chain) {
        if (
          isKind(e, 'human.override') &&
          e.payload.supersedes === d.id &&
          (e.payload.field === 'category' || e.payload.field === 'associations')
        )
          return true;
        if (
          isKind(e, 'rule.decision') &&
          e.payload.inputEntryId === d.id &&
          e.payload.evaluated?.section === 'mirror' &&
          (rule === null || e.seq > rule.seq)
        )
          rule = e;
      }
      return rule !== null && rule.payload.outcome === 'mirror';
    };
    const overrideOf = (d: EntryOf<'ai.decision'>): PlanOverride | null => {
      const { override, category } = effectiveCategory(d, chain);
      return override ? { entryId: override.id, category } : null;
    };
    const parts: CallPart[] = [];
    for (const [i, e] of group.entries()) {
      let partIx: Interaction;
      try {
        partIx = e.id === entry.id ? ix : interactionFromEntry(e);
      } catch (err) {
        // A transcript whose subject was forgotten leaves the call's activity; the call's own anchor cannot.
        if (err instanceof PermanentJobError && i > 0) continue;
        if (err instanceof PermanentJobError)
          throw new PermanentJobError(`the call activity of ${entry.id} is anchored on ${e.id}, which cannot be planned: ${err.message}`);
        throw err;
      }
      const own = e.id === entry.id && inputOf(decision) === entry.id ? decision : newestDecision(e.id);
      const carried = own !== null && mirrored(own) ? own : null;
      parts.push({ entry: e, ix: partIx, decision: carried, override: carried ? overrideOf(carried) : null });
    }
    // Nothing on the record says to mirror any part (a mirror run without its rule decision): the job's decision is.
    if (!parts.some((p) => p.decision !== null)) {
      const at = parts.findIndex((p) => p.entry.id === inputOf(decision));
      const part = parts[at];
      if (part) parts[at] = { ...part, decision, override: overrideOf(decision) };
    }
    // parts[0] is the anchor (an anchor that cannot be planned threw above).
    const plan = buildCallPlan(parts, parts[0]?.decision ?? decision);
    let associations: AssociationOverride | null = null;
    let at = -1;
    for (const d of parts.flatMap((p) => (p.decision ? [p.decision] : []))) {
      const a = effectiveAssociations(d, chain);
      const seq = a ? (chain.find((e) => e.id === a.entryId)?.seq ?? -1) : -1;
      if (a && seq > at) [associations, at] = [a, seq];
    }
    return associations ? { ...plan, associationOverride: associations } : plan;
  }

  private async handOn(queue: 'decide', job: JobData<'classify'>, decision: JournalEntry): Promise<void> {
    await this.deps.enqueue(queue, { ...job, decisionEntryId: decision.id, decisionSeq: decision.seq }, job.entryId);
  }

  private async cachedDecision(inputHash: string): Promise<{ readonly id: string; readonly payload: PayloadOf<'ai.decision'> } | null> {
    const { cache, journal, prompt } = this.deps;
    const seq = await cache.get(prompt.hash, inputHash);
    if (seq === null) return null;
    const e = await journal.bySeq(seq);
    // The cache only points into the journal; trust what the journal says, not the pointer. A decision whose
    // subject was forgotten since has no output to reuse (and must not be copied into another person's record).
    if (!isKind(e, 'ai.decision')) return null;
    const p = e.payload;
    if (p.inputHash !== inputHash || p.promptHash !== prompt.hash || p.outcome !== 'ok' || p.output === undefined) return null;
    return { id: e.id, payload: p };
  }

  private async interactionEntry(job: { entryId: string; seq: number }): Promise<JournalEntry> {
    const entry = await this.deps.journal.bySeq(job.seq);
    if (!entry || entry.id !== job.entryId || entry.kind !== 'interaction.received') {
      throw new PermanentJobError(`journal entry seq ${job.seq} is not the interaction ${job.entryId}`);
    }
    return entry;
  }

  private async decisionEntry(job: { decisionEntryId: string; decisionSeq: number }): Promise<EntryOf<'ai.decision'>> {
    const entry = await this.deps.journal.bySeq(job.decisionSeq);
    if (!isKind(entry, 'ai.decision') || entry.id !== job.decisionEntryId) {
      throw new PermanentJobError(`journal entry seq ${job.decisionSeq} is not the decision ${job.decisionEntryId}`);
    }
    return entry;
  }

  /** A keyed hash: stable within a deployment, useless for dictionary attacks without the key. */
  private hashId(value: string): string {
    return createHmac('sha256', this.deps.identifierKey).update(value).digest('hex');
  }
}

/** Whether a journaled interaction payload still says what it is (a dropped or archived one is null). */
function isInteractionPayload(payload: unknown): payload is Pick<Interaction, 'channel' | 'sourceId' | 'threadId'> {
  return (
    isJsonObject(payload) &&
    typeof payload.channel === 'string' &&
    typeof payload.sourceId === 'string' &&
    (payload.threadId === undefined || typeof payload.threadId === 'string')
  );
}

function wellFormed(value: unknown): unknown {
  if (typeof value === 'string') return value.toWellFormed();
  if (Array.isArray(value)) return value.map(wellFormed);
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.toWellFormed(), wellFormed(v)]));
  return value;
}
