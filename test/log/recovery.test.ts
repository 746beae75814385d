// One test per row of the torn-versus-corrupt decision table in native/recovery.cc.
// Rows E, E', F, G, G' are the rules of version 1 segments (no batch headers):
// their tests build a version 1 log (createV1Log: a 1 MiB v1 first segment that
// the writer keeps appending to in version 1). Rows F and G run on both versions
// (on version 2 the same damage is row P). Version 2 rows: recovery-v2.test.ts.
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Wal, crc32c } from '../../lib/index';
import { SMALL, createV1Log, frames, payload, segmentFiles, segmentVersion, tempDir, type Frame } from './helpers';

/** A directory holding an empty version 1 log (one 1 MiB segment): appends stay version 1. */
function v1Dir(): string {
  const dir = tempDir();
  createV1Log(dir, 1024 * 1024);
  return dir;
}

/** A closed log with `n` records, appended one batch per `batch` records (format version 1 when `v1`). */
async function makeLog(n: number, batch = 1, options = SMALL, v1 = false): Promise<string> {
  const dir = v1 ? v1Dir() : tempDir();
  const wal = await Wal.open(dir, options);
  for (let i = 1; i <= n; i += batch) {
    const datas = [];
    for (let k = i; k < Math.min(n + 1, i + batch); k++) datas.push(payload(k));
    await wal.appendMany(datas);
  }
  await wal.close();
  if (v1) expect(segmentFiles(dir).map(segmentVersion)).toEqual([1]);
  return dir;
}

function patch(file: string, offset: number, bytes: Buffer | number[]): void {
  const b = readFileSync(file);
  Buffer.from(bytes as number[]).copy(b, offset);
  writeFileSync(file, b);
}

async function expectCorruption(dir: string, file: string, offset: number): Promise<void> {
  const err = (await Wal.open(dir, SMALL).then(
    async (w) => {
      await w.close();
      return undefined;
    },
    (e: unknown) => e,
  )) as { code?: string; path?: string; offset?: number; message?: string } | undefined;
  expect(err?.code).toBe('TM_CORRUPTION');
  expect(err?.path).toBe(file);
  expect(err?.offset).toBe(offset);
  expect(err?.message).toContain(file);
}

async function expectIntact(dir: string, n: number): Promise<Wal> {
  const wal = await Wal.open(dir, SMALL);
  expect(wal.lastIndex).toBe(n);
  for await (const e of wal.entries()) expect(Buffer.from(e.data).equals(payload(e.index))).toBe(true);
  return wal;
}

const records = (f: Frame[]) => f.filter((x) => x.kind === 'record');

/** The TRUNCATE intent file of truncateAfter(last) (native/recovery.h). */
function truncateMarker(last: number): Buffer {
  const marker = Buffer.alloc(24);
  marker.writeBigUInt64LE(0x3143555254544d54n, 0);
  marker.writeBigUInt64LE(BigInt(last), 8);
  marker.writeUInt32LE(crc32c(marker.subarray(0, 16)), 16);
  return marker;
}

