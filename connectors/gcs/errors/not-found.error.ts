import { ArchiveStoreError } from '../../../src/journal/errors/archive-store.error.ts';

/** A 404: on an object read, the object is not there (a value); anywhere else, the bucket is missing (an error). */
export class NotFound extends ArchiveStoreError {
  constructor(message: string) {
    super(message, { reason: 'invalid' });
    this.name = 'NotFound';
  }
}
