/** A 412 on a write-once insert: the object exists. */
export class PreconditionFailed extends Error {
  constructor() {
    super('precondition failed');
    this.name = 'PreconditionFailed';
  }
}
