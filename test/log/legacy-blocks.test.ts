// Logs written with 512-byte blocks (direct mode on a 512-byte device before
// every mode padded batches to 4 KiB): reopening one pads its committed end to
// 4 KiB by writing a padding frame on sectors of its own, never by rewriting the
// block that holds acknowledged records (promise 2). Such a log is made here by
// rewriting the last batch's padding frame of a fresh log to end on a 512-byte
// boundary (exactly what the old direct writer left). Such logs predate format
// version 2, so the log is a version 1 one (createV1Log).
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { Wal, crc32c } from '../../lib/index';
import { SMALL, createV1Log, frames, hasStrace, segmentFiles, tempDir, writesOfReopen, type Frame } from './helpers';

/** A closed log of three one-record batches whose last padding frame ends on a 512-byte boundary. */
async function legacyLog(): Promise<{ dir: string; file: string; committedEnd: number }> {
  const dir = tempDir();
  createV1Log(dir);
  const wal = await Wal.open(dir, SMALL);
  for (let i = 1; i <= 3; i++) await wal.append(Buffer.alloc(100, i));
  await wal.close();
  const file = segmentFiles(dir)[0] as string;
  const f = frames(file);
  const rec = f.find((x) => x.kind === 'record' && x.index === 3) as Frame;
  const padAt = rec.offset + rec.size;
  const committedEnd = Math.ceil((padAt + 24) / 512) * 512;
  expect(committedEnd % 4096).not.toBe(0);
  const b = readFileSync(file);
  b.fill(0, padAt, padAt + 8192);
  const pad = b.subarray(padAt, committedEnd);
  pad.writeUInt32LE((0x80000000 | pad.length) >>> 0, 4);
  pad.writeBigUInt64LE(4n, 8);
  const crc = crc32c(pad.subarray(4, 16), rec.crc);
  pad.writeUInt32LE(crc, 0);
  pad.writeUInt32LE(crc, pad.length - 8);
  pad.write('TMPD', pad.length - 4, 'latin1');
  writeFileSync(file, b);
  const g = frames(file);
  expect(g.at(-1)).toMatchObject({ kind: 'padding', offset: padAt, size: committedEnd - padAt });
  return { dir, file, committedEnd };
}

describe('a log written with 512-byte blocks', () => {
  it('reopens with its records, pads the committed end to 4 KiB after it, and keeps appending', async () => {
    const { dir, file, committedEnd } = await legacyLog();
    const before = readFileSync(file).subarray(0, committedEnd);
    const wal = await Wal.open(dir, SMALL);
    expect(wal.lastIndex).toBe(3);
    expect(readFileSync(file).subarray(0, committedEnd).equals(before)).toBe(true);
    const pad = frames(file).at(-1) as Frame;
    expect(pad).toMatchObject({ kind: 'padding', offset: committedEnd });
    expect((pad.offset + pad.size) % 4096).toBe(0);
    expect(await wal.append(Buffer.from('four'))).toBe(4);
    await wal.close();
    const again = await Wal.open(dir, SMALL);
    expect(again.lastIndex).toBe(4);
    for (let i = 1; i <= 3; i++) expect((await again.read(i)).equals(Buffer.alloc(100, i))).toBe(true);
    expect((await again.read(4)).toString()).toBe('four');
    await again.close();
  });

  it.skipIf(!hasStrace)('reopening writes nothing below the committed end (strace)', async () => {
    const { dir, file, committedEnd } = await legacyLog();
    const writes = writesOfReopen(dir, file);
    expect(writes.length).toBeGreaterThan(0); // the padding frame was written
    expect(writes.filter((w) => w.offset < committedEnd)).toEqual([]);
  });
});
