// Test helpers for the WAL tests: temporary directories, the faults addon, and
// a byte-level reader of the segment format (native/record.h, native/segment.h)
// so tests can find and damage exact records.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
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

/**
 * A log of five 100-byte records (64 KiB segments, spare segment ready) on a
 * 1 MiB tmpfs that is then filled: `free()` gives the space back.
 */
export async function logOnFullDisk(): Promise<{ wal: Wal; dir: string; free: () => void }> {
  const mnt = mountTmpfs(1024 * 1024) as string;
  const dir = join(mnt, 'log');
  mkdirSync(dir);
  const wal = await Wal.open(dir, { segmentBytes: 64 * 1024 });
  for (let i = 1; i <= 5; i++) await wal.append(Buffer.alloc(100, i));
  await new Promise((r) => setTimeout(r, 100)); // the spare is ready
  return { wal, dir, free: fillFilesystem(mnt) };
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

/**
 * Cuts power under a log opened with `openFaulty` (its unsynced writes are dropped), closes
 * it, resets the fault layer and reopens the directory with the real addon: what a restart
 * after the power loss sees.
 */
export async function powerLossAndReopen(wal: Wal, dir: string, options: WalOptions = SMALL): Promise<Wal> {
  faults()('powerLoss');
  await wal.close();
  faults()('reset');
  return Wal.open(dir, options);
}

export { segmentFiles, frames, payload, segmentVersion, createV1Log, type Frame } from './format';

/** The seeded PRNG (mulberry32) the demo uses; tests print their seed so runs replay. */
export { seededRandom as mulberry32 } from '../../lib/cli/demo';

/** Whether `strace` runs here (tests that watch syscalls skip without it). */
export const hasStrace = spawnSync('strace', ['-V']).status === 0;

/**
 * Opens and closes the log in `dir` (64 KiB segments) in a child process under
 * strace and returns the pwrite64 calls it made to `file` (offset, length):
 * what recovery at open wrote.
 */
export function writesOfReopen(dir: string, file: string): Array<{ offset: number; length: number }> {
  return writesOf(`const wal = await Wal.open(${JSON.stringify(dir)}, { segmentBytes: 64 * 1024 }); await wal.close();`, file);
}

/**
 * Runs `body` (the inside of an async function, with `Wal` in scope) in a child
 * process under strace and returns the pwrite64 calls it made to `file`.
 */
export function writesOf(body: string, file: string): Array<{ offset: number; length: number }> {
  const root = resolve(__dirname, '..', '..');
  const script = join(tempDir('tidemark-script-'), 'child.ts');
  writeFileSync(script, `import { Wal } from ${JSON.stringify(join(root, 'lib', 'index'))};\n(async () => { ${body} })();\n`);
  const trace = join(tempDir('tidemark-trace-'), 'trace');
  const r = spawnSync('strace', ['-f', '-y', '-qq', '-o', trace, '-e', 'trace=pwrite64,pwritev', process.execPath, '--import', 'tsx', script], {
    cwd: root,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`the traced reopen failed (${String(r.status)}): ${r.stderr}`);
  const pattern = new RegExp(`pwrite64\\(\\d+<${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}>, .*, (\\d+), (\\d+)\\) = `);
  return readFileSync(trace, 'utf8')
    .split('\n')
    .map((l) => pattern.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ offset: Number(m[2]), length: Number(m[1]) }));
}
