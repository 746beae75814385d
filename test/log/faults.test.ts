// Power loss and disk faults through the test-only fault-injecting file layer
// (native/file_faulty.cc, loaded as build/Release/tidemark_faults.node).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { constants } from 'node:os';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Wal } from '../../lib/index';
import { readFileSync } from 'node:fs';
import { SMALL, faults, frames, openFaulty, payload, powerLossAndReopen, segmentFiles, tempDir, type Frame, mulberry32 } from './helpers';

const { EIO, ENOSPC, EOPNOTSUPP } = constants.errno;


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeEach(() => faults()('reset'));
afterEach(() => faults()('reset'));

async function verifyAcked(dir: string, acked: Map<number, Buffer>): Promise<Wal> {
  const wal = await Wal.open(dir, SMALL);
  let max = 0;
  for (const [i, data] of acked) {
    max = Math.max(max, i);
    expect((await wal.read(i)).equals(data), `record ${i}`).toBe(true);
  }
  expect(wal.lastIndex).toBeGreaterThanOrEqual(max);
  return wal;
}

describe('power loss (unsynced writes dropped)', () => {
  const seed = Number(process.env.TIDEMARK_SEED ?? Date.now() % 1_000_000);
  it(`every acknowledged record survives (seed=${seed})`, async () => {
    const rnd = mulberry32(seed);
    for (let round = 0; round < 6; round++) {
      faults()('reset');
      const dir = tempDir();
      const wal = await openFaulty(dir, SMALL);
      const acked = new Map<number, Buffer>();
      let stop = false;
      let n = 0;
      const writer = async () => {
        while (!stop) {
          const data = payload(n++, round);
          try {
            acked.set(await wal.append(data), data);
          } catch (err) {
            expect((err as { code: string }).code).toMatch(/TM_POISONED|TM_IO|TM_CLOSED/);
            return;
          }
        }
      };
      const writers = Array.from({ length: 32 }, writer);
      while (acked.size === 0) await sleep(1);
      await sleep(Math.floor(rnd() * 60));
      faults()('powerLoss');
      stop = true;
      await Promise.all(writers);
      await wal.close();
      faults()('reset');
      expect(acked.size, `round ${round} (seed=${seed}) acknowledged something`).toBeGreaterThan(0);
      const again = await verifyAcked(dir, acked);
      const next = again.lastIndex + 1;
      expect(await again.append(Buffer.from('after'))).toBe(next);
      await again.close();
    }
  });

  it("the fault layer really drops unsynced writes: with sync 'none', acknowledged records are lost", async () => {
    const dir = tempDir();
    const wal = await openFaulty(dir, { ...SMALL, sync: 'none' });
    for (let i = 1; i <= 10; i++) await wal.append(payload(i));
    expect(faults()('unsynced')).toBeGreaterThan(0);
    const again = await powerLossAndReopen(wal, dir);
    expect(again.lastIndex).toBe(0);
    await again.close();
  });

  it.each([1, 3, 8])('a torn last write (%i x 512 bytes kept) is repaired at open', async (sectors) => {
    const dir = tempDir();
    const wal = await openFaulty(dir, SMALL);
    const acked = new Map<number, Buffer>();
    for (let i = 1; i <= 5; i++) acked.set(await wal.append(payload(i)), payload(i));
    faults()('crashAtWrite', 1, sectors * 512);
    const batch = Array.from({ length: 30 }, (_, k) => Buffer.alloc(300, k + 1));
    await expect(wal.appendMany(batch)).rejects.toMatchObject({ code: 'TM_POISONED', errno: 'EIO' });
    expect(faults()('crashed')).toBe(true);
    await wal.close();
    // The tear left part of the batch on disk after the last complete batch.
    const file = segmentFiles(dir).at(-1) as string;
    const tail = frames(file).at(-1) as Frame;
    const after = readFileSync(file).subarray(tail.offset + tail.size, tail.offset + tail.size + sectors * 512);
    expect(after.some((b) => b !== 0)).toBe(true);
    faults()('reset');
    const again = await verifyAcked(dir, acked);
    expect(again.lastIndex).toBe(5); // the torn batch never finished: none of it is kept
    expect(await again.append(Buffer.from('x'))).toBe(6);
    await again.close();
    const third = await Wal.open(dir, SMALL);
    expect(third.lastIndex).toBe(6);
    await third.close();
  });

  it('a torn write that persisted a random subset of its sectors is never mistaken for corruption', async () => {
    const seed0 = Number(process.env.TIDEMARK_SEED ?? Date.now() % 1_000_000);
    for (let k = 0; k < 12; k++) {
      const seed = seed0 * 16 + k + 1;
      faults()('reset');
      const dir = tempDir();
      const wal = await openFaulty(dir, SMALL);
      const acked = new Map<number, Buffer>();
      for (let i = 1; i <= 4; i++) {
        const datas = [payload(i * 3), payload(i * 3 + 1), payload(i * 3 + 2)];
        const last = await wal.appendMany(datas);
        datas.forEach((d, j) => acked.set(last - 2 + j, d));
      }
      faults()('crashAtWriteSectors', 1, seed);
      const batch = Array.from({ length: 20 }, (_, j) => Buffer.alloc(300, j + 1));
      await expect(wal.appendMany(batch)).rejects.toMatchObject({ code: 'TM_POISONED' });
      await wal.close();
      faults()('reset');
      const again = await verifyAcked(dir, acked).catch((err: unknown) => {
        throw new Error(`seed=${seed}: ${String(err)}`);
      });
      expect([12, 32], `seed=${seed}`).toContain(again.lastIndex);
      await again.close();
    }
  });
});

