// Rows P, Q, Q', R, T, U of the decision table in native/recovery.cc: the last segment
// in format version 2, where every batch starts with a batch header carrying a
// CRC per 512-byte sector. A torn write leaves each sector of the batch as
// written or all zero (segments are pre-zeroed; disks persist whole sectors), so
// the last batch is judged exactly: a written sector that differs from its CRC
// is damage (TM_CORRUPTION naming file and offset); a batch whose differing
// sectors are all zero is torn (dropped and zeroed).
import { describe, expect, it } from 'vitest';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Wal, crc32c, type WalOptions } from '../../lib/index';
import { SMALL, createV1Log, frames, segmentFiles, segmentVersion, tempDir, type Frame, mulberry32 } from './helpers';

const BIG: WalOptions = { segmentBytes: 1024 * 1024 };


/** Payload with no zero byte (so no record sector is all zero unless a test wants one). */
function data(i: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let k = 0; k < n; k++) b[k] = ((i * 31 + k * 7) % 255) + 1;
  return b;
}

interface Built {
  dir: string;
  file: string;
  kept: number; // records before the last batch
  n: number; // all records
  batch: Frame[]; // the last batch's frames: header, records, padding
  start: number; // its offset
  end: number; // its end
}

/** A closed log: `before` one-record batches, then one last batch of `sizes` records. */
async function build(sizes: Buffer[] | number[], before = 3, options = SMALL): Promise<Built> {
  const dir = tempDir();
  const wal = await Wal.open(dir, options);
  for (let i = 1; i <= before; i++) await wal.append(data(i, 100));
  const bufs = sizes.map((s, k) => (typeof s === 'number' ? data(before + 1 + k, s) : s));
  const n = await wal.appendMany(bufs);
  await wal.close();
  const file = segmentFiles(dir).at(-1) as string;
  expect(segmentVersion(file)).toBe(2);
  const all = frames(file);
  const first = all.findIndex((x) => x.kind === 'header' && x.index === before + 1);
  expect(first).toBeGreaterThan(0);
  const batch = all.slice(first);
  const last = batch.at(-1) as Frame;
  expect(last.kind).toBe('padding');
  expect(batch.filter((x) => x.kind === 'record').length).toBe(sizes.length);
  const start = (batch[0] as Frame).offset;
  return { dir, file, kept: before, n, batch, start, end: last.offset + last.size };
}

function patch(file: string, offset: number, bytes: Buffer | number[]): void {
  const b = readFileSync(file);
  Buffer.from(bytes as number[]).copy(b, offset);
  writeFileSync(file, b);
}

function flip(file: string, at: number, xor = 0x10): void {
  patch(file, at, [(readFileSync(file)[at] ?? 0) ^ xor]);
}

async function openResult(dir: string, options = SMALL): Promise<{ code?: string; path?: string; offset?: number; message?: string; lastIndex?: number }> {
  try {
    const w = await Wal.open(dir, options);
    const lastIndex = w.lastIndex;
    await w.close();
    return { lastIndex };
  } catch (e) {
    return e as { code?: string; path?: string; offset?: number };
  }
}

/** Opening fails TM_CORRUPTION at `offset` of `file`, and changes no byte of it. */
async function expectCorruption(b: Built, offset: number, options = SMALL): Promise<void> {
  const before = readFileSync(b.file);
  const r = await openResult(b.dir, options);
  expect(r).toMatchObject({ code: 'TM_CORRUPTION', path: b.file, offset });
  expect(r.message).toContain(b.file);
  expect(readFileSync(b.file).equals(before)).toBe(true);
}

/** Opening drops the last batch (torn), zeroes it, keeps the rest, and appends go on. */
async function expectTorn(b: Built, options = SMALL): Promise<void> {
  const wal = await Wal.open(b.dir, options);
  expect(wal.lastIndex).toBe(b.kept);
  for (let i = 1; i <= b.kept; i++) expect((await wal.read(i)).equals(data(i, 100))).toBe(true);
  expect(readFileSync(b.file).subarray(b.start).every((x) => x === 0)).toBe(true);
  expect(await wal.append(Buffer.from('next'))).toBe(b.kept + 1);
  await wal.close();
  const again = await Wal.open(b.dir, options);
  expect(again.lastIndex).toBe(b.kept + 1);
  expect((await again.read(b.kept + 1)).toString()).toBe('next');
  await again.close();
}

