/**
 * The privacy sweep (issue 14). Distinctive personal values are planted through every input path: each webhook
 * provider (generic calls and forms, Twilio, Aircall, HubSpot forms), the call CSV import, Gmail sync, polled
 * forms (HubSpot, Google), the model path and its failures, the offline path, the dry-run CRM and the HubSpot
 * mirror (with a refused item), overrides of both kinds, notifications and drift repair. Then every byte the
 * product stored is scanned: every file under the data directory (journal, -wal, -shm, audit index, key store
 * and backup, master key, state files, archive objects and pruned copies, the readers' archive cache, exports),
 * the logs of every process (pino, debug level) and every Redis key of the run (BullMQ job data included).
 * Sealed envelopes are ciphertext, so a planted value found anywhere in clear is a leak: the failure names the
 * path that planted it and the file or key where it was found. After `forget` of every planted person (the
 * real CLI), nothing of them is readable by any reader with the key store, and `verify` still passes.
 *
 * Every sealed (kind, field) of src/journal/privacy.ts RULES that a planted value reaches is listed in
 * COVERED and checked to carry one: removing that field from its rule puts the value in clear, and the scan
 * fails.
 *
 * The pipeline phases run with the writer's clock 100 days back, so that `archive` (at the real time) seals and
 * archives their month and, the marketing-90d form payloads having expired, writes a pruned copy too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, createHmac } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { tempDir } from '../helpers/tmp.ts';
import { runCli, type CliResult } from '../helpers/cli.ts';
import { waitFor } from '../helpers/wait.ts';
import { webhookServer } from '../helpers/web.ts';
import { REDIS_URL, drained, obliterate, testConfig, uniquePrefix } from '../helpers/pipeline.ts';
import { startFakeGmail, AUTHORIZATION_CODE, type FakeGmail } from '../fakes/gmail.fake.ts';
import { startFakeGoogleForms, FORMS_AUTHORIZATION_CODE, type FakeGoogleForms } from '../fakes/google-forms.fake.ts';
import { startFakeHubSpotForms, type FakeHubSpotForms } from '../fakes/hubspot-forms.fake.ts';
import { startHubSpotFake, type HubSpotFake } from '../fakes/hubspot.fake.ts';
import { defaultClassification, startFakeOpenAi, type FakeOpenAi } from '../fakes/openai.fake.ts';
import { startPipeline, type PipelineOverrides, type PipelineRuntime } from '../../jobs/main.ts';
import { enqueueVia } from '../../jobs/queues.ts';
import { openWriterPrivacy, attachConfiguredPrivacy } from '../../src/journal/configured-privacy.ts';
import { JournalWriter } from '../../src/journal/writer.ts';
import { JournalReader } from '../../src/journal/reader.ts';
import { LocalJournalClient } from '../../src/journal/local-client.ts';
import { RetentionPolicy } from '../../src/journal/retention.ts';
import { DEFAULT_RETENTION_PATH, DEFAULT_RULES_PATH } from '../../src/config/config.ts';
import { DirectoryArchiveStore } from '../../src/journal/archive-store.ts';
import { openArchivedSegments } from '../../src/journal/segments.ts';
import { openKeyStoreForCheck } from '../../src/journal/privacy.ts';
import { openConfiguredIndex } from '../../src/audit/configured-index.ts';
import { recordOverride } from '../../src/pipeline/override.ts';
import { OpenAiClassifier } from '../../connectors/openai/openai.classifier.ts';
import { hubSpotSignatureV3 } from '../../connectors/forms/hubspot.webhook.ts';
import { createHubSpotClient } from '../../connectors/hubspot/hubspot.http.ts';
import type { Logger } from '../../src/config/logger.ts';
import type { JournalEntry } from '../../src/journal/entry.ts';
import type { Interaction } from '../../src/pipeline/interaction.ts';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startSmtpFake, type SmtpFake } from '../fakes/smtp.fake.ts';
import { startSlackFake, type SlackFake } from '../fakes/slack.fake.ts';

const DAY = 86_400_000;
/** The pipeline phases' clock: far enough back that their month is closed and the 90-day form payloads expired. */
const PAST = (): number => Date.now() - 100 * DAY;
const SALES = 'sales@northwind-analytics.example';
const CALLS_SECRET = 'calls-secret-sweep-0123456789abcdef';
const FORMS_SECRET = 'forms-secret-sweep-0123456789abcdef';
const TWILIO_TOKEN = 'twilio-auth-token-sweep-0123';
const AIRCALL_TOKEN = 'aircall-token-sweep-0123';
const HUBSPOT_SECRET = 'hubspot-client-secret-sweep';
const PUBLIC_URL = 'https://hooks.example.test';
const HS_TOKEN = 'pat-na1-sweep-token';
const FORM_GUID = '5b3c1d2e-0000-4000-8000-00000000beef';
const GOOGLE_FORM = '1FAIpQLSd-sweep_form-0001';

// ---------------------------------------------------------------------------------------------------------------
// What is planted, by which path, and who is to be forgotten.

interface Planted {
  readonly path: string;
  /** The value as planted, and the other forms it may be stored in (a phone number's E.164 form, its digits). */
  readonly value: string;
  readonly forms: readonly string[];
}
const planted: Planted[] = [];
/** The retention policy of the run (the shipped one). */
let retentionPath: string;
/** The people to forget (addresses or phone numbers of participants), each planted by some path. */
const people: string[] = [];
let counter = 0;

