import { describe, expect, it } from 'vitest';
import { Wal } from '../../lib/index';
import { SMALL, tempDir } from './helpers';

/** A Uint8Array subclass whose `length` getter lies: appendMany must store its real bytes. */
class LyingLength extends Uint8Array {
  override get length(): number {
    return 1;
  }
}

async function readAll(wal: Wal, from: number, to: number): Promise<number[][]> {
  const out: number[][] = [];
  for (let i = from; i <= to; i++) out.push([...(await wal.read(i))]);
  return out;
}

// appendMany packs small batches into one buffer (one crossing into native code,
// lib/log/wal.ts) and passes large ones element by element: both keep every
// record's exact bytes and boundaries.
describe('appendMany record boundaries', () => {
  it('mixed views (Buffer, Uint8Array, offset subarrays, empty records, a subclass) keep their exact bytes', async () => {
    const wal = await Wal.open(tempDir(), SMALL);
    const backing = new Uint8Array(64).map((_, i) => i);
    const lying = new LyingLength([9, 8, 7, 6, 5]);
    const datas: Uint8Array[] = [
      Buffer.from('alpha'),
      new Uint8Array([1, 2, 3]),
      backing.subarray(10, 17),
      new Uint8Array(0),
      Buffer.from(backing.buffer, 40, 9),
      lying,
      Buffer.alloc(0),
      Buffer.from('omega!'),
    ];
    const expected = datas.map((d) => [...new Uint8Array(d.buffer, d.byteOffset, d.byteLength)]);
    expect(await wal.appendMany(datas)).toBe(datas.length);
    expect(await readAll(wal, 1, datas.length)).toEqual(expected);
    // The packing buffer is reused: a smaller batch next must not pick up the last one's tail.
    expect(await wal.appendMany([Buffer.from('x'), Buffer.from('yz')])).toBe(datas.length + 2);
    expect(await readAll(wal, datas.length + 1, datas.length + 2)).toEqual([[120], [121, 122]]);
    await wal.close();
  });

  it('a batch above the packing limit (4 MiB of payload) is stored record by record, same bytes', async () => {
    const wal = await Wal.open(tempDir(), { segmentBytes: 16 * 1024 * 1024 });
    const datas = Array.from({ length: 5 }, (_, i) => Buffer.alloc(1024 * 1024 + i, i + 1));
    datas.push(Buffer.from('tail'));
    expect(await wal.appendMany(datas)).toBe(6);
    for (let i = 0; i < datas.length; i++) expect((await wal.read(i + 1)).equals(datas[i] as Buffer)).toBe(true);
    await wal.close();
  });

  it('a bad record after packed ones rejects the whole call, writes nothing, and leaves no bytes behind for the next call', async () => {
    const wal = await Wal.open(tempDir(), { ...SMALL, maxRecordBytes: 1000 });
    expect(await wal.appendMany([Buffer.from('a')])).toBe(1); // a 1-byte packing buffer: the next call grows it mid-batch
    const good = Array.from({ length: 40 }, (_, i) => Buffer.alloc(20 + i, i + 1));
    await expect(wal.appendMany([...good, 'nope' as unknown as Uint8Array])).rejects.toMatchObject({
      code: 'TM_INVALID_ARGUMENT',
      message: expect.stringContaining('datas[40]') as unknown,
    });
    await expect(wal.appendMany([...good, Buffer.alloc(1001)])).rejects.toMatchObject({
      code: 'TM_INVALID_ARGUMENT',
      message: expect.stringContaining('datas[40] is 1001 bytes') as unknown,
    });
    expect(wal.lastIndex).toBe(1);
    // Grows the buffer again (past what the rejected calls packed), keeping what it packed before growing.
    const next = [Buffer.from('z'), ...Array.from({ length: 60 }, (_, i) => Buffer.alloc(30 + i, 100 + i))];
    expect(await wal.appendMany(next)).toBe(1 + next.length);
    expect(await readAll(wal, 1, 1 + next.length)).toEqual([[97], ...next.map((d) => [...d])]);
    await wal.close();
  });

  it('calls issued before the previous ones resolve settle in call order, each with its own last index', async () => {
    const wal = await Wal.open(tempDir(), SMALL);
    const settled: number[] = [];
    const calls: Promise<number>[] = [];
    let expectedLast = 0;
    const expected: number[] = [];
    for (let c = 0; c < 12; c++) {
      const datas = Array.from({ length: 1 + ((c * 37) % 90) }, (_, i) => Buffer.from(`p${c}-${i}`));
      expectedLast += datas.length;
      expected.push(expectedLast);
      calls.push(
        wal.appendMany(datas).then((last) => {
          settled.push(c);
          return last;
        }),
      );
    }
    expect(await Promise.all(calls)).toEqual(expected);
    expect(settled).toEqual(Array.from({ length: 12 }, (_, c) => c));
    expect((await wal.read(expected[4] as number)).toString()).toBe(`p4-${(4 * 37) % 90}`);
    await wal.close();
  });

  it('concurrent packed batches from several callers stay whole and in call order', async () => {
    const wal = await Wal.open(tempDir(), SMALL);
    const calls = Array.from({ length: 8 }, (_, c) => Array.from({ length: 50 + c }, (_, i) => Buffer.from(`c${c}-r${i}`)));
    const lasts = await Promise.all(calls.map((datas) => wal.appendMany(datas)));
    let index = 0;
    for (let c = 0; c < calls.length; c++) {
      const datas = calls[c] as Buffer[];
      index += datas.length;
      expect(lasts[c]).toBe(index);
      expect((await wal.read(index - datas.length + 1)).toString()).toBe(`c${c}-r0`);
      expect((await wal.read(index)).toString()).toBe(`c${c}-r${datas.length - 1}`);
    }
    await wal.close();
  });
});
