import { defineConfig } from 'vitest/config';

// Integration tests start real processes and fsync real files: give them room, and run files one at a time
// so that benchmarks-by-accident (two crash tests racing for the same two cores) do not make them flaky.
export default defineConfig({
  test: {
    include: ['test/integration/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    // The CLI the tests spawn runs dist/: compile it from the sources as they are now, once per run.
    globalSetup: ['test/integration/build.global-setup.ts'],
  },
});
