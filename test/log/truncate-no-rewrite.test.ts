// Promise 2 for truncateAfter (issue 8, WAL defect 2): a cut inside a block that
// holds kept, acknowledged records must not rewrite that block in place (strace
// showed a pwrite64 of 4096 bytes at offset 4096, the batch header and record 1,
// after three appendMany and truncateAfter(1)). The segment is rebuilt in a
// fresh file (the kept bytes copied, the padding frame after them) that replaces
// it by rename once durable; nothing is written to the segment's own sectors.
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Wal, crc32c } from '../../lib/index';
import { SMALL, frames, hasStrace, segmentFiles, tempDir, writesOf, writesOfReopen, type Frame } from './helpers';

describe('truncateAfter never rewrites a block that holds kept records', () => {
  it.skipIf(!hasStrace)('three appendMany, truncateAfter(1): no write to the segment touches the block of record 1 (strace)', async () => {
    const dir = tempDir();
    const file = `${dir}/00000000000000000001.wal`;
    const body =
      `const wal = await Wal.open(${JSON.stringify(dir)}, { segmentBytes: 64 * 1024 });` +
      `for (let i = 0; i < 3; i++) await wal.appendMany([Buffer.alloc(100, 3 * i + 1), Buffer.alloc(100, 3 * i + 2), Buffer.alloc(100, 3 * i + 3)]);` +
      `await wal.truncateAfter(1); await wal.close();`;
    // (Batches are written with pwritev; the truncation's own writes with pwrite64, which this collects.)
    const writes = writesOf(body, file);
    expect(writes.filter((w) => w.offset < 8192 && w.offset + w.length > 4096), JSON.stringify(writes)).toEqual([]);
    const again = await Wal.open(dir, SMALL);
    expect(again.lastIndex).toBe(1);
    expect((await again.read(1)).equals(Buffer.alloc(100, 1))).toBe(true);
    expect(await again.append(Buffer.from('two'))).toBe(2);
    await again.close();
    const f = frames(segmentFiles(dir)[0] as string);
    expect((f.find((x) => x.kind === 'record' && x.index === 1) as Frame).offset).toBeLessThan(8192);
  });
});

describe('recovery finishing an interrupted cut (row H) never rewrites a block that holds kept records', () => {
  it.skipIf(!hasStrace)('a TRUNCATE marker at 1 over three batches: the reopen writes nothing over the block of record 1 (strace)', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    for (let i = 0; i < 3; i++) await wal.appendMany([Buffer.alloc(100, 3 * i + 1), Buffer.alloc(100, 3 * i + 2), Buffer.alloc(100, 3 * i + 3)]);
    await wal.close();
    // The intent record truncateAfter(1) writes first (native/recovery.cc encode_truncate_marker).
    const marker = Buffer.alloc(24);
    marker.writeBigUInt64LE(0x3143555254544d54n, 0);
    marker.writeBigUInt64LE(1n, 8);
    marker.writeUInt32LE(crc32c(marker.subarray(0, 16)), 16);
    writeFileSync(join(dir, 'TRUNCATE'), marker);
    const file = segmentFiles(dir)[0] as string;
    const writes = writesOfReopen(dir, file);
    expect(writes.filter((w) => w.offset < 8192 && w.offset + w.length > 4096), JSON.stringify(writes)).toEqual([]);
    const again = await Wal.open(dir, SMALL);
    expect(again.lastIndex).toBe(1);
    expect((await again.read(1)).equals(Buffer.alloc(100, 1))).toBe(true);
    await again.close();
  });
});
