/** Thrown from a step callback when the service is stopping. */
export class ArchivePassStopped extends Error {
  constructor() {
    super('the archive pass was stopped for shutdown');
    this.name = 'ArchivePassStopped';
  }
}
