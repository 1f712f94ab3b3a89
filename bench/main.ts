/**
 * Benchmark entry point: `npm run bench -- [suite] [--json]`.
 *
 * With a suite name, runs that suite; with none, runs them all. Human-readable tables go to stdout; with --json,
 * stdout holds exactly one JSON object ({ machine, suites: { name: figures } }) and progress stays on stderr.
 * Exits 0 whether or not the bars are met (this measures, it does not test); 1 when a suite crashed; 2 on usage.
 * For machine-readable output without npm's banner: `npm run --silent bench -- journal --json`.
 */
import { machineContext, type Suite, type SuiteResult } from './suite.ts';
import { journalSuite } from './journal.bench.ts';
import { pipelineSuite } from './pipeline.bench.ts';
import { auditSuite } from './audit.bench.ts';
import { crmSuite } from './crm.bench.ts';
import { sealingSuite } from './sealing-cost.ts';
import { startupSuite } from './startup.bench.ts';
import { htmlSuite } from './html-to-text.bench.ts';
import { csvSuite } from './calls-csv.bench.ts';

const SUITES: readonly Suite[] = [journalSuite, pipelineSuite, crmSuite, auditSuite, sealingSuite, startupSuite, htmlSuite, csvSuite];

function usage(): string {
  const names = SUITES.map((s) => `  ${s.name.padEnd(10)} ${s.description}`).join('\n');
  return (
    `usage: npm run bench -- [suite] [--json]\n\nsuites (none given: all of them):\n${names}\n\n` +
    `  --json     print one JSON object with every figure, ratio and pass flag (progress stays on stderr;\n` +
    `             use \`npm run --silent bench -- ... --json\` so that npm's own banner stays off stdout)\n`
  );
}

async function main(argv: readonly string[]): Promise<number> {
  let json = false;
  const names: string[] = [];
  for (const arg of argv) {
    if (arg === '--json') json = true;
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(usage());
      return 0;
    } else if (arg.startsWith('-')) {
      process.stderr.write(`unknown option ${arg}\n${usage()}`);
      return 2;
    } else names.push(arg);
  }
  if (names.length > 1) {
    process.stderr.write(`give at most one suite name\n${usage()}`);
    return 2;
  }
  // With no name, every suite once: the journal suite already holds the sealing measurement.
  const selected = names.length === 0 ? SUITES.filter((s) => s !== sealingSuite) : SUITES.filter((s) => s.name === names[0]);
  if (selected.length === 0) {
    process.stderr.write(`unknown suite ${JSON.stringify(names[0])}\n${usage()}`);
    return 2;
  }

  const machine = machineContext();
  const progress = (message: string): void => {
    process.stderr.write(`[bench] ${message}\n`);
  };
  if (!json) {
    process.stdout.write(
      `machine: ${machine.cpuModel} x${machine.cpuCount}, ${machine.totalMemGiB} GiB, ${machine.platform}\n` +
        `runtime: node ${machine.node}, SQLite ${machine.sqlite} (better-sqlite3 ${machine.betterSqlite3})\n` +
        `load average at start: ${machine.loadAverage.join(', ')}${(machine.loadAverage[0] ?? 0) > machine.cpuCount / 4 ? '  (the box is busy: figures will be noisy)' : ''}\n\n`,
    );
  }
  const results: Record<string, SuiteResult['data']> = {};
  let crashed = false;
  for (const suite of selected) {
    progress(`suite ${suite.name}: starting`);
    try {
      const result = await suite.run({ progress });
      results[suite.name] = result.data;
      if (!json) process.stdout.write(`${result.text}\n\n`);
    } catch (err) {
      crashed = true;
      process.stderr.write(`[bench] suite ${suite.name} crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    }
  }
  if (json) process.stdout.write(JSON.stringify({ machine, suites: results }, null, 2) + '\n');
  return crashed ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
