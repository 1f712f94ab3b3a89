/**
 * Where the command line's output goes: stdout and stderr, through one guard. A reader that goes away before
 * the command is done (`activity-journal trace X | head -1`) closes the pipe, and the next write fails with
 * EPIPE; that is the reader's choice, not a failure of the command. So EPIPE ends that stream's output quietly:
 * no stack trace, later writes to it are dropped, and the command finishes (an export is still journaled) and
 * exits with its own code.
 */

const closed = new WeakSet<NodeJS.WriteStream>();
const guarded = new WeakSet<NodeJS.WriteStream>();

function guard(stream: NodeJS.WriteStream): void {
  if (guarded.has(stream)) return;
  guarded.add(stream);
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') {
      closed.add(stream);
      return;
    }
    throw err;
  });
}

/** Installs the EPIPE guard on stdout and stderr (idempotent). Every write of the CLI goes through `write`. */
export function guardOutput(): void {
  guard(process.stdout);
  guard(process.stderr);
}

/** Writes `text` to `stream`, unless its reader has gone (then nothing: see above). */
export function write(stream: NodeJS.WriteStream, text: string): void {
  guard(stream);
  if (closed.has(stream) || stream.destroyed) return;
  stream.write(text);
}

/** True once `stream` will take no more output (its reader went away, or it was closed). */
export function outputClosed(stream: NodeJS.WriteStream): boolean {
  return closed.has(stream) || stream.destroyed;
}
