// Test helpers for the WAL tests: temporary directories, the faults addon, and
// a byte-level reader of the segment format (native/record.h, native/segment.h)
// so tests can find and damage exact records.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { Wal, type WalOptions } from '../../lib/index';
import { faultsBinding, type FaultControls } from '../../lib/log/binding';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fresh directory on the real disk (ext4 here), removed after the test. */
export function tempDir(prefix = 'tidemark-wal-', root = tmpdir()): string {
  const d = mkdtempSync(join(root, prefix));
  dirs.push(d);
  return d;
}

/** Opens a log through the test-only faults addon (fault-injecting file layer). */
export function openFaulty(dir: string, options?: WalOptions): Promise<Wal> {
  return Wal._openWith(faultsBinding(), dir, options);
}

/** The fault controls of the faults addon. */
export function faults(): FaultControls {
  return faultsBinding().faults;
}

export const SMALL: WalOptions = { segmentBytes: 64 * 1024 };

export { segmentFiles, frames, payload, type Frame } from './format';
