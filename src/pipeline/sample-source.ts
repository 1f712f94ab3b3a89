/**
 * The bundled sample interactions as an ActivitySource: used by `activity-journal demo` and by tests.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { InteractionSchema, type Interaction } from './interaction.ts';
import type { ActivitySource } from './ports.ts';
import { PROJECT_ROOT } from '../config/project-root.ts';

export const DEFAULT_SAMPLES_PATH = resolve(PROJECT_ROOT, 'samples/demo-interactions.json');

const SampleFileSchema = z.object({
  version: z.literal(1),
  ownDomains: z.array(z.string()),
  interactions: z.array(InteractionSchema).min(1),
});

export class SampleSource implements ActivitySource {
  readonly name = 'samples';
  private readonly byId: ReadonlyMap<string, Interaction>;
  readonly interactions: readonly Interaction[];

  constructor(interactions: readonly Interaction[]) {
    this.interactions = interactions;
    this.byId = new Map(interactions.map((ix) => [ix.sourceId, ix]));
  }

  static fromFile(path: string = DEFAULT_SAMPLES_PATH): SampleSource {
    return new SampleSource(SampleFileSchema.parse(JSON.parse(readFileSync(path, 'utf8'))).interactions);
  }

  fetch(sourceId: string): Promise<Interaction | null> {
    return Promise.resolve(this.byId.get(sourceId) ?? null);
  }
}