describe('power loss tearing a large batch (format version 2: a batch header spanning two sectors)', () => {
  // 40 records of 2000 bytes: an 80 KiB batch, 160 sectors, so its header's sector
  // CRCs run into its second sector. Whatever prefix or subset of its sectors the
  // torn write persisted, the open keeps every acknowledged record and reports no
  // corruption (a false TM_CORRUPTION after a torn write is as bad as a lost record).
  const BIG = { segmentBytes: 1024 * 1024 };
  const seed0 = Number(process.env.TIDEMARK_SEED ?? Date.now() % 1_000_000);
  it(`prefix tears and random sector tears are repaired (seed=${seed0})`, async () => {
    const cases: Array<['crashAtWrite' | 'crashAtWriteSectors', number]> = [];
    for (const keep of [0, 1, 2, 3, 80, 158, 159]) cases.push(['crashAtWrite', keep * 512]);
    for (let k = 0; k < 8; k++) cases.push(['crashAtWriteSectors', seed0 * 16 + k + 1]);
    const failures: string[] = [];
    for (const [op, arg] of cases) {
      faults()('reset');
      const dir = tempDir();
      const wal = await openFaulty(dir, BIG);
      const acked = new Map<number, Buffer>();
      for (let i = 1; i <= 4; i++) acked.set(await wal.append(payload(i)), payload(i));
      if (op === 'crashAtWrite') faults()(op, 1, arg);
      else faults()(op, 1, arg);
      const batch = Array.from({ length: 40 }, (_, j) => Buffer.alloc(2000, j + 1));
      await expect(wal.appendMany(batch)).rejects.toMatchObject({ code: 'TM_POISONED' });
      await wal.close();
      faults()('reset');
      const again = await Wal.open(dir, BIG).catch((err: unknown) => err as Error);
      if (again instanceof Error) {
        failures.push(`${op}(${arg}): ${again.message}`);
        continue;
      }
      for (const [i, d] of acked) if (!(await again.read(i)).equals(d)) failures.push(`${op}(${arg}): record ${i} differs`);
      if (again.lastIndex !== 4 && again.lastIndex !== 44) failures.push(`${op}(${arg}): lastIndex ${again.lastIndex}`);
      if (op === 'crashAtWrite' && arg < 159 * 512 && again.lastIndex !== 4) failures.push(`${op}(${arg}): a torn batch was kept`);
      await again.close();
    }
    expect(failures).toEqual([]);
  }, 60_000);
});

