// Index arithmetic (found by an adversarial review): a log whose indexes are above 2^32
// (crafted byte for byte in the segment format of native/record.h and
// native/segment.h), read, appended to, truncated and reopened.
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Wal, crc32c } from '../../lib/index';
import { SMALL, frames, segmentFiles, tempDir } from './helpers';

const SEG = 64 * 1024;

/** One sealed-or-active segment file starting at `first` with `payloads` in one batch. */
function craftSegment(dir: string, first: bigint, payloads: Buffer[]): void {
  const b = Buffer.alloc(SEG);
  b.writeUInt32LE(0x4c574d54, 4); // "TMWL"
  b.writeUInt32LE(1, 8);
  b.writeBigUInt64LE(first, 16);
  b.writeBigUInt64LE(0x1234567890abcdefn, 24);
  b.writeUInt32LE(crc32c(b.subarray(4, 32)), 0);
  let seed = b.readUInt32LE(0);
  let off = 4096;
  let index = first;
  for (const p of payloads) {
    b.writeUInt32LE(p.length, off + 4);
    b.writeBigUInt64LE(index++, off + 8);
    p.copy(b, off + 16);
    seed = crc32c(b.subarray(off + 4, off + 16 + p.length), seed);
    b.writeUInt32LE(seed, off);
    off += 16 + Math.ceil(p.length / 8) * 8;
  }
  // Padding frame to the next 4 KiB boundary (at least 24 bytes).
  let total = Math.ceil(off / 4096) * 4096 - off;
  if (total < 24) total += 4096;
  b.writeUInt32LE((0x80000000 | total) >>> 0, off + 4);
  b.writeBigUInt64LE(index, off + 8);
  seed = crc32c(b.subarray(off + 4, off + 16), seed);
  b.writeUInt32LE(seed, off);
  b.writeUInt32LE(seed, off + total - 8);
  b.writeUInt32LE(0x44504d54, off + total - 4); // "TMPD"
  writeFileSync(join(dir, `${first.toString().padStart(20, '0')}.wal`), b);
}

describe('indexes above 2^32', () => {
  it('a log starting at 2^32 + 7 reads, appends across rotations, truncates and reopens with exact indexes', async () => {
    const dir = tempDir();
    const first = 2n ** 32n + 7n;
    craftSegment(dir, first, [Buffer.from('a'), Buffer.from('bb'), Buffer.alloc(3000, 3)]);
    expect(frames(segmentFiles(dir)[0] as string).filter((f) => f.kind === 'record').length).toBe(3); // the craft verifies
    const F = Number(first);
    const wal = await Wal.open(dir, SMALL);
    expect(wal.firstIndex).toBe(F);
    expect(wal.lastIndex).toBe(F + 2);
    expect((await wal.read(F + 1)).toString()).toBe('bb');
    for (let k = 0; k < 60; k++) expect(await wal.append(Buffer.alloc(3000, k))).toBe(F + 3 + k);
    expect(wal.stats().segments).toBeGreaterThan(2);
    const seen: number[] = [];
    for await (const e of wal.entries({ from: F + 1, to: F + 10 })) seen.push(e.index);
    expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => F + 1 + i));
    await wal.truncateAfter(F + 20);
    expect(wal.lastIndex).toBe(F + 20);
    await wal.truncateBefore(F + 20);
    expect(wal.firstIndex).toBeGreaterThan(F);
    const firstKept = wal.firstIndex;
    await wal.close();
    const again = await Wal.open(dir, SMALL);
    expect(again.firstIndex).toBe(firstKept);
    expect(again.lastIndex).toBe(F + 20);
    expect(await again.read(F + 20)).toEqual(Buffer.alloc(3000, 17));
    expect(await again.append(Buffer.from('next'))).toBe(F + 21);
    await again.close();
  });
});
