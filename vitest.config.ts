import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Native handles, child processes and worker_threads: isolate each file in its own process.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // CI also writes a JSON report, from which .ci/run prints a closing "N passed, N failed" line.
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    outputFile: { json: 'test-results.json' },
  },
});
