/**
 * The OpenAI adapter of the `Classifier` port: one chat completion with a strict JSON-schema response format,
 * validated by zod and `classificationProblems`. Works with any OpenAI-compatible server (baseURL, model, key).
 * SDK types stay in this folder; callers see `ClassifierResult` and `ClassifierError` only.
 */
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError, OpenAIError, RateLimitError } from 'openai';
import { ContentFilterFinishReasonError, LengthFinishReasonError } from 'openai/core/error';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import { ClassificationSchema, classificationProblems } from '../../src/pipeline/classification.ts';
import type { Classification, Classifier, ClassifierInput, ClassifierResult, Prompt } from '../../src/pipeline/classification.ts';
import { ClassifierError } from '../../src/pipeline/errors/classifier.error.ts';

export interface OpenAiClassifierOptions {
  readonly apiKey: string;
  /** Defaults to the public API; set it for OpenAI-compatible servers (and for tests). */
  readonly baseURL?: string;
  /** e.g. 'gpt-4o-mini' */
  readonly model: string;
  /** Per attempt (the SDK's `timeout`), default 30000. */
  readonly timeoutMs?: number;
  /** SDK retries for 408/409/429/5xx and connection errors and timeouts, default 2. */
  readonly maxRetries?: number;
  /** Default 0. */
  readonly temperature?: number;
  readonly fetch?: typeof fetch;
}

const DEFAULT_BASE_URL = 'https://api.openai.com/v1';
const RESPONSE_FORMAT_NAME = 'classification';

/** What the counting fetch saw during one `classify` call. */
interface CallTrace {
  attempts: number;
  requestId: string | null;
}

/**
 * The user message: a fixed layout so that the same input always gives the same bytes (and the same cache key).
 * Exported for tests; it contains the interaction text, so never log it.
 */
export function renderClassifierInput(input: ClassifierInput): string {
  return [
    `Channel: ${input.channel}`,
    `Direction: ${input.direction}`,
    `Domains: ${input.domains.length > 0 ? input.domains.join(', ') : '(none)'}`,
    `Subject: ${input.subject ?? '(none)'}`,
    '',
    'Text:',
    input.text,
  ].join('\n');
}

/** Classifies with one chat completion. Throws ClassifierError (with attempts, requestId, status) when it cannot. */
export class OpenAiClassifier implements Classifier {
  readonly provider = 'openai';
  readonly model: string;
  readonly #client: OpenAI | null;
  readonly #temperature: number;
  readonly #fetch: typeof fetch;
  // Built once: the JSON schema conversion is not free, and the object carries the SDK's parser.
  readonly #responseFormat = zodResponseFormat(ClassificationSchema, RESPONSE_FORMAT_NAME);

  constructor(options: OpenAiClassifierOptions) {
    this.model = options.model;
    this.#temperature = options.temperature ?? 0;
    this.#fetch = options.fetch ?? globalThis.fetch;
    // Every option the SDK would otherwise read from process.env is passed explicitly: config comes from src/config.
    // logLevel is explicit too, so OPENAI_LOG=debug cannot make the SDK log request bodies (prompt, interaction text).
    this.#client =
      options.apiKey.trim() === '' || options.model.trim() === ''
        ? null
        : new OpenAI({
            apiKey: options.apiKey,
            adminAPIKey: null,
            organization: null,
            project: null,
            webhookSecret: null,
            baseURL: options.baseURL ?? DEFAULT_BASE_URL,
            timeout: options.timeoutMs ?? 30_000,
            maxRetries: options.maxRetries ?? 2,
            logLevel: 'warn',
            fetch: this.#fetch,
          });
  }

  async classify(input: ClassifierInput, prompt: Prompt, options?: { signal?: AbortSignal }): Promise<ClassifierResult> {
    if (this.#client === null) {
      throw new ClassifierError('NOT_CONFIGURED', 'the OpenAI classifier has no API key or model', { attempts: 0 });
    }
    const trace: CallTrace = { attempts: 0, requestId: null };
    // A client per call (cheap: it shares the options) so that the fetch it uses counts this call's attempts only.
    const client = this.#client.withOptions({ fetch: this.#countingFetch(trace) });
    const started = performance.now();
    try {
      const completion = await client.chat.completions.parse(
        {
          model: this.model,
          temperature: this.#temperature,
          messages: [
            { role: 'system', content: prompt.instructions },
            { role: 'user', content: renderClassifierInput(input) },
          ],
          response_format: this.#responseFormat,
        },
        options?.signal ? { signal: options.signal } : undefined,
      );
      const latencyMs = Math.round(performance.now() - started);
      const requestId = completion._request_id ?? trace.requestId;
      const details = { attempts: trace.attempts, requestId, latencyMs };
      const choice = completion.choices[0];
      if (choice === undefined) throw new ClassifierError('INVALID_OUTPUT', 'the completion has no choices', details);
      const { message } = choice;
      if (typeof message.refusal === 'string' && message.refusal !== '') {
        throw new ClassifierError('REFUSAL', 'the model refused to classify the interaction', details);
      }
      if (message.parsed === null) throw new ClassifierError('INVALID_OUTPUT', 'the model returned no content', details);
      const output: Classification = message.parsed;
      const problems = classificationProblems(output);
      if (problems.length > 0) {
        throw new ClassifierError('INVALID_OUTPUT', `the classification is out of bounds: ${problems.join('; ')}`, details);
      }
      const usage = completion.usage;
      return {
        output,
        provider: this.provider,
        model: typeof completion.model === 'string' && completion.model !== '' ? completion.model : this.model,
        requestId,
        tokens: usage ? { input: usage.prompt_tokens, output: usage.completion_tokens } : null,
        attempts: trace.attempts,
        latencyMs,
      };
    } catch (error) {
      if (error instanceof ClassifierError) throw error;
      throw toClassifierError(error, trace, Math.round(performance.now() - started));
    }
  }

