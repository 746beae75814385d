// Promise 4 details behind the review's ENOSPC findings: the bytes a rejected
// batch left after the committed end are zeroed before the segment is used
// again, spares held for a multi-rotation batch are released, and an
// appendMany that could never be staged is a typed argument error.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { Wal } from '../../lib/index';
import { SMALL, faults, frames, openFaulty, segmentFiles, tempDir } from './helpers';

const { ENOSPC } = constants.errno;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeEach(() => faults()('reset'));
afterEach(() => faults()('reset'));

describe('ENOSPC leftovers', () => {
  it('a shorter batch after a rejected multi-block one leaves no rejected bytes after the committed end', async () => {
    const dir = tempDir();
    const wal = await openFaulty(dir, SMALL);
    for (let i = 1; i <= 3; i++) await wal.append(Buffer.alloc(100, i));
    // A three-block batch of which two whole blocks get out before ENOSPC.
    faults()('failWrite', ENOSPC, 8192);
    const rejected = [Buffer.alloc(4000, 0xa1), Buffer.alloc(4000, 0xa2), Buffer.alloc(3000, 0xa3)];
    await expect(wal.appendMany(rejected)).rejects.toMatchObject({ code: 'TM_NOSPC', errno: 'ENOSPC' });
    faults()('failWrite', 0);
    // One small record: its block is the first of the rejected range; the rest must be zeroed too.
    expect(await wal.append(Buffer.from('after'))).toBe(4);
    await wal.close();
    faults()('reset');
    const [seg] = segmentFiles(dir);
    expect(seg).toBeDefined();
    const fs = frames(seg as string);
    const last = fs[fs.length - 1];
    expect(last).toBeDefined();
    const end = (last?.offset ?? 0) + (last?.size ?? 0);
    expect(end % 4096).toBe(0);
    const tail = readFileSync(seg as string).subarray(end);
    expect(tail.every((b) => b === 0)).toBe(true);
    const again = await Wal.open(dir, SMALL);
    expect(again.lastIndex).toBe(4);
    expect((await again.read(4)).toString()).toBe('after');
    await again.close();
  });

  it('a batch needing two rotations takes both spares before writing; on ENOSPC none is left behind, and it succeeds once space is back', async () => {
    const dir = tempDir();
    const wal = await openFaulty(dir, SMALL);
    await wal.append(Buffer.from('one'));
    await sleep(200); // the spare is prepared
    faults()('failAllocate', ENOSPC);
    const big = Array.from({ length: 50 }, (_, i) => Buffer.alloc(3000, i + 1));
    await expect(wal.appendMany(big)).rejects.toMatchObject({ code: 'TM_NOSPC', errno: 'ENOSPC' });
    expect(readdirSync(dir).filter((n) => n.startsWith('spare.held'))).toEqual([]);
    expect(wal.stats().segments).toBe(1);
    faults()('failAllocate', 0);
    expect(await wal.appendMany(big)).toBe(51);
    expect(wal.stats().segments).toBe(3);
    expect(readdirSync(dir).filter((n) => n.startsWith('spare.held'))).toEqual([]);
    await wal.close();
    faults()('reset');
    const again = await Wal.open(dir, SMALL);
    expect(again.lastIndex).toBe(51);
    for (let i = 2; i <= 51; i++) expect((await again.read(i)).equals(big[i - 2] as Buffer)).toBe(true);
    await again.close();
  });
});

describe('appendMany above the staging limit', () => {
  it('is TM_INVALID_ARGUMENT naming the 1 GiB limit (not TM_BUSY), writes nothing, and the log stays usable', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await wal.append(Buffer.from('first'));
    const max = wal.options.maxRecordBytes;
    const rec = Buffer.alloc(max); // one buffer of the largest allowed size, referenced as often as needed
    const framed = 16 + Math.ceil(max / 8) * 8;
    const datas = Array.from({ length: Math.floor(2 ** 30 / framed) + 1 }, () => rec); // just above 1 GiB framed
    const err = (await wal.appendMany(datas).then(
      () => undefined,
      (e: unknown) => e,
    )) as { code?: string; message?: string } | undefined;
    expect(err?.code).toBe('TM_INVALID_ARGUMENT');
    expect(err?.message).toMatch(/staging limit of 1073741824 bytes \(1 GiB\)/);
    expect(wal.lastIndex).toBe(1);
    expect(await wal.append(Buffer.from('second'))).toBe(2);
    await wal.close();
  });
});