const recs = (b: Built) => b.batch.filter((x) => x.kind === 'record');

describe('recovery decision table, format version 2 (last segment)', () => {
  it('row P: damage with a later batch after it (bad header, zeroed header, bad record) is TM_CORRUPTION at the damage', async () => {
    // Header of a middle batch damaged (its first sector written but wrong).
    let b = await build([600, 600], 5);
    let hdr = frames(b.file).find((x) => x.kind === 'header' && x.index === 3) as Frame;
    flip(b.file, hdr.offset + 20); // its record count
    await expectCorruption(b, hdr.offset);
    // The header's first sector zeroed: the later batches' own headers still verify.
    b = await build([600, 600], 5);
    hdr = frames(b.file).find((x) => x.kind === 'header' && x.index === 4) as Frame;
    patch(b.file, hdr.offset, Buffer.alloc(512));
    await expectCorruption(b, hdr.offset);
    // A later batch found only by its header (every frame between zeroed).
    b = await build([600, 600], 5);
    const rec2 = frames(b.file).find((x) => x.kind === 'record' && x.index === 2) as Frame;
    patch(b.file, rec2.offset, Buffer.alloc(rec2.size));
    await expectCorruption(b, rec2.offset);
  });

  it('row Q: the last batch header written but not verifying is TM_CORRUPTION at the batch start', async () => {
    for (const at of [0, 4, 8, 16, 20, 24, 28, 32, 36, 60]) {
      const b = await build([600, 600, 600]);
      flip(b.file, b.start + at);
      await expectCorruption(b, b.start);
    }
    // Garbage after the committed end cannot be a torn write of a version 2 batch
    // (that would be a prefix of a header that verifies, or zeros).
    const b = await build([600]);
    patch(b.file, b.end, Buffer.alloc(3000, 0xa5));
    const r = await openResult(b.dir);
    expect(r).toMatchObject({ code: 'TM_CORRUPTION', path: b.file, offset: b.end });
  });

  it('row R: damage to the last batch names the damaged frame (each case the old rules dropped as a torn tail)', async () => {
    // (1) the batch's last record (only the padding frame after it)
    let b = await build([600, 600, 600, 600]);
    let v = recs(b).at(-1) as Frame;
    flip(b.file, v.offset + 16 + 300);
    await expectCorruption(b, v.offset);

    // (2) a length field
    b = await build([600, 600, 600, 600]);
    v = recs(b)[1] as Frame;
    patch(b.file, v.offset + 4, [0xff, 0xff, 0x00, 0x00]);
    await expectCorruption(b, v.offset);

    // (3) the padding frame (its CRC, its length, its trailer)
    for (const at of [0, 4, 8]) {
      b = await build([600, 600]);
      const pad = b.batch.at(-1) as Frame;
      flip(b.file, pad.offset + at);
      await expectCorruption(b, pad.offset);
    }
    b = await build([600, 600]);
    let pad = b.batch.at(-1) as Frame;
    flip(b.file, pad.offset + pad.size - 2); // the trailer's magic: the chain still verifies, the sector does not
    const r = await openResult(b.dir);
    // The frames all verify (the trailer is a hint): the log opens whole, nothing dropped.
    expect(r).toEqual({ lastIndex: b.n });

    // (4) two records: the first is named
    b = await build([600, 600, 600, 600]);
    flip(b.file, (recs(b)[1] as Frame).offset + 100);
    flip(b.file, (recs(b)[3] as Frame).offset + 100);
    await expectCorruption(b, (recs(b)[1] as Frame).offset);

    // (5) a record whose payload holds an all-zero 512-byte sector, damaged elsewhere
    const zeros = data(9, 2048);
    zeros.fill(0, 512, 1600);
    b = await build([data(4, 300), data(5, 300), zeros, data(7, 300)]);
    v = recs(b)[2] as Frame;
    flip(b.file, v.offset + 16 + 10);
    await expectCorruption(b, v.offset);
    // ... and damage inside that zero run itself (a written sector that should be zero)
    b = await build([data(4, 300), data(5, 300), zeros, data(7, 300)]);
    v = recs(b)[2] as Frame;
    flip(b.file, v.offset + 16 + 1024);
    await expectCorruption(b, v.offset);

    // (6) the first record, in the header's own sector (checked by the header's tail CRC)
    b = await build([100, 600, 600]);
    v = recs(b)[0] as Frame;
    expect(v.offset + v.size).toBeLessThan(b.start + 512);
    flip(b.file, v.offset + 20);
    await expectCorruption(b, v.offset);

    // (7) damage plus a torn (zero) sector elsewhere: a torn write cannot change a
    // written sector, so this is corruption, not a torn tail
    b = await build([600, 600, 600, 600, 600]);
    v = recs(b)[1] as Frame;
    flip(b.file, v.offset + 40);
    const last = recs(b)[4] as Frame;
    patch(b.file, Math.ceil((last.offset + 16) / 512) * 512, Buffer.alloc(512));
    await expectCorruption(b, v.offset);

    // (8) a batch whose header spans two sectors (over 120 sectors of CRCs): damage to
    // a CRC entry in its second sector. Alone it hides no data (every frame verifies:
    // the log opens whole); with a torn sector in the batch the scan stops and the
    // written, wrong table sector is corruption at the header.
    const many = Array.from({ length: 40 }, () => 2000);
    b = await build(many, 3, BIG);
    const h = b.batch[0] as Frame;
    expect(h.size).toBeGreaterThan(512);
    flip(b.file, b.start + 600); // an entry in the header's second sector
    expect(await openResult(b.dir, BIG)).toEqual({ lastIndex: b.n });
    b = await build(many, 3, BIG);
    flip(b.file, b.start + 600);
    patch(b.file, b.start + 40 * 512, Buffer.alloc(512));
    await expectCorruption(b, b.start, BIG);
    // ... and to a record the second sector's entries cover
    b = await build(many, 3, BIG);
    v = recs(b)[30] as Frame;
    flip(b.file, v.offset + 1000);
    await expectCorruption(b, v.offset, BIG);
    pad = b.batch.at(-1) as Frame;
    expect(pad.offset).toBeGreaterThan(b.start + 120 * 512);
  });

  it('row T: a last batch whose differing sectors are all zero is torn: dropped and zeroed, appends go on', async () => {
    // (1) its first sector (the header) never reached the disk, the rest did
    let b = await build([600, 600, 600, 600]);
    patch(b.file, b.start, Buffer.alloc(512));
    await expectTorn(b);
    // (2) a sector in the middle, and (3) the padding's last sector
    b = await build([600, 600, 600, 600]);
    patch(b.file, b.start + 1024, Buffer.alloc(512));
    await expectTorn(b);
    b = await build([600, 600, 600, 600]);
    const padFrame = b.batch.at(-1) as Frame;
    patch(b.file, Math.floor((padFrame.offset - b.start) / 512) * 512 + b.start, Buffer.alloc(512)); // holds the padding's header
    await expectTorn(b);
    // (A torn write that missed only the padding's last sector (its trailer, a hint no
    // frame check covers) leaves every frame verifying: the batch is whole and kept.)
    b = await build([600, 600, 600, 600]);
    patch(b.file, b.end - 512, Buffer.alloc(512));
    expect(await openResult(b.dir)).toEqual({ lastIndex: b.n });
    // (4) a prefix of the batch only (the sectors after it zero)
    b = await build([600, 600, 600, 600]);
    patch(b.file, b.start + 1536, Buffer.alloc(b.end - b.start - 1536));
    await expectTorn(b);
    // (5) a header spanning two sectors whose second sector is unwritten (the CRCs it
    // holds are unknown: the sectors they cover count as unwritten)
    b = await build(Array.from({ length: 40 }, () => 2000), 3, BIG);
    patch(b.file, b.start + 512, Buffer.alloc(512));
    await expectTorn(b, BIG);
  });

  // Every subset of zeroed sectors (a torn write) is repaired; adding one written
  // but wrong byte anywhere in the batch makes it TM_CORRUPTION, naming a frame
  // overlapping that byte's sector (or the sector, when the frames cannot be walked
  // to it across unwritten sectors).
  for (const [name, sizes, options] of [
    ['one-sector header', [600, 100, 1500, 8, 2000, 600], SMALL],
    ['two-sector header', Array.from({ length: 40 }, (_, k) => 1000 + 97 * k), BIG],
  ] as const) {
    it(`random tears and random damage of a last batch (${name})`, async () => {
      const b = await build([...sizes], 3, options);
      const original = readFileSync(b.file);
      const sectors = (b.end - b.start) / 512;
      const seed = Number(process.env.TIDEMARK_SEED ?? Date.now() % 1_000_000);
      const rnd = mulberry32(seed);
      const all = frames(b.file);
      // Bytes the frame chain checks: each header's first sector, records, padding headers.
      const checked = (at: number) =>
        all.some((f) =>
          f.kind === 'header' ? at >= f.offset && at < f.offset + Math.min(f.size, 512) : at >= f.offset && at < f.offset + (f.kind === 'record' ? 16 + f.length : 16),
        );
      const entrySector = (k: number) => Math.floor((32 + 4 * (k - 1)) / 512);
      const failures: string[] = [];
      for (let round = 0; round < 40; round++) {
        const copy = tempDir('tidemark-tear-');
        cpSync(b.dir, copy, { recursive: true });
        const file = join(copy, basename(b.file));
        const img = Buffer.from(original);
        // A prefix tear (rounds 0..9) or a random subset of sectors.
        const zeroed: number[] = [];
        const prefix = Math.floor(rnd() * sectors);
        for (let k = 0; k < sectors; k++) if (round < 10 ? k >= prefix : rnd() < 0.3) zeroed.push(k);
        for (const k of zeroed) img.fill(0, b.start + k * 512, b.start + (k + 1) * 512);
        // Did the tear change a byte the scan checks? (If not, every frame verifies: kept whole.)
        const changed = zeroed.some((k) => {
          for (let a = b.start + k * 512; a < b.start + (k + 1) * 512; a++) if (original[a] !== 0 && checked(a)) return true;
          return false;
        });
        const damage = round % 2 === 1;
        let at = -1;
        if (damage) {
          const written = Array.from({ length: sectors }, (_, k) => k).filter((k) => !zeroed.includes(k));
          if (written.length === 0) continue;
          const pick = written[Math.floor(rnd() * written.length)] as number;
          at = b.start + pick * 512 + Math.floor(rnd() * 512);
          if (at < b.start + 4) at = b.start + 4; // (the header's CRC field: still a bad header)
          img[at] = (img[at] ?? 0) ^ (1 + Math.floor(rnd() * 255));
        }
        writeFileSync(file, img);
        const r = await openResult(copy, options);
        const where = `seed=${seed} round=${round} zeroed=[${zeroed.join(',')}] at=${at}`;
        if (!damage) {
          const want = changed ? b.kept : b.n;
          if (r.lastIndex !== want) failures.push(`${where}: expected lastIndex ${want}, got ${JSON.stringify(r)}`);
          continue;
        }
        const k = Math.floor((at - b.start) / 512);
        const sector = k * 512 + b.start;
        if (!changed && !checked(at)) {
          // Nothing the scan checks changed: the log opens whole (the damage hit no data).
          if (r.lastIndex !== b.n) failures.push(`${where}: expected lastIndex ${b.n}, got ${JSON.stringify(r)}`);
          continue;
        }
        if (zeroed.includes(0) || (k > 0 && zeroed.includes(entrySector(k)))) {
          // Documented limit: the damaged sector's CRC is in an unwritten sector; the batch is torn.
          if (r.lastIndex !== b.kept) failures.push(`${where}: expected torn (lastIndex ${b.kept}), got ${JSON.stringify(r)}`);
          continue;
        }
        const lastWritten = img.subarray(sector + 512, b.end).every((x) => x === 0);
        if (lastWritten && img[sector + 511] === 0) {
          // Rows U, Q': damage in the last written sector, which ends in zero, with only zeros
          // after it, is what a write torn at a byte leaves: the batch never finished, dropped.
          if (r.lastIndex !== b.kept) failures.push(`${where}: expected torn (row U, lastIndex ${b.kept}), got ${JSON.stringify(r)}`);
          continue;
        }
        const allowed = new Set([sector, ...all.filter((f) => f.offset < sector + 512 && f.offset + f.size > sector).map((f) => f.offset)]);
        // A flip that made a sector all zero is a tear, not damage (never happens with these payloads).
        if (r.code !== 'TM_CORRUPTION' || r.path !== file || !allowed.has(r.offset ?? -1)) {
          failures.push(`${where}: expected TM_CORRUPTION at one of ${[...allowed].join('/')}, got ${JSON.stringify({ code: r.code, offset: r.offset, lastIndex: r.lastIndex })}`);
        }
      }
      expect(failures).toEqual([]);
    }, 60_000);
  }

  it("row U: a last batch torn at a byte (the damaged sector part written, then zeros to the batch's end) is torn: dropped", async () => {
    // 2.4 KiB batch, 5 sectors (header 48 bytes): tears in sector 0 after the header, and inside every later sector.
    for (const t of [100, 511, 513, 900, 1100, 1535, 1537, 2000, 2300, 2559]) {
      const b = await build([600, 600, 600, 600]);
      if (t >= b.end - b.start) continue;
      patch(b.file, b.start + t, Buffer.alloc(b.end - b.start - t));
      const pad = b.batch.at(-1) as Frame;
      if (b.start + t >= pad.offset + 16) {
        // Only the padding's zero interior or trailer missed: every frame verifies, the batch is kept whole.
        expect(await openResult(b.dir)).toEqual({ lastIndex: b.n });
        continue;
      }
      await expectTorn(b);
    }
  });

  it('row U refuses what a byte tear cannot leave: the damaged sector ending non-zero, or written sectors after it (rows R, Q)', async () => {
    // (1) a tear inside sector 2, but the sector's last byte is not zero: R.
    let b = await build([600, 600, 600, 600]);
    patch(b.file, b.start + 1024 + 200, Buffer.alloc(b.end - b.start - 1024 - 200));
    patch(b.file, b.start + 1535, [0x55]);
    let r = await openResult(b.dir);
    expect(r).toMatchObject({ code: 'TM_CORRUPTION', path: b.file });
    // (2) sector 1 damaged (ends in zeros), sector 3 still written after it: R.
    b = await build([600, 600, 600, 600]);
    patch(b.file, b.start + 512 + 300, Buffer.alloc(212));
    r = await openResult(b.dir);
    expect(r).toMatchObject({ code: 'TM_CORRUPTION', path: b.file });
    // (3) a damaged sector followed by zeros up to the batch's last sector, which still holds the trailer.
    b = await build([600, 600, 600, 600]);
    patch(b.file, b.start + 600, Buffer.alloc(b.end - 512 - b.start - 600));
    r = await openResult(b.dir);
    expect(r).toMatchObject({ code: 'TM_CORRUPTION', path: b.file });
  });

  it("row Q': a batch header torn at a byte (its first sector part written, zeros after, nothing later in the segment) is torn", async () => {
    for (const t of [1, 5, 12, 20, 33, 47]) {
      const b = await build([600, 600, 600, 600]);
      patch(b.file, b.start + t, Buffer.alloc(b.end - b.start - t));
      await expectTorn(b);
    }
    // Refused: the same tear with a written byte later in the segment (row Q at the batch start).
    const b = await build([600, 600, 600, 600]);
    patch(b.file, b.start + 20, Buffer.alloc(b.end - b.start - 20));
    patch(b.file, b.start + 3000, [0x55]);
    await expectCorruption(b, b.start);
  });

  it('row T after a torn header: only zeros may follow the repaired end (the drop is durable and idempotent)', async () => {
    const b = await build([600, 600]);
    patch(b.file, b.start, Buffer.alloc(512));
    const w = await Wal.open(b.dir, SMALL);
    expect(w.lastIndex).toBe(b.kept);
    await w.close();
    const after = readFileSync(b.file);
    const w2 = await Wal.open(b.dir, SMALL);
    expect(w2.lastIndex).toBe(b.kept);
    await w2.close();
    expect(readFileSync(b.file).equals(after)).toBe(true);
  });
});

