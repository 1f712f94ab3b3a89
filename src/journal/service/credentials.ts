/**
 * The service's two credentials: one may append, the other may read. Taken from the configuration when set,
 * otherwise generated on first start into a 0600 file beside the keys, where local tools find them.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ServiceCredentials {
  readonly appendToken: string;
  readonly readToken: string;
}

const FILE = 'service-credentials.json';

export function credentialsFile(keysDir: string): string {
  return join(keysDir, FILE);
}

/** The configured tokens, else the generated file's, creating it when `create` is set. Null when there are none. */
export function resolveCredentials(
  keysDir: string,
  configured: { appendToken?: string | undefined; readToken?: string | undefined },
  create: boolean,
): ServiceCredentials | null {
  const file = credentialsFile(keysDir);
  let stored: Partial<ServiceCredentials> = {};
  if (existsSync(file)) {
    if ((statSync(file).mode & 0o077) !== 0) throw new Error(`${file} is readable by others; run: chmod 600 ${file}`);
    stored = JSON.parse(readFileSync(file, 'utf8')) as Partial<ServiceCredentials>;
  } else if (create && (!configured.appendToken || !configured.readToken)) {
    mkdirSync(keysDir, { recursive: true, mode: 0o700 });
    stored = { appendToken: randomBytes(32).toString('base64url'), readToken: randomBytes(32).toString('base64url') };
    try {
      writeFileSync(file, JSON.stringify(stored, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      stored = JSON.parse(readFileSync(file, 'utf8')) as Partial<ServiceCredentials>;
    }
  }
  const appendToken = configured.appendToken ?? stored.appendToken;
  const readToken = configured.readToken ?? stored.readToken;
  if (!appendToken || !readToken) return null;
  if (appendToken === readToken) throw new Error('the append and read tokens must differ');
  return { appendToken, readToken };
}

/** Tells which role a presented bearer token has, in constant time; the configured tokens are hashed once. */
export class CredentialChecker {
  private readonly append: Buffer;
  private readonly read: Buffer;
  constructor(creds: ServiceCredentials) {
    this.append = digest(creds.appendToken);
    this.read = digest(creds.readToken);
  }
  roleOf(header: string | undefined): 'append' | 'read' | null {
    if (!header?.startsWith('Bearer ')) return null;
    const presented = digest(header.slice(7));
    if (timingSafeEqual(presented, this.append)) return 'append';
    if (timingSafeEqual(presented, this.read)) return 'read';
    return null;
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
