/**
 * The prepared spare segment (`spare.wal.ready`): usable once reserved, zero-written in the
 * background, taken by a rotation mid-fill (the fill stops; the writer never waits for a whole
 * segment's zero-fill). What these tests pin:
 * - rotations that take a spare while it is still being zero-written lose or damage nothing
 *   (the preparer must never write into a file the writer has taken);
 * - a spare left on disk in any state a crash can leave (all zeros, a hole, a torn header, a
 *   whole header written by a rotation that crashed before its rename) is never read as part
 *   of the log, and the log rotates into it and reopens with every record.
 * The SIGKILL variant with segments big enough for mid-fill claims is in crash.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { closeSync, ftruncateSync, openSync, readSync, readdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Wal } from '../../lib/index';
import { recordBytes } from '../helpers';
import { SMALL, tempDir } from './helpers';

const SPARE = 'spare.wal.ready';
const SEED = 0x5ba4e;

async function expectRecords(dir: string, options: Parameters<typeof Wal.open>[1], count: number, lengthOf: (key: number) => number): Promise<void> {
  const wal = await Wal.open(dir, options);
  try {
    expect(wal.firstIndex).toBe(1);
    expect(wal.lastIndex).toBe(count);
    let next = 1;
    for await (const { index, data } of wal.entries()) {
      expect(index).toBe(next);
      // Keys are indexes here: record i holds recordBytes(i, ...).
      if (!data.equals(recordBytes(index, lengthOf(index), SEED))) throw new Error(`record ${index} does not hold its bytes`);
      next++;
    }
    expect(next).toBe(count + 1);
  } finally {
    await wal.close();
  }
}

describe('spare segments taken while the preparer is still zero-writing them', () => {
  it('many rotations of 4 MiB segments under 16 concurrent 1 MiB appends (several rotations per batch) keep every record, also after reopen', async () => {
    const dir = tempDir();
    const options = { segmentBytes: 4 * 1024 * 1024 };
    const length = 1024 * 1024;
    // 64 MiB: segments 1, 2, 4, 4, ... MiB, three records each; a batch of up to 16 records takes
    // several spares in a row, each the moment it is usable, while the preparer is zero-writing it.
    const total = 64;
    const wal = await Wal.open(dir, options);
    let key = 0;
    const writer = async (): Promise<void> => {
      while (key < total) {
        const k = ++key;
        // Index order equals key order only with one in flight per key: check by reading back below.
        const index = await wal.append(recordBytes(k, length, SEED));
        expect(index).toBeGreaterThan(0);
      }
    };
    // Several writers: batches of several records, rotations in the middle of a batch.
    await Promise.all(Array.from({ length: 16 }, writer));
    expect(wal.lastIndex).toBe(total);
    // Appends are numbered in call order, and each writer calls with the next key: index == key.
    for (let i = 1; i <= total; i += 7) expect((await wal.read(i)).equals(recordBytes(i, length, SEED))).toBe(true);
    expect(wal.stats().segments).toBeGreaterThan(8);
    await wal.close();
    await expectRecords(dir, options, total, () => length);
  }, 120_000);
});

describe('a spare left on disk by a crash is never part of the log', () => {
  const length = (k: number): number => 3000 + ((k * 977) % 9000);
  const segmentBytes = SMALL.segmentBytes ?? 64 * 1024;

  /** A log of 40 records (several 64 KiB segments), closed, with its spare replaced by `make`. */
  async function logWithSpare(make: (path: string) => void): Promise<string> {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    for (let k = 1; k <= 40; k++) await wal.append(recordBytes(k, length(k), SEED));
    await wal.close();
    make(join(dir, SPARE));
    return dir;
  }

  /** A valid version 2 segment header block for `firstIndex` (what a rotation writes before its rename). */
  function headerBlock(path: string, firstIndex: number): Buffer {
    // Take a real one: the first segment's header block, with its first index patched and the CRC left
    // as written (a header for another index, or torn, is what a crash mid-rotation leaves).
    const dir = join(path, '..');
    const first = readdirSync(dir).filter((n) => n.endsWith('.wal')).sort()[0];
    if (first === undefined) throw new Error('no segment');
    const fd = openSync(join(dir, first), 'r');
    const block = Buffer.alloc(4096);
    readSync(fd, block, 0, 4096, 0);
    closeSync(fd);
    block.writeBigUInt64LE(BigInt(firstIndex), 16);
    return block;
  }

  const variants: Array<[string, (path: string) => void]> = [
    ['all zeros, written', (p) => writeFileSync(p, Buffer.alloc(segmentBytes))],
    [
      'a hole of the right size (reserved or not, never zero-written)',
      (p) => {
        const fd = openSync(p, 'w');
        ftruncateSync(fd, segmentBytes);
        closeSync(fd);
      },
    ],
    [
      'a torn header (the first 20 bytes of one), zeros after',
      (p) => {
        const block = Buffer.alloc(segmentBytes);
        headerBlock(p, 41).copy(block, 0, 0, 20);
        writeFileSync(p, block);
      },
    ],
    [
      'a whole header for the next index (a rotation that crashed before its rename), zeros after',
      (p) => {
        const block = Buffer.alloc(segmentBytes);
        headerBlock(p, 41).copy(block, 0);
        writeFileSync(p, block);
      },
    ],
    [
      'a spare prepared for another size (larger)',
      (p) => {
        const fd = openSync(p, 'w');
        writeSync(fd, Buffer.alloc(4096), 0, 4096, 4 * segmentBytes - 4096);
        closeSync(fd);
      },
    ],
  ];

  for (const [name, make] of variants) {
    it(`${name}: open sees exactly the log, rotates into the spare, reopens with every record`, async () => {
      const dir = await logWithSpare(make);
      await expectRecords(dir, SMALL, 40, length);
      const wal = await Wal.open(dir, SMALL);
      const segmentsBefore = wal.stats().segments;
      for (let k = 41; k <= 100; k++) expect(await wal.append(recordBytes(k, length(k), SEED))).toBe(k);
      expect(wal.stats().segments).toBeGreaterThan(segmentsBefore + 2);
      await wal.close();
      await expectRecords(dir, SMALL, 100, length);
      // The spare is a spare again (or gone), never a segment name.
      const names = readdirSync(dir);
      expect(names.filter((n) => n.endsWith('.tmp'))).toEqual([]);
      if (names.includes(SPARE)) expect(statSync(join(dir, SPARE)).size % 4096).toBe(0);
    }, 60_000);
  }
});
