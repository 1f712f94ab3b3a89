/**
 * What the audit routes accept, as zod schemas: the timeline's and the decisions' query filters, overrides
 * (the UI's form, and the API's, which also takes associations) and export scopes. openapi.ts describes the same.
 */
import { z } from 'zod';
import { CATEGORIES } from '../../journal/categories.ts';

export const TimelineQuerySchema = z.object({
  source: z.string().max(64).optional(),
  channel: z.enum(['email', 'call', 'form']).optional(),
  category: z.enum(CATEGORIES).optional(),
  contact: z.string().max(320).optional(),
  from: z.string().max(40).optional(),
  until: z.string().max(40).optional(),
  before: z.coerce.number().int().nonnegative().optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
});

export const DecisionQuerySchema = z.object({
  since: z.string().max(40).optional(),
  category: z.enum(CATEGORIES).optional(),
  maxConfidence: z.coerce.number().min(0).max(1).optional(),
  needsReview: z.enum(['true', 'false']).optional(),
  before: z.coerce.number().int().nonnegative().optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
});

export const OverrideBodySchema = z.strictObject({
  action: z.enum(['approve', 'override']),
  category: z.enum(CATEGORIES).optional(),
  reason: z.string().min(1).max(10_000),
});

/** The API also takes association overrides: the HubSpot record ids that replace what the matching rule chose. */
const crmIds = z.array(z.string().regex(/^[0-9]{1,20}$/)).max(100);
export const ApiOverrideBodySchema = z.union([
  OverrideBodySchema,
  z.strictObject({
    action: z.literal('associate'),
    associations: z.strictObject({ contacts: crmIds.optional(), companies: crmIds.optional(), deals: crmIds.optional() }),
    reason: z.string().min(1).max(10_000),
  }),
]);

export const ExportBodySchema = z.union([
  z.strictObject({ from: z.string().min(1).max(40), until: z.string().min(1).max(40) }),
  z.strictObject({ correlationId: z.string().min(1).max(512) }),
]);
