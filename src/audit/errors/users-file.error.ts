/** The users file cannot be read or is not valid. */
export class UsersFileError extends Error {
  override readonly name = 'UsersFileError';
}