describe('power loss during truncateAfter', () => {
  // Batches [4080, 100], [100], [2032, 2032, 2032, 100], [100]: cuts at a segment's first record,
  // on a block boundary inside a batch (after 1 and 5), at a batch end (2, 3), mid-block (4, 6, 7).
  // The TRUNCATE marker is durable before the cut writes anything, so whatever part of the cut's
  // writes reached the disk, the log reopens with exactly records 1..k, and stays so.
  const batches = [[4080, 100], [100], [2032, 2032, 2032, 100], [100]];
  const data = batches.flat().map((len, i) => Buffer.alloc(len, i + 1));
  const seed0 = Number(process.env.TIDEMARK_SEED ?? Date.now() % 1_000_000);
  const crashes: ['crashAtWrite' | 'crashAtWriteSectors', number, number][] = [
    ['crashAtWrite', 1, 0],
    ['crashAtWrite', 1, 512],
    ['crashAtWrite', 1, 8192],
    ['crashAtWrite', 2, 0],
    ['crashAtWrite', 2, 1024],
    ['crashAtWriteSectors', 1, seed0 * 4 + 1],
    ['crashAtWriteSectors', 2, seed0 * 4 + 2],
  ];
  it(`records <= k survive a crash at any write of the cut (seed=${seed0})`, async () => {
    const failures: string[] = [];
    let crashed = 0;
    for (const k of [0, 1, 2, 3, 4, 5, 6, 7]) {
      for (const [op, n, arg] of crashes) {
        faults()('reset');
        const dir = tempDir();
        const wal = await openFaulty(dir, SMALL);
        let next = 0;
        for (const b of batches) {
          await wal.appendMany(data.slice(next, next + b.length));
          next += b.length;
        }
        if (op === 'crashAtWrite') faults()(op, n, arg);
        else faults()(op, n, arg);
        await wal.truncateAfter(k).catch(() => undefined); // rejects when the crash hit it
        if (faults()('crashed') === true) crashed++;
        await wal.close();
        faults()('reset');
        for (let open = 0; open < 2; open++) {
          const again = await Wal.open(dir, SMALL).catch((err: unknown) => err as Error);
          const where = `k=${k} ${op}(${n}, ${arg}) open ${open}`;
          if (again instanceof Error) {
            failures.push(`${where}: ${again.message}`);
            break;
          }
          if (again.lastIndex !== k) failures.push(`${where}: lastIndex ${again.lastIndex}`);
          for (let i = 1; i <= Math.min(k, again.lastIndex); i++) {
            if (!(await again.read(i)).equals(data[i - 1] as Buffer)) failures.push(`${where}: record ${i} differs`);
          }
          await again.close();
        }
      }
    }
    expect(failures).toEqual([]);
    // Most cases must really crash inside the cut (a crash at a second write needs a cut
    // that writes twice: head block, then zeros over later batches).
    expect(crashed).toBeGreaterThanOrEqual(8 * 5);
  });
});