describe('recovery decision table', () => {
  it('row A: a bad segment header (zero, magic, CRC, index) is TM_CORRUPTION at its offset', async () => {
    // Zeroed header; a flipped magic byte; a flipped nonce byte (XOR, never a write of a
    // fixed value: the nonce is random, and a byte already equal to it would damage nothing).
    for (const [at, damage, offset] of [
      [0, (h: Buffer) => Buffer.alloc(h.length), 0],
      [4, (h: Buffer) => Buffer.from([(h[0] ?? 0) ^ 0x58]), 0],
      [24, (h: Buffer) => Buffer.from([(h[0] ?? 0) ^ 0x01]), 0],
    ] as const) {
      const dir = await makeLog(20);
      const [file] = segmentFiles(dir) as [string];
      const at0 = readFileSync(file).subarray(at, at === 0 ? 32 : at + 1);
      patch(file, at, damage(Buffer.from(at0)));
      await expectCorruption(dir, file, offset);
    }
    // A header that verifies but names another first index.
    const dir = await makeLog(20);
    const [file] = segmentFiles(dir) as [string];
    const h = readFileSync(file).subarray(0, 32);
    h.writeBigUInt64LE(7n, 16);
    h.writeUInt32LE(crc32c(h.subarray(4, 32)), 0);
    patch(file, 0, h);
    await expectCorruption(dir, file, 16);
  });

  it('row B: a bad record in a sealed segment is TM_CORRUPTION, even at its end', async () => {
    const dir = await makeLog(300);
    const files = segmentFiles(dir);
    expect(files.length).toBeGreaterThan(2);
    const sealed = files[0] as string;
    const recs = records(frames(sealed));
    const victim = recs[Math.floor(recs.length / 2)] as Frame;
    patch(sealed, victim.offset + 4, [0xff]); // length field
    await expectCorruption(dir, sealed, victim.offset);

    // The last batch of a sealed segment: no valid data after it in the file.
    const dir2 = await makeLog(300);
    const sealed2 = segmentFiles(dir2)[0] as string;
    const last = records(frames(sealed2)).at(-1) as Frame;
    patch(sealed2, last.offset, [(readFileSync(sealed2)[last.offset] ?? 0) ^ 0x01]); // its CRC field
    await expectCorruption(dir2, sealed2, last.offset);
  });

  it('row C: an index gap between segments is TM_CORRUPTION naming the later segment', async () => {
    const dir = await makeLog(300);
    const files = segmentFiles(dir);
    expect(files.length).toBeGreaterThan(2);
    unlinkSync(files[1] as string);
    await expectCorruption(dir, files[2] as string, 4096);
  });

  it('row D: a clean log reopens unchanged', async () => {
    const dir = await makeLog(120, 7);
    const before = segmentFiles(dir).map((f) => readFileSync(f));
    const wal = await expectIntact(dir, 120);
    await wal.close();
    const after = segmentFiles(dir).map((f) => readFileSync(f));
    expect(after.length).toBe(before.length);
    after.forEach((b, i) => expect(b.equals(before[i] as Buffer)).toBe(true));
  });

  it('row E (v1): a torn tail (garbage, an unfinished batch, a half record) is dropped and zeroed; appends go on', async () => {
    // (1) garbage after the committed end
    const dir = await makeLog(30, 1, SMALL, true);
    const file = segmentFiles(dir).at(-1) as string;
    const end = (frames(file).at(-1) as Frame).offset + (frames(file).at(-1) as Frame).size;
    patch(file, end, Buffer.alloc(3000, 0xa5));
    let wal = await expectIntact(dir, 30);
    expect(readFileSync(file).subarray(end, end + 8192).every((x) => x === 0)).toBe(true);
    expect(await wal.append(payload(31))).toBe(31);
    await wal.close();
    wal = await expectIntact(dir, 31);
    await wal.close();

    // (2) a complete, valid record after the last padding, but no padding: its batch never finished
    const dir2 = await makeLog(30, 1, SMALL, true);
    const file2 = segmentFiles(dir2).at(-1) as string;
    const pad = frames(file2).at(-1) as Frame;
    const rec = Buffer.alloc(24);
    rec.writeUInt32LE(5, 4);
    rec.writeBigUInt64LE(31n, 8);
    rec.write('hello', 16);
    rec.writeUInt32LE(crc32c(rec.subarray(4, 21), pad.crc), 0);
    patch(file2, pad.offset + pad.size, rec);
    expect(records(frames(file2)).at(-1)?.index).toBe(31); // it does verify
    wal = await expectIntact(dir2, 30);
    await wal.close();
    expect(records(frames(file2)).at(-1)?.index).toBe(30);

    // (3) a record cut short by a torn write
    const dir3 = await makeLog(30, 1, SMALL, true);
    const file3 = segmentFiles(dir3).at(-1) as string;
    const pad3 = frames(file3).at(-1) as Frame;
    const half = Buffer.alloc(16 + 100, 0x11);
    half.writeUInt32LE(0x12345678, 0);
    half.writeUInt32LE(4000, 4);
    half.writeBigUInt64LE(31n, 8);
    patch(file3, pad3.offset + pad3.size, half);
    wal = await expectIntact(dir3, 30);
    expect(await wal.append(Buffer.from('after'))).toBe(31);
    await wal.close();

    // (4) damage inside the last batch that also holds an all-zero sector (one a torn
    // write may not have persisted): indistinguishable from a torn write, the batch
    // goes (the same damage in a batch with no such sector is row E')
    const dir4 = await makeLog(45, 15, SMALL, true);
    const file4 = segmentFiles(dir4).at(-1) as string;
    const inLast = records(frames(file4)).find((x) => x.index === 40 && x.length > 0) as Frame;
    const big = records(frames(file4)).find((x) => x.index > 40 && x.length >= 1024) as Frame;
    patch(file4, inLast.offset + 16, [(readFileSync(file4)[inLast.offset + 16] ?? 0) ^ 1]);
    patch(file4, Math.ceil((big.offset + 16) / 512) * 512, Buffer.alloc(512));
    wal = await expectIntact(dir4, 30);
    await wal.close();
  });

  it("row E' (v1): a bad record inside a complete last batch (no all-zero sector) is TM_CORRUPTION; a torn one is row E", async () => {
    // Last batch: records 31..45 (sizes cycle 0..5000 bytes, no zero runs), then its padding.
    const lastBatch = async (): Promise<{ dir: string; file: string; batch: Frame[] }> => {
      const dir = await makeLog(45, 15, SMALL, true);
      const file = segmentFiles(dir).at(-1) as string;
      const all = frames(file);
      const first = all.findIndex((x) => x.kind === 'record' && x.index === 31);
      expect(first).toBeGreaterThan(0);
      const batch = all.slice(first);
      expect(batch.at(-1)?.kind).toBe('padding');
      expect(batch.filter((x) => x.kind === 'record').map((x) => x.index)).toEqual(Array.from({ length: 15 }, (_, k) => 31 + k));
      return { dir, file, batch };
    };
    const flip = (file: string, at: number): void => patch(file, at, [(readFileSync(file)[at] ?? 0) ^ 0x10]);
    const rec = (batch: Frame[], i: number): Frame => batch.find((x) => x.kind === 'record' && x.index === i) as Frame;

    // (1) one flipped payload bit in a middle record: the later records and the padding
    // chain from its stored CRC, and every sector is written: corruption, not a torn tail
    let { dir, file, batch } = await lastBatch();
    let victim = rec(batch, 40);
    expect(victim.length).toBeGreaterThan(0);
    flip(file, victim.offset + 16 + Math.floor(victim.length / 2));
    const before = readFileSync(file);
    await expectCorruption(dir, file, victim.offset);
    expect(readFileSync(file).equals(before)).toBe(true); // nothing dropped or zeroed

    // (2) damage to the first record's header (its index): still corruption at its offset
    ({ dir, file, batch } = await lastBatch());
    victim = rec(batch, 31);
    flip(file, victim.offset + 8);
    await expectCorruption(dir, file, victim.offset);

    // (3) a torn write of that batch: one 512-byte sector inside record 41 never reached
    // the (pre-zeroed) disk. Every other frame still verifies, but the zero sector
    // makes it a torn tail: the batch is dropped, bytes zeroed, appends go on
    ({ dir, file, batch } = await lastBatch());
    victim = rec(batch, 41);
    expect(victim.length).toBeGreaterThanOrEqual(1024);
    const sector = Math.ceil((victim.offset + 16) / 512) * 512;
    expect(sector + 512).toBeLessThanOrEqual(victim.offset + 16 + victim.length);
    patch(file, sector, Buffer.alloc(512));
    const start = batch[0] as Frame;
    let wal = await expectIntact(dir, 30);
    expect(readFileSync(file).subarray(start.offset).every((x) => x === 0)).toBe(true);
    expect(await wal.append(payload(31))).toBe(31);
    await wal.close();
    wal = await expectIntact(dir, 31);
    await wal.close();

    // (4) the documented limit: a complete batch whose record payload holds a whole
    // 512-byte sector of zeros cannot be told from a torn one; damage in it is row E
    const dir5 = v1Dir();
    const w5 = await Wal.open(dir5, SMALL);
    await w5.append(Buffer.from('kept'));
    const zeros = Buffer.alloc(2048, 7);
    zeros.fill(0, 512, 1600); // holds at least one whole, aligned zero sector
    await w5.appendMany([Buffer.alloc(300, 1), Buffer.alloc(300, 2), zeros, Buffer.alloc(300, 3)]);
    await w5.close();
    const file5 = segmentFiles(dir5).at(-1) as string;
    const v5 = records(frames(file5)).find((x) => x.index === 3) as Frame;
    flip(file5, v5.offset + 16 + 10);
    wal = await Wal.open(dir5, SMALL);
    expect(wal.lastIndex).toBe(1);
    await wal.close();
  });

  it.each([true, false])('row F (v1 %s; on v2 row P): a damaged padding frame followed by a later batch is TM_CORRUPTION', async (v1) => {
    for (const field of [0, 8]) {
      // field 0: its CRC (the next batch chains from the CRC its header should have);
      // field 8: its next-index (the next batch chains from its stored CRC).
      const dir = await makeLog(30, 1, SMALL, v1);
      const file = segmentFiles(dir).at(-1) as string;
      const pads = frames(file).filter((x) => x.kind === 'padding');
      expect(pads.length).toBeGreaterThan(2);
      const victim = pads[pads.length - 2] as Frame;
      patch(file, victim.offset + field, [(readFileSync(file)[victim.offset + field] ?? 0) ^ 0x10]);
      await expectCorruption(dir, file, victim.offset);
    }
  });

  it.each([true, false])('row G (v1 %s; on v2 row P): a bad or zeroed record with valid batches after it is TM_CORRUPTION', async (v1) => {
    // Length field smashed: the next frame cannot be found from it.
    const dir = await makeLog(30, 1, SMALL, v1);
    const file = segmentFiles(dir).at(-1) as string;
    const recs = records(frames(file));
    expect(recs.length).toBeGreaterThan(2);
    const victim = recs[Math.floor(recs.length / 2)] as Frame;
    patch(file, victim.offset + 4, [0xff, 0xff, 0xff, 0x7f]);
    await expectCorruption(dir, file, victim.offset);

    // A whole block zeroed in the middle of the log.
    const dir2 = await makeLog(30, 1, SMALL, v1);
    const file2 = segmentFiles(dir2).at(-1) as string;
    const recs2 = records(frames(file2));
    const victim2 = recs2[Math.floor(recs2.length / 2)] as Frame;
    patch(file2, victim2.offset, Buffer.alloc(victim2.size));
    await expectCorruption(dir2, file2, victim2.offset);
  });

  it('row H: an interrupted truncateAfter (TRUNCATE marker) is finished at open', async () => {
    const dir = await makeLog(300);
    const n = segmentFiles(dir).length;
    expect(n).toBeGreaterThan(3);
    const marker = Buffer.alloc(24);
    marker.writeBigUInt64LE(0x3143555254544d54n, 0);
    marker.writeBigUInt64LE(100n, 8);
    marker.writeUInt32LE(crc32c(marker.subarray(0, 16)), 16);
    expect(marker.equals(truncateMarker(100))).toBe(true);
    writeFileSync(join(dir, 'TRUNCATE'), marker);
    const wal = await Wal.open(dir, SMALL);
    expect(wal.lastIndex).toBe(100);
    expect(existsSync(join(dir, 'TRUNCATE'))).toBe(false);
    expect(segmentFiles(dir).length).toBeLessThan(n);
    for await (const e of wal.entries()) expect(Buffer.from(e.data).equals(payload(e.index))).toBe(true);
    expect(await wal.append(Buffer.from('next'))).toBe(101);
    await wal.close();
    const again = await Wal.open(dir, SMALL);
    expect(again.lastIndex).toBe(101);
    expect((await again.read(101)).toString()).toBe('next');
    await again.close();

    // The cut on a block boundary inside a batch: record 1's frame (16 + 4080 bytes) ends at
    // 8192 and record 2 follows in the same batch. The kept record needs a padding frame
    // after it, or the next open drops it as an unfinished batch.
    const dir3 = tempDir();
    const w3 = await Wal.open(dir3, SMALL);
    await w3.appendMany([Buffer.alloc(4080, 1), Buffer.alloc(100, 2)]);
    await w3.close();
    writeFileSync(join(dir3, 'TRUNCATE'), truncateMarker(1));
    for (let open = 0; open < 2; open++) {
      const w = await Wal.open(dir3, SMALL);
      expect(w.lastIndex, `open ${open}`).toBe(1);
      expect((await w.read(1)).equals(Buffer.alloc(4080, 1))).toBe(true);
      await w.close();
    }

    // A marker that does not verify was never durable: nothing is cut.
    const dir2 = await makeLog(50);
    writeFileSync(join(dir2, 'TRUNCATE'), Buffer.alloc(24, 1));
    const w2 = await expectIntact(dir2, 50);
    expect(existsSync(join(dir2, 'TRUNCATE'))).toBe(false);
    await w2.close();
  });
  it("row H' (v1 layout): a torn cut under a TRUNCATE marker (new padding on disk, stale batches after it) keeps records <= i", async () => {
    // Batches [4080, 100], [100], [100]: record 1 ends on the block boundary 8192 inside the first.
    const dir = v1Dir();
    const wal = await Wal.open(dir, SMALL);
    await wal.appendMany([Buffer.alloc(4080, 1), Buffer.alloc(100, 2)]);
    await wal.append(Buffer.alloc(100, 3));
    await wal.append(Buffer.alloc(100, 4));
    await wal.close();
    const file = segmentFiles(dir)[0] as string;
    const before = frames(file);
    const rec1 = before[0] as Frame;
    expect(rec1.offset + rec1.size).toBe(8192);
    // truncateAfter(1) got as far as writing its padding frame at 8192 (one block), but
    // not the zeros over the later batches: those still verify from their own chain.
    const pad = Buffer.alloc(4096);
    pad.writeUInt32LE((0x80000000 | 4096) >>> 0, 4);
    pad.writeBigUInt64LE(2n, 8);
    const crc = crc32c(pad.subarray(4, 16), rec1.crc);
    pad.writeUInt32LE(crc, 0);
    pad.writeUInt32LE(crc, 4096 - 8);
    pad.writeUInt32LE(0x44504d54, 4096 - 4);
    patch(file, 8192, pad);
    writeFileSync(join(dir, 'TRUNCATE'), truncateMarker(1));
    for (let open = 0; open < 2; open++) {
      const w = await Wal.open(dir, SMALL);
      expect(w.lastIndex, `open ${open}`).toBe(1);
      expect((await w.read(1)).equals(Buffer.alloc(4080, 1))).toBe(true);
      if (open === 0) expect(existsSync(join(dir, 'TRUNCATE'))).toBe(false);
      await w.close();
    }
    // The cut's padding header did not reach the disk but its later sectors did: record 3
    // (at the cut, 8192) is damaged and the kept records 1, 2 follow no padding frame (they
    // are the segment's only batch). They are kept, padded, and readable.
    const dir3 = v1Dir();
    const w3 = await Wal.open(dir3, SMALL);
    await w3.appendMany([Buffer.alloc(2032, 1), Buffer.alloc(2032, 2), Buffer.alloc(2032, 3), Buffer.alloc(100, 4)]);
    await w3.close();
    const file3 = segmentFiles(dir3)[0] as string;
    expect(records(frames(file3)).map((f) => f.offset)).toEqual([4096, 6144, 8192, 10240]);
    patch(file3, 8192 + 512, Buffer.alloc(4096 - 512));
    writeFileSync(join(dir3, 'TRUNCATE'), truncateMarker(2));
    for (let open = 0; open < 2; open++) {
      const w = await Wal.open(dir3, SMALL);
      expect(w.lastIndex, `open ${open}`).toBe(2);
      expect((await w.read(1)).equals(Buffer.alloc(2032, 1))).toBe(true);
      expect((await w.read(2)).equals(Buffer.alloc(2032, 2))).toBe(true);
      await w.close();
    }

    // Without the marker the same bytes are corruption (row G): the marker is what says
    // that the records above 1 were being dropped.
    const dir2 = v1Dir();
    const w2 = await Wal.open(dir2, SMALL);
    await w2.appendMany([Buffer.alloc(4080, 1), Buffer.alloc(100, 2)]);
    await w2.append(Buffer.alloc(100, 3));
    await w2.append(Buffer.alloc(100, 4));
    await w2.close();
    const file2 = segmentFiles(dir2)[0] as string;
    const rec1b = frames(file2)[0] as Frame;
    const pad2 = Buffer.from(pad);
    const crc2 = crc32c(pad2.subarray(4, 16), rec1b.crc);
    pad2.writeUInt32LE(crc2, 0);
    pad2.writeUInt32LE(crc2, 4096 - 8);
    patch(file2, 8192, pad2);
    await expectCorruption(dir2, file2, 12288);
  });
});
