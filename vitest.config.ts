import { defineConfig } from 'vitest/config';

// The append path tests that write, crash, tear, fill up or fail a log: they run a second
// time with every log on the io_uring path (TIDEMARK_IO=uring, lib/log/options.ts), so CI
// covers both paths. Strict on purpose: where the kernel refuses io_uring, every open in
// that project fails TM_URING_UNSUPPORTED instead of quietly testing the writer thread
// twice; its global setup probes once and says so, naming `--project thread`.
// (crash.test.ts runs its io_uring variants itself, with io passed explicitly.)
const URING_FILES = [
  'test/log/faults.test.ts',
  'test/log/torn-at-any-byte.test.ts',
  'test/log/enospc-eio-injected.test.ts',
  'test/log/enospc-tail.test.ts',
  'test/log/enospc-truncate.test.ts',
  'test/log/enospc-full-tmpfs.test.ts',
  'test/log/direct-short-write.test.ts',
  'test/log/out-of-memory.test.ts',
  'test/log/truncate-crash.test.ts',
  'test/log/truncate-ordering.test.ts',
  'test/log/truncate-no-rewrite.test.ts',
  'test/log/group-commit.test.ts',
  'test/log/concurrency.test.ts',
  'test/log/model-turns.test.ts',
  'test/log/spare-segment.test.ts',
  'test/log/close-rotation-worker-exit.test.ts',
  'test/log/wal.test.ts',
];

export default defineConfig({
  test: {
    // Native handles, child processes and worker_threads: isolate each file in its own process.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // CI also writes a JSON report, from which .ci/run prints a closing "N passed, N failed" line.
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    outputFile: { json: 'test-results.json' },
    projects: [
      { extends: true, test: { name: 'thread', include: ['test/**/*.test.ts'], env: { TIDEMARK_IO: 'thread' } } },
      { extends: true, test: { name: 'uring', include: URING_FILES, env: { TIDEMARK_IO: 'uring' }, globalSetup: ['test/uring-project-setup.ts'] } },
    ],
  },
});
