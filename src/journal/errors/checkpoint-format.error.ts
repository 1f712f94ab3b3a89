/** Thrown when a checkpoint or signed note is malformed, or a checkpoint cannot be encoded. */
export class CheckpointFormatError extends Error {
  readonly code = 'CHECKPOINT_FORMAT';

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CheckpointFormatError';
  }
}
