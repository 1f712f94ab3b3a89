/** A classifier could not give a valid classification; `code` says why, so the caller can journal and fall back. */
export class ClassifierError extends Error {
  constructor(
    readonly code: 'TIMEOUT' | 'RATE_LIMITED' | 'REFUSAL' | 'INVALID_OUTPUT' | 'PROVIDER_ERROR' | 'NOT_CONFIGURED',
    message: string,
    readonly details: {
      readonly attempts: number;
      readonly requestId?: string | null;
      readonly retryAfterMs?: number;
      readonly status?: number;
      readonly latencyMs?: number;
    } = { attempts: 1 },
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ClassifierError';
  }
}
