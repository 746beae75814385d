// Reads, iteration and prefix truncation running while appends rotate segments.
import { describe, expect, it } from 'vitest';
import { Wal } from '../../lib/index';
import { SMALL, tempDir } from './helpers';

describe('concurrent use', () => {
  it('reads and iterations see exact bytes while appends rotate segments and truncateBefore drops them', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    let stop = false;
    let acked = 0;
    let lowWater = 0; // highest truncateBefore target issued
    const errors: unknown[] = [];
    const appender = async () => {
      while (!stop) {
        const count = 1 + (acked % 7);
        const last = await wal.appendMany(Array.from({ length: count }, (_, k) => Buffer.alloc(count - k)));
        acked = Math.max(acked, last);
      }
    };
    // Every record is 1..7 zero bytes.
    const reader = async () => {
      while (!stop) {
        const first = wal.firstIndex;
        const last = wal.lastIndex;
        if (last < first) {
          await new Promise((r) => setImmediate(r));
          continue;
        }
        const i = first + Math.floor(Math.random() * (last - first + 1));
        try {
          const d = await wal.read(i);
          expect(d.length).toBeGreaterThan(0);
          expect(d.length).toBeLessThanOrEqual(7);
          expect(d.every((x) => x === 0)).toBe(true);
        } catch (err) {
          // Only a record below a truncateBefore issued meanwhile may vanish.
          if ((err as { code?: string }).code !== 'TM_OUT_OF_RANGE' || i >= lowWater) errors.push(err);
        }
      }
    };
    const iterator = async () => {
      while (!stop) {
        await new Promise((r) => setImmediate(r));
        const from = wal.firstIndex;
        let expected = from;
        try {
          for await (const e of wal.entries({ from })) {
            expect(e.index).toBe(expected++);
            expect(e.data.length).toBeLessThanOrEqual(7);
          }
        } catch (err) {
          if ((err as { code?: string }).code !== 'TM_OUT_OF_RANGE' || from >= lowWater) errors.push(err);
        }
      }
    };
    const truncator = async () => {
      while (!stop) {
        await new Promise((r) => setTimeout(r, 20));
        const target = Math.max(wal.firstIndex, wal.lastIndex - 200);
        lowWater = Math.max(lowWater, target);
        await wal.truncateBefore(target);
      }
    };
    const tasks = [appender(), appender(), appender(), reader(), reader(), iterator(), truncator()];
    await new Promise((r) => setTimeout(r, 1500));
    stop = true;
    await Promise.all(tasks);
    expect(errors.map((e) => String(e)).slice(0, 3)).toEqual([]);
    expect(wal.stats().segments).toBeLessThan(10);
    expect(wal.firstIndex).toBeGreaterThan(1);
    const last = wal.lastIndex;
    await wal.close();
    const again = await Wal.open(dir, SMALL);
    expect(again.lastIndex).toBe(last);
    let n = 0;
    for await (const e of again.entries()) {
      expect(e.data.every((x) => x === 0)).toBe(true);
      n++;
    }
    expect(n).toBe(last - again.firstIndex + 1);
    await again.close();
  });
});