describe('disk faults', () => {
  it('EIO on fdatasync poisons the log: pending and later appends reject TM_POISONED with EIO, no retry', async () => {
    const dir = tempDir();
    const wal = await openFaulty(dir, SMALL);
    const acked = new Map<number, Buffer>();
    for (let i = 1; i <= 10; i++) acked.set(await wal.append(payload(i)), payload(i));
    const syncsBefore = wal.stats().syncs;
    faults()('failSync', EIO);
    const pending = Array.from({ length: 20 }, (_, i) => wal.append(Buffer.alloc(10, i))); // no rotation
    const results = await Promise.allSettled(pending);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'TM_POISONED', errno: 'EIO', errnoNumber: EIO });
    }
    faults()('failSync', 0); // even with the disk "fixed", the instance stays poisoned
    await expect(wal.append(Buffer.from('later'))).rejects.toMatchObject({ code: 'TM_POISONED', errno: 'EIO' });
    await expect(wal.appendMany([Buffer.from('later')])).rejects.toMatchObject({ code: 'TM_POISONED' });
    await expect(wal.truncateAfter(5)).rejects.toMatchObject({ code: 'TM_POISONED' });
    expect(wal.stats().syncs - syncsBefore).toBe(1); // one failed sync, never retried
    expect(wal.lastIndex).toBe(10);
    await wal.close();
    faults()('powerLoss'); // the failed sync's writes were never durable
    faults()('reset');
    const again = await verifyAcked(dir, acked);
    expect(again.lastIndex).toBe(10);
    await again.close();
  });

  it('ENOSPC rejects the batch cleanly (TM_NOSPC) and the log is usable once space is back', async () => {
    const dir = tempDir();
    const wal = await openFaulty(dir, SMALL);
    const acked = new Map<number, Buffer>();
    for (let i = 1; i <= 10; i++) acked.set(await wal.append(payload(i)), payload(i));
    faults()('failWrite', ENOSPC, 700); // a partial write, then ENOSPC
    const rejected = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => wal.append(Buffer.alloc(400, 0xee + i))));
    for (const r of rejected) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'TM_NOSPC', errno: 'ENOSPC' });
    }
    expect(wal.lastIndex).toBe(10);
    faults()('failWrite', 0);
    for (let i = 11; i <= 20; i++) {
      expect(await wal.append(payload(i))).toBe(i); // indexes of the rejected batch are reused
      acked.set(i, payload(i));
    }
    await wal.close();
    const again = await verifyAcked(dir, acked);
    expect(again.lastIndex).toBe(20);
    await again.close();
  });

  it('ENOSPC while preparing the next segment rejects the batch that needs it, then recovers', async () => {
    const dir = tempDir();
    faults()('failAllocate', ENOSPC);
    const wal = await openFaulty(dir, SMALL).catch(() => undefined);
    // The first segment itself needs space: open fails cleanly.
    expect(wal).toBeUndefined();
    faults()('failAllocate', 0);
    const w = await openFaulty(dir, SMALL);
    const acked = new Map<number, Buffer>();
    for (let k = 0; k < 500 && !existsSync(join(dir, 'spare.wal.ready')); k++) await sleep(10); // the spare is prepared
    faults()('failAllocate', ENOSPC);
    // Fill the first segment; the prepared spare takes the first rotation.
    let i = 1;
    while (w.stats().segments < 2) {
      acked.set(await w.append(Buffer.alloc(3000, i)), Buffer.alloc(3000, i));
      i++;
    }
    // The next rotation has no spare and no space.
    let failed = false;
    while (!failed) {
      try {
        const data = Buffer.alloc(3000, i);
        acked.set(await w.append(data), data);
        i++;
      } catch (err) {
        expect(err).toMatchObject({ code: 'TM_NOSPC', errno: 'ENOSPC' });
        failed = true;
      }
    }
    const last = w.lastIndex;
    faults()('failAllocate', 0);
    const data = Buffer.from('space is back');
    expect(await w.append(data)).toBe(last + 1);
    acked.set(last + 1, data);
    await w.close();
    const again = await verifyAcked(dir, acked);
    await again.close();
  });

  it('EOPNOTSUPP from fallocate falls back to writing zeros', async () => {
    const dir = tempDir();
    faults()('failAllocate', EOPNOTSUPP);
    const wal = await openFaulty(dir, SMALL);
    const acked = new Map<number, Buffer>();
    for (let i = 1; i <= 80; i++) acked.set(await wal.append(payload(i)), payload(i));
    expect(wal.stats().segments).toBeGreaterThan(2);
    await wal.close();
    for (const f of segmentFiles(dir)) expect(statSync(f).size).toBe(64 * 1024);
    faults()('reset');
    const again = await verifyAcked(dir, acked);
    await again.close();
  });
});
