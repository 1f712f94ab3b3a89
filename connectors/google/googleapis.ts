/**
 * googleapis, loaded on first use. Importing it costs about 0.8 s and 110 MB (it builds every Google API), so a
 * process loads it only when it builds a Gmail, Google Forms or Cloud Storage client: the worker without Gmail
 * or Google Forms configured, the web server and the journal service without a GCS archive store never do.
 * Synchronous (the package is CommonJS), so the constructors that build clients stay synchronous.
 */
import { createRequire } from 'node:module';
import type { google } from 'googleapis';

const require = createRequire(import.meta.url);
let loaded: typeof google | null = null;

export function googleApis(): typeof google {
  loaded ??= (require('googleapis') as { google: typeof google }).google;
  return loaded;
}
