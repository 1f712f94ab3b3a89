/** Call connectors: webhook receivers for Twilio, Aircall and the generic signed format, and the CSV import. */
export { TwilioReceiver, twilioSignature, type TwilioReceiverOptions } from './twilio.webhook.ts';
export { AircallReceiver, type AircallReceiverOptions } from './aircall.webhook.ts';
export {
  GenericCallReceiver,
  GenericCallEventSchema,
  genericCallSignature,
  type GenericCallEvent,
  type GenericCallReceiverOptions,
} from './generic.webhook.ts';
export {
  parseCallsCsv,
  countCsvRecords,
  CALL_CSV_COLUMNS,
  REQUIRED_CALL_CSV_COLUMNS,
  type CallCsvRow,
  type CallCsvError,
  type CallCsvResult,
  type CallCsvColumn,
} from './csv-import.ts';