  #countingFetch(trace: CallTrace): typeof fetch {
    const inner = this.#fetch;
    return async (url, init) => {
      trace.attempts += 1;
      const response = await inner(url, init);
      trace.requestId = response.headers.get('x-request-id') ?? trace.requestId;
      return response;
    };
  }
}

/**
 * Maps what the SDK (or the parse step) threw to our codes, by type and status only. Messages are ours: the SDK's
 * and the server's messages may quote the key (masked or not), the request or the model output, so they are never
 * copied; where an error's own message could carry model output (JSON syntax errors) it is not kept as the cause.
 */
function toClassifierError(error: unknown, trace: CallTrace, latencyMs: number): ClassifierError {
  const base = { attempts: trace.attempts, requestId: trace.requestId, latencyMs };
  if (error instanceof APIUserAbortError) {
    return new ClassifierError('TIMEOUT', 'the classification was aborted by the caller', base, { cause: error });
  }
  if (error instanceof APIConnectionTimeoutError) {
    return new ClassifierError('TIMEOUT', `the OpenAI request timed out after ${base.attempts} attempt(s)`, base, { cause: error });
  }
  if (error instanceof APIConnectionError) {
    return new ClassifierError('PROVIDER_ERROR', `could not reach the OpenAI API after ${base.attempts} attempt(s)`, base, {
      cause: error,
    });
  }
  if (error instanceof APIError) {
    const requestId = error.requestID ?? base.requestId;
    const status = typeof error.status === 'number' ? error.status : undefined;
    const label = [status === undefined ? 'no status' : `HTTP ${status}`, stringField(error.type), stringField(error.code)]
      .filter((s) => s !== null)
      .join(' ');
    if (error instanceof RateLimitError) {
      const retryAfterMs = retryAfterMsFrom(error.headers);
      return new ClassifierError(
        'RATE_LIMITED',
        `the OpenAI API is rate limiting (${label}) after ${base.attempts} attempt(s)`,
        { ...base, requestId, status: 429, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) },
        { cause: error },
      );
    }
    return new ClassifierError(
      'PROVIDER_ERROR',
      `the OpenAI API failed (${label}) after ${base.attempts} attempt(s)`,
      { ...base, requestId, ...(status === undefined ? {} : { status }) },
      { cause: error },
    );
  }
  if (error instanceof LengthFinishReasonError) {
    return new ClassifierError('INVALID_OUTPUT', 'the model output was cut off (finish_reason "length")', base, { cause: error });
  }
  if (error instanceof ContentFilterFinishReasonError) {
    return new ClassifierError('REFUSAL', 'the content filter stopped the model (finish_reason "content_filter")', base, { cause: error });
  }
  if (error instanceof z.ZodError) {
    const where = error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.code}`).join('; ');
    return new ClassifierError('INVALID_OUTPUT', `the model output does not match the classification schema (${where})`, base);
  }
  if (error instanceof SyntaxError) {
    // The SDK's JSON.parse of the message content (in theory also of a 200 body that is not JSON at all: either way
    // the provider gave no usable output). JSON.parse quotes the offending text in its message: keep only the fact.
    return new ClassifierError('INVALID_OUTPUT', 'the model output is not valid JSON', base);
  }
  if (error instanceof OpenAIError) {
    return new ClassifierError('PROVIDER_ERROR', 'the OpenAI client failed', base, { cause: error });
  }
  return new ClassifierError('PROVIDER_ERROR', 'the OpenAI classification failed unexpectedly', base, { cause: error });
}

function stringField(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

/** `retry-after-ms` (OpenAI's) first, then `retry-after` in seconds or as an HTTP date. */
function retryAfterMsFrom(headers: Headers | undefined): number | undefined {
  const ms = headers?.get('retry-after-ms');
  if (ms) {
    const value = Number.parseFloat(ms);
    if (Number.isFinite(value) && value >= 0) return Math.round(value);
  }
  const after = headers?.get('retry-after');
  if (after) {
    const seconds = Number.parseFloat(after);
    if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
    const date = Date.parse(after);
    if (Number.isFinite(date)) return Math.max(0, date - Date.now());
  }
  return undefined;
}
