/**
 * HubSpot form submissions, polled: GET /form-integrations/v1/submissions/forms/{guid} through the real
 * `@hubspot/api-client` (`client.apiRequest`). HubSpot answers newest first,
 * `{ results: [{ submittedAt (epoch ms), values: [{ name, value }], pageUrl, conversionId? }],
 *    paging: { next: { after, link } } }`, pages of `limit` ≤ 50; we page until the submissions are older than the
 * cursor (or the backfill floor).
 *
 * Each submission becomes one form Interaction with source `hubspot-forms` (the webhook receiver's source, so a
 * submission that arrives both ways is one entry when both carry its conversion id). Its stable id is the
 * `conversionId`, else `h<SHA-256 of form guid, submittedAt and the values>` (documented in README.md).
 */
import { createHash } from 'node:crypto';
import type { Client } from '@hubspot/api-client';
import { z } from 'zod';
import { InteractionSchema, type Interaction, type Participant } from '../../src/pipeline/interaction.ts';
import { errorForStatus, withBackoff, type FormFeed, type PolledSubmission } from './form-poll.ts';
import { FormPollTransientError } from './errors/form-poll-transient.error.ts';
import { SOURCES } from '../../src/journal/source-catalog.ts';

export const HUBSPOT_SUBMISSIONS_PAGE = 50;

const SubmissionSchema = z.object({
  conversionId: z.string().min(1).max(256).optional(),
  submittedAt: z.number().int().nonnegative(),
  values: z
    .array(z.object({ name: z.string().max(512), value: z.union([z.string(), z.number(), z.boolean()]).transform(String) }))
    .max(5000)
    .default([]),
  pageUrl: z.string().max(4096).optional(),
});
const PageSchema = z.object({
  results: z.array(SubmissionSchema).default([]),
  paging: z.object({ next: z.object({ after: z.string().min(1) }).optional() }).optional(),
});
export type HubSpotSubmission = z.infer<typeof SubmissionSchema>;

export interface HubSpotFormsFeedOptions {
  readonly accessToken: string;
  /** API root (default https://api.hubapi.com); tests point it at a local fake. */
  readonly basePath?: string;
  readonly formGuid: string;
  /** The form's name for our rules (metadata.form), e.g. `contact-sales`; default: the guid. */
  readonly formName?: string;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** The stable id of a submission: HubSpot's conversion id, else a hash of what identifies it. */
export function hubSpotSubmissionId(formGuid: string, s: HubSpotSubmission): string {
  if (s.conversionId) return s.conversionId;
  const values = s.values.map((v) => [v.name, v.value]);
  return `h${createHash('sha256')
    .update(JSON.stringify([formGuid, s.submittedAt, values]))
    .digest('hex')
    .slice(0, 40)}`;
}

export function hubSpotSubmissionInteraction(formGuid: string, formName: string, s: HubSpotSubmission): Interaction {
  const fields = new Map<string, string[]>();
  for (const v of s.values) fields.set(v.name, [...(fields.get(v.name) ?? []), v.value]);
  const one = (name: string): string | undefined => fields.get(name)?.find((x) => x.trim() !== '');
  const email = one('email');
  const name = [one('firstname'), one('lastname')].filter((x) => x !== undefined).join(' ');
  const participants: Participant[] =
    email && z.email().safeParse(email).success ? [{ role: 'submitter', address: email, ...(name ? { name } : {}) }] : [];
  const lines = [...fields]
    .filter(([k]) => !k.startsWith('hs_'))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, vs]) => `${k}: ${vs.join(', ')}`);
  return InteractionSchema.parse({
    channel: 'form',
    source: SOURCES.hubspotForms,
    sourceId: hubSpotSubmissionId(formGuid, s),
    direction: 'inbound',
    occurredAt: new Date(s.submittedAt).toISOString(),
    participants,
    subject: `Form "${formName}"`,
    ...(lines.length > 0 ? { text: lines.join('\n') } : {}),
    metadata: { form: formName, formGuid, ...(s.pageUrl ? { pageUrl: s.pageUrl } : {}) },
  });
}

export class HubSpotFormsFeed implements FormFeed {
  private client: Promise<Client> | null = null;
  constructor(private readonly o: HubSpotFormsFeedOptions) {}

  /** Loaded on first use: the client library is large, and most processes never poll HubSpot. */
  private hubspot(): Promise<Client> {
    // Retries are ours (withBackoff), so that a refused token is never retried and 429s honour Retry-After.
    this.client ??= import('@hubspot/api-client').then(
      ({ Client: HubSpotClient }) =>
        new HubSpotClient({
          accessToken: this.o.accessToken,
          ...(this.o.basePath ? { basePath: this.o.basePath.replace(/\/$/, '') } : {}),
          numberOfApiCallRetries: 0,
        }),
    );
    return this.client;
  }

  async list(cursor: string | null, floorMs: number): Promise<PolledSubmission[]> {
    const since = cursor !== null && /^\d+$/.test(cursor) ? Number(cursor) : floorMs;
    const out: PolledSubmission[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await withBackoff(() => this.page(after), this.o.sleep ? { sleep: this.o.sleep } : {});
      let older = false;
      for (const s of page.results) {
        if (s.submittedAt < since) {
          older = true; // newest first: everything after this one is older still
          continue;
        }
        out.push({
          at: String(s.submittedAt),
          atMs: s.submittedAt,
          interaction: hubSpotSubmissionInteraction(this.o.formGuid, this.o.formName ?? this.o.formGuid, s),
        });
      }
      after = page.paging?.next?.after;
      if (older || !after || page.results.length === 0) return out;
    }
  }

  private async page(after: string | undefined): Promise<z.infer<typeof PageSchema>> {
    const path = `/form-integrations/v1/submissions/forms/${encodeURIComponent(this.o.formGuid)}`;
    const client = await this.hubspot();
    let res: Response;
    try {
      res = (await client.apiRequest({
        method: 'GET',
        path,
        qs: { limit: String(HUBSPOT_SUBMISSIONS_PAGE), ...(after ? { after } : {}) },
      })) as unknown as Response;
    } catch (err) {
      const status = statusOf(err);
      throw (
        (status !== undefined ? errorForStatus('HubSpot', status, undefined, err) : null) ??
        new FormPollTransientError('HubSpot could not be reached', { cause: err })
      );
    }
    if (!res.ok) {
      const mapped = errorForStatus('HubSpot', res.status, res.headers.get('retry-after'));
      if (mapped) throw mapped;
      throw new Error(`HubSpot answered HTTP ${res.status} for form ${this.o.formGuid} submissions`);
    }
    const parsed = PageSchema.safeParse(await res.json());
    if (!parsed.success)
      throw new Error(
        `HubSpot's submissions page for form ${this.o.formGuid} is not in the documented shape: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.code}`).join('; ')}`,
      );
    return parsed.data;
  }
}

function statusOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; status?: unknown; response?: { status?: unknown } } | null;
  const s = e?.response?.status ?? e?.status ?? e?.code;
  return typeof s === 'number' ? s : undefined;
}
