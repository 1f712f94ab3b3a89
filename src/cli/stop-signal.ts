/**
 * Resolves when the process is asked to stop: SIGTERM, SIGINT (unless supervised: then the supervisor decides
 * the order in which processes stop), or the supervisor's IPC channel closing because it died.
 */
export function waitForStop(): Promise<string> {
  return new Promise((resolve) => {
    const supervised = isSupervised();
    process.once('SIGTERM', () => resolve('SIGTERM'));
    if (supervised) process.on('SIGINT', () => {});
    else process.once('SIGINT', () => resolve('SIGINT'));
    if (process.channel) {
      // The channel must not keep the process alive by itself once the work is done.
      process.channel.unref();
      process.once('disconnect', () => resolve('supervisor gone'));
    }
  });
}

/** Started by our supervisor: it gives each child an IPC channel. */
export function isSupervised(): boolean {
  return process.channel !== undefined;
}
