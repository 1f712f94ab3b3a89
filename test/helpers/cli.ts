/**
 * Running the command line as a user does (`node bin/activity-journal.mjs …`), the one way the tests do it:
 * to completion, synchronously or not, with its exit status and output; or as a long-running child process.
 */
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';

/** The CLI's entry point, relative to the repository root (the tests' working directory). */
export const CLI_BIN = 'bin/activity-journal.mjs';

export interface CliOptions {
  /** The child's whole environment (default: this process's). */
  readonly env?: NodeJS.ProcessEnv | undefined;
  readonly cwd?: string | undefined;
  /** Written to its stdin, which is then closed; without it stdin is empty. */
  readonly input?: string | undefined;
  /** Killed (SIGKILL) after this long (default 3 min); its status is then null. */
  readonly timeoutMs?: number | undefined;
  /** Another copy of the entry point (default `CLI_BIN`), e.g. a built checkout elsewhere. */
  readonly bin?: string | undefined;
}

export interface AsyncCliOptions extends Omit<CliOptions, 'input'> {
  /** Written to its stdin chunk by chunk, waiting on the pipe's back-pressure (a stream far larger than memory). */
  readonly input?: string | Iterable<string> | undefined;
}

export interface CliResult {
  /** Its exit status (as `spawnSync` names it), or null if a signal ended it. */
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

const DEFAULT_TIMEOUT_MS = 180_000;

/**
 * Runs the CLI to completion, blocking this process. Only for a CLI that needs nothing from this process: a fake
 * server of the test's own cannot answer while it blocks (use `runCli` then).
 */
export function runCliSync(args: readonly string[], options: CliOptions = {}): CliResult {
  const r = spawnSync(process.execPath, [options.bin ?? CLI_BIN, ...args], {
    env: options.env ?? process.env,
    cwd: options.cwd,
    input: options.input,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    killSignal: 'SIGKILL',
  });
  if (r.error && !('code' in r.error && r.error.code === 'ETIMEDOUT')) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI to completion without blocking this process (fakes answer from here meanwhile). */
export function runCli(args: readonly string[], options: AsyncCliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, {
      env: options.env,
      cwd: options.cwd,
      bin: options.bin,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // 'close', not 'exit': every byte it wrote has been read by then.
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
    const input = options.input;
    if (input !== undefined && child.stdin) {
      const stdin = child.stdin;
      stdin.on('error', () => undefined); // it may exit before reading everything: its status tells
      void (async () => {
        for (const chunk of typeof input === 'string' ? [input] : input) {
          if (!stdin.write(chunk)) await new Promise((r) => stdin.once('drain', r));
        }
        stdin.end();
      })();
    }
  });
}

export interface SpawnCliOptions {
  readonly env?: NodeJS.ProcessEnv | undefined;
  readonly cwd?: string | undefined;
  readonly bin?: string | undefined;
  /** As for `spawn` (default: all three piped). */
  readonly stdio?: StdioOptions | undefined;
}

/** Starts the CLI as a child process that keeps running (`start`, `worker`, `journal-service`, `demo --serve`). */
export function spawnCli(args: readonly string[], options: SpawnCliOptions = {}): ChildProcess {
  return spawn(process.execPath, [options.bin ?? CLI_BIN, ...args], {
    env: options.env ?? process.env,
    cwd: options.cwd,
    stdio: options.stdio ?? 'pipe',
  });
}

/** Resolves to the child's exit code (null if a signal ended it) once it exits. */
export const exitOf = (child: ChildProcess): Promise<number | null> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise((resolve) => child.once('exit', (code) => resolve(code)));
