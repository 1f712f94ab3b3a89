/** Thrown when a key file or key directory is readable or writable by users other than its owner. */
export class KeyPermissionError extends Error {
  readonly code = 'KEY_PERMISSIONS';

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'KeyPermissionError';
  }
}
