/**
 * Where archived segments go. A store is write-once per object name, like a bucket under a retention lock: an
 * object is never replaced, and putting a name that exists reports `alreadyPresent` so the caller reads it back
 * and verifies it (that is how a re-run after a crash between upload and commit carries on).
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { createFileExclusively } from './keys.ts';
import { ArchiveStoreError } from './errors/archive-store.error.ts';

export interface PutResult {
  readonly location: string;
  readonly alreadyPresent: boolean;
}

export interface PutOptions {
  /**
   * The latest time (ms since epoch) until which an entry in the object must be kept, over the entries whose
   * retention is finite; null when none is. A store that protects objects for a fixed period (a bucket's
   * retention policy) refuses an object it cannot protect that long.
   */
  readonly keepUntil?: number | null;
}

/** What protects a store's objects from deletion and replacement, as the store itself reports it. */
export interface StoreRetention {
  /** Seconds an object is protected after it is written; null when nothing but permissions protects it. */
  readonly periodSeconds: number | null;
  /** True when the period can no longer be shortened or removed (a locked bucket retention policy). */
  readonly locked: boolean;
  /** One line for summaries and the retention report. */
  readonly description: string;
}

export interface ArchiveStore {
  readonly kind: 'directory' | 'gcs';
  /** Where objects of this store live, for messages (never a credential). */
  readonly description: string;
  /** True when `location` (as returned by put) names an object of this store. */
  owns(location: string): boolean;
  /** Writes the object unless the name exists; never replaces. */
  put(objectName: string, data: Buffer, options?: PutOptions): Promise<PutResult>;
  /** The object's bytes by the location put returned, or null when it is not there. */
  get(location: string): Promise<Buffer | null>;
  /** Reads (from the store, not from configuration) what protects its objects. */
  retention(): Promise<StoreRetention>;
  /** Why put would refuse an object with these options (judged by the retention last read), or null. */
  refusal(options: PutOptions): string | null;
  /**
   * Deletes an object that a newer one superseded (a pruned copy of a segment); true when it was there. Stores that
   * never delete (a bucket under a retention lock) do not have it: the superseded object stays.
   */
  delete?(location: string): Promise<boolean>;
}

/**
 * Why a store call failed: `retention` (the store cannot keep the object as long as its entries need),
 * `denied` (credentials or permissions), `unavailable` (still failing after retries), `invalid` (a bad name or
 * location, an upload that did not arrive intact).
 */
export type ArchiveStoreFailure = 'retention' | 'denied' | 'unavailable' | 'invalid';

const OBJECT_NAME = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,511}$/;

/** A directory (another disk or a mount): objects are files created durably and exclusively, mode 0400. */
export class DirectoryArchiveStore implements ArchiveStore {
  readonly kind = 'directory' as const;
  readonly root: string;
  constructor(root: string) {
    this.root = resolve(root);
  }

  get description(): string {
    return `directory ${this.root}`;
  }

  owns(location: string): boolean {
    return location.startsWith(`dir:${this.root}${sep}`);
  }

  private file(objectName: string): string {
    if (!OBJECT_NAME.test(objectName) || objectName.split('/').includes('..'))
      throw new ArchiveStoreError(`invalid object name ${JSON.stringify(objectName)}`);
    return join(this.root, objectName);
  }

  put(objectName: string, data: Buffer): Promise<PutResult> {
    const file = this.file(objectName);
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const created = createFileExclusively(file, data, 0o400);
    return Promise.resolve({ location: `dir:${file}`, alreadyPresent: !created });
  }

  get(location: string): Promise<Buffer | null> {
    if (!location.startsWith('dir:')) throw new ArchiveStoreError(`not a directory location: ${location}`);
    const file = location.slice(4);
    return Promise.resolve(existsSync(file) ? readFileSync(file) : null);
  }

  /** Removes a superseded object (only expiry calls this, after the copy replacing it is journaled). */
  delete(location: string): Promise<boolean> {
    if (!this.owns(location)) throw new ArchiveStoreError(`not an object of ${this.description}: ${location}`);
    const file = location.slice(4);
    if (!existsSync(file)) return Promise.resolve(false);
    rmSync(file, { force: true });
    return Promise.resolve(true);
  }

  /** A directory refuses nothing for retention: nothing but permissions protects its files, and it says so. */
  refusal(): string | null {
    return null;
  }

  retention(): Promise<StoreRetention> {
    return Promise.resolve({
      periodSeconds: null,
      locked: false,
      description: 'no retention lock: read-only files (mode 0400), protected by file permissions only',
    });
  }
}

/** The store that owns `location`: a configured one, else (for `dir:` locations) the directory it names. */
export function storeFor(location: string, stores: readonly ArchiveStore[]): ArchiveStore {
  const own = stores.find((s) => s.owns(location));
  if (own) return own;
  if (location.startsWith('dir:')) return new DirectoryArchiveStore(dirname(location.slice(4)));
  throw new ArchiveStoreError(`no configured archive store can read ${location}`);
}
