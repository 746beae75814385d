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
import {
  closeSync,
  existsSync,
  ftruncateSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { TidemarkError, Wal, crc32c } from '../../lib/index';
import { recordBytes } from '../helpers';
import { type Frame, SMALL, frames, segmentFiles, segmentVersion, tempDir } from './helpers';

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

/**
 * Row S (native/recovery.cc): a rotation only renames the prepared spare (its open, version 3
 * header and its name were made durable by the preparer) and does not sync the directory, so a
 * crash can leave the newest segment under the spare's name. Each state a crash can leave is
 * built here byte for byte from a real log: the segment under the spare's name joins the log (and
 * gets its name back), a torn first batch in it is dropped like any torn tail, and damage in it,
 * data after a header that is not an open one, a first index that does not follow the log, or
 * records beside a TRUNCATE marker are TM_CORRUPTION naming the spare.
 */
describe('row S: the newest segment left under the spare name by a crash', () => {
  const length = (k: number): number => 3000 + ((k * 977) % 9000);

  async function openError(dir: string, options: Parameters<typeof Wal.open>[1] = SMALL): Promise<TidemarkError> {
    try {
      const wal = await Wal.open(dir, options);
      await wal.close();
    } catch (err) {
      if (err instanceof TidemarkError) return err;
      throw err;
    }
    throw new Error('the open succeeded');
  }

  /** A closed log of `count` records in 64 KiB segments; its last segment (a rotation's, version 3) and its first index. */
  async function closedLog(count = 40): Promise<{ dir: string; last: string; first: number }> {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    for (let k = 1; k <= count; k++) await wal.append(recordBytes(k, length(k), SEED));
    await wal.close();
    const last = segmentFiles(dir).at(-1) as string;
    expect(segmentVersion(last)).toBe(3);
    // A clean close leaves a prepared spare: an open header, nothing after it.
    expect(segmentVersion(join(dir, SPARE))).toBe(3);
    return { dir, last, first: Number(basename(last).slice(0, 20)) };
  }

  /** The crash before the rotation's rename was durable: the last segment's bytes under the spare's name. */
  function unrename(last: string, bytes?: (b: Buffer) => Buffer): void {
    const spare = join(last, '..', SPARE);
    const b = readFileSync(last);
    writeFileSync(spare, bytes === undefined ? b : bytes(b));
    unlinkSync(last);
  }

  it('renamed but the directory not synced: the segment under the spare name joins the log and gets its name back', async () => {
    const { dir, last } = await closedLog();
    unrename(last);
    await expectRecords(dir, SMALL, 40, length);
    expect(existsSync(last)).toBe(true);
    // And the log goes on: rotations into new spares, every record after a reopen.
    const wal = await Wal.open(dir, SMALL);
    for (let k = 41; k <= 80; k++) expect(await wal.append(recordBytes(k, length(k), SEED))).toBe(k);
    await wal.close();
    await expectRecords(dir, SMALL, 80, length);
  }, 60_000);

  it('read-only: the segment under the spare name is part of the log, and nothing is renamed', async () => {
    const { dir, last } = await closedLog();
    unrename(last);
    const ro = await Wal.open(dir, { ...SMALL, readOnly: true });
    expect(ro.lastIndex).toBe(40);
    expect(ro.damage).toBeNull();
    expect((await ro.read(40)).equals(recordBytes(40, length(40), SEED))).toBe(true);
    await ro.close();
    expect(existsSync(last)).toBe(false);
    expect(existsSync(join(dir, SPARE))).toBe(true);
  }, 60_000);

  const torn: Array<[string, (b: Buffer, hdr: Frame) => Buffer]> = [
    // Only the first sector of the first batch (its header) reached the disk: row T.
    ['torn after the first sector of its first batch', (b, hdr) => keep(b, hdr.offset + 512)],
    // Torn at a byte inside the batch header's sector: row Q'.
    ['torn at a byte inside its first batch header', (b, hdr) => keep(b, hdr.offset + 40)],
    // Only the open header (the preparer's): nothing after it.
    ['only its open header', (b) => keep(b, 0)],
  ];
  function keep(b: Buffer, n: number): Buffer {
    const out = Buffer.alloc(64 * 1024);
    b.copy(out, 0, 0, Math.max(n, 4096));
    return out;
  }

  for (const [name, make] of torn) {
    it(`${name}: dropped as a torn tail, the log ends before it and rotates into that spare again`, async () => {
      const { dir, last, first } = await closedLog();
      const hdr = frames(last).find((f) => f.kind === 'header') as Frame;
      unrename(last, (x) => make(x, hdr));
      await expectRecords(dir, SMALL, first - 1, length);
      expect(existsSync(last)).toBe(false);
      const wal = await Wal.open(dir, SMALL);
      for (let k = first; k <= 60; k++) expect(await wal.append(recordBytes(k, length(k), SEED))).toBe(k);
      await wal.close();
      await expectRecords(dir, SMALL, 60, length);
    }, 60_000);
  }

  it('a damaged record in it (its batch written whole) is TM_CORRUPTION naming the spare', async () => {
    const { dir, last } = await closedLog();
    const rec = frames(last).find((f) => f.kind === 'record') as Frame;
    unrename(last, (b) => {
      b.writeUInt8(b.readUInt8(rec.offset + 16 + 100) ^ 0x20, rec.offset + 16 + 100);
      return b;
    });
    const err = await openError(dir);
    expect(err.code).toBe('TM_CORRUPTION');
    expect(err.path).toBe(join(dir, SPARE));
  }, 60_000);

  it('data after a header that is not a valid open header is TM_CORRUPTION at offset 0', async () => {
    const { dir, last } = await closedLog();
    unrename(last, (b) => {
      b.writeUInt8(b.readUInt8(20) ^ 0x01, 20);
      return b;
    });
    const err = await openError(dir);
    expect(err).toMatchObject({ code: 'TM_CORRUPTION', path: join(dir, SPARE), offset: 0 });
    expect(err.message).toMatch(/not a valid open/);
  }, 60_000);

  it('a segment under the spare name whose first index does not follow the log is TM_CORRUPTION', async () => {
    const { dir, last } = await closedLog();
    // A copy of the last segment while it keeps its name: its records start at that segment's first index, not after it.
    writeFileSync(join(dir, SPARE), readFileSync(last));
    const err = await openError(dir);
    expect(err).toMatchObject({ code: 'TM_CORRUPTION', path: join(dir, SPARE), offset: 4096 });
  }, 60_000);

  for (const marker of ['a valid', 'an unverifiable']) {
    it(`records under the spare name beside ${marker} TRUNCATE marker are TM_CORRUPTION (truncateAfter syncs the rename first)`, async () => {
      const { dir, last } = await closedLog();
      unrename(last);
      const m = Buffer.alloc(24);
      m.writeBigUInt64LE(0x3143555254544d54n, 0); // "TMTRUNC1" (native/recovery.h)
      m.writeBigUInt64LE(10n, 8);
      if (marker === 'a valid') m.writeUInt32LE(crc32c(m.subarray(0, 16)), 16);
      writeFileSync(join(dir, 'TRUNCATE'), m);
      const err = await openError(dir);
      expect(err).toMatchObject({ code: 'TM_CORRUPTION', path: join(dir, SPARE) });
    }, 60_000);
  }

  it('an empty first segment the spare replaced (a first record too big for it): the spare takes its name', async () => {
    const options = { segmentBytes: 4 * 1024 * 1024 };
    const big = (): number => 1536 * 1024;
    const dir = tempDir();
    const empty = tempDir();
    await (await Wal.open(empty, options)).close();
    const wal = await Wal.open(dir, options);
    expect(await wal.append(recordBytes(1, big(), SEED))).toBe(1);
    await wal.close();
    const seg = segmentFiles(dir);
    expect(seg.length).toBe(1);
    expect(segmentVersion(seg[0] as string)).toBe(3);
    // Before the rename was durable: the empty first segment under its name, the new one under the spare's.
    unrename(seg[0] as string);
    writeFileSync(seg[0] as string, readFileSync(segmentFiles(empty)[0] as string));
    await expectRecords(dir, options, 1, big);
    expect(statSync(seg[0] as string).size).toBe(2 * 1024 * 1024);
  }, 60_000);
});
