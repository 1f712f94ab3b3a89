/**
 * The catalogue of what the product writes to the journal: every `source` of an `interaction.received` entry
 * (with its channel and the retention class the README documents for it), and the other (kind, source) pairs
 * the product appends. Connectors name their source through these constants, so a new source is added here
 * (and the retention-coverage test then checks that config/retention.json gives it its documented class), and
 * `unmatchedRules` (retention.ts) can tell which policy rules decide nothing the product writes.
 */

/** The channels an interaction comes through (the `channel` of an interaction.received payload). */
export const CHANNELS = ['email', 'call', 'form'] as const;
export type Channel = (typeof CHANNELS)[number];

export interface InteractionSourceSpec {
  readonly channel: Channel;
  /** The retention class the README documents for its interactions. */
  readonly retentionClass: string;
  /** Where it comes from, for people. */
  readonly description: string;
}

/** Source names the connectors write (the journal entry's `source`). */
export const SOURCES = {
  gmail: 'gmail',
  webform: 'webform',
  hubspotForms: 'hubspot-forms',
  googleForms: 'google-forms',
  callsWebhook: 'calls',
  callsCsv: 'csv-import',
  twilio: 'twilio',
  aircall: 'aircall',
} as const;
export type InteractionSource = (typeof SOURCES)[keyof typeof SOURCES];

/** Every source the product writes interaction.received entries from. */
export const INTERACTION_SOURCES: Readonly<Record<InteractionSource, InteractionSourceSpec>> = {
  gmail: { channel: 'email', retentionClass: 'sales-2y', description: 'Gmail inboxes (connectors/gmail)' },
  webform: { channel: 'form', retentionClass: 'marketing-90d', description: 'generic form webhook (POST /webhooks/forms)' },
  'hubspot-forms': { channel: 'form', retentionClass: 'marketing-90d', description: 'HubSpot form submissions (webhook and poll)' },
  'google-forms': { channel: 'form', retentionClass: 'marketing-90d', description: 'Google Forms responses (poll)' },
  calls: { channel: 'call', retentionClass: 'sales-2y', description: 'generic call webhook (POST /webhooks/calls)' },
  'csv-import': { channel: 'call', retentionClass: 'sales-2y', description: 'call log CSV import (import-calls)' },
  twilio: { channel: 'call', retentionClass: 'sales-2y', description: 'Twilio call and transcription webhooks' },
  aircall: { channel: 'call', retentionClass: 'sales-2y', description: 'Aircall call and transcription webhooks' },
};

export function isInteractionSource(source: string): source is InteractionSource {
  return Object.prototype.hasOwnProperty.call(INTERACTION_SOURCES, source);
}

/** The channel of a catalogued interaction source (undefined for any other source). */
export function channelOfSource(source: string): Channel | undefined {
  return isInteractionSource(source) ? INTERACTION_SOURCES[source].channel : undefined;
}

/** One (kind, source[, channel]) the product writes: what a retention rule can match. */
export interface WrittenEntry {
  readonly kind: string;
  readonly source: string;
  readonly channel?: Channel;
}

/** The journal's own records, the pipeline's and the connectors' bookkeeping: the (kind, source) pairs besides interactions. */
const OTHER_WRITES: readonly (readonly [kind: string, sources: readonly string[]])[] = [
  ['ai.decision', ['pipeline']],
  ['rule.decision', ['pipeline', 'hubspot']],
  ['retention.assigned', ['pipeline']],
  ['crm.write', ['hubspot']],
  ['crm.write_failed', ['hubspot']],
  ['state.changed', ['hubspot', 'gmail']],
  ['human.override', ['audit-ui', 'api', 'cli']],
  ['audit.login', ['audit-ui']],
  ['audit.exported', ['audit-ui', 'cli']],
  ['connector.cursor_advanced', ['gmail', 'hubspot-forms', 'google-forms']],
  ['connector.health', ['gmail', 'hubspot', 'hubspot-forms', 'google-forms', 'journal']],
  ['inbox.connected', ['gmail', 'google-forms']],
  ['webhook.rejected', ['web']],
  ['job.failed', ['pipeline']],
  ['notification.sent', ['pipeline']],
  ['notification.attempted', ['pipeline']],
  ['notification.failed', ['pipeline']],
  ['privacy.erased', ['cli']],
  ['journal.created', ['journal']],
  ['checkpoint', ['journal']],
  ['checkpoint.anchored', ['journal']],
  ['retention.policy', ['journal']],
  ['segment.sealed', ['journal']],
  ['segment.archived', ['journal']],
  ['segment.pruned', ['journal']],
];

/**
 * Everything the product writes, as retention rules see it: each interaction source with its channel, the
 * exclusion rule.decision each interaction source can leave, and the other pairs above.
 */
export function writtenEntries(): WrittenEntry[] {
  const out: WrittenEntry[] = [];
  for (const [source, spec] of Object.entries(INTERACTION_SOURCES)) {
    out.push({ kind: 'interaction.received', source, channel: spec.channel });
    // An excluded interaction leaves only a rule.decision under its source (pipeline.ts intake).
    out.push({ kind: 'rule.decision', source, channel: spec.channel });
  }
  for (const [kind, sources] of OTHER_WRITES) for (const source of sources) out.push({ kind, source });
  return out;
}
