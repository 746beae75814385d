/**
 * Global setup of the vitest project `uring` (vitest.config.ts): it re-runs the append-path
 * files with every log on the io_uring path, and would fail in every test where the kernel
 * refuses io_uring (container seccomp profiles, `kernel.io_uring_disabled`, old kernels).
 * Probe once first, and fail with one message that says why and what to run instead.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wal, isTidemarkError } from '../lib/index';

export default async function setup(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-uring-project-probe-'));
  try {
    const wal = await Wal.open(dir, { io: 'uring' });
    await wal.close();
  } catch (err) {
    if (!isTidemarkError(err, 'TM_URING_UNSUPPORTED')) throw err;
    throw new Error(
      `The vitest project "uring" runs the append-path tests on io_uring, which this machine refuses: ` +
        `${(err as Error).message}. Run the writer-thread tests alone with \`npx vitest run --project thread\`.`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
