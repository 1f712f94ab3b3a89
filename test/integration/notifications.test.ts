/**
 * Notifications for real, end to end: a contact-sales form through the pipeline (real Redis, real workers, a
 * sealed journal) is delivered by nodemailer to a real SMTP listener (smtp-server, STARTTLS and AUTH), by fetch
 * to a fake Slack incoming webhook, and to a signed webhook whose receiver checks the signature as README
 * documents it. Temporary refusals retry and then send once; permanent ones fail at once, on the record; a
 * job run again after its send sends nothing; nothing personal or secret is in clear in the journal or Redis.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { tempDir } from '../helpers/tmp.ts';
import { REDIS_URL, allEntries, drained, inProcessPipeline, testConfig, type InProcessPipeline } from '../helpers/pipeline.ts';
import { startPipeline } from '../../jobs/main.ts';
import { silentLogger } from '../../src/config/logger.ts';
import { QUEUE_NAMES } from '../../src/pipeline/job-catalog.ts';
import { startSmtpFake, type SmtpFake } from '../fakes/smtp.fake.ts';
import { startSlackFake, type SlackFake } from '../fakes/slack.fake.ts';
import { DEFAULT_RULES_PATH } from '../../src/config/config.ts';
import { jobIdFor, type JobData } from '../../src/pipeline/job-catalog.ts';
import { reviveVia } from '../../jobs/queues.ts';
import type { JournalEntry } from '../../src/journal/entry.ts';
import type { Interaction } from '../../src/pipeline/interaction.ts';

const SMTP_USER = 'aj-notifier';
const SMTP_PASS = 'smtp-pass-4f9c2a7e1b';
const HOOK_SECRET = 'hook-secret-9d2e7c1a5b3f';
const TEAM = 'sales-desk@northwind-analytics.example';
const SUBMITTER = 'hana.sato@kestrel-bio.example';
const PUBLIC_URL = 'https://journal.northwind.example';

interface HookCall {
  readonly valid: boolean;
  readonly idempotencyKey: string | null;
  readonly body: Record<string, unknown>;
}

/** A webhook receiver as README tells one to write it: HMAC-SHA256 over "<timestamp>.<raw body>", compared in constant time. */
async function startReceiver(
  secret: string,
): Promise<{ url: string; calls: HookCall[]; failNext: (status: number) => void; close: () => Promise<void> }> {
  const calls: HookCall[] = [];
  const fails: number[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const ts = String(req.headers['x-aj-timestamp'] ?? '');
      const sig = String(req.headers['x-aj-signature'] ?? '');
      const expected = Buffer.from(`v1=${createHmac('sha256', secret).update(`${ts}.${raw}`).digest('hex')}`);
      const valid =
        sig.length === expected.length && timingSafeEqual(Buffer.from(sig), expected) && Math.abs(Date.now() / 1000 - Number(ts)) < 300;
      const status = fails.shift();
      calls.push({
        valid,
        idempotencyKey: (req.headers['idempotency-key'] as string | undefined) ?? null,
        body: JSON.parse(raw) as Record<string, unknown>,
      });
      res.writeHead(status ?? (valid ? 200 : 401)).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/aj`,
    calls,
    failNext: (s) => fails.push(s),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

let n = 0;
function contactSalesForm(): Interaction {
  n += 1;
  return {
    channel: 'form',
    source: 'webform',
    sourceId: `form-contact-sales-${process.pid}-${n}`,
    direction: 'inbound',
    occurredAt: '2026-11-10T14:05:00-05:00',
    participants: [{ role: 'submitter', address: SUBMITTER, name: 'Hana Sato' }],
    text: `Form: Contact sales\nName: Hana Sato\nEmail: ${SUBMITTER}\nCompany: Kestrel Bio\nMessage: We would like pricing and a demo for our lab operations team.`,
    metadata: { form: 'contact-sales', page: '/pricing' },
  };
}

let smtp: SmtpFake;
let slack: SlackFake;
let hook: Awaited<ReturnType<typeof startReceiver>>;
let rulesDir: { dir: string; cleanup: () => void };
let rulesPath: string;
let tmp: { dir: string; cleanup: () => void };
let p: InProcessPipeline | null = null;

beforeAll(async () => {
  [smtp, slack, hook] = await Promise.all([
    startSmtpFake({ user: SMTP_USER, pass: SMTP_PASS }),
    startSlackFake(),
    startReceiver(HOOK_SECRET),
  ]);
  // The shipped rules, with the sales team reachable on all three channels (kept outside the data directory).
  rulesDir = tempDir('aj-notify-rules-');
  rulesPath = join(rulesDir.dir, 'rules.json');
  const rules = JSON.parse(readFileSync(DEFAULT_RULES_PATH, 'utf8')) as { recipients: Record<string, unknown> };
  rules.recipients['sales-team'] = {
    email: { to: [TEAM] },
    slack: { webhookUrlEnv: 'SLACK_SALES_WEBHOOK_URL' },
    webhook: { urlEnv: 'SALES_HOOK_URL', secretEnv: 'SALES_HOOK_SECRET' },
  };
  writeFileSync(rulesPath, JSON.stringify(rules));
});
afterAll(async () => {
  await Promise.all([smtp.close(), slack.close(), hook.close()]);
  rulesDir.cleanup();
});
beforeEach(async () => {
  tmp = tempDir('aj-notify-');
  smtp.received.length = 0;
  smtp.answers.length = 0;
  slack.messages.length = 0;
  slack.answers.length = 0;
  slack.answeredAt.length = 0;
  slack.retryAfterSeconds = 1;
  hook.calls.length = 0;
  p = await inProcessPipeline(tmp.dir, {}, env());
});
function env(): NodeJS.ProcessEnv {
  return {
    RULES_PATH: rulesPath,
    WEBHOOK_PUBLIC_URL: PUBLIC_URL,
    SMTP_HOST: '127.0.0.1',
    SMTP_PORT: String(smtp.port),
    SMTP_TLS: 'starttls',
    // smtp-server's own self-signed certificate.
    SMTP_TLS_REJECT_UNAUTHORIZED: 'false',
    SMTP_USER,
    SMTP_PASSWORD: SMTP_PASS,
    SMTP_FROM: 'Activity Journal <journal@northwind-analytics.example>',
    SLACK_SALES_WEBHOOK_URL: slack.webhookUrl,
    SALES_HOOK_URL: hook.url,
    SALES_HOOK_SECRET: HOOK_SECRET,
    REDRIVE_GRACE_SECONDS: '0',
  };
}
afterEach(async () => {
  await p?.stop();
  p = null;
  tmp.cleanup();
});

const payload = (e: JournalEntry): Record<string, unknown> => e.payload as Record<string, unknown>;

async function runForm(): Promise<{ correlationId: string; entryId: string; chain: JournalEntry[] }> {
  const pipeline = p as InProcessPipeline;
  const out = await pipeline.runtime.pipeline.intake(contactSalesForm());
  if (out.status !== 'accepted') throw new Error('the form was excluded');
  await drained(pipeline.prefix);
  const chain = allEntries(pipeline.path).filter((e) => e.correlationId === out.entry.correlationId);
  return { correlationId: out.entry.correlationId, entryId: out.entry.id, chain };
}

const of = (chain: readonly JournalEntry[], kind: string, channel?: string): JournalEntry[] =>
  chain.filter((e) => e.kind === kind && (channel === undefined || payload(e).channel === channel));

describe('notifications', () => {
  it('a contact-sales form sends exactly one e-mail, one Slack message and one signed webhook call, all on the record under its correlation', async () => {
    const { chain, correlationId, entryId } = await runForm();
    expect(smtp.received).toHaveLength(1);
    const mail = smtp.received[0];
    expect(mail?.to).toEqual([TEAM]);
    expect(mail?.secure).toBe(true); // STARTTLS
    expect(mail?.user).toBe(SMTP_USER);
    expect(mail?.messageId).toBe(`<${entryId}.contact-sales-form.email@northwind-analytics.example>`);
    const traceUrl = `${PUBLIC_URL}/audit/trace?correlationId=${encodeURIComponent(correlationId)}`;
    expect(mail?.raw.replace(/=\r?\n/g, '')).toContain('correlationId=');
    expect(slack.messages).toHaveLength(1);
    expect(slack.messages[0]?.text).toContain(traceUrl);
    expect(hook.calls).toHaveLength(1);
    expect(hook.calls[0]).toMatchObject({ valid: true, idempotencyKey: `${entryId}.contact-sales-form.webhook` });
    expect(hook.calls[0]?.body).toMatchObject({ entryId, correlationId, ruleId: 'contact-sales-form', recipient: 'sales-team', traceUrl });

    const decision = chain.find((e) => e.kind === 'rule.decision' && payload(e).ruleId === 'contact-sales-form');
    expect(payload(decision as JournalEntry).outcome).toBe('notify:sales-team');
    for (const channel of ['email', 'slack', 'webhook']) {
      expect(of(chain, 'notification.attempted', channel), channel).toHaveLength(1);
      const sent = of(chain, 'notification.sent', channel);
      expect(sent, channel).toHaveLength(1);
      expect(sent[0]?.causationId).toBe(entryId);
      expect(payload(sent[0] as JournalEntry)).toMatchObject({
        recipient: 'sales-team',
        ruleId: 'contact-sales-form',
        dryRun: false,
        attempt: 1,
        deliveryId: `${entryId}.contact-sales-form.${channel}`,
      });
    }
    expect(payload(of(chain, 'notification.sent', 'email')[0] as JournalEntry).to).toEqual([TEAM]);
    expect(of(chain, 'notification.failed')).toHaveLength(0);
    expect(of(chain, 'notification.sent', 'log')).toHaveLength(0);
  });

  it('a temporary refusal (451, Slack 429, webhook 503) is journaled and retried with backoff, and then sends once', async () => {
    smtp.refuseNext({ at: 'data', code: 451 });
    slack.refuseNext('rate_limited');
    hook.failNext(503);
    const { chain } = await runForm();
    expect(smtp.received).toHaveLength(1);
    expect(smtp.answers.filter((a) => a.at === 'data').map((a) => a.code)).toEqual([451, 250]);
    expect(slack.messages).toHaveLength(1);
    expect(slack.answers).toEqual([429, 200]);
    expect(hook.calls.map((c) => c.valid)).toEqual([true, true]);
    // The same delivery id on the retry: the receiver can drop a duplicate by it.
    expect(new Set(hook.calls.map((c) => c.idempotencyKey)).size).toBe(1);
    for (const [channel, code] of [
      ['email', '451'],
      ['slack', '429-rate_limited'],
      ['webhook', '503'],
    ] as const) {
      const failed = of(chain, 'notification.failed', channel);
      expect(failed, channel).toHaveLength(1);
      expect(payload(failed[0] as JournalEntry)).toMatchObject({ retryable: true, code, attempt: 1 });
      expect(
        of(chain, 'notification.attempted', channel).map((e) => payload(e).attempt),
        channel,
      ).toEqual([1, 2]);
      expect(
        of(chain, 'notification.sent', channel).map((e) => payload(e).attempt),
        channel,
      ).toEqual([2]);
    }
    expect(payload(of(chain, 'notification.failed', 'slack')[0] as JournalEntry).retryAfterSeconds).toBe(1);
    expect(of(chain, 'job.failed')).toHaveLength(0);
  });

  it('a Retry-After longer than the backoff is waited out before the next attempt', async () => {
    // The notify queue's first backoff is 1-2 s; Slack asks for 6.
    slack.retryAfterSeconds = 6;
    slack.refuseNext('rate_limited');
    const { chain } = await runForm();
    expect(slack.answers).toEqual([429, 200]);
    expect((slack.answeredAt[1] as number) - (slack.answeredAt[0] as number)).toBeGreaterThanOrEqual(5_900);
    expect(payload(of(chain, 'notification.failed', 'slack')[0] as JournalEntry)).toMatchObject({
      retryable: true,
      code: '429-rate_limited',
      retryAfterSeconds: 6,
    });
    expect(of(chain, 'notification.sent', 'slack').map((e) => payload(e).attempt)).toEqual([2]);
  }, 60_000);

  it('a recipient the mail server refuses while it takes the others: sent to the others, the refused one on the record, nothing sent twice', async () => {
    await p?.stop();
    const BOUNCE = 'left-the-company@northwind-analytics.example';
    const rules = JSON.parse(readFileSync(DEFAULT_RULES_PATH, 'utf8')) as { recipients: Record<string, unknown> };
    rules.recipients['sales-team'] = { email: { to: [BOUNCE, TEAM] } };
    const partialRules = join(rulesDir.dir, 'rules-partial.json');
    writeFileSync(partialRules, JSON.stringify(rules));
    p = await inProcessPipeline(tmp.dir, {}, { ...env(), RULES_PATH: partialRules });
    smtp.refuseNext({ at: 'rcpt', code: 550, message: `5.1.1 <${BOUNCE}>: Recipient address rejected: User unknown` });
    const { chain } = await runForm();
    expect(smtp.received).toHaveLength(1);
    expect(smtp.received[0]?.to).toEqual([TEAM]);
    expect(smtp.answers.filter((a) => a.at === 'rcpt').map((a) => a.code)).toEqual([550, 250]);
    const sent = of(chain, 'notification.sent', 'email');
    expect(sent.map((e) => payload(e))).toMatchObject([{ attempt: 1, to: [TEAM], rejected: [BOUNCE] }]);
    expect(of(chain, 'notification.failed', 'email')).toHaveLength(0);
    // Sealed, like the other addresses: not in clear in the journal file.
    expect(readFileSync(p.path).includes(Buffer.from(BOUNCE))).toBe(false);
  });

  it('a permanent refusal (550 for the recipient, Slack 404 channel_not_found) fails the job at once with its reason on the record', async () => {
    smtp.refuseNext({ at: 'rcpt', code: 550 });
    slack.refuseNext('channel_not_found');
    const { chain } = await runForm();
    expect(smtp.received).toHaveLength(0);
    expect(smtp.answers).toEqual([{ at: 'rcpt', code: 550 }]);
    expect(slack.messages).toHaveLength(0);
    expect(slack.answers).toEqual([404]);
    expect(hook.calls).toHaveLength(1); // the other channel is not held up
    for (const [channel, code] of [
      ['email', '550'],
      ['slack', '404-channel_not_found'],
    ] as const) {
      expect(of(chain, 'notification.attempted', channel), channel).toHaveLength(1);
      const failed = of(chain, 'notification.failed', channel);
      expect(
        failed.map((e) => payload(e)),
        channel,
      ).toMatchObject([{ retryable: false, code, attempt: 1 }]);
      expect(of(chain, 'notification.sent', channel), channel).toHaveLength(0);
      const job = chain.filter(
        (e) => e.kind === 'job.failed' && payload(e).queue === 'notify' && String(payload(e).jobId).endsWith(`.${channel}`),
      );
      expect(
        job.map((e) => payload(e)),
        channel,
      ).toMatchObject([{ finality: 'permanent', attempts: 1 }]);
      expect(String(payload(job[0] as JournalEntry).error)).toContain(code);
    }
    // The SMTP server's words (they quote the address) are on the record, sealed.
    expect(String(payload(of(chain, 'notification.failed', 'email')[0] as JournalEntry).error)).toContain(TEAM);
  });

  it('a job run again after its send does not send twice', async () => {
    const { chain, entryId, correlationId } = await runForm();
    expect(smtp.received).toHaveLength(1);
    expect(slack.messages).toHaveLength(1);
    const received = chain.find((e) => e.id === entryId) as JournalEntry;
    const decision = chain.find((e) => e.kind === 'ai.decision') as JournalEntry;
    const pipeline = p as InProcessPipeline;
    // As the re-drive (or a redelivered job) would: the completed jobs are run once more.
    const revive = reviveVia(pipeline.runtime.queues);
    for (const channel of ['email', 'slack', 'webhook'] as const) {
      const data: JobData<'notify'> = {
        entryId,
        seq: received.seq,
        correlationId,
        decisionEntryId: decision.id,
        decisionSeq: decision.seq,
        ruleId: 'contact-sales-form',
        channel,
      };
      const key = `${entryId}.contact-sales-form.${channel}`;
      expect(await pipeline.runtime.queues.notify.getJob(jobIdFor('notify', key)).then((j) => j?.getState())).toBe('completed');
      await revive('notify', data, key);
    }
    await drained(pipeline.prefix);
    expect(
      await pipeline.runtime.queues.notify
        .getJob(jobIdFor('notify', `${entryId}.contact-sales-form.email`))
        .then((j) => j?.returnvalue as unknown),
    ).toMatchObject({ status: 'already-sent' });
    expect(smtp.received).toHaveLength(1);
    expect(slack.messages).toHaveLength(1);
    expect(hook.calls).toHaveLength(1);
    const after = allEntries(pipeline.path).filter((e) => e.correlationId === correlationId);
    expect(of(after, 'notification.attempted')).toHaveLength(3);
    expect(of(after, 'notification.sent')).toHaveLength(3);
  });

  it('re-drives from the journal the notify jobs Redis lost, and sends each once', async () => {
    const first = p as InProcessPipeline;
    await first.runtime.close();
    // Workers for every stage but notify: the notify jobs wait in Redis, and are then lost with it.
    const producer = await startPipeline(testConfig(tmp.dir, env()), silentLogger, {
      journal: first.journal,
      prefix: first.prefix,
      queues: QUEUE_NAMES.filter((q) => q !== 'notify'),
    });
    const out = await producer.pipeline.intake(contactSalesForm());
    if (out.status !== 'accepted') throw new Error('the form was excluded');
    const waiting = async (): Promise<number> => (await producer.queues.notify.getJobCounts('waiting')).waiting ?? 0;
    for (let i = 0; i < 600 && (await waiting()) < 3; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await waiting()).toBe(3);
    await producer.queues.notify.obliterate({ force: true });
    await producer.close();
    expect(smtp.received).toHaveLength(0);
    const decided = allEntries(first.path).find(
      (e) => e.kind === 'rule.decision' && payload(e).ruleId === 'contact-sales-form',
    ) as JournalEntry;
    expect((payload(decided).evaluated as { channels: string[] }).channels).toEqual(['email', 'slack', 'webhook']);
    // A restarted worker set re-drives them from the journal alone.
    const again = await startPipeline(testConfig(tmp.dir, env()), silentLogger, { journal: first.journal, prefix: first.prefix });
    try {
      await again.redrive?.runOnce();
      await drained(first.prefix);
      expect(smtp.received).toHaveLength(1);
      expect(slack.messages).toHaveLength(1);
      expect(hook.calls).toHaveLength(1);
      // Everything on the record now: another pass re-drives nothing.
      expect(await again.redrive?.runOnce()).toBe(0);
    } finally {
      await again.close();
    }
  });

  it('keeps addresses, the message and every secret out of the journal file and the job data in clear', async () => {
    smtp.refuseNext({ at: 'rcpt', code: 550 });
    const { chain } = await runForm();
    const decision = chain.find((e) => e.kind === 'ai.decision') as JournalEntry;
    const summary = String((payload(decision).output as { summary: string }).summary);
    const attempted = of(chain, 'notification.attempted', 'slack')[0] as JournalEntry;
    // Opened, the entries hold what was sent; stored, they hold it sealed.
    expect(String(payload(attempted).text)).toContain(summary);
    const secretPath = new URL(slack.webhookUrl).pathname;
    const needles = [TEAM, SUBMITTER, summary, secretPath, SMTP_PASS, HOOK_SECRET, hook.url];
    const files = (function* walk(dir: string): Generator<string> {
      for (const name of readdirSync(dir)) {
        const f = join(dir, name);
        if (statSync(f).isDirectory()) yield* walk(f);
        else yield f;
      }
    })(tmp.dir);
    const hits: string[] = [];
    let journalBytes = 0;
    for (const f of files) {
      const bytes = readFileSync(f);
      if (f.includes('journal.sqlite')) journalBytes += bytes.length;
      for (const needle of needles) if (bytes.includes(Buffer.from(needle))) hits.push(`${f}: ${needle}`);
    }
    expect(journalBytes).toBeGreaterThan(0);
    // Redis: the notify jobs' data and results, and everything else under this run's prefix.
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    try {
      const keys = await redis.keys(`${(p as InProcessPipeline).prefix}:notify:*`);
      expect(keys.length).toBeGreaterThan(0);
      for (const key of keys) {
        const type = await redis.type(key);
        const text =
          type === 'hash'
            ? JSON.stringify(await redis.hgetall(key))
            : type === 'list'
              ? (await redis.lrange(key, 0, -1)).join(' ')
              : type === 'zset'
                ? (await redis.zrange(key, '0', '-1')).join(' ')
                : type === 'string'
                  ? ((await redis.get(key)) ?? '')
                  : '';
        for (const needle of needles) if (text.includes(needle)) hits.push(`redis ${key}: ${needle}`);
      }
    } finally {
      redis.disconnect();
    }
    expect(hits).toEqual([]);
  });
});
