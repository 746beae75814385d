// Promise 4 (found by an adversarial review) with a real full filesystem: a small tmpfs
// mounted for the test (needs root; skipped elsewhere). Failing tests here are
// confirmed bugs.
import { describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Wal } from '../../lib/index';
import { canMountTmpfs, fillFilesystem, logOnFullDisk, mountTmpfs } from './helpers';

describe('ENOSPC on a real full filesystem', () => {
  it.skipIf(!canMountTmpfs)('truncateAfter on a full disk rejects TM_NOSPC cleanly and leaves the log usable once space is back', async () => {
    const { wal, dir, free } = await logOnFullDisk();
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

  it.skipIf(!canMountTmpfs)('appends on a full disk reject TM_NOSPC (no spare segment) and work again once space is back', async () => {
    const mnt = mountTmpfs(1024 * 1024) as string;
    const dir = join(mnt, 'log');
    mkdirSync(dir);
    const wal = await Wal.open(dir, { segmentBytes: 64 * 1024 });
    await new Promise((r) => setTimeout(r, 100));
    const free = fillFilesystem(mnt);
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
