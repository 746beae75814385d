// Out of memory while staging or writing a batch (issue 8, WAL defect 5): the
// append rejects with a typed error (TM_BUSY, errno ENOMEM) and the log stays
// usable, instead of abort() killing the process. The fault layer makes the
// nth allocation of a staging or write buffer of at least some size fail.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { statfsSync } from 'node:fs';
import { Wal } from '../../lib/index';
import { SMALL, faults, openFaulty, payload, tempDir } from './helpers';

const MiB = 1024 * 1024;
const TMPFS_MAGIC = 0x01021994;

beforeEach(() => faults()('reset'));
afterEach(() => faults()('reset'));

async function expectUsable(wal: Wal, dir: string, next: number): Promise<void> {
  expect(await wal.append(payload(next))).toBe(next);
  await wal.close();
  const again = await Wal.open(dir, { segmentBytes: 16 * MiB });
  expect(again.lastIndex).toBe(next);
  expect((await again.read(next)).equals(payload(next))).toBe(true);
  await again.close();
}

describe('out of memory is a typed rejection, not abort()', () => {
  it('the staging buffer of a large appendMany cannot grow: TM_BUSY (ENOMEM), nothing queued, the log goes on', async () => {
    const dir = tempDir();
    const wal = await openFaulty(dir, { segmentBytes: 16 * MiB });
    expect(await wal.append(payload(1))).toBe(1);
    faults()('failAlloc', 4 * MiB, 1);
    const big = Array.from({ length: 6 }, (_, i) => Buffer.alloc(MiB, i + 1));
    await expect(wal.appendMany(big)).rejects.toMatchObject({ code: 'TM_BUSY', errno: 'ENOMEM' });
    expect(wal.lastIndex).toBe(1);
    await expectUsable(wal, dir, 2);
  });

  it('one append whose staging buffer cannot grow: TM_BUSY (ENOMEM); appends already queued are written', async () => {
    const dir = tempDir();
    const wal = await openFaulty(dir, { segmentBytes: 16 * MiB });
    const first = wal.append(payload(1));
    faults()('failAlloc', 4 * MiB, 1);
    await expect(wal.append(Buffer.alloc(5 * MiB, 7))).rejects.toMatchObject({ code: 'TM_BUSY', errno: 'ENOMEM' });
    expect(await first).toBe(1);
    await expectUsable(wal, dir, 2);
  });

  const directOk = statfsSync(tempDir()).type !== TMPFS_MAGIC;
  it.skipIf(!directOk)("sync 'direct': the writer's aligned copy of the batch cannot be allocated: TM_BUSY (ENOMEM), the log goes on", async () => {
    const dir = tempDir();
    const wal = await openFaulty(dir, { segmentBytes: 16 * MiB, sync: 'direct' });
    expect(await wal.append(payload(1))).toBe(1);
    // 3 MiB packed into one staging buffer (allocation 1: 4 MiB), then the writer's copy (allocation 2).
    faults()('failAlloc', 2 * MiB, 2);
    const batch = Array.from({ length: 3 }, (_, i) => Buffer.alloc(MiB - 64, i + 1));
    await expect(wal.appendMany(batch)).rejects.toMatchObject({ code: 'TM_BUSY', errno: 'ENOMEM' });
    expect(wal.lastIndex).toBe(1);
    await expectUsable(wal, dir, 2);
  });
});
