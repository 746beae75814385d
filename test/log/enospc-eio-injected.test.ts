// Promise 4 (ENOSPC is clean, EIO is final; found by an adversarial review) through the
// test-only fault layer.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { constants } from 'node:os';
import { Wal } from '../../lib/index';
import { SMALL, faults, openFaulty, payload, tempDir } from './helpers';

const { EIO, ENOSPC } = constants.errno;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeEach(() => faults()('reset'));
afterEach(() => faults()('reset'));

describe('ENOSPC', () => {
  it('ENOSPC for the second rotation inside one batch rejects it cleanly (TM_NOSPC), keeps the log usable, and nothing of it survives reopen', async () => {
    const dir = tempDir();
    const wal = await openFaulty(dir, SMALL);
    for (let i = 1; i <= 3; i++) await wal.append(payload(i));
    await sleep(200); // the spare segment is prepared ahead of need
    faults()('failAllocate', ENOSPC); // no space for any further segment
    // 50 x 3000 bytes in one batch: needs three 64 KiB segments (two rotations);
    // the prepared spare covers the first, the second has no space.
    const big = Array.from({ length: 50 }, (_, i) => Buffer.alloc(3000, i + 1));
    const err = (await wal.appendMany(big).then(
      () => undefined,
      (e: unknown) => e,
    )) as { code?: string; errno?: string } | undefined;
    faults()('failAllocate', 0); // space is back
    let later: string;
    try {
      later = `ok ${await wal.append(Buffer.from('space is back'))}`;
    } catch (e) {
      later = (e as { code: string }).code;
    }
    await wal.close();
    faults()('reset');
    const again = await Wal.open(dir, SMALL);
    const facts = { code: err?.code, errno: err?.errno, later, lastIndexAfterReopen: again.lastIndex };
    await again.close();
    // Actual: { code: 'TM_POISONED', errno: 'ENOSPC', later: 'TM_POISONED',
    // lastIndexAfterReopen: 39 } -- the parts of the rejected batch that fit
    // the first two segments (36 records) were synced before the next rotation
    // failed, the log is poisoned, and the "rejected" records are in the log.
    expect(facts).toEqual({ code: 'TM_NOSPC', errno: 'ENOSPC', later: 'ok 4', lastIndexAfterReopen: 4 });
  });

  it('a batch rejected with ENOSPC after a partial write does not reappear after a clean close and reopen', async () => {
    const dir = tempDir();
    const wal = await openFaulty(dir, SMALL);
    for (let i = 1; i <= 10; i++) await wal.append(Buffer.alloc(100, i));
    // The write of the next batch (one 120-byte frame + padding to 4 KiB) gets
    // out the frame and the padding header before the device reports ENOSPC.
    faults()('failWrite', ENOSPC, 120 + 16);
    await expect(wal.append(Buffer.alloc(100, 0xee))).rejects.toMatchObject({ code: 'TM_NOSPC', errno: 'ENOSPC' });
    faults()('failWrite', 0);
    expect(wal.lastIndex).toBe(10);
    await wal.close(); // no further append overwrote the rejected bytes
    faults()('reset');
    const again = await Wal.open(dir, SMALL);
    // Actual: lastIndex 11 and read(11) returns the rejected record.
    expect(again.lastIndex).toBe(10);
    await again.close();
  });
  it('a batch rejected with ENOSPC after a partial write, followed by a rotation, does not make the log unopenable', async () => {
    // The rejected bytes stay in the active segment after its committed end.
    // The next batch does not fit there, so nothing overwrites them: the
    // segment is sealed with them, and recovery's row B sees a sealed segment
    // that "ends inside a batch" (or, had the padding got out too, records
    // that overlap the next segment's first index).
    const dir = tempDir();
    const wal = await openFaulty(dir, SMALL);
    for (let i = 1; i <= 13; i++) await wal.append(Buffer.alloc(4000, i)); // 13 one-block batches: data up to 57344 of 65536
    faults()('failWrite', ENOSPC, 2 * (16 + 1000)); // two whole frames get out
    await expect(wal.appendMany([Buffer.alloc(1000, 1), Buffer.alloc(1000, 2), Buffer.alloc(1000, 3)])).rejects.toMatchObject({
      code: 'TM_NOSPC',
    });
    faults()('failWrite', 0);
    const segs = wal.stats().segments;
    const big = Buffer.alloc(40000, 0x77); // does not fit in what is left: rotation, nothing written at the old tail
    const idx = await wal.append(big);
    expect(wal.stats().segments).toBeGreaterThan(segs);
    await wal.close();
    faults()('reset');
    const r = await Wal.open(dir, SMALL).then(
      async (w) => {
        const out = { lastIndex: w.lastIndex, big: (await w.read(idx)).equals(big) };
        await w.close();
        return out;
      },
      (e: unknown) => ({ code: (e as { code: string }).code, message: (e as Error).message }),
    );
    // Actual: { code: 'TM_CORRUPTION', message: '... sealed segment ends inside a batch (00..01.wal at offset 59376)' }
    expect(r).toEqual({ lastIndex: idx, big: true });
  });
});

describe('pinned fault behaviour', () => {
  it('EIO on fdatasync: the failing batch and every later append reject TM_POISONED with errno, syscall and path', async () => {
    const dir = tempDir();
    const wal = await openFaulty(dir, SMALL);
    await wal.append(Buffer.from('a'));
    faults()('failSync', EIO);
    const results = await Promise.allSettled([wal.append(Buffer.from('b')), wal.append(Buffer.from('c'))]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const e = (r as PromiseRejectedResult).reason as { path?: string };
      expect(e).toMatchObject({ code: 'TM_POISONED', errno: 'EIO', errnoNumber: EIO, syscall: 'fdatasync' });
      expect(e.path).toMatch(/\.wal$/);
    }
    faults()('failSync', 0);
    await expect(wal.append(Buffer.from('d'))).rejects.toMatchObject({ code: 'TM_POISONED', errno: 'EIO' });
    expect(await wal.read(1)).toEqual(Buffer.from('a')); // reads still work
    await wal.close();
  });
});

describe('ENOSPC reported by fdatasync (copy-on-write filesystems: docs/wal.md, Known limits)', () => {
  it('poisons the log (TM_POISONED, errno ENOSPC), not a clean TM_NOSPC; a reopen keeps every acknowledged record', async () => {
    const dir = tempDir();
    const wal = await openFaulty(dir, SMALL);
    for (let i = 1; i <= 5; i++) expect(await wal.append(payload(i))).toBe(i);
    faults()('failSync', ENOSPC);
    await expect(wal.append(payload(6))).rejects.toMatchObject({ code: 'TM_POISONED', errno: 'ENOSPC' });
    await expect(wal.append(payload(7))).rejects.toMatchObject({ code: 'TM_POISONED', errno: 'ENOSPC' });
    faults()('powerLoss');
    await wal.close();
    faults()('reset');
    const again = await Wal.open(dir, SMALL);
    expect(again.lastIndex).toBe(5);
    for (let i = 1; i <= 5; i++) expect((await again.read(i)).equals(payload(i))).toBe(true);
    expect(await again.append(payload(6))).toBe(6);
    await again.close();
  });
});
