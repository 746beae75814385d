import { afterEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Wal } from '../../lib/index';
import { SMALL, faults, openFaulty, payload, segmentFiles, tempDir } from './helpers';

afterEach(() => faults()('reset'));

async function fill(wal: Wal, from: number, to: number, salt = 0): Promise<void> {
  const ps: Promise<number>[] = [];
  for (let i = from; i <= to; i++) ps.push(wal.append(payload(i, salt)));
  const idx = await Promise.all(ps);
  expect(idx[0]).toBe(from);
}

async function contents(wal: Wal): Promise<Array<[number, Buffer]>> {
  const out: Array<[number, Buffer]> = [];
  for await (const e of wal.entries()) out.push([e.index, Buffer.from(e.data)]);
  return out;
}

function expectRecords(got: Array<[number, Buffer]>, first: number, last: number, salt: (i: number) => number): void {
  expect(got.map(([i]) => i)).toEqual(Array.from({ length: last - first + 1 }, (_, k) => first + k));
  for (const [i, d] of got) expect(d.equals(payload(i, salt(i))), `record ${i}`).toBe(true);
}

describe('truncateAfter', () => {
  it('drops the tail inside the last segment; the next append reuses the index; survives reopen', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await fill(wal, 1, 12);
    await wal.truncateAfter(7);
    expect(wal.lastIndex).toBe(7);
    await expect(wal.read(8)).rejects.toMatchObject({ code: 'TM_OUT_OF_RANGE' });
    await fill(wal, 8, 15, 1);
    await wal.close();
    const again = await Wal.open(dir, SMALL);
    expectRecords(await contents(again), 1, 15, (i) => (i <= 7 ? 0 : 1));
    await again.close();
  });

  it('drops whole segments above the cut', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await fill(wal, 1, 300);
    const before = segmentFiles(dir).length;
    expect(before).toBeGreaterThan(4);
    await wal.truncateAfter(40);
    expect(segmentFiles(dir).length).toBeLessThan(before);
    expect(wal.stats().segments).toBe(segmentFiles(dir).length);
    await fill(wal, 41, 120, 2);
    await wal.close();
    const again = await Wal.open(dir, SMALL);
    expectRecords(await contents(again), 1, 120, (i) => (i <= 40 ? 0 : 2));
    await again.close();
  });

  it('at the first record of a segment, and down to an empty log', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await fill(wal, 1, 200);
    const second = Number(/(\d{20})\.wal$/.exec(segmentFiles(dir)[1] as string)?.[1]);
    await wal.truncateAfter(second - 1);
    expect(wal.lastIndex).toBe(second - 1);
    await wal.truncateAfter(0);
    expect(wal.lastIndex).toBe(0);
    expect(wal.firstIndex).toBe(1);
    expect(await wal.append(Buffer.from('fresh'))).toBe(1);
    await wal.close();
    const again = await Wal.open(dir, SMALL);
    expect(again.lastIndex).toBe(1);
    expect((await again.read(1)).toString()).toBe('fresh');
    await again.close();
  });

  it('orders with appends: earlier appends are written first, later ones follow the cut', async () => {
    const wal = await Wal.open(tempDir(), SMALL);
    await fill(wal, 1, 5);
    const early = [wal.append(Buffer.from('six')), wal.append(Buffer.from('seven'))];
    const cut = wal.truncateAfter(6);
    const late = wal.append(Buffer.from('new seven'));
    expect(await Promise.all(early)).toEqual([6, 7]);
    await cut;
    expect(await late).toBe(7);
    expect((await wal.read(6)).toString()).toBe('six');
    expect((await wal.read(7)).toString()).toBe('new seven');
    await wal.close();
  });

  it('rejects indexes outside [firstIndex - 1, lastIndex] with TM_OUT_OF_RANGE; lastIndex is a no-op', async () => {
    const wal = await Wal.open(tempDir(), SMALL);
    await fill(wal, 1, 5);
    await expect(wal.truncateAfter(6)).rejects.toMatchObject({ code: 'TM_OUT_OF_RANGE' });
    await wal.truncateAfter(5);
    expect(wal.lastIndex).toBe(5);
    await wal.close();
  });

  it('is durable when it resolves: a power loss right after does not bring the tail back', async () => {
    const dir = tempDir();
    const wal = await openFaulty(dir, SMALL);
    await fill(wal, 1, 150);
    await wal.truncateAfter(20);
    faults()('powerLoss');
    await wal.close();
    faults()('reset');
    expect(existsSync(join(dir, 'TRUNCATE'))).toBe(false);
    const again = await Wal.open(dir, SMALL);
    expect(again.lastIndex).toBe(20);
    expectRecords(await contents(again), 1, 20, () => 0);
    await again.close();
  });
});

describe('truncateBefore', () => {
  it('drops whole sealed segments below the index and keeps everything at or above it', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await fill(wal, 1, 300);
    const files = segmentFiles(dir).length;
    await wal.truncateBefore(150);
    expect(wal.firstIndex).toBeGreaterThan(1);
    expect(wal.firstIndex).toBeLessThanOrEqual(150);
    expect(segmentFiles(dir).length).toBeLessThan(files);
    await expect(wal.read(wal.firstIndex - 1)).rejects.toMatchObject({ code: 'TM_OUT_OF_RANGE' });
    const first = wal.firstIndex;
    expectRecords(await contents(wal), first, 300, () => 0);
    await wal.close();
    const again = await Wal.open(dir, SMALL);
    expect(again.firstIndex).toBe(first);
    expectRecords(await contents(again), first, 300, () => 0);
    expect(await again.append(payload(301))).toBe(301);
    await again.close();
  });

  it('never removes the active segment; above lastIndex + 1 is TM_OUT_OF_RANGE', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await fill(wal, 1, 300);
    await expect(wal.truncateBefore(302)).rejects.toMatchObject({ code: 'TM_OUT_OF_RANGE' });
    await wal.truncateBefore(301);
    expect(segmentFiles(dir).length).toBe(1);
    expect(wal.lastIndex).toBe(300);
    expect((await wal.read(300)).equals(payload(300))).toBe(true);
    await wal.truncateBefore(1); // below firstIndex: nothing to do
    await wal.close();
  });

  it('is durable when it resolves (power loss right after)', async () => {
    const dir = tempDir();
    const wal = await openFaulty(dir, SMALL);
    await fill(wal, 1, 300);
    await wal.truncateBefore(200);
    const first = wal.firstIndex;
    faults()('powerLoss');
    await wal.close();
    faults()('reset');
    const again = await Wal.open(dir, SMALL);
    expect(again.firstIndex).toBe(first);
    expect(again.lastIndex).toBe(300);
    await again.close();
  });
});
