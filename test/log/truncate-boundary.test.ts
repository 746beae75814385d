// truncateAfter where the cut lands on a block boundary, in every sync mode and across
// segments. The kept records must end with a padding frame wherever the cut lies, or the
// next open takes them for an unfinished batch and drops them (recovery row E).
import { describe, expect, it } from 'vitest';
import { statfsSync } from 'node:fs';
import { Wal, type WalOptions } from '../../lib/index';
import { SMALL, frames, segmentFiles, tempDir } from './helpers';

const TMPFS_MAGIC = 0x01021994;

const rec = (i: number, len: number) => Buffer.alloc(len, (i * 37) & 0xff);

/** appendMany(lengths) with `write`, truncateAfter(k) with `cut`, reopen twice with `write`: exactly 1..k. */
async function sweep(lengths: number[], write: WalOptions, cut: WalOptions, ks: number[]): Promise<string[]> {
  const failures: string[] = [];
  const datas = lengths.map((l, i) => rec(i + 1, l));
  for (const k of ks) {
    const dir = tempDir();
    let wal = await Wal.open(dir, write);
    await wal.appendMany(datas);
    if (cut !== write) {
      await wal.close();
      wal = await Wal.open(dir, cut);
    }
    await wal.truncateAfter(k);
    expect(wal.lastIndex).toBe(k);
    await wal.close();
    for (let open = 0; open < 2; open++) {
      const again = await Wal.open(dir, write);
      try {
        if (again.lastIndex !== k) failures.push(`truncateAfter(${k}) of ${lengths.length}, open ${open}: lastIndex ${again.lastIndex}`);
        for (let i = 1; i <= Math.min(k, again.lastIndex); i++) {
          if (!(await again.read(i)).equals(datas[i - 1] as Buffer)) failures.push(`truncateAfter(${k}): record ${i} differs`);
        }
        if (open === 1) expect(await again.append(Buffer.from('next'))).toBe(again.lastIndex);
      } finally {
        await again.close();
      }
    }
  }
  return failures;
}

const all = (n: number) => Array.from({ length: n + 1 }, (_, k) => k);
// 496-byte records make 512-byte frames: every one ends on a 512-byte (O_DIRECT sector) boundary.
const SECTORS = [496, 496, 496, 496, 496, 496, 496, 496, 496, 100];
// A 4 KiB frame, then 1 KiB frames: every fourth ends on a 4 KiB boundary.
const MIXED = [4080, 1008, 1008, 1008, 1008, 1008, 100];

describe('truncateAfter on a block boundary, per sync mode', () => {
  const direct = statfsSync(tempDir()).type !== TMPFS_MAGIC;
  const modes: WalOptions[] = [{ ...SMALL, sync: 'dsync' }, { ...SMALL, sync: 'none' }, ...(direct ? [{ ...SMALL, sync: 'direct' as const }] : [])];
  it.each(modes.map((m) => [m.sync ?? 'fdatasync', m] as const))('%s', async (_name, mode) => {
    expect([...(await sweep(SECTORS, mode, mode, all(SECTORS.length))), ...(await sweep(MIXED, mode, mode, all(MIXED.length)))]).toEqual([]);
  });

  it.runIf(direct)('written with direct (small blocks), cut with fdatasync (4 KiB blocks), and the other way', async () => {
    const d: WalOptions = { ...SMALL, sync: 'direct' };
    expect([...(await sweep(SECTORS, d, SMALL, all(SECTORS.length))), ...(await sweep(SECTORS, SMALL, d, all(SECTORS.length)))]).toEqual([]);
  });
});

describe('truncateAfter on a block boundary across segments', () => {
  it('one batch of 2 KiB frames over three 64 KiB segments: a cut at every index', async () => {
    const lengths = Array.from({ length: 80 }, () => 2032);
    // The batch really spans segments, and some segment starts with a record whose predecessor
    // ended on a block boundary (a cut there empties that segment).
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await wal.appendMany(lengths.map((l, i) => rec(i + 1, l)));
    await wal.close();
    expect(segmentFiles(dir).length).toBeGreaterThanOrEqual(3);
    // (Format version 2: each segment's part of the batch starts with its batch header.)
    for (const f of segmentFiles(dir)) expect(frames(f).slice(0, 2).map((x) => x.kind)).toEqual(['header', 'record']);
    expect(await sweep(lengths, SMALL, SMALL, all(lengths.length))).toEqual([]);
  }, 60_000);
});
