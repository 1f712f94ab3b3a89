/**
 * Google Forms responses, polled through googleapis: `forms.responses.list` with `filter: 'timestamp >= <cursor>'`
 * (paged with pageToken), and `forms.get` once per poll for the question titles, so answers read as
 * `Question: answer`. The cursor is a response's `lastSubmittedTime`; the stable id is its `responseId` (an
 * edited response keeps its id and is not journaled again). Auth: a Google OAuth grant per form, with the scopes
 * forms.responses.readonly and forms.body.readonly (see google-forms.oauth.ts).
 */
import type { forms_v1 } from 'googleapis';
import { googleApis } from '../google/googleapis.ts';
import { z } from 'zod';
import { InteractionSchema, type Interaction, type Participant } from '../../src/pipeline/interaction.ts';
import { withBackoff, type FormFeed, type PolledSubmission } from './form-poll.ts';
import { mapGoogleError } from './google-forms.errors.ts';
import type { GoogleOAuth2Client } from './google-forms.oauth.ts';
import { SOURCES } from '../../src/journal/source-catalog.ts';

export interface GoogleFormsFeedOptions {
  readonly formId: string;
  readonly auth: GoogleOAuth2Client;
  /** API root (default https://forms.googleapis.com/); tests point it at a local fake. */
  readonly rootUrl?: string;
  readonly sleep?: (ms: number) => Promise<void>;
}

const NO_RETRY = { retry: false } as const;

/** Question id → title, for every question of the form (grid rows included, as `Title / Row`). */
export function questionTitles(form: forms_v1.Schema$Form): Map<string, string> {
  const titles = new Map<string, string>();
  for (const item of form.items ?? []) {
    const title = item.title ?? '';
    const q = item.questionItem?.question?.questionId;
    if (q) titles.set(q, title || q);
    for (const row of item.questionGroupItem?.questions ?? []) {
      if (row.questionId) titles.set(row.questionId, [title, row.rowQuestion?.title].filter((x) => x).join(' / ') || row.questionId);
    }
  }
  return titles;
}

export function googleResponseInteraction(
  formId: string,
  formTitle: string,
  titles: ReadonlyMap<string, string>,
  r: forms_v1.Schema$FormResponse,
): Interaction | null {
  if (!r.responseId || !r.lastSubmittedTime) return null;
  const lines: string[] = [];
  for (const [qid, answer] of Object.entries(r.answers ?? {})) {
    const values = [
      ...(answer.textAnswers?.answers ?? []).map((a) => a.value ?? ''),
      ...(answer.fileUploadAnswers?.answers ?? []).map((f) => `[file ${f.fileName ?? f.fileId ?? ''}]`),
    ].filter((v) => v !== '');
    if (values.length > 0) lines.push(`${titles.get(qid) ?? answer.questionId ?? qid}: ${values.join(', ')}`);
  }
  lines.sort();
  const email = r.respondentEmail ?? undefined;
  const participants: Participant[] = email && z.email().safeParse(email).success ? [{ role: 'submitter', address: email }] : [];
  return InteractionSchema.parse({
    channel: 'form',
    source: SOURCES.googleForms,
    sourceId: r.responseId,
    direction: 'inbound',
    occurredAt: new Date(r.lastSubmittedTime).toISOString(),
    participants,
    subject: `Form "${formTitle}"`,
    ...(lines.length > 0 ? { text: lines.join('\n') } : {}),
    metadata: { form: formTitle, formId },
  });
}

export class GoogleFormsFeed implements FormFeed {
  private readonly forms: forms_v1.Forms;
  constructor(private readonly o: GoogleFormsFeedOptions) {
    this.forms = googleApis().forms({ version: 'v1', auth: o.auth, ...(o.rootUrl ? { rootUrl: o.rootUrl } : {}) });
  }

  async list(cursor: string | null, floorMs: number): Promise<PolledSubmission[]> {
    const backoff = this.o.sleep ? { sleep: this.o.sleep } : {};
    const form = (await withBackoff(() => call(() => this.forms.forms.get({ formId: this.o.formId }, NO_RETRY)), backoff)).data;
    const titles = questionTitles(form);
    const formTitle = form.info?.title || form.info?.documentTitle || this.o.formId;
    const since = cursor ?? new Date(floorMs).toISOString();
    const out: PolledSubmission[] = [];
    let pageToken: string | undefined;
    do {
      const token = pageToken;
      const page = (
        await withBackoff(
          () =>
            call(() =>
              this.forms.forms.responses.list(
                { formId: this.o.formId, filter: `timestamp >= ${since}`, pageSize: 500, ...(token ? { pageToken: token } : {}) },
                NO_RETRY,
              ),
            ),
          backoff,
        )
      ).data;
      for (const r of page.responses ?? []) {
        const ix = googleResponseInteraction(this.o.formId, formTitle, titles, r);
        const at = r.lastSubmittedTime;
        if (ix && at) out.push({ at, atMs: Date.parse(at), interaction: ix });
      }
      pageToken = page.nextPageToken ?? undefined;
    } while (pageToken);
    return out;
  }
}

async function call<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw mapGoogleError(err);
  }
}
