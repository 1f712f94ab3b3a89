/**
 * "Verify now" from the audit UI: runs `activity-journal verify` as a child process (a full verification of a
 * large journal takes seconds to minutes of CPU, which must not stall the web server), reading its progress
 * lines and its JSON report. One run at a time; its state is polled by the page.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { PROJECT_ROOT } from '../config/project-root.ts';

export interface VerifyRun {
  readonly id: string;
  readonly startedAt: string;
  state: 'running' | 'ok' | 'failed' | 'error';
  done: number;
  total: number;
  finishedAt: string | null;
  /** The verify report (ok, entries, firstBadSeq, reason...) once finished. */
  report: Record<string, unknown> | null;
  error: string | null;
}

const BIN = resolve(PROJECT_ROOT, 'bin/activity-journal.mjs');

export class VerifyRunner {
  private current: VerifyRun | null = null;
  constructor(
    private readonly journalPath: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /** Starts a run, or returns the one already running. */
  start(): VerifyRun {
    if (this.current?.state === 'running') return this.current;
    const run: VerifyRun = {
      id: randomUUID(),
      startedAt: new Date().toISOString(),
      state: 'running',
      done: 0,
      total: 0,
      finishedAt: null,
      report: null,
      error: null,
    };
    this.current = run;
    const child = spawn(process.execPath, [BIN, '--journal', this.journalPath, '--json', 'verify', '--progress-lines'], {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    createInterface({ input: child.stderr }).on('line', (line) => {
      const m = /^progress (\d+)\/(\d+)$/.exec(line);
      if (m) {
        run.done = Number(m[1]);
        run.total = Number(m[2]);
      }
    });
    child.on('error', (err) => {
      run.state = 'error';
      run.error = err.message;
      run.finishedAt = new Date().toISOString();
    });
    child.on('close', (code) => {
      run.finishedAt = new Date().toISOString();
      try {
        run.report = JSON.parse(stdout.trim().split('\n').pop() ?? '') as Record<string, unknown>;
        run.state = code === 0 && run.report.ok === true ? 'ok' : code === 1 ? 'failed' : 'error';
      } catch {
        run.state = 'error';
        run.error = `verify exited ${code} without a report`;
      }
      if (run.state !== 'error') run.done = run.total;
    });
    return run;
  }

  get(id: string): VerifyRun | null {
    return this.current?.id === id ? this.current : null;
  }

  latest(): VerifyRun | null {
    return this.current;
  }
}
