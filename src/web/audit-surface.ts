/**
 * Builds the audit surface's parts from the configuration: the read index (caught up from the journal at
 * start), the users file, the session signer and sign-in throttle over the shared auth state file, the
 * verification runner. The web process and the tests use this.
 */
import type { Config } from '../config/config.ts';
import type { Logger } from '../config/logger.ts';
import { JournalReader } from '../journal/reader.ts';
import type { JournalClient } from '../journal/journal-client.ts';
import { loadOrCreateSecret } from '../journal/keys.ts';
import type { Enqueue } from '../pipeline/ports.ts';
import { AuditService, type InboxStatus } from '../audit/audit-service.ts';
import { openConfiguredIndex } from '../audit/configured-index.ts';
import { UserDirectory } from '../audit/users.ts';
import { DEFAULT_THROTTLE, LoginThrottle, SessionSigner } from '../audit/session.ts';
import { AuthStateStore } from '../audit/auth-state.ts';
import { createHmac } from 'node:crypto';
import { VerifyRunner } from '../audit/verify-runner.ts';
import type { AuditRoutesOptions } from './audit/context.ts';
import { attachConfiguredPrivacy } from '../journal/configured-privacy.ts';

export interface AuditSurfaceDeps {
  readonly journal: JournalClient;
  readonly enqueue: Enqueue;
  readonly connectors: () => { inboxes: InboxStatus[]; webhooks: string[]; gmailConfigured: boolean };
  readonly logger: Logger;
  /** The environment for `verify` child processes (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
}

export interface AuditSurface {
  readonly routes: AuditRoutesOptions;
  readonly service: AuditService;
  close(): void;
}

export function createAuditSurface(config: Config, deps: AuditSurfaceDeps): AuditSurface {
  const reader = attachConfiguredPrivacy(JournalReader.open(config.journal.path), config);
  const index = openConfiguredIndex(config, () => reader.attachedPrivacy);
  const started = Date.now();
  const folded = index.catchUp(reader);
  if (folded > 0) deps.logger.info({ component: 'web.audit', entries: folded, ms: Date.now() - started }, 'audit read index caught up');
  const service = new AuditService({
    reader,
    index,
    journal: deps.journal,
    enqueue: deps.enqueue,
    connectors: deps.connectors,
    hubspotPortalId: config.audit.hubspotPortalId,
  });
  const secret = config.audit.sessionSecret
    ? Buffer.from(config.audit.sessionSecret)
    : loadOrCreateSecret(config.pipeline.stateDir, 'audit-session.key');
  // Keyed by the session secret: every web process that accepts the same cookies hashes ids the same way.
  let authState: AuthStateStore;
  try {
    authState = AuthStateStore.open(config.audit.authStatePath, createHmac('sha256', secret).update('audit-auth-state').digest());
  } catch (err) {
    index.close();
    reader.close();
    throw err;
  }
  const routes: AuditRoutesOptions = {
    service,
    users: new UserDirectory(config.audit.usersPath),
    sessions: new SessionSigner(secret, config.audit.sessionTtlMs, authState),
    throttle: new LoginThrottle(authState, { ...DEFAULT_THROTTLE, maxPerAddress: config.audit.loginMaxFailuresPerAddress }),
    verify: new VerifyRunner(config.journal.path, deps.env ?? process.env),
    journal: deps.journal,
    sessionTtlMs: config.audit.sessionTtlMs,
    secureCookies: config.audit.secureCookies,
    logger: deps.logger,
  };
  return {
    routes,
    service,
    close() {
      authState.close();
      index.close();
      reader.close();
    },
  };
}
