/** Errors of googleapis / google-auth-library, classified for form polling. */
import { errorForStatus } from './form-poll.ts';
import { FormPollAuthError } from './errors/form-poll-auth.error.ts';
import { FormPollTransientError } from './errors/form-poll-transient.error.ts';

/** googleapis / google-auth-library errors → ours: a refused grant is permanent, 429 / 5xx / network transient. */
export function mapGoogleError(err: unknown): unknown {
  if (typeof err !== 'object' || err === null) return err;
  const e = err as {
    status?: unknown;
    code?: unknown;
    response?: { status?: unknown; data?: { error?: unknown }; headers?: Record<string, unknown> };
  };
  const data = e.response?.data;
  if (typeof data?.error === 'string' && ['invalid_grant', 'invalid_client', 'unauthorized_client'].includes(data.error)) {
    return new FormPollAuthError(`Google refused the grant (${data.error})`, { cause: err });
  }
  const raw = e.response?.status ?? e.status ?? e.code;
  const status = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d{3}$/.test(raw) ? Number(raw) : undefined;
  if (status !== undefined) {
    const retryAfter = e.response?.headers?.['retry-after'];
    return errorForStatus('Google Forms', status, typeof retryAfter === 'string' ? retryAfter : undefined, err) ?? err;
  }
  const code = typeof e.code === 'string' ? e.code : '';
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND'].includes(code))
    return new FormPollTransientError('Google Forms could not be reached', { cause: err });
  return err;
}