/** A fresh token (lower-case letters and digits, so no encoding changes it) for one planted value. */
function token(): string {
  counter++;
  return `swq${counter.toString(36).padStart(3, '0')}z`;
}
function plant(path: string, make: (t: string) => string): string {
  const value = make(token());
  planted.push({ path, value, forms: [value] });
  return value;
}
/** An email address; a participant's (`forget`: the sweep forgets them) or one only quoted in text. */
const email = (path: string, forget = true): string => {
  const a = plant(path, (t) => `sweep.planted+${t}@example.test`);
  if (forget) people.push(a);
  return a;
};
let phoneN = 700;
/** A phone number, formatted; its E.164 form (how it is keyed) and its digits are looked for too. */
const phone = (path: string, forget = false): { formatted: string; e164: string } => {
  phoneN++;
  const formatted = `+1 555 0100 ${phoneN}`;
  const e164 = `+15550100${phoneN}`;
  planted.push({ path, value: formatted, forms: [formatted, e164, `5550100${phoneN}`] });
  if (forget) people.push(e164);
  return { formatted, e164 };
};
const name = (path: string): string => plant(path, (t) => `Quillon Vantablack ${t}`);
const subject = (path: string): string => plant(path, (t) => `Sweep subject ${t}`);
const text = (path: string): string => plant(path, (t) => `Sweep message text ${t}: "quoted" and Zoë's café`);
const transcript = (path: string): string => plant(path, (t) => `Sweep transcript ${t}, call me back`);
const reason = (path: string): string => plant(path, (t) => `Sweep override reason ${t}`);

/** The byte sequences a value may be stored as: UTF-8, as JSON escapes it, \\u-escaped, its token alone; lower-cased. */
function needlesOf(p: Planted): Buffer[] {
  const out = new Set<string>();
  for (const value of p.forms) {
    const json = JSON.stringify(value).slice(1, -1);
    const ascii = json.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    const tokenOnly = /swq[0-9a-z]{3}z/.exec(value)?.[0];
    for (const s of [value, json, ascii, ...(tokenOnly ? [tokenOnly] : [])]) out.add(s.toLowerCase());
  }
  return [...out].map((s) => Buffer.from(s, 'utf8'));
}

// ---------------------------------------------------------------------------------------------------------------
// The run: one data directory, phases of the pipeline in this process (each with its own queue prefix and log).

let tmp: { dir: string; cleanup: () => void };
let inputs: { dir: string; cleanup: () => void };
let dataDir: string;
let journalPath: string;
let logDir: string;
const prefixes: string[] = [];
const env0: NodeJS.ProcessEnv = {};

interface Phase {
  readonly runtime: PipelineRuntime;
  readonly journal: LocalJournalClient;
  readonly prefix: string;
  stop(): Promise<void>;
}

/** A pino logger at debug level writing to a file of its own: every log line is scanned. */
function fileLogger(label: string): { logger: Logger; flush(): void } {
  const dest = pino.destination({ dest: join(logDir, `${label}.log`), sync: true, append: true, mkdir: true });
  const logger = pino({ level: 'debug', base: { phase: label } }, dest) as unknown as Logger;
  return { logger, flush: () => dest.flushSync() };
}

async function startPhase(
  label: string,
  env: NodeJS.ProcessEnv,
  overrides: Omit<PipelineOverrides, 'journal' | 'prefix'> = {},
  options: { now?: () => number; prefix?: string } = {},
): Promise<Phase> {
  const config = testConfig(dataDir, { ...env0, ...env, LOG_LEVEL: 'debug' });
  const privacy = openWriterPrivacy(config);
  const writer = await JournalWriter.open({
    path: journalPath,
    keysDir: config.journal.keysDir,
    checkpointEveryMs: 0,
    privacy,
    retention: RetentionPolicy.load(retentionPath),
    ...(options.now ? { now: options.now } : {}),
  });
  const reader = JournalReader.open(journalPath);
  reader.attachPrivacy(privacy, { owned: true });
  const journal = new LocalJournalClient(writer, reader);
  const prefix = options.prefix ?? uniquePrefix();
  if (!prefixes.includes(prefix)) prefixes.push(prefix);
  const log = fileLogger(label);
  const { logger } = log;
  const runtime = await startPipeline(config, logger, { ...overrides, journal, prefix });
  return {
    runtime,
    journal,
    prefix,
    async stop() {
      await runtime.close();
      await journal.close();
      log.flush();
    },
  };
}

