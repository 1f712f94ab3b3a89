/**
 * The OAuth2 side of polling a Google form: the same Google OAuth client as Gmail (GOOGLE_CLIENT_ID/SECRET,
 * token endpoint override for tests), its own callback (/oauth/google-forms/callback) and scopes
 * forms.responses.readonly + forms.body.readonly (answers and question titles; nothing else of the account).
 */
import type { google } from 'googleapis';
import { googleApis } from '../google/googleapis.ts';
import { mapGoogleError } from './google-forms.errors.ts';
import { grantedClient, oauthClient } from '../gmail/gmail.oauth.ts';

export type GoogleOAuth2Client = InstanceType<typeof google.auth.OAuth2>;

export const GOOGLE_FORMS_SCOPES = [
  'https://www.googleapis.com/auth/forms.responses.readonly',
  'https://www.googleapis.com/auth/forms.body.readonly',
] as const;

export interface GoogleFormsOAuthConfig {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly redirectUrl: string;
  readonly tokenUrl?: string | undefined;
  readonly apiRoot?: string | undefined;
}

export function formsConsentUrl(cfg: GoogleFormsOAuthConfig, state: string): string {
  return oauthClient(cfg).generateAuthUrl({
    access_type: 'offline',
    prompt: 'consent',
    include_granted_scopes: true,
    scope: [...GOOGLE_FORMS_SCOPES],
    state,
  });
}

/** Exchanges the code and checks that the account can read the form (a grant that cannot is refused). */
export async function completeFormsConsent(
  cfg: GoogleFormsOAuthConfig,
  code: string,
  formId: string,
): Promise<{ refreshToken: string; scopes: string[] }> {
  const client = oauthClient(cfg);
  try {
    const { tokens } = await client.getToken(code);
    if (!tokens.refresh_token)
      throw new Error('Google returned no refresh token (the consent must be asked with access_type=offline and prompt=consent)');
    client.setCredentials(tokens);
    await googleApis()
      .forms({ version: 'v1', auth: client, ...(cfg.apiRoot ? { rootUrl: cfg.apiRoot } : {}) })
      .forms.get({ formId }, { retry: false });
    return { refreshToken: tokens.refresh_token, scopes: (tokens.scope ?? GOOGLE_FORMS_SCOPES.join(' ')).split(' ') };
  } catch (err) {
    throw mapGoogleError(err);
  }
}

/** A client for a granted form; `onRotate` receives a new refresh token if Google issues one. */
export const formsClient: (
  cfg: GoogleFormsOAuthConfig,
  refreshToken: string,
  onRotate: (refreshToken: string) => void,
) => GoogleOAuth2Client = grantedClient;
