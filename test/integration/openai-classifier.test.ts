/**
 * The OpenAI classifier through the real `openai` SDK against the spec-validating fake server: results, retries,
 * every error code, no secrets or interaction text in errors, and the fake's own contract with the spec.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OpenAiClassifier, renderClassifierInput } from '../../connectors/openai/openai.classifier.ts';
import type { OpenAiClassifierOptions } from '../../connectors/openai/openai.classifier.ts';
import type { Classification, ClassifierInput } from '../../src/pipeline/classification.ts';
import { ClassifierError } from '../../src/pipeline/errors/classifier.error.ts';
import { loadPrompt } from '../../src/pipeline/prompts.ts';
import { specValidator, startFakeOpenAi } from '../fakes/openai.fake.ts';
import type { Behaviour, FakeOpenAi } from '../fakes/openai.fake.ts';

const API_KEY = 'sk-test-9f8e7d6c5b4a39281706f5e4d3c2b1a0';
const SECRET_NAME = 'Zebulon Quartermaine';
const INPUT: ClassifierInput = {
  channel: 'email',
  direction: 'inbound',
  subject: 'Demo for 40 seats?',
  text: `Hello, I am ${SECRET_NAME} from Acme. We are interested in a demo and your pricing for 40 seats. Call me at [REDACTED:phone].`,
  domains: ['acme.example', 'vendor.example'],
};
const PROMPT = loadPrompt('classify-interaction', 'v1');
const SCRIPTED: Classification = {
  summary: 'A prospect from Acme asks for a demo and pricing for 40 seats.',
  category: 'new_lead',
  intent: 'request a demo and a quote',
  sentiment: 'positive',
  urgency: 'normal',
  nextSteps: ['Book a demo', 'Send pricing for 40 seats'],
  confidence: 0.83,
};

let fake: FakeOpenAi;

beforeEach(async () => {
  fake = await startFakeOpenAi();
});

afterEach(async () => {
  await fake.close();
});

function classifier(options: Partial<OpenAiClassifierOptions> = {}): OpenAiClassifier {
  return new OpenAiClassifier({ apiKey: API_KEY, baseURL: fake.baseURL, model: 'gpt-4o-mini', timeoutMs: 5_000, ...options });
}

/** Every request the SDK sent passed the spec, and every answer the fake gave did too. */
function expectContractKept(): void {
  expect(fake.requests.filter((r) => !r.valid).map((r) => r.problems)).toEqual([]);
  expect(fake.requests.flatMap((r) => r.responseProblems)).toEqual([]);
}

/** Nothing the error carries, down its cause chain, quotes the key, the interaction or the prompt. */
function expectNoLeak(error: ClassifierError): void {
  const texts: string[] = [error.message, JSON.stringify(error.details)];
  for (let cause: unknown = error.cause, depth = 0; cause !== undefined && depth < 5; depth++) {
    texts.push(cause instanceof Error ? `${cause.name}: ${cause.message}` : JSON.stringify(cause));
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  for (const text of texts) {
    expect(text).not.toContain(API_KEY);
    expect(text).not.toContain(API_KEY.slice(-12));
    expect(text).not.toContain(SECRET_NAME);
    expect(text).not.toContain(INPUT.text);
    expect(text).not.toContain(PROMPT.instructions.slice(0, 60));
  }
}

async function classifyError(c: OpenAiClassifier, signal?: AbortSignal): Promise<ClassifierError> {
  const error: unknown = await c.classify(INPUT, PROMPT, signal ? { signal } : undefined).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ClassifierError);
  const classifierError = error as ClassifierError;
  expectNoLeak(classifierError);
  return classifierError;
}

