// A short write on an O_DIRECT segment (issue 8, WAL defect 4): the write loop
// must resume on an aligned boundary, not at the unaligned offset the short
// write stopped at (O_DIRECT refuses that with EINVAL, which poisoned the log).
// The fault layer makes the nth write system call write only a prefix.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { statfsSync } from 'node:fs';
import { Wal } from '../../lib/index';
import { SMALL, faults, openFaulty, payload, tempDir } from './helpers';

const TMPFS_MAGIC = 0x01021994;

beforeEach(() => faults()('reset'));
afterEach(() => faults()('reset'));

describe("sync 'direct': a short write resumes on an aligned boundary", () => {
  const dir0 = tempDir();
  const directOk = statfsSync(dir0).type !== TMPFS_MAGIC;
  it.skipIf(!directOk).each([1000, 4096 + 512 + 100, 12_000])('the first write of a batch stops after %i bytes: the batch is acknowledged and reads back', async (bytes) => {
    const dir = tempDir();
    const wal = await openFaulty(dir, { ...SMALL, sync: 'direct' });
    expect(await wal.append(payload(1))).toBe(1);
    const datas = [Buffer.alloc(5000, 2), Buffer.alloc(4000, 3), Buffer.alloc(3000, 4), Buffer.alloc(300, 5)];
    faults()('shortWrite', 1, bytes);
    expect(await wal.appendMany(datas)).toBe(5);
    expect(await wal.append(payload(6))).toBe(6);
    await wal.close();
    const again = await Wal.open(dir, SMALL);
    expect(again.lastIndex).toBe(6);
    for (let i = 0; i < datas.length; i++) expect((await again.read(i + 2)).equals(datas[i] as Buffer), `record ${i + 2}`).toBe(true);
    expect((await again.read(6)).equals(payload(6))).toBe(true);
    await again.close();
  });

  it('the buffered modes resume exactly where a short write stopped', async () => {
    const dir = tempDir();
    const wal = await openFaulty(dir, { ...SMALL, sync: 'fdatasync' });
    const datas = [Buffer.alloc(5000, 2), Buffer.alloc(4000, 3)];
    faults()('shortWrite', 1, 777);
    expect(await wal.appendMany(datas)).toBe(2);
    await wal.close();
    const again = await Wal.open(dir, SMALL);
    expect((await again.read(1)).equals(datas[0] as Buffer)).toBe(true);
    expect((await again.read(2)).equals(datas[1] as Buffer)).toBe(true);
    await again.close();
  });
});
