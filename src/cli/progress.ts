import { write } from './output.ts';

/** A progress bar on stderr, drawn only when stderr is a terminal (never in logs or pipes). */
export function progressBar(
  label: string,
  stream: NodeJS.WriteStream = process.stderr,
): { update(done: number, total: number): void; done(): void } {
  if (!stream.isTTY) return { update() {}, done() {} };
  let last = 0;
  return {
    update(done: number, total: number): void {
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      const width = 30;
      const frac = total > 0 ? Math.min(1, done / total) : 1;
      const filled = Math.round(frac * width);
      write(stream, `\r${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total} (${Math.round(frac * 100)}%)`);
    },
    done(): void {
      write(stream, '\n');
    },
  };
}
