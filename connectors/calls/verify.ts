/**
 * Helpers shared by the call receivers: constant-time comparison and the last check that every
 * produced interaction fits InteractionSchema (reported by field path, never by value).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { InteractionSchema, type Interaction } from '../../src/pipeline/interaction.ts';
import type { WebhookOutcome } from '../../src/pipeline/webhook.ts';

/**
 * Compares two secrets in constant time. Both sides are hashed first so neither the content nor the
 * length of the expected value leaks through timing.
 */
export function safeEqual(a: string | Buffer, b: string | Buffer): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db);
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Validates the interactions; a violation becomes a 422 naming the field path (never its value). */
export function acceptInteractions(interactions: readonly Interaction[], eventId: string): WebhookOutcome {
  const checked: Interaction[] = [];
  for (const ix of interactions) {
    const parsed = InteractionSchema.safeParse(ix);
    if (!parsed.success) {
      const path = parsed.error.issues[0]?.path.map(String).join('.') ?? '';
      return { kind: 'rejected', status: 422, reason: `invalid interaction field: ${path === '' ? '(root)' : path}` };
    }
    checked.push(parsed.data);
  }
  return { kind: 'accepted', interactions: checked, eventId };
}

/** Unix seconds (number or numeric string) to an ISO timestamp, or undefined when absent or out of range. */
export function unixToIso(value: unknown): string | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(n) || n <= 0) return undefined;
  const d = new Date(n * 1000);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses a JSON body; undefined when it is not valid JSON or not an object. */
export function parseJsonObject(raw: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(raw.toString('utf8'));
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}
