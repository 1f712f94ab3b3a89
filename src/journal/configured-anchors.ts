/**
 * The anchors the settings name. The embedded default directory is created on demand; a configured one
 * must already exist, because creating it would put the "anchor" on the writer's own disk when the real one is
 * not mounted.
 */
import { mkdirSync } from 'node:fs';
import type { AnchorSettings } from './settings.ts';
import { anchorsFromConfig, type Anchor } from './anchors.ts';

export function configuredAnchors(journal: AnchorSettings): Anchor[] {
  if (journal.createAnchorDirs) for (const d of journal.anchorDirs) mkdirSync(d, { recursive: true, mode: 0o700 });
  return anchorsFromConfig(journal.anchorDirs, journal.anchorUrls, journal.anchorToken ? { token: journal.anchorToken } : {});
}