describe('OpenAiClassifier against the fake OpenAI server', () => {
  it('returns the scripted classification with request id, token usage and one attempt', async () => {
    fake.script({ kind: 'ok', output: () => SCRIPTED });
    const result = await classifier().classify(INPUT, PROMPT);

    expect(result.output).toEqual(SCRIPTED);
    expect(result.provider).toBe('openai');
    expect(result.model).toBe('gpt-4o-mini');
    expect(result.attempts).toBe(1);
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
    expect(fake.requests).toHaveLength(1);
    const [request] = fake.requests;
    expect(result.requestId).toBe(request?.requestId);
    expect(result.requestId).toMatch(/^req_[0-9a-f]{32}$/);
    const usage = (request?.responseBody as { usage: { prompt_tokens: number; completion_tokens: number } }).usage;
    expect(result.tokens).toEqual({ input: usage.prompt_tokens, output: usage.completion_tokens });
    expect(result.tokens?.input).toBeGreaterThan(0);

    expectContractKept();
    expect(request?.headers['authorization']).toBeUndefined();
    const body = request?.body as {
      model: string;
      temperature: number;
      messages: { role: string; content: string }[];
      response_format: {
        type: string;
        json_schema: { name: string; strict: boolean; schema: { additionalProperties: boolean; required: string[] } };
      };
    };
    expect(body.model).toBe('gpt-4o-mini');
    expect(body.temperature).toBe(0);
    expect(body.messages).toEqual([
      { role: 'system', content: PROMPT.instructions },
      { role: 'user', content: renderClassifierInput(INPUT) },
    ]);
    expect(body.response_format.type).toBe('json_schema');
    expect(body.response_format.json_schema.name).toBe('classification');
    expect(body.response_format.json_schema.strict).toBe(true);
    expect(body.response_format.json_schema.schema.additionalProperties).toBe(false);
    expect([...body.response_format.json_schema.schema.required].sort()).toEqual(Object.keys(SCRIPTED).sort());
  });

  it('renders the input deterministically: channel, direction, domains, subject, then the text', () => {
    expect(renderClassifierInput(INPUT)).toBe(
      [
        'Channel: email',
        'Direction: inbound',
        'Domains: acme.example, vendor.example',
        'Subject: Demo for 40 seats?',
        '',
        'Text:',
        INPUT.text,
      ].join('\n'),
    );
    expect(renderClassifierInput({ ...INPUT, subject: null, domains: [] })).toContain('Domains: (none)\nSubject: (none)\n');
  });

  it('merges a partial scripted output onto the default and reports the model the server names', async () => {
    fake.script({ kind: 'ok', output: { urgency: 'high', confidence: 0.55 } });
    const result = await classifier({ model: 'my-local-model', temperature: 0.2 }).classify(INPUT, PROMPT);
    expect(result.output).toMatchObject({ category: 'new_lead', urgency: 'high', confidence: 0.55 });
    expect(result.model).toBe('my-local-model');
    expect((fake.requests[0]?.body as { temperature: number }).temperature).toBe(0.2);
    expectContractKept();
  });

  it('retries a 429 after the retry-after the server asked for, and counts two attempts', async () => {
    fake.script({ kind: 'rate-limit', retryAfterSeconds: 1 }, { kind: 'ok', output: () => SCRIPTED });
    const result = await classifier().classify(INPUT, PROMPT);

    expect(result.output).toEqual(SCRIPTED);
    expect(result.attempts).toBe(2);
    // The SDK's own first backoff is at most 500 ms: waiting a second means it honoured retry-after.
    expect(result.latencyMs).toBeGreaterThanOrEqual(950);
    expect(fake.requests.map((r) => r.status)).toEqual([429, 200]);
    expect(fake.requests.map((r) => r.headers['x-stainless-retry-count'])).toEqual(['0', '1']);
    expect(result.requestId).toBe(fake.requests[1]?.requestId);
    expectContractKept();
  });

  it('counts attempts per call when calls run concurrently', async () => {
    fake.script({ kind: 'rate-limit', retryAfterSeconds: 0 });
    const c = classifier();
    const results = await Promise.all([c.classify(INPUT, PROMPT), c.classify(INPUT, PROMPT)]);
    expect(results.map((r) => r.attempts).sort()).toEqual([1, 2]);
    expect(fake.requests).toHaveLength(3);
  });

  it('gives RATE_LIMITED with attempts = maxRetries + 1 and retryAfterMs when every request is limited', async () => {
    fake.setDefault({ kind: 'rate-limit', retryAfterSeconds: 0, retryAfterMs: 20 });
    const error = await classifyError(classifier({ maxRetries: 2 }));

    expect(error.code).toBe('RATE_LIMITED');
    expect(error.details.attempts).toBe(3);
    expect(error.details.status).toBe(429);
    expect(error.details.retryAfterMs).toBe(20);
    expect(fake.requests).toHaveLength(3);
    expect(error.details.requestId).toBe(fake.requests[2]?.requestId);
    expectContractKept();
  });

  it('reads retry-after in seconds when there is no retry-after-ms', async () => {
    fake.setDefault({ kind: 'rate-limit', retryAfterSeconds: 0 });
    const error = await classifyError(classifier({ maxRetries: 0 }));
    expect(error.code).toBe('RATE_LIMITED');
    expect(error.details).toMatchObject({ attempts: 1, retryAfterMs: 0, status: 429 });
  });

  it('gives PROVIDER_ERROR with the status when every request fails with a 5xx', async () => {
    fake.setDefault({ kind: 'server-error', status: 500 });
    const error = await classifyError(classifier({ maxRetries: 1 }));

    expect(error.code).toBe('PROVIDER_ERROR');
    expect(error.details).toMatchObject({ attempts: 2, status: 500, requestId: fake.requests[1]?.requestId });
    expect(fake.requests.map((r) => r.status)).toEqual([500, 500]);
    expectContractKept();
  });

  it('recovers from a 503 within the SDK retries', async () => {
    fake.script({ kind: 'server-error', status: 503 });
    const result = await classifier({ maxRetries: 1 }).classify(INPUT, PROMPT);
    expect(result.attempts).toBe(2);
  });

  it('gives PROVIDER_ERROR when the server cannot be reached', async () => {
    const { baseURL } = fake;
    await fake.close();
    fake = await startFakeOpenAi();
    const error = await classifyError(classifier({ baseURL, maxRetries: 0 }));
    expect(error.code).toBe('PROVIDER_ERROR');
    expect(error.details.attempts).toBe(1);
  });

  it('gives TIMEOUT when the answer is slower than timeoutMs, after the SDK retried the timeout', async () => {
    fake.setDefault({ kind: 'slow', latencyMs: 2_000 });
    const error = await classifyError(classifier({ timeoutMs: 150, maxRetries: 1 }));

    expect(error.code).toBe('TIMEOUT');
    expect(error.details.attempts).toBe(2);
    expect(fake.requests).toHaveLength(2);
  });

  it('gives TIMEOUT when the caller aborts', async () => {
    fake.setDefault({ kind: 'slow', latencyMs: 2_000 });
    const error = await classifyError(classifier({ maxRetries: 0 }), AbortSignal.timeout(100));
    expect(error.code).toBe('TIMEOUT');
    expect(error.details.attempts).toBe(1);
  });

  it('gives NOT_CONFIGURED without an API key, and sends nothing', async () => {
    const error = await classifyError(classifier({ apiKey: '' }));
    expect(error.code).toBe('NOT_CONFIGURED');
    expect(fake.requests).toHaveLength(0);
  });

  const outputFailures: ReadonlyArray<{ name: string; behaviour: Behaviour; code: ClassifierError['code']; mentions?: string }> = [
    { name: 'a refusal', behaviour: { kind: 'refusal' }, code: 'REFUSAL' },
    { name: 'a content-filter stop', behaviour: { kind: 'content-filter' }, code: 'REFUSAL' },
    { name: 'content that is not JSON', behaviour: { kind: 'invalid-json' }, code: 'INVALID_OUTPUT', mentions: 'not valid JSON' },
    { name: 'JSON that violates the schema', behaviour: { kind: 'schema-violation' }, code: 'INVALID_OUTPUT', mentions: 'category' },
    { name: 'a truncated answer (finish_reason length)', behaviour: { kind: 'length' }, code: 'INVALID_OUTPUT', mentions: 'length' },
    {
      name: 'a confidence outside 0..1',
      behaviour: { kind: 'ok', output: { confidence: 1.5 } },
      code: 'INVALID_OUTPUT',
      mentions: 'confidence',
    },
    { name: 'an empty summary', behaviour: { kind: 'ok', output: { summary: '  ' } }, code: 'INVALID_OUTPUT', mentions: 'summary' },
  ];

  it.each(outputFailures)('gives $code for $name, with the request id and one attempt', async ({ behaviour, code, mentions }) => {
    fake.setDefault(behaviour);
    const error = await classifyError(classifier());

    expect(error.code).toBe(code);
    if (mentions !== undefined) expect(error.message).toContain(mentions);
    // Output problems are not retried: one request, and its id is kept for the journal.
    expect(fake.requests).toHaveLength(1);
    expect(error.details.attempts).toBe(1);
    expect(error.details.requestId).toBe(fake.requests[0]?.requestId);
    expectContractKept();
  });
});

