/**
 * HubSpot-defined association type ids (v4) from an activity to a record. Source: HubSpot's "Associations v4"
 * reference, table of default association type ids (engagement → contact/company/deal).
 */
export type ActivityType = 'emails' | 'calls' | 'notes';
export type RecordType = 'contacts' | 'companies' | 'deals';

export const ASSOCIATION_TYPE_IDS: Readonly<Record<ActivityType, Readonly<Record<RecordType, number>>>> = {
  emails: { contacts: 198, companies: 186, deals: 210 },
  calls: { contacts: 194, companies: 182, deals: 206 },
  notes: { contacts: 202, companies: 190, deals: 214 },
};
