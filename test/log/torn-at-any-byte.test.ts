// A power loss that tears a write at an arbitrary byte (issue 8, WAL defect 7):
// the last persisted sector holds new bytes followed by the segment's old zeros.
// Such a batch was never acknowledged, and the next open must drop it as torn
// (native/recovery.cc rows U and Q'), not refuse with TM_CORRUPTION; damage the
// rules cannot tell from a tear is still refused, and `repairTail` is the
// operator's explicit, reported way out (test/log/repair-tail.test.ts).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Wal } from '../../lib/index';
import { faults, openFaulty, payload, tempDir } from './helpers';

beforeEach(() => faults()('reset'));
afterEach(() => faults()('reset'));

const OPTIONS = { segmentBytes: 1024 * 1024 };

/** Four acknowledged appends, then a batch of `count` records of `length` bytes torn after `keep` bytes. */
async function tornAt(keep: number, count: number, length: number): Promise<{ dir: string; error?: string; lastIndex?: number }> {
  faults()('reset');
  const dir = tempDir();
  const wal = await openFaulty(dir, OPTIONS);
  for (let i = 1; i <= 4; i++) expect(await wal.append(payload(i))).toBe(i);
  faults()('crashAtWriteByte', 1, keep);
  const batch = Array.from({ length: count }, (_, j) => Buffer.alloc(length, j + 1));
  await expect(wal.appendMany(batch)).rejects.toMatchObject({ code: 'TM_POISONED' });
  await wal.close();
  faults()('reset');
  let again: Wal;
  try {
    again = await Wal.open(dir, OPTIONS);
  } catch (err) {
    return { dir, error: (err as Error).message };
  }
  try {
    for (let i = 1; i <= 4; i++) expect((await again.read(i)).equals(payload(i)), `record ${i}`).toBe(true);
    expect(await again.append(Buffer.from('after'))).toBe(again.lastIndex);
    return { dir, lastIndex: again.lastIndex - 1 };
  } finally {
    await again.close();
  }
}

describe('a write torn at any byte is a torn tail', () => {
  // A 12-sector batch (header 76 bytes): tears inside the header, inside sector 0
  // after the header, inside later sectors, one byte short of a sector, and inside
  // the padding frame's trailer.
  const keeps = [1, 10, 40, 75, 77, 300, 511, 513, 700, 1023, 1500, 2047, 3001, 4095, 4097, 5000, 6100, 6143];
  it.each(keeps)('a 6 KiB batch torn after %i bytes', async (keep) => {
    const r = await tornAt(keep, 3, 2000);
    expect(r.error, `open after a tear at byte ${keep}`).toBeUndefined();
    expect(r.lastIndex).toBe(4);
  });

  it('a large batch (header spanning two sectors) torn at random bytes (seeded)', async () => {
    const seed = Number(process.env.TIDEMARK_SEED ?? 1234567);
    let x = seed >>> 0 || 1;
    const failures: string[] = [];
    for (let k = 0; k < 10; k++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      const keep = 1 + (x % (80 * 1024 - 1));
      const r = await tornAt(keep, 40, 2000);
      if (r.error !== undefined || r.lastIndex !== 4) failures.push(`keep ${keep}: ${r.error ?? `lastIndex ${r.lastIndex}`}`);
    }
    expect(failures, `seed=${seed}`).toEqual([]);
  }, 60_000);
});
