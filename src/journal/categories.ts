/**
 * The categories an interaction is classified into. The pipeline's classifiers choose among them; the journal's
 * retention policy names them (`categories`: billing is kept as financial), so the list lives here, below both.
 */
export const CATEGORIES = [
  'new_lead',
  'sales_conversation',
  'customer_support',
  'billing',
  'scheduling',
  'internal',
  'personal',
  'spam',
  'other',
] as const;