describe('the fake OpenAI server', () => {
  async function post(body: unknown, path = '/chat/completions'): Promise<{ status: number; headers: Headers; json: unknown }> {
    const response = await fetch(`${fake.baseURL}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify(body),
    });
    const json: unknown = await response.json();
    return { status: response.status, headers: response.headers, json };
  }
  const goodBody = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'We are interested in a demo.' }] };

  it('rejects a message with an unknown role with an OpenAI-shaped 400 naming the problem', async () => {
    const { status, json } = await post({ ...goodBody, messages: [{ role: 'robot', content: 'beep' }] });

    expect(status).toBe(400);
    const { error } = json as { error: { message: string; type: string; param: string | null; code: string | null } };
    expect(error.type).toBe('invalid_request_error');
    expect(error.param).toBe('messages[0].role');
    expect(error.message).toContain('/messages/0/role must be equal to one of the allowed values');
    expect(specValidator('ErrorResponse')(json).problems).toEqual([]);
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]).toMatchObject({ valid: false, status: 400, behaviour: null });
  });

  it('rejects out-of-range parameters, a missing model and a json_schema format without a schema', async () => {
    const temperature = await post({ ...goodBody, temperature: 7 });
    expect(temperature.status).toBe(400);
    expect((temperature.json as { error: { message: string } }).error.message).toContain('/temperature must be <= 2');

    const noModel = await post({ messages: goodBody.messages });
    expect(noModel.status).toBe(400);
    expect((noModel.json as { error: { message: string } }).error.message).toContain("must have required property 'model'");

    const format = await post({ ...goodBody, response_format: { type: 'json_schema' } });
    expect(format.status).toBe(400);
    expect(fake.requests.every((r) => !r.valid)).toBe(true);
  });

  it('answers 401 without a bearer token and 404 on unknown routes', async () => {
    const anonymous = await fetch(`${fake.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(goodBody),
    });
    expect(anonymous.status).toBe(401);
    const missing = await post(goodBody, '/embeddings-v9');
    expect(missing.status).toBe(404);
    expect((missing.json as { error: { message: string; type: string } }).error).toMatchObject({
      type: 'invalid_request_error',
      message: 'Invalid URL (POST /v1/embeddings-v9)',
    });
    expect(specValidator('ErrorResponse')(missing.json).problems).toEqual([]);
  });

  it('produces responses that validate against CreateChatCompletionResponse, and error bodies against ErrorResponse', async () => {
    const checkCompletion = specValidator('CreateChatCompletionResponse');
    const checkError = specValidator('ErrorResponse');
    const behaviours: Behaviour[] = [
      { kind: 'ok' },
      { kind: 'refusal' },
      { kind: 'content-filter' },
      { kind: 'invalid-json' },
      { kind: 'schema-violation' },
      { kind: 'length' },
      { kind: 'rate-limit', retryAfterSeconds: 3 },
      { kind: 'server-error', status: 503 },
    ];
    fake.script(...behaviours);
    for (const behaviour of behaviours) {
      const { status, headers, json } = await post(goodBody);
      expect(headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{32}$/);
      expect(headers.get('openai-processing-ms')).toMatch(/^\d+$/);
      if (status === 200) {
        expect(checkCompletion(json).problems, behaviour.kind).toEqual([]);
        expect(json).toMatchObject({ object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant' } }] });
      } else {
        expect(checkError(json).problems, behaviour.kind).toEqual([]);
      }
      if (behaviour.kind === 'rate-limit') {
        expect(status).toBe(429);
        expect(headers.get('retry-after')).toBe('3');
        expect(headers.get('x-ratelimit-remaining-requests')).toBe('0');
        expect(json).toMatchObject({ error: { type: 'requests', code: 'rate_limit_exceeded' } });
      }
    }
    expect(fake.requests.map((r) => r.behaviour)).toEqual(behaviours.map((b) => b.kind));
    expectContractKept();
  });

  it('has a response validator that rejects what the API would never send', () => {
    const checkCompletion = specValidator('CreateChatCompletionResponse');
    const broken = {
      id: 'chatcmpl-x',
      object: 'chat.completion',
      created: 1,
      model: 'm',
      choices: [{ index: 0, message: { role: 'assistant', content: 'x', refusal: null }, logprobs: null, finish_reason: 'banana' }],
    };
    expect(checkCompletion(broken).valid).toBe(false);
    const { model: _model, ...noModel } = { ...broken, choices: [] };
    expect(checkCompletion(noModel).problems).toContain("/ must have required property 'model'");
  });

  it('derives a plausible default classification from the user message', async () => {
    const { json } = await post({
      ...goodBody,
      messages: [{ role: 'user', content: 'Our invoice was charged twice, please refund ASAP' }],
    });
    const content = (json as { choices: [{ message: { content: string } }] }).choices[0].message.content;
    expect(JSON.parse(content)).toMatchObject({ category: 'billing', urgency: 'high', confidence: 0.9 });
  });
});
