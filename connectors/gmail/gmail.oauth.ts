/**
 * The OAuth2 side of connecting an inbox: the consent URL, the code exchange on our callback, and clients that
 * persist rotated tokens. Scopes: gmail.readonly (default) or gmail.metadata (headers only, privacy mode).
 */
import { googleApis } from '../google/googleapis.ts';
import { gmailClient, mapGmailError, type GmailOAuth2Client } from './gmail.source.ts';

export interface GmailOAuthConfig {
  readonly clientId: string;
  readonly clientSecret: string;
  /** Our callback, as registered with Google: <public url>/oauth/gmail/callback. */
  readonly redirectUrl: string;
  readonly scopeMode: 'readonly' | 'metadata';
  /** Overrides for tests and private deployments: the token endpoint and the API root. */
  readonly tokenUrl?: string | undefined;
  readonly rootUrl?: string | undefined;
}

export function scopesFor(mode: GmailOAuthConfig['scopeMode']): string[] {
  return [mode === 'metadata' ? 'https://www.googleapis.com/auth/gmail.metadata' : 'https://www.googleapis.com/auth/gmail.readonly'];
}

/** What every Google OAuth client of ours needs (Gmail inboxes, Google Forms). */
export interface GoogleClientConfig {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly redirectUrl: string;
  readonly tokenUrl?: string | undefined;
}

export function oauthClient(cfg: GoogleClientConfig): GmailOAuth2Client {
  return new (googleApis().auth.OAuth2)({
    clientId: cfg.clientId,
    clientSecret: cfg.clientSecret,
    redirectUri: cfg.redirectUrl,
    forceRefreshOnFailure: true,
    ...(cfg.tokenUrl ? { endpoints: { oauth2TokenUrl: cfg.tokenUrl } } : {}),
  });
}

/** The URL to send the user to; `state` ties the answer to this request. */
export function consentUrl(cfg: GmailOAuthConfig, state: string): string {
  return oauthClient(cfg).generateAuthUrl({
    access_type: 'offline',
    prompt: 'consent',
    include_granted_scopes: true,
    scope: scopesFor(cfg.scopeMode),
    state,
  });
}

/** Exchanges the code for tokens and asks Gmail whose inbox it is. */
export async function completeConsent(
  cfg: GmailOAuthConfig,
  code: string,
): Promise<{ mailbox: string; refreshToken: string; scopes: string[] }> {
  const client = oauthClient(cfg);
  try {
    const { tokens } = await client.getToken(code);
    if (!tokens.refresh_token)
      throw new Error('Google returned no refresh token (the consent must be asked with access_type=offline and prompt=consent)');
    client.setCredentials(tokens);
    const profile = await gmailClient({ auth: client, ...(cfg.rootUrl ? { rootUrl: cfg.rootUrl } : {}) }).users.getProfile({
      userId: 'me',
    });
    const mailbox = String(profile.data.emailAddress ?? '').toLowerCase();
    if (!mailbox.includes('@')) throw new Error('Gmail did not say which mailbox was connected');
    return { mailbox, refreshToken: tokens.refresh_token, scopes: (tokens.scope ?? scopesFor(cfg.scopeMode).join(' ')).split(' ') };
  } catch (err) {
    throw mapGmailError(err);
  }
}

/** A client for a granted account (an inbox, a form); `onRotate` receives a new refresh token if Google issues one. */
export function grantedClient(cfg: GoogleClientConfig, refreshToken: string, onRotate: (refreshToken: string) => void): GmailOAuth2Client {
  const client = oauthClient(cfg);
  client.setCredentials({ refresh_token: refreshToken });
  client.on('tokens', (t) => {
    if (t.refresh_token && t.refresh_token !== refreshToken) onRotate(t.refresh_token);
  });
  return client;
}

/** A client for a connected inbox. */
export const inboxClient: (cfg: GmailOAuthConfig, refreshToken: string, onRotate: (refreshToken: string) => void) => GmailOAuth2Client =
  grantedClient;
