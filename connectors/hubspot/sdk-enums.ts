/**
 * The members of @hubspot/api-client's enums that the mirror sends. The SDK types these fields as TypeScript
 * string enums, which no string literal is assignable to, and it is loaded lazily (hubspot.http.ts), so its enum
 * objects are not imported here. `member` takes the wire value instead, checked against the enum's values (`${E}`):
 * a value the enum does not have does not compile.
 */
import type { Client } from '@hubspot/api-client';

type PropertyCreate = Parameters<Client['crm']['properties']['coreApi']['create']>[1];
type SearchFilter = NonNullable<
  NonNullable<Parameters<Client['crm']['objects']['searchApi']['doSearch']>[1]['filterGroups']>[number]['filters']
>[number];
type AssociationSpec = Parameters<Client['crm']['associations']['v4']['batchApi']['create']>[2]['inputs'][number]['types'][number];

/** The enum member whose value is `value` (a string enum's member is its value at run time). */
function member<E extends string>(value: `${E}`): E {
  return value as E;
}

/** A property of type string shown as a one-line text field (the journal_entry_id property). */
export const STRING_PROPERTY_TYPE = member<PropertyCreate['type']>('string');
export const TEXT_FIELD_TYPE = member<PropertyCreate['fieldType']>('text');
/**
 * A search filter's IN operator. The objects and companies search APIs each declare their own FilterOperatorEnum;
 * TypeScript relates enums of the same name and members, so this one serves both.
 */
export const IN_OPERATOR = member<NonNullable<SearchFilter['operator']>>('IN');
/** The association category of HubSpot's own association types (ASSOCIATION_TYPE_IDS). */
export const HUBSPOT_DEFINED = member<NonNullable<AssociationSpec['associationCategory']>>('HUBSPOT_DEFINED');
