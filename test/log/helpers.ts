// Test helpers for the WAL tests: temporary directories, the faults addon, and
// a byte-level reader of the segment format (native/record.h, native/segment.h)
// so tests can find and damage exact records.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { Wal, type WalOptions } from '../../lib/index';
import { faultsBinding, type FaultControls } from '../../lib/log/binding';

const dirs: string[] = [];
const mounts: string[] = [];
afterEach(() => {
  for (const m of mounts.splice(0)) spawnSync('umount', ['-l', m]);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fresh directory on the real disk (ext4 here), removed after the test. */
export function tempDir(prefix = 'tidemark-wal-', root = tmpdir()): string {
  const d = mkdtempSync(join(root, prefix));
  dirs.push(d);
  return d;
}

/**
 * Mounts a tmpfs of `bytes` on a fresh directory, unmounted after the test: a real
 * filesystem that runs out of space. Undefined where mounting is not allowed (not root).
 */
export function mountTmpfs(bytes: number): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const mnt = tempDir('tidemark-mnt-');
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', mnt]);
  if (r.status !== 0) return undefined;
  mounts.push(mnt);
  return mnt;
}

/** Whether {@link mountTmpfs} works here (checked once, with a mount that is removed at once). */
export const canMountTmpfs: boolean = (() => {
  if (process.getuid?.() !== 0) return false;
  const mnt = mkdtempSync(join(tmpdir(), 'tidemark-mnt-probe-'));
  const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=65536', 'tmpfs', mnt]).status === 0;
  if (ok) spawnSync('umount', [mnt]);
  rmSync(mnt, { recursive: true, force: true });
  return ok;
})();

/** Fills the filesystem of `dir` with 4 KiB files; returns a function that frees them. */
export function fillFilesystem(dir: string): () => void {
  const files: string[] = [];
  try {
    for (;;) {
      const f = join(dir, `filler-${files.length}`);
      writeFileSync(f, Buffer.alloc(4096, 1));
      files.push(f);
    }
  } catch {
    // full
  }
  return () => {
    for (const f of files) unlinkSync(f);
  };
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

export { segmentFiles, frames, payload, segmentVersion, createV1Log, type Frame } from './format';

/** The seeded PRNG (mulberry32) the demo uses; tests print their seed so runs replay. */
export { seededRandom as mulberry32 } from '../../lib/cli/demo';