describe('format versions', () => {
  it('a version 1 log opens with its records, keeps appending version 1 to its last segment, and new segments are version 2', async () => {
    const dir = tempDir();
    createV1Log(dir); // 64 KiB
    const wal = await Wal.open(dir, SMALL);
    for (let i = 1; i <= 5; i++) await wal.append(data(i, 3000));
    await wal.close();
    expect(segmentFiles(dir).map(segmentVersion)).toEqual([1]);
    expect(frames(segmentFiles(dir)[0] as string).some((f) => f.kind === 'header')).toBe(false);
    const w2 = await Wal.open(dir, SMALL);
    expect(w2.lastIndex).toBe(5);
    for (let i = 6; i <= 40; i++) await w2.append(data(i, 3000));
    await w2.close();
    const versions = segmentFiles(dir).map(segmentVersion);
    expect(versions[0]).toBe(1);
    expect(versions.length).toBeGreaterThan(2);
    // Later segments are version 3 (a prepared spare's open header) or 2 (a spare kept from an older build, or one
    // held by a batch that takes several): both are the version 2 batch format.
    expect(versions.slice(1).every((v) => v === 2 || v === 3)).toBe(true);
    expect(versions.slice(1)).toContain(3);
    const w3 = await Wal.open(dir, SMALL);
    expect(w3.lastIndex).toBe(40);
    for await (const e of w3.entries()) expect(Buffer.from(e.data).equals(data(e.index, 3000))).toBe(true);
    await w3.truncateAfter(3); // back into the version 1 segment
    expect(await w3.append(data(4, 3000))).toBe(4);
    await w3.close();
    const w4 = await Wal.open(dir, SMALL);
    expect(w4.lastIndex).toBe(4);
    for await (const e of w4.entries()) expect(Buffer.from(e.data).equals(data(e.index, 3000))).toBe(true);
    await w4.close();
  });

  it('a segment of an unknown version is TM_CORRUPTION naming the version', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await wal.append(Buffer.from('x'));
    await wal.close();
    const file = segmentFiles(dir)[0] as string;
    const h = readFileSync(file).subarray(0, 32);
    h.writeUInt32LE(4, 8);
    h.writeUInt32LE(crc32c(h.subarray(4, 32)), 0);
    patch(file, 0, h);
    const r = await openResult(dir);
    expect(r).toMatchObject({ code: 'TM_CORRUPTION', path: file, offset: 0 });
    expect(r.message).toMatch(/unknown version 4 \(this build reads 1 to 3\)/);
  });

  it('row A (v3): an open header that carries a first index is TM_CORRUPTION at offset 16', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    for (let i = 1; i <= 40; i++) await wal.append(data(i, 3000));
    await wal.close();
    const file = segmentFiles(dir).find((f) => segmentVersion(f) === 3);
    if (file === undefined) throw new Error('no version 3 segment');
    const h = readFileSync(file).subarray(0, 32);
    h.writeBigUInt64LE(BigInt(Number(/(\d{20})\.wal$/.exec(file)?.[1])), 16); // the right index, but an open header has none
    h.writeUInt32LE(crc32c(h.subarray(4, 32)), 0);
    patch(file, 0, h);
    const r = await openResult(dir);
    expect(r).toMatchObject({ code: 'TM_CORRUPTION', path: file, offset: 16 });
    expect(r.message).toMatch(/open \(version 3\) segment header carries first index/);
  });

  it('row B (v2): a damaged batch header in a sealed segment is TM_CORRUPTION at it', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    for (let i = 1; i <= 40; i++) await wal.append(data(i, 3000));
    await wal.close();
    const sealed = segmentFiles(dir)[0] as string;
    const hdr = frames(sealed).filter((f) => f.kind === 'header').at(-1) as Frame;
    flip(sealed, hdr.offset + 12);
    const r = await openResult(dir);
    expect(r).toMatchObject({ code: 'TM_CORRUPTION', path: sealed, offset: hdr.offset });
  });
});
