/**
 * The one place that reads the environment. Parsed once at start-up into a typed Config; every problem is
 * reported at once.
 */
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';

const intFrom = (def: number, min: number) => z.coerce.number().int().min(min).default(def);
const list = z
  .string()
  .default('')
  .transform((s) => s.split(',').map((x) => x.trim()).filter((x) => x.length > 0));
const token = z.string().min(32, 'must be at least 32 characters').optional();

export const EnvSchema = z.object({
  JOURNAL_PATH: z.string().min(1).default('./data/journal.sqlite'),
  JOURNAL_KEYS_DIR: z.string().min(1).optional(),
  JOURNAL_SERVICE_LISTEN: z.string().min(1).default('127.0.0.1:7077'),
  JOURNAL_SERVICE_URL: z.string().min(1).optional(),
  JOURNAL_APPEND_TOKEN: token,
  JOURNAL_READ_TOKEN: token,
  JOURNAL_MAX_PAYLOAD_BYTES: intFrom(1024 * 1024, 1024),
  JOURNAL_CHECKPOINT_EVERY_ENTRIES: intFrom(1000, 1),
  JOURNAL_CHECKPOINT_EVERY_SECONDS: intFrom(10, 0),
  JOURNAL_ANCHOR_DIRS: z.string().optional(),
  JOURNAL_ANCHOR_URLS: list,
  JOURNAL_ANCHOR_TOKEN: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Env = z.infer<typeof EnvSchema>;

/** Where the journal service listens: a loopback host and port, or a Unix socket. */
export type Listen = { readonly kind: 'tcp'; readonly host: string; readonly port: number } | { readonly kind: 'unix'; readonly path: string };

export interface Config {
  readonly journal: {
    readonly path: string;
    readonly keysDir: string;
    readonly maxPayloadBytes: number;
    readonly checkpointEveryEntries: number;
    readonly checkpointEveryMs: number;
    readonly anchorDirs: readonly string[];
    /** True when the anchor directory is the embedded default (created on demand); configured ones must already exist. */
    readonly createAnchorDirs: boolean;
    readonly anchorUrls: readonly string[];
    readonly anchorToken: string | undefined;
  };
  readonly service: {
    readonly listen: Listen;
    /** How clients reach the service: http://host:port or unix:/path. */
    readonly url: string;
    readonly appendToken: string | undefined;
    readonly readToken: string | undefined;
  };
  readonly logLevel: string;
}

export class ConfigError extends Error {
  readonly code = 'CONFIG';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}\nSee .env.example for every variable.`);
    this.name = 'ConfigError';
  }
}

export function parseListen(value: string): Listen | null {
  if (value.startsWith('unix:')) return { kind: 'unix', path: resolve(value.slice(5)) };
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value);
  if (!m) return null;
  const port = Number(m[2]);
  if (port > 65535) return null;
  return { kind: 'tcp', host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
}

/** Parses the environment (and overrides from the command line, e.g. --journal). Throws ConfigError listing every problem. */
export function loadConfig(env: NodeJS.ProcessEnv, overrides: { journalPath?: string | undefined } = {}): Config {
  // An empty variable (`FOO=` in a .env file) means "not set", as most tools treat it.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = EnvSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const e = parsed.data;
  const problems: string[] = [];
  const path = resolve(overrides.journalPath ?? e.JOURNAL_PATH);
  const dataDir = dirname(path);
  const listen = parseListen(e.JOURNAL_SERVICE_LISTEN);
  if (!listen) problems.push(`JOURNAL_SERVICE_LISTEN: expected HOST:PORT or unix:/path, got ${JSON.stringify(e.JOURNAL_SERVICE_LISTEN)}`);
  for (const u of e.JOURNAL_ANCHOR_URLS) if (!/^https?:\/\//.test(u)) problems.push(`JOURNAL_ANCHOR_URLS: ${u} is not an http(s) URL`);
  if (problems.length > 0) throw new ConfigError(problems);
  const l = listen as Listen;
  const defaultUrl = l.kind === 'unix' ? `unix:${l.path}` : `http://${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`;
  return {
    journal: {
      path,
      keysDir: resolve(e.JOURNAL_KEYS_DIR ?? join(dataDir, 'keys')),
      maxPayloadBytes: e.JOURNAL_MAX_PAYLOAD_BYTES,
      checkpointEveryEntries: e.JOURNAL_CHECKPOINT_EVERY_ENTRIES,
      checkpointEveryMs: e.JOURNAL_CHECKPOINT_EVERY_SECONDS * 1000,
      anchorDirs: e.JOURNAL_ANCHOR_DIRS === undefined ? [join(dataDir, 'anchors')] : e.JOURNAL_ANCHOR_DIRS.split(',').map((s) => s.trim()).filter(Boolean).map((d) => resolve(d)),
      createAnchorDirs: e.JOURNAL_ANCHOR_DIRS === undefined,
      anchorUrls: e.JOURNAL_ANCHOR_URLS,
      anchorToken: e.JOURNAL_ANCHOR_TOKEN,
    },
    service: { listen: l, url: e.JOURNAL_SERVICE_URL ?? defaultUrl, appendToken: e.JOURNAL_APPEND_TOKEN, readToken: e.JOURNAL_READ_TOKEN },
    logLevel: e.LOG_LEVEL,
  };
}