/** A notification webhook receiver that takes everything (what it receives is the receiver's business). */
async function startHook(): Promise<{ url: string; bodies: string[]; close(): Promise<void> }> {
  const bodies: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/sales`,
    bodies,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** The web server with every webhook receiver, taking webhooks into `phase`, logging to a scanned file. */
function webhooks(phase: Phase, env: NodeJS.ProcessEnv): ReturnType<typeof webhookServer> {
  return webhookServer(phase, dataDir, env, { rejectionsPerMinute: 100, logger: fileLogger('web').logger });
}

function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    JOURNAL_PATH: journalPath,
    KEY_STORE_BACKUP: join(dataDir, 'key-backup', 'subject-keys.sqlite'),
    REDIS_URL,
    LOG_LEVEL: 'debug',
    JOURNAL_APPEND_TOKEN: '',
    JOURNAL_READ_TOKEN: '',
    JOURNAL_MASTER_KEY: '',
    JOURNAL_MASTER_KEY_FILE: '',
    KEY_STORE_PATH: '',
    HUBSPOT_ACCESS_TOKEN: '',
    OPENAI_API_KEY: '',
    RETENTION_POLICY_PATH: retentionPath,
    ...extra,
  };
}

let cliRuns = 0;
/** The real command line, asynchronously (fakes answer from this process); its stderr (the log) is kept and scanned. */
async function cli(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const r = await runCli(args, { env: cliEnv(extra) });
  const name = args
    .filter((a) => !a.startsWith('-'))
    .slice(0, 1)
    .join('-');
  writeFileSync(join(logDir, `cli-${String(++cliRuns).padStart(3, '0')}-${name}.log`), r.stderr);
  return r;
}

const signedGeneric = (secret: string, body: object): { headers: Record<string, string>; payload: string } => {
  const payload = JSON.stringify(body);
  const ts = Math.floor(Date.now() / 1000);
  return {
    headers: {
      'content-type': 'application/json',
      'x-aj-timestamp': String(ts),
      'x-aj-signature': `v1=${createHmac('sha256', secret).update(`${ts}.${payload}`).digest('hex')}`,
    },
    payload,
  };
};
const twilioSig = (url: string, params: Record<string, string>): string =>
  createHmac('sha1', TWILIO_TOKEN)
    .update(
      Object.keys(params)
        .sort()
        .reduce((acc, k) => acc + k + params[k], url),
    )
    .digest('base64');

function emailInteraction(path: string, sourceId: string): { ix: Interaction; from: string } {
  const from = email(path);
  return {
    from,
    ix: {
      channel: 'email',
      source: 'gmail',
      sourceId,
      direction: 'inbound',
      occurredAt: new Date(Date.now() - 3_600_000).toISOString(),
      participants: [
        { role: 'from', address: from, name: name(path) },
        { role: 'to', address: SALES },
      ],
      subject: subject(path),
      text: `${text(path)}\nWe would like a quote for 25 seats. Call ${phone(path).formatted}.`,
    },
  };
}

/** Every entry, hot and archived, opened with the key store (as every reader opens them). */
async function readAll(): Promise<JournalEntry[]> {
  const config = testConfig(dataDir);
  const reader = attachConfiguredPrivacy(JournalReader.open(journalPath), config);
  try {
    reader.attachArchives(
      await openArchivedSegments(reader.connection, [new DirectoryArchiveStore(config.journal.archiveDir)], join(tmp.dir, 'sweep-cache')),
    );
    const out: JournalEntry[] = [];
    for (let seq = 0; seq < reader.size(); seq++) {
      const e = reader.bySeq(seq);
      if (e) out.push(e);
    }
    return out;
  } finally {
    reader.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The scan.

interface Hit {
  readonly path: string;
  readonly value: string;
  readonly where: string;
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? filesUnder(join(dir, d.name)) : d.isFile() ? [join(dir, d.name)] : [],
  );
}

function search(where: string, bytes: Buffer, hits: Hit[]): void {
  const lower = Buffer.from(bytes.toString('latin1').toLowerCase(), 'latin1');
  const utf8Lower = Buffer.from(bytes.toString('utf8').toLowerCase(), 'utf8');
  for (const p of planted)
    for (const n of needlesOf(p))
      if (lower.includes(n) || utf8Lower.includes(n)) {
        hits.push({ path: p.path, value: p.value, where });
        break;
      }
}

/** Every Redis key of the run, read by type (job hashes, lists, sets, sorted sets, streams, strings). */
async function redisDump(): Promise<{ key: string; bytes: Buffer }[]> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const out: { key: string; bytes: Buffer }[] = [];
  try {
    for (const prefix of prefixes) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        cursor = next;
        for (const key of keys) {
          const type = await redis.type(key);
          let parts: (Buffer | string)[] = [];
          if (type === 'string') parts = [(await redis.getBuffer(key)) ?? Buffer.alloc(0)];
          else if (type === 'hash') parts = await redis.hgetallBuffer(key).then((h) => Object.entries(h).flatMap(([k, v]) => [k, v]));
          else if (type === 'list') parts = await redis.lrangeBuffer(key, 0, -1);
          else if (type === 'set') parts = await redis.smembersBuffer(key);
          else if (type === 'zset') parts = await redis.zrangeBuffer(key, '0', '-1');
          else if (type === 'stream') parts = (await redis.xrangeBuffer(key, '-', '+')).flatMap(([id, fields]) => [id, ...fields]);
          else parts = [`unknown type ${type}`];
          out.push({ key, bytes: Buffer.concat([Buffer.from(key), ...parts.map((x) => (Buffer.isBuffer(x) ? x : Buffer.from(x)))]) });
        }
      } while (cursor !== '0');
    }
  } finally {
    redis.disconnect();
  }
  return out;
}

async function scanEverything(): Promise<{ hits: Hit[]; files: string[]; keys: number }> {
  const hits: Hit[] = [];
  const files = [...filesUnder(tmp.dir)];
  for (const f of files) search(relative(tmp.dir, f), readFileSync(f), hits);
  const keys = await redisDump();
  for (const k of keys) search(`redis ${k.key}`, k.bytes, hits);
  return { hits, files: files.map((f) => relative(tmp.dir, f)), keys: keys.length };
}

const report = (hits: readonly Hit[]): string[] => hits.map((h) => `${h.path} planted ${JSON.stringify(h.value)}, found in ${h.where}`);

// ---------------------------------------------------------------------------------------------------------------

/** Sealed fields a planted value reaches (kind.field); each must carry one (checked below). */
const COVERED = [
  'interaction.received.participants',
  'interaction.received.subject',
  'interaction.received.text',
  'interaction.received.attachments',
  'interaction.received.metadata',
  'ai.decision.output',
  'rule.decision.reason',
  'crm.write.properties',
  'crm.write.associations',
  'crm.write_failed.properties',
  'crm.write_failed.error',
  'state.changed.from',
  'state.changed.to',
  'human.override.reason',
  'notification.attempted.to',
  'notification.attempted.text',
  'notification.sent.to',
  'notification.failed.error',
];

const SMTP_USER = 'aj-sweep-notifier';
const SMTP_PASS = 'smtp-pass-sweep-0123';
const HOOK_SECRET = 'hook-secret-sweep-0123456789';

describe('the privacy sweep', () => {
  let fakeGmail: FakeGmail;
  let fakeForms: FakeGoogleForms;
  let fakeHsForms: FakeHubSpotForms;
  let fakeHs: HubSpotFake;
  let fakeAi: FakeOpenAi;
  // Notifications for real: the sales team on e-mail (SMTP), Slack and a signed webhook.
  let smtp: SmtpFake;
  let slack: SlackFake;
  let hook: { url: string; bodies: string[]; close(): Promise<void> };
  let rulesPath: string;
  const notifyEnv = (): NodeJS.ProcessEnv => ({
    RULES_PATH: rulesPath,
    SMTP_HOST: '127.0.0.1',
    SMTP_PORT: String(smtp.port),
    SMTP_TLS: 'starttls',
    SMTP_TLS_REJECT_UNAUTHORIZED: 'false',
    SMTP_USER,
    SMTP_PASSWORD: SMTP_PASS,
    SMTP_FROM: 'Activity Journal <journal@northwind-analytics.example>',
    SLACK_SALES_WEBHOOK_URL: slack.webhookUrl,
    SALES_HOOK_URL: hook.url,
    SALES_HOOK_SECRET: HOOK_SECRET,
  });
  /** One interaction's correlation per source, for trace on the command line. */
  const correlations = new Map<string, string>();

  beforeAll(async () => {
    tmp = tempDir('aj-sweep-');
    inputs = tempDir('aj-sweep-inputs-');
    // The shipped policy: form submissions get marketing-90d, so expiry writes a pruned copy.
    retentionPath = DEFAULT_RETENTION_PATH;
    env0.RETENTION_POLICY_PATH = retentionPath;
    dataDir = join(tmp.dir, 'data');
    journalPath = join(dataDir, 'journal.sqlite');
    logDir = join(tmp.dir, 'logs');
    mkdirSync(logDir, { recursive: true });
    [fakeGmail, fakeForms, fakeHsForms, fakeHs, fakeAi] = await Promise.all([
      startFakeGmail({ mailbox: SALES }),
      startFakeGoogleForms(),
      startFakeHubSpotForms(),
      startHubSpotFake({ accessToken: HS_TOKEN }),
      startFakeOpenAi(),
    ]);
    [smtp, slack, hook] = await Promise.all([startSmtpFake({ user: SMTP_USER, pass: SMTP_PASS }), startSlackFake(), startHook()]);
    // The shipped rules, with the sales team (a planted address) reachable on all three channels; kept outside
    // the scanned directory, as an operator's rules file would be.
    rulesPath = join(inputs.dir, 'rules.json');
    const rules = JSON.parse(readFileSync(DEFAULT_RULES_PATH, 'utf8')) as { recipients: Record<string, unknown> };
    rules.recipients['sales-team'] = {
      email: { to: [email('notify:recipient', false)] },
      slack: { webhookUrlEnv: 'SLACK_SALES_WEBHOOK_URL' },
      webhook: { urlEnv: 'SALES_HOOK_URL', secretEnv: 'SALES_HOOK_SECRET' },
    };
    writeFileSync(rulesPath, JSON.stringify(rules));
  });
  afterAll(async () => {
    for (const prefix of prefixes) await obliterate(prefix);
    await Promise.all([
      fakeGmail?.close(),
      fakeForms?.close(),
      fakeHsForms?.close(),
      fakeHs?.close(),
      fakeAi?.close(),
      smtp?.close(),
      slack?.close(),
      hook?.close(),
    ]);
    tmp?.cleanup();
    inputs?.cleanup();
  });

  it('plants through every webhook, the offline classifier, the dry-run CRM, notifications and overrides of both kinds', async () => {
    const env = {
      CALLS_WEBHOOK_SECRET: CALLS_SECRET,
      FORMS_WEBHOOK_SECRET: FORMS_SECRET,
      TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
      AIRCALL_WEBHOOK_TOKEN: AIRCALL_TOKEN,
      HUBSPOT_CLIENT_SECRET: HUBSPOT_SECRET,
      WEBHOOK_PUBLIC_URL: PUBLIC_URL,
      ...notifyEnv(),
    };
    // The first e-mail is refused by the server with a reply that quotes what it refused (a notification.failed
    // whose error carries it).
    smtp.refuseNext({
      at: 'data',
      code: 550,
      message: `5.7.1 Message refused: ${plant('notify:smtp-refusal', (t) => `content from sweep.refused+${t}@example.test`)} looks like spam`,
    });
    const phase = await startPhase('webhooks', env, {}, { now: PAST });
    const web = await webhooks(phase, env);
    try {
      const now = new Date().toISOString();
      const post = async (url: string, req: { headers: Record<string, string>; payload: string }): Promise<void> => {
        const res = await web.app.inject({ method: 'POST', url, ...req });
        expect(res.statusCode, `${url}: ${res.body}`).toBe(200);
      };
      // Generic calls: a call and its transcript.
      const gc = phone('webhook:calls', true);
      const callBody = {
        id: 'evt-sweep-1',
        event: 'call.completed',
        callId: 'sweep-call-1',
        direction: 'inbound',
        from: gc.e164,
        to: '+15555550188',
        startedAt: now,
        durationSeconds: 60,
        subject: subject('webhook:calls'),
      };
      await post('/webhooks/calls', signedGeneric(CALLS_SECRET, callBody));
      await post(
        '/webhooks/calls',
        signedGeneric(CALLS_SECRET, {
          ...callBody,
          id: 'evt-sweep-1-t',
          event: 'call.transcript',
          transcript: transcript('webhook:calls'),
        }),
      );
      // Generic forms: a contact-sales form (a notification).
      await post(
        '/webhooks/forms',
        signedGeneric(FORMS_SECRET, {
          submissionId: 'sweep-sub-1',
          form: 'contact-sales',
          submittedAt: now,
          email: email('webhook:forms'),
          name: name('webhook:forms'),
          fields: { Message: text('webhook:forms'), Phone: phone('webhook:forms').formatted },
        }),
      );
      // Twilio: a completed call (form-encoded) and its transcript (JSON, bodySHA256).
      const tw = phone('webhook:twilio', true);
      const twParams = {
        CallSid: 'CAsweep0000000000000000000000001',
        AccountSid: 'ACsweep',
        From: tw.e164,
        To: '+442071838750',
        CallStatus: 'completed',
        Direction: 'inbound',
        CallDuration: '42',
        RecordingUrl: plant('webhook:twilio', (t) => `https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE${t}`),
      };
      await post('/webhooks/twilio', {
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-twilio-signature': twilioSig(`${PUBLIC_URL}/webhooks/twilio`, twParams),
        },
        payload: new URLSearchParams(twParams).toString(),
      });
      const trBody = JSON.stringify({
        account_sid: 'ACsweep',
        service_sid: 'GAsweep',
        transcript_sid: 'GTsweep1',
        customer_key: twParams.CallSid,
        event_type: 'voice_intelligence_transcript_available',
        text: transcript('webhook:twilio'),
      });
      const trUrl = `/webhooks/twilio?bodySHA256=${createHash('sha256').update(trBody).digest('hex')}`;
      await post(trUrl, {
        headers: { 'content-type': 'application/json', 'x-twilio-signature': twilioSig(`${PUBLIC_URL}${trUrl}`, {}) },
        payload: trBody,
      });
      // Aircall: call.ended and its transcription.
      const ac = phone('webhook:aircall', true);
      const t0 = Math.floor(Date.now() / 1000) - 300;
      await post('/webhooks/aircall', {
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({
          resource: 'call',
          event: 'call.ended',
          timestamp: t0 + 240,
          token: AIRCALL_TOKEN,
          data: {
            id: 7001,
            direction: 'inbound',
            status: 'done',
            started_at: t0,
            ended_at: t0 + 200,
            duration: 200,
            raw_digits: ac.formatted,
            number: { id: 1, digits: '+1 415-555-0100', name: 'Sales' },
            user: { id: 7, name: 'Ana Agent', email: 'ana@northwind-analytics.example' },
          },
        }),
      });
      await post('/webhooks/aircall', {
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({
          resource: 'transcription',
          event: 'transcription.created',
          timestamp: t0 + 260,
          token: AIRCALL_TOKEN,
          data: {
            id: 91,
            call_id: 7001,
            call_created_at: t0,
            type: 'call',
            content: {
              language: 'en-US',
              utterances: [
                { start_time: 0, end_time: 2, text: 'Hello, sales.', participant_type: 'internal', user_id: 7 },
                { start_time: 2, end_time: 5, text: transcript('webhook:aircall'), participant_type: 'external', phone_number: ac.e164 },
              ],
            },
          },
        }),
      });
      // HubSpot forms (workflow webhook, signature v3).
      const hsBody = Buffer.from(
        JSON.stringify({
          vid: 501,
          'portal-id': 62515,
          properties: {
            email: { value: email('webhook:hubspot-forms') },
            firstname: { value: name('webhook:hubspot-forms') },
            phone: { value: phone('webhook:hubspot-forms').formatted },
            message: { value: text('webhook:hubspot-forms') },
          },
          'form-submissions': [
            {
              'conversion-id': 'sweep-conv-1',
              timestamp: Date.now() - 1000,
              'form-id': 'f-1',
              title: 'contact-sales',
              'page-url': 'https://www.example.com/contact',
            },
          ],
        }),
      );
      const hsTs = String(Date.now());
      await post('/webhooks/hubspot-forms', {
        headers: {
          'content-type': 'application/json',
          'x-hubspot-request-timestamp': hsTs,
          'x-hubspot-signature-v3': hubSpotSignatureV3(HUBSPOT_SECRET, 'POST', `${PUBLIC_URL}/webhooks/hubspot-forms`, hsBody, hsTs),
        },
        payload: hsBody.toString(),
      });
      // An email straight into intake: the offline classifier and the dry-run CRM.
      const { ix } = emailInteraction('intake:offline', 'sweep-offline-1');
      await phase.runtime.pipeline.intake(ix);
      await drained(phase.prefix);

      // Overrides of both kinds, each with its reason, on the decision about the offline email.
      const entries = await readAll();
      const decision = entries.find(
        (e) =>
          e.kind === 'ai.decision' &&
          e.correlationId ===
            entries.find((r) => r.kind === 'interaction.received' && (r.payload as { sourceId: string }).sourceId === 'sweep-offline-1')
              ?.correlationId,
      ) as JournalEntry;
      expect(decision).toBeDefined();
      const deps = { journal: phase.journal, enqueue: enqueueVia(phase.runtime.queues) };
      const current = (decision.payload as { output: { category: string } }).output.category;
      await recordOverride(deps, {
        decisionEntryId: decision.id,
        decisionSeq: decision.seq,
        action: 'override',
        category: current === 'billing' ? 'new_lead' : 'billing',
        reason: reason('override:category'),
        userId: 'ana',
        via: 'cli',
      });
      await recordOverride(deps, {
        decisionEntryId: decision.id,
        decisionSeq: decision.seq,
        action: 'associate',
        associations: { contacts: ['90001'] },
        reason: reason('override:associations'),
        userId: 'ana',
        via: 'api',
      });
      await drained(phase.prefix);
    } finally {
      await web.close();
      await phase.stop();
    }
    const all = await readAll();
    const kinds = new Set(all.map((e) => e.kind));
    for (const k of [
      'interaction.received',
      'ai.decision',
      'rule.decision',
      'crm.write',
      'notification.sent',
      'notification.failed',
      'human.override',
    ])
      expect(kinds, k).toContain(k);
    // Each channel delivered (so their paths were planted through), and the refused e-mail is on the record.
    expect(new Set(all.filter((e) => e.kind === 'notification.sent').map((e) => (e.payload as { channel: string }).channel))).toEqual(
      new Set(['email', 'slack', 'webhook']),
    );
    expect(smtp.answers.some((a) => a.code === 550)).toBe(true);
    expect(slack.messages.length).toBeGreaterThan(0);
    expect(hook.bodies.length).toBeGreaterThan(0);
  });

  it('plants through the model path, model failures and Gmail sync', async () => {
    let gmailFrom = '';
    const summaries = new Map<string, string>();
    fakeAi.setDefault({
      kind: 'ok',
      output: (req) => ({
        ...defaultClassification(req.userText),
        summary: summaries.get('next') ?? 'A summary.',
        nextSteps: [plant('model:output', (t) => `Sweep next step ${t}`)],
      }),
    });
    const classifier = new OpenAiClassifier({
      apiKey: 'sk-sweep-not-a-real-key-0123456789',
      baseURL: fakeAi.baseURL,
      model: 'gpt-4o-mini',
      timeoutMs: 1000,
      maxRetries: 0,
    });
    const env = {
      GOOGLE_CLIENT_ID: fakeGmail.clientId,
      GOOGLE_CLIENT_SECRET: fakeGmail.clientSecret,
      GOOGLE_TOKEN_URL: fakeGmail.tokenUrl,
      GMAIL_API_ROOT: fakeGmail.rootUrl,
      WEBHOOK_PUBLIC_URL: PUBLIC_URL,
      MODEL_CONCURRENCY: '1',
      ...notifyEnv(),
    };
    const phase = await startPhase('model-gmail', env, { classifier }, { now: PAST });
    try {
      summaries.set(
        'next',
        plant('model:output', (t) => `Sweep model summary ${t}`),
      );
      await phase.runtime.pipeline.intake(emailInteraction('intake:model', 'sweep-model-1').ix);
      await drained(phase.prefix);
      // A contact-sales form decided by the model: its notification's text carries the model's summary.
      summaries.set(
        'next',
        plant('model:notified-summary', (t) => `Sweep notified summary ${t}`),
      );
      const submitter = email('intake:model-form');
      await phase.runtime.pipeline.intake({
        channel: 'form',
        source: 'webform',
        sourceId: 'sweep-model-form-1',
        direction: 'inbound',
        occurredAt: new Date(Date.now() - 3_600_000).toISOString(),
        participants: [{ role: 'submitter', address: submitter, name: name('intake:model-form') }],
        text: `Form: Contact sales\nEmail: ${submitter}\nMessage: ${text('intake:model-form')}`,
        metadata: { form: 'contact-sales' },
      });
      await drained(phase.prefix);
      // Every kind of model failure: the offline fallback decides, on the record.
      fakeAi.script({ kind: 'server-error', status: 500 }, { kind: 'refusal' }, { kind: 'invalid-json' }, { kind: 'schema-violation' });
      for (let i = 0; i < 4; i++) await phase.runtime.pipeline.intake(emailInteraction('intake:model-failure', `sweep-model-fail-${i}`).ix);
      await drained(phase.prefix);
      // Gmail: an inbox connected through consent, then synced by its job through the googleapis client.
      const from = email('gmail');
      gmailFrom = from;
      const raw = [
        `From: "${name('gmail')}" <${from}>`,
        `To: ${SALES}`,
        `Cc: ${email('gmail', false)}`,
        `Subject: ${subject('gmail')}`,
        'Message-ID: <sweep-1@example.test>',
        `Date: ${new Date().toUTCString()}`,
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="sweep-b"',
        '',
        '--sweep-b',
        'Content-Type: text/plain; charset=utf-8',
        '',
        text('gmail'),
        `Reach me on ${phone('gmail').formatted}.`,
        '--sweep-b',
        'Content-Type: application/pdf',
        `Content-Disposition: attachment; filename="${plant('gmail', (t) => `Sweep attachment ${t}.pdf`)}"`,
        'Content-Transfer-Encoding: base64',
        '',
        Buffer.from('%PDF-1.4 sweep').toString('base64'),
        '--sweep-b--',
        '',
      ].join('\r\n');
      fakeGmail.addMessage(SALES, { raw: Buffer.from(raw) });
      const gmail = phase.runtime.gmail;
      if (!gmail) throw new Error('gmail not configured');
      const state = new URL(await gmail.consentUrl()).searchParams.get('state') as string;
      await gmail.completeConsent(AUTHORIZATION_CODE, state);
      await drained(phase.prefix);
    } finally {
      await phase.stop();
    }
    const entries = await readAll();
    expect(entries.filter((e) => e.kind === 'ai.decision' && (e.payload as { outcome: string }).outcome === 'failed')).toHaveLength(4);
    expect(
      entries.some(
        (e) => e.kind === 'interaction.received' && e.actor === 'connector:gmail' && JSON.stringify(e.payload).includes(gmailFrom),
      ),
      'the synced message',
    ).toBe(true);
  });

  it('plants through polled forms: Google Forms and HubSpot submissions', async () => {
    fakeForms.addForm(GOOGLE_FORM, 'Contact sales', [
      { questionId: 'q1', title: 'Company' },
      { questionId: 'q2', title: 'What do you need?' },
      { questionId: 'q3', title: 'Your name' },
    ]);
    fakeForms.respond(
      GOOGLE_FORM,
      { q1: 'Acme', q2: text('poll:google-forms'), q3: name('poll:google-forms') },
      { email: email('poll:google-forms') },
    );
    const g = await startPhase(
      'google-forms',
      {
        GOOGLE_CLIENT_ID: fakeForms.clientId,
        GOOGLE_CLIENT_SECRET: fakeForms.clientSecret,
        GOOGLE_TOKEN_URL: fakeForms.tokenUrl,
        GOOGLE_FORMS_API_ROOT: fakeForms.rootUrl,
        WEBHOOK_PUBLIC_URL: PUBLIC_URL,
      },
      {},
      { now: PAST },
    );
    try {
      const state = new URL((await g.runtime.forms.googleConsentUrl(GOOGLE_FORM)) ?? '').searchParams.get('state') as string;
      await g.runtime.forms.completeGoogleConsent(FORMS_AUTHORIZATION_CODE, state);
      expect(await g.runtime.forms.poll('google-forms', GOOGLE_FORM)).toMatchObject({ accepted: 1 });
      await drained(g.prefix);
    } finally {
      await g.stop();
    }
    const hsEmail = email('poll:hubspot-forms');
    fakeHsForms.submit(FORM_GUID, {
      email: hsEmail,
      values: [
        { name: 'email', value: hsEmail },
        { name: 'firstname', value: name('poll:hubspot-forms') },
        { name: 'message', value: text('poll:hubspot-forms') },
        { name: 'phone', value: phone('poll:hubspot-forms').formatted },
      ],
    });
    // Polling needs HUBSPOT_ACCESS_TOKEN, which also turns the mirror on (against the forms fake): poll as a
    // producer, then let a dry-run pipeline on the same queues take the jobs.
    const h = await startPhase(
      'hubspot-forms-poll',
      {
        HUBSPOT_ACCESS_TOKEN: fakeHsForms.accessToken,
        HUBSPOT_BASE_PATH: fakeHsForms.basePath,
        HUBSPOT_FORMS_POLL: `${FORM_GUID}=contact-sales`,
        FORMS_POLL_EVERY_SECONDS: '3600',
      },
      { queues: [] },
      { now: PAST },
    );
    try {
      expect(await h.runtime.forms.poll('hubspot-forms', FORM_GUID)).toMatchObject({ accepted: 1 });
    } finally {
      await h.stop();
    }
    const d = await startPhase('hubspot-forms-work', {}, {}, { now: PAST, prefix: h.prefix });
    try {
      await drained(d.prefix);
    } finally {
      await d.stop();
    }
  });

  it('plants through the HubSpot mirror (known contacts, a refused item quoting its value, re-mirrors after overrides)', async () => {
    const env = {
      HUBSPOT_ACCESS_TOKEN: HS_TOKEN,
      HUBSPOT_BASE_PATH: fakeHs.baseUrl,
      HUBSPOT_BATCH_WINDOW_MS: '100',
      HUBSPOT_DEAL_RULE: 'none',
    };
    const phase = await startPhase('hubspot-mirror', env, {}, { now: PAST });
    try {
      const a = emailInteraction('mirror:email', 'sweep-mirror-1');
      fakeHs.seed('contacts', { email: a.from, firstname: 'Known', lastname: 'Contact' });
      await phase.runtime.pipeline.intake(a.ix);
      await waitFor(() => fakeHs.objects('emails').length >= 1, { what: 'the first activity', timeoutMs: 60_000 });
      // The next email batch refuses its subject: HubSpot's message quotes the value.
      fakeHs.inject(
        { kind: 'invalid', property: 'hs_email_subject', count: 1 },
        { method: 'POST', pathPrefix: '/crm/v3/objects/emails/batch/upsert' },
      );
      await phase.runtime.pipeline.intake(emailInteraction('mirror:refused', 'sweep-mirror-2').ix);
      await drained(phase.prefix);
      // Re-mirrors after overrides of both kinds: changed properties and associations on the record.
      const entries = await readAll();
      const ixEntry = entries.find(
        (e) => e.kind === 'interaction.received' && (e.payload as { sourceId: string }).sourceId === 'sweep-mirror-1',
      ) as JournalEntry;
      const decision = entries.find((e) => e.kind === 'ai.decision' && e.correlationId === ixEntry.correlationId) as JournalEntry;
      const deps = { journal: phase.journal, enqueue: enqueueVia(phase.runtime.queues) };
      const current = (decision.payload as { output: { category: string } }).output.category;
      await recordOverride(deps, {
        decisionEntryId: decision.id,
        decisionSeq: decision.seq,
        action: 'override',
        category: current === 'billing' ? 'new_lead' : 'billing',
        reason: reason('mirror:override-category'),
        userId: 'ana',
        via: 'audit-ui',
      });
      const other = fakeHs.seed('contacts', { email: 'other.contact@customer.example' });
      await recordOverride(deps, {
        decisionEntryId: decision.id,
        decisionSeq: decision.seq,
        action: 'associate',
        associations: { contacts: [other] },
        reason: reason('mirror:override-associations'),
        userId: 'ana',
        via: 'audit-ui',
      });
      await drained(phase.prefix);
    } finally {
      await phase.stop();
    }
    const kinds = (await readAll()).map((e) => e.kind);
    expect(kinds).toContain('crm.write_failed');
  });

  it('plants through the call CSV import and drift repair (the real CLI, at the real time)', async () => {
    const prefix = uniquePrefix();
    prefixes.push(prefix);
    const csvPhone = phone('cli:import-calls', true);
    const csv = [
      'call_id,direction,from,to,agent,started_at,duration_seconds,status,subject,notes',
      `sweep-csv-1,inbound,${csvPhone.e164},+442071838750,ana@northwind-analytics.example,2026-11-01T14:30:00Z,312,completed,${subject('cli:import-calls')},"${text('cli:import-calls').replace(/"/g, '""')}"`,
    ].join('\n');
    const file = join(inputs.dir, 'calls.csv'); // an input, outside what the product stores
    writeFileSync(file, csv);
    const imported = await cli(['--json', 'import', 'calls', file], { QUEUE_PREFIX: prefix });
    expect(imported.status, imported.stderr).toBe(0);
    expect(JSON.parse(imported.stdout)).toMatchObject({ accepted: 1 });
    const d = await startPhase('import-work', {}, {}, { prefix });
    try {
      await drained(prefix);
    } finally {
      await d.stop();
    }

    // An activity edited by hand in HubSpot to a planted value: drift repair writes it back, on the record.
    const target = fakeHs.objects('emails')[0];
    await createHubSpotClient({ accessToken: HS_TOKEN, basePath: fakeHs.baseUrl }).crm.objects.emails.basicApi.update(
      target?.id as string,
      { properties: { hs_email_subject: plant('cli:crm-drift', (t) => `Sweep drift value ${t}`) } },
    );
    const driftPrefix = uniquePrefix();
    prefixes.push(driftPrefix);
    const hsEnv = {
      HUBSPOT_ACCESS_TOKEN: HS_TOKEN,
      HUBSPOT_BASE_PATH: fakeHs.baseUrl,
      HUBSPOT_DEAL_RULE: 'none',
      QUEUE_PREFIX: driftPrefix,
    };
    expect((await cli(['--json', 'crm', 'drift'], hsEnv)).status).toBe(1);
    const repaired = await cli(['--json', 'crm', 'drift', '--repair'], hsEnv);
    expect(repaired.status, repaired.stderr).toBe(0);
    expect((await readAll()).some((e) => e.kind === 'state.changed' && e.actor === 'crm:drift-repair')).toBe(true);
  });

  it('every sealed field a planted value reaches carries one, opened', async () => {
    const entries = await readAll();
    for (const e of entries)
      if (e.kind === 'interaction.received' && !correlations.has(e.source)) correlations.set(e.source, e.correlationId);
    const carries = (value: unknown): boolean => {
      const json = JSON.stringify(value ?? null).toLowerCase();
      return planted.some((x) => needlesOf(x).some((n) => json.includes(n.toString('utf8'))));
    };
    // Independent of RULES (so that removing a field from a rule fails the scan, not this check).
    const reached = COVERED.filter((kf) => {
      const [kind, field] = [kf.slice(0, kf.lastIndexOf('.')), kf.slice(kf.lastIndexOf('.') + 1)];
      return entries.some((e) => e.kind === kind && carries((e.payload as Record<string, unknown>)[field]));
    });
    expect(reached).toEqual(COVERED);
    // Every path's values made it into the journal (opened), so the scan below tests something.
    const opened = JSON.stringify(entries).toLowerCase();
    const missing = [...new Set(planted.filter((x) => !needlesOf(x).some((n) => opened.includes(n.toString('utf8')))).map((x) => x.path))];
    expect(missing).toEqual([]);
  });

  it('finds no planted value in clear in any file, log or Redis key, with the audit index, an export and the archive written', async () => {
    const built = await cli(['--json', 'decisions', '--limit', '500']);
    expect(built.status, built.stderr).toBe(0);
    mkdirSync(join(dataDir, 'exports'), { recursive: true });
    const exported = await cli(['export', '--from', '2000-01-01', '--until', '2100-01-01', '--out', join(dataDir, 'exports', 'all.jsonl')]);
    expect(exported.status, exported.stderr).toBe(0);
    const archived = await cli(['archive']);
    expect(archived.status, archived.stdout + archived.stderr).toBe(0);
    const verified = await cli(['verify', '--include-archives']);
    expect(verified.status, verified.stdout + verified.stderr).toBe(0);
    const { hits, files, keys } = await scanEverything();
    // The stores are all there (so the scan looked at them).
    const config = testConfig(dataDir);
    for (const f of [
      journalPath,
      config.audit.indexPath,
      config.privacy.keyStorePath,
      config.privacy.keyStoreBackupPath,
      config.privacy.masterKeyFile,
      join(dataDir, 'exports', 'all.jsonl'),
    ])
      expect(files, f).toContain(relative(tmp.dir, f));
    expect(
      files.some((f) => f.startsWith('data/state/')),
      'state files',
    ).toBe(true);
    expect(
      files.some((f) => /^data\/archive\/.*\.pruned-1\.sqlite\.gz$/.test(f)),
      `pruned segment among ${files.join(', ')}`,
    ).toBe(true);
    expect(files.filter((f) => f.startsWith('logs/')).length).toBeGreaterThan(5);
    expect(keys).toBeGreaterThan(10);
    expect(report(hits)).toEqual([]);
  });

  it('after forget of every planted person nothing of them is readable anywhere, and verify passes', { timeout: 300_000 }, async () => {
    for (const who of people) {
      const r = await cli(['--json', 'forget', who]);
      expect(r.status, `${who}: ${r.stderr}`).toBe(0);
    }
    const { hits } = await scanEverything();
    expect(report(hits)).toEqual([]);
    // Readers with the key store: every entry, hot and archived, through the privacy layer.
    const all = await readAll();
    const found: Hit[] = [];
    for (const e of all) search(`entry ${e.seq} (${e.kind}) read with the key store`, Buffer.from(JSON.stringify(e)), found);
    // trace --json (an interaction of a call, a form and a Gmail source; every entry was read above), the
    // audit export and the audit index.
    for (const c of ['aircall', 'hubspot-forms', 'gmail'].map((source) => correlations.get(source) as string)) {
      const r = await cli(['--json', 'trace', c]);
      expect(r.status, r.stderr).toBe(0);
      search(`trace ${c}`, Buffer.from(r.stdout), found);
    }
    // Only the hot range: an export that reaches into archived entries fails (no inclusion proof without their
    // tree nodes; reported separately), and archived payloads are read above.
    const exported = await cli(['export', '--from', new Date().toISOString().slice(0, 10), '--until', '2100-01-01']);
    expect(exported.status, exported.stderr).toBe(0);
    search('audit export', Buffer.from(exported.stdout), found);
    const decisions = await cli(['--json', 'decisions', '--limit', '500']);
    expect(decisions.status, decisions.stderr).toBe(0);
    search('decisions (audit index)', Buffer.from(decisions.stdout), found);
    const config = testConfig(dataDir);
    const privacy = openKeyStoreForCheck(config.privacy);
    const index = openConfiguredIndex(config, privacy);
    try {
      for (const who of people) expect(index.query({ contact: who }).rows, who).toEqual([]);
    } finally {
      index.close();
      privacy?.close();
    }
    expect(report(found)).toEqual([]);
    const verified = await cli(['verify', '--include-archives']);
    expect(verified.status, verified.stdout + verified.stderr).toBe(0);
    // Every interaction reads as erased (or, a form past its 90 days, as dropped by the retention policy).
    const readable = all.filter(
      (e) =>
        e.kind === 'interaction.received' && (e.payload as { erased?: boolean }).erased !== true && !('$dropped' in (e.payload as object)),
    );
    expect(readable.map((e) => `${e.seq} ${e.source} ${JSON.stringify(e.payload)}`)).toEqual([]);
  });
});
