export { GenericFormReceiver, GenericFormSubmissionSchema } from './generic.webhook.ts';
export type { GenericFormReceiverOptions, GenericFormSubmission } from './generic.webhook.ts';
export { HUBSPOT_MAX_AGE_MS, HubSpotFormReceiver, hubSpotSignatureV3, hubSpotSignedUri } from './hubspot.webhook.ts';
export type { HubSpotFormReceiverOptions } from './hubspot.webhook.ts';
