// Adversarial review of promise 4 with a real full filesystem: a small tmpfs
// mounted for the test (needs root; skipped elsewhere). Failing tests here are
// confirmed bugs.
import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Wal } from '../../lib/index';
import { tempDir } from './helpers';

function mountTmpfs(bytes: number): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const mnt = tempDir('tidemark-review-mnt-');
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', mnt]);
  return r.status === 0 ? mnt : undefined;
}

const mounts: string[] = [];
afterEach(() => {
  for (const m of mounts.splice(0)) spawnSync('umount', ['-l', m]);
});

const canMount = (() => {
  const m = mountTmpfs(64 * 1024);
  if (m === undefined) return false;
  spawnSync('umount', [m]);
  return true;
})();

/** Fills the filesystem of `dir` with 4 KiB files; returns a function that frees them. */
function fill(dir: string): () => void {
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

describe('review: ENOSPC on a real full filesystem', () => {
  it.skipIf(!canMount)('truncateAfter on a full disk rejects TM_NOSPC cleanly and leaves the log usable once space is back', async () => {
    const mnt = mountTmpfs(1024 * 1024) as string;
    mounts.push(mnt);
    const dir = join(mnt, 'log');
    mkdirSync(dir);
    const wal = await Wal.open(dir, { segmentBytes: 64 * 1024 });
    for (let i = 1; i <= 5; i++) await wal.append(Buffer.alloc(100, i));
    await new Promise((r) => setTimeout(r, 100)); // the spare is ready
    const free = fill(mnt);
    // The TRUNCATE intent file cannot be written: nothing of the log changed.
    await expect(wal.truncateAfter(3)).rejects.toMatchObject({ code: 'TM_NOSPC', errno: 'ENOSPC' });
    expect(wal.lastIndex).toBe(5);
    free();
    // Actual: TM_POISONED (errno ENOSPC): the failed truncation poisoned the log.
    expect(await wal.append(Buffer.from('space is back'))).toBe(6);
    await wal.truncateAfter(3);
    expect(wal.lastIndex).toBe(3);
    await wal.close();
    const again = await Wal.open(dir, { segmentBytes: 64 * 1024 });
    expect(again.lastIndex).toBe(3);
    await again.close();
  });

  it.skipIf(!canMount)('appends on a full disk reject TM_NOSPC (no spare segment) and work again once space is back', async () => {
    const mnt = mountTmpfs(1024 * 1024) as string;
    mounts.push(mnt);
    const dir = join(mnt, 'log');
    mkdirSync(dir);
    const wal = await Wal.open(dir, { segmentBytes: 64 * 1024 });
    await new Promise((r) => setTimeout(r, 100));
    const free = fill(mnt);
    let acked = 0;
    let err: unknown;
    for (let i = 0; i < 200 && err === undefined; i++) {
      await wal.append(Buffer.alloc(3000, i)).then(
        () => acked++,
        (e: unknown) => (err = e),
      );
    }
    expect(err).toMatchObject({ code: 'TM_NOSPC', errno: 'ENOSPC' });
    expect(wal.lastIndex).toBe(acked);
    free();
    expect(await wal.append(Buffer.from('space is back'))).toBe(acked + 1);
    await wal.close();
    const again = await Wal.open(dir, { segmentBytes: 64 * 1024 });
    expect(again.lastIndex).toBe(acked + 1);
    expect((await again.read(acked + 1)).toString()).toBe('space is back');
    await again.close();
  });
});
