import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, statSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { Wal, isTidemarkError } from '../../lib/index';
import { SMALL, frames, payload, segmentFiles, tempDir } from './helpers';

const TMPFS_MAGIC = 0x01021994;

async function collect(wal: Wal, range?: { from?: number; to?: number }): Promise<Array<[number, Buffer]>> {
  const out: Array<[number, Buffer]> = [];
  for await (const e of wal.entries(range)) out.push([e.index, Buffer.from(e.data)]);
  return out;
}

describe('Wal basics', () => {
  it('an empty log has firstIndex 1 and lastIndex 0, and reads are out of range', async () => {
    const wal = await Wal.open(tempDir(), SMALL);
    expect(wal.firstIndex).toBe(1);
    expect(wal.lastIndex).toBe(0);
    await expect(wal.read(1)).rejects.toMatchObject({ code: 'TM_OUT_OF_RANGE' });
    expect(await collect(wal)).toEqual([]);
    await wal.close();
  });

  it('append returns consecutive indexes; read returns exact copies', async () => {
    const wal = await Wal.open(tempDir(), SMALL);
    const src = Buffer.from('hello');
    expect(await wal.append(src)).toBe(1);
    src.fill(0); // the record was copied at append
    expect(await wal.append(Buffer.alloc(0))).toBe(2);
    expect(await wal.append(new Uint8Array([1, 2, 3]))).toBe(3);
    expect(wal.lastIndex).toBe(3);
    expect((await wal.read(1)).toString()).toBe('hello');
    expect((await wal.read(2)).length).toBe(0);
    expect([...(await wal.read(3))]).toEqual([1, 2, 3]);
    const a = await wal.read(1);
    a[0] = 0;
    expect((await wal.read(1)).toString()).toBe('hello');
    await wal.close();
  });

  it('appendMany is one batch and returns the last index', async () => {
    const wal = await Wal.open(tempDir(), SMALL);
    await wal.append(Buffer.from('x'));
    const before = wal.stats().batches;
    const datas = Array.from({ length: 1000 }, (_, i) => Buffer.from(`r${i}`));
    expect(await wal.appendMany(datas)).toBe(1001);
    expect(wal.stats().batches - before).toBeLessThanOrEqual(2); // 2 only if the batch crossed a segment
    expect((await wal.read(1001)).toString()).toBe('r999');
    expect((await wal.read(2)).toString()).toBe('r0');
    await wal.close();
  });

  it('with the writer busy-polling (busyPollMicros 1000), appends, commands and close behave the same', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, { ...SMALL, busyPollMicros: 1000 });
    expect(wal.options.busyPollMicros).toBe(1000);
    for (let i = 1; i <= 300; i++) expect(await wal.append(payload(i, 100))).toBe(i);
    const idx = await Promise.all(Array.from({ length: 100 }, (_, i) => wal.append(payload(301 + i, 100))));
    expect(idx).toEqual(Array.from({ length: 100 }, (_, i) => 301 + i));
    await wal.truncateAfter(350);
    expect(await wal.append(payload(351, 100))).toBe(351);
    const t0 = performance.now();
    await wal.close(); // wakes a polling writer at once (never waits out the window per item)
    expect(performance.now() - t0).toBeLessThan(5000);
    const again = await Wal.open(dir, { ...SMALL, busyPollMicros: 0 });
    expect(again.options.busyPollMicros).toBe(0);
    expect(again.lastIndex).toBe(351);
    for (const i of [1, 150, 300, 301, 350, 351]) expect((await again.read(i)).equals(payload(i, 100)), `record ${i}`).toBe(true);
    await again.close();
  });

  it('concurrent appends are group-committed (fewer syncs than appends)', async () => {
    const wal = await Wal.open(tempDir(), SMALL);
    const ps = Array.from({ length: 200 }, (_, i) => wal.append(Buffer.from(`c${i}`)));
    const idx = await Promise.all(ps);
    expect(idx).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    const s = wal.stats();
    expect(s.appends).toBe(200);
    expect(s.syncs).toBe(s.batches);
    expect(s.batches).toBeLessThan(200);
    expect(s.batchSize.counts.reduce((a, b) => a + b, 0)).toBe(s.batches);
    expect(s.syncLatencyUs.counts.reduce((a, b) => a + b, 0)).toBe(s.syncs);
    await wal.close();
  });

  it('append/read/iterate across many segment rotations, then reopen and compare', async () => {
    const dir = tempDir();
    let wal = await Wal.open(dir, SMALL);
    const n = 600;
    const ps: Promise<number>[] = [];
    for (let i = 1; i <= n; i++) ps.push(wal.append(payload(i)));
    await Promise.all(ps);
    expect(wal.lastIndex).toBe(n);
    expect(wal.stats().segments).toBeGreaterThan(5);
    expect(segmentFiles(dir).length).toBe(wal.stats().segments);
    const check = async (w: Wal) => {
      const all = await collect(w);
      expect(all.length).toBe(n);
      for (const [i, d] of all) expect(d.equals(payload(i))).toBe(true);
      for (const i of [1, 2, 63, 64, 65, 300, n]) expect((await w.read(i)).equals(payload(i))).toBe(true);
      const part = await collect(w, { from: 250, to: 260 });
      expect(part.map(([i]) => i)).toEqual(Array.from({ length: 11 }, (_, k) => 250 + k));
      expect(await collect(w, { from: 5, to: 4 })).toEqual([]);
    };
    await check(wal);
    await wal.close();
    wal = await Wal.open(dir, SMALL);
    expect(wal.firstIndex).toBe(1);
    expect(wal.lastIndex).toBe(n);
    await check(wal);
    expect(await wal.append(Buffer.from('more'))).toBe(n + 1);
    await wal.close();
    for (const f of segmentFiles(dir)) expect(statSync(f).size).toBe(64 * 1024);
  });

  it('every batch starts and ends on a 4096-byte boundary (promise 2)', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    for (let i = 0; i < 20; i++) await wal.append(Buffer.alloc(100 + i, i));
    await Promise.all([wal.append(Buffer.alloc(10)), wal.append(Buffer.alloc(3000)), wal.append(Buffer.alloc(5000))]);
    await wal.close();
    let records = 0;
    for (const f of segmentFiles(dir)) {
      const fr = frames(f);
      let batchStart = true;
      for (const x of fr) {
        if (batchStart) expect(x.offset % 4096).toBe(0);
        if (x.kind === 'padding') expect((x.offset + x.size) % 4096).toBe(0);
        batchStart = x.kind === 'padding';
        if (x.kind === 'record') records++;
      }
      expect(fr.at(-1)?.kind).toBe('padding');
    }
    expect(records).toBe(23);
    expect(wal.stats().bytesWritten % 4096).toBe(0);
    expect(wal.stats().paddingBytes).toBeGreaterThan(0);
  });

  it('rejects records above maxRecordBytes and writes nothing; exactly the maximum is fine', async () => {
    const wal = await Wal.open(tempDir(), { ...SMALL, maxRecordBytes: 1000 });
    await expect(wal.append(Buffer.alloc(1001))).rejects.toMatchObject({ code: 'TM_INVALID_ARGUMENT' });
    await expect(wal.appendMany([Buffer.alloc(1), Buffer.alloc(1001)])).rejects.toMatchObject({ code: 'TM_INVALID_ARGUMENT' });
    expect(wal.lastIndex).toBe(0);
    expect(await wal.append(Buffer.alloc(1000, 7))).toBe(1);
    await wal.close();
  });

  it('the default maxRecordBytes fits a small segment, and the largest record round-trips', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    expect(wal.options.maxRecordBytes).toBe(64 * 1024 - 12 * 1024);
    const big = Buffer.alloc(wal.options.maxRecordBytes, 0xab);
    await wal.append(Buffer.from('a'));
    expect(await wal.append(big)).toBe(2);
    expect(await wal.append(big)).toBe(3);
    expect((await wal.read(3)).equals(big)).toBe(true);
    await wal.close();
    const again = await Wal.open(dir, SMALL);
    expect((await again.read(2)).equals(big)).toBe(true);
    await again.close();
  });

  it('close settles pending appends, is idempotent, and later calls reject TM_CLOSED', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    const ps = Array.from({ length: 50 }, (_, i) => wal.append(Buffer.from(`p${i}`)));
    const c1 = wal.close();
    const c2 = wal.close();
    expect(c1).toBe(c2);
    const idx = await Promise.all(ps);
    await c1;
    expect(idx.at(-1)).toBe(50);
    await expect(wal.append(Buffer.from('late'))).rejects.toMatchObject({ code: 'TM_CLOSED' });
    await expect(wal.read(1)).rejects.toMatchObject({ code: 'TM_CLOSED' });
    const again = await Wal.open(dir, SMALL);
    expect(again.lastIndex).toBe(50);
    await again.close();
  });

  it('a second open of the same directory fails TM_LOCKED until the first closes', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await expect(Wal.open(dir, SMALL)).rejects.toMatchObject({ code: 'TM_LOCKED' });
    await wal.close();
    const again = await Wal.open(dir, SMALL);
    await again.close();
  });

  it.each(['dsync', 'direct', 'none'] as const)('sync mode %s appends and reopens', async (sync) => {
    const dir = tempDir();
    if (sync === 'direct' && statfsSync(dir).type === TMPFS_MAGIC) {
      // CI machines with a tmpfs /tmp: direct must be refused there, at open.
      await expect(Wal.open(dir, { ...SMALL, sync })).rejects.toMatchObject({ code: 'TM_DIRECT_UNSUPPORTED' });
      return;
    }
    const wal = await Wal.open(dir, { ...SMALL, sync });
    await Promise.all(Array.from({ length: 300 }, (_, i) => wal.append(payload(i + 1, 3))));
    if (sync === 'none') expect(wal.stats().syncs).toBe(0);
    else expect(wal.stats().syncs).toBeGreaterThan(0);
    await wal.close();
    const again = await Wal.open(dir, SMALL);
    expect(again.lastIndex).toBe(300);
    for (const i of [1, 150, 300]) expect((await again.read(i)).equals(payload(i, 3))).toBe(true);
    await again.close();
  });

  it('a log written with direct (small blocks) continues on a block boundary when reopened with fdatasync', async () => {
    const dir = tempDir();
    if (statfsSync(dir).type === TMPFS_MAGIC) return; // no O_DIRECT on tmpfs (covered by the test below)
    let wal = await Wal.open(dir, { ...SMALL, sync: 'direct' });
    for (let i = 1; i <= 5; i++) await wal.append(payload(i, 5));
    await wal.close();
    wal = await Wal.open(dir, SMALL);
    expect(wal.lastIndex).toBe(5);
    for (let i = 6; i <= 10; i++) await wal.append(payload(i, 5));
    await wal.close();
    wal = await Wal.open(dir, { ...SMALL, sync: 'direct' });
    for (let i = 11; i <= 15; i++) await wal.append(payload(i, 5));
    await wal.close();
    wal = await Wal.open(dir, SMALL);
    expect(wal.lastIndex).toBe(15);
    for await (const e of wal.entries()) expect(Buffer.from(e.data).equals(payload(e.index, 5))).toBe(true);
    await wal.close();
    // Batches written in fdatasync mode start on 4096-byte boundaries.
    for (const f of segmentFiles(dir)) {
      const fr = frames(f);
      fr.forEach((x, k) => {
        if (x.kind === 'record' && x.index >= 6 && x.index <= 10 && fr[k - 1]?.kind === 'padding') expect(x.offset % 4096).toBe(0);
      });
    }
  });

  it('direct on tmpfs fails at open with TM_DIRECT_UNSUPPORTED', async () => {
    let shm: string;
    try {
      shm = tempDir('tidemark-', '/dev/shm');
    } catch {
      return; // no tmpfs here
    }
    await expect(Wal.open(shm, { ...SMALL, sync: 'direct' })).rejects.toMatchObject({ code: 'TM_DIRECT_UNSUPPORTED' });
    const wal = await Wal.open(shm, { ...SMALL, sync: 'dsync' });
    await wal.append(Buffer.from('ok'));
    await wal.close();
  });

  it('the next segment is prepared ahead of need and kept across close and reopen', async () => {
    const dir = tempDir();
    let wal = await Wal.open(dir, SMALL);
    await wal.append(Buffer.from('a'));
    const spare = join(dir, 'spare.wal.ready');
    for (let i = 0; i < 500 && !existsSync(spare); i++) await new Promise((r) => setTimeout(r, 10));
    await wal.close();
    expect(statSync(spare).size).toBe(64 * 1024);
    const ino = statSync(spare).ino;
    wal = await Wal.open(dir, SMALL);
    await new Promise((r) => setTimeout(r, 50));
    expect(statSync(spare).ino).toBe(ino); // reused, not re-created
    // The rotation consumes it (renamed into place) and a new one is prepared.
    while (wal.stats().segments < 2) await wal.append(Buffer.alloc(4000));
    await wal.close();
    expect(statSync(spare).ino).not.toBe(ino);
    expect(segmentFiles(dir).map((f) => statSync(f).ino)).toContain(ino);
  });

  it('segment files are zero-filled to segmentBytes at creation', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, { segmentBytes: 128 * 1024 });
    await wal.append(Buffer.from('z'));
    await wal.close();
    const [f] = segmentFiles(dir);
    expect(f).toBeDefined();
    const b = readFileSync(f as string);
    expect(b.length).toBe(128 * 1024);
    expect(b.subarray(8192).every((x) => x === 0)).toBe(true);
  });
});

describe('Wal option and argument validation', () => {
  it.each([
    [{ sync: 'fsync' }, /sync must be one of/],
    [{ segmentBytes: 1000 }, /segmentBytes must be an integer multiple of 4096/],
    [{ segmentBytes: 60 * 1024 }, /segmentBytes/],
    [{ segmentBytes: 2 ** 31 }, /segmentBytes/],
    [{ maxRecordBytes: 0 }, /maxRecordBytes must be an integer in/],
    [{ segmentBytes: 65536, maxRecordBytes: 65536 }, /maxRecordBytes/],
    [{ colour: 'red' }, /unknown option "colour"/],
  ])('rejects %j', async (opts, message) => {
    const err: unknown = await Wal.open(tempDir(), opts as never).catch((e: unknown) => e);
    expect(isTidemarkError(err, 'TM_INVALID_ARGUMENT')).toBe(true);
    expect((err as Error).message).toMatch(message);
  });

  it('rejects bad arguments with TM_INVALID_ARGUMENT', async () => {
    const wal = await Wal.open(tempDir(), SMALL);
    await expect(wal.append('text' as never)).rejects.toMatchObject({ code: 'TM_INVALID_ARGUMENT' });
    await expect(wal.appendMany([] as never)).rejects.toMatchObject({ code: 'TM_INVALID_ARGUMENT' });
    await expect(wal.appendMany([Buffer.from('a'), 3] as never)).rejects.toThrow(/datas\[1\]/);
    await expect(wal.read(1.5)).rejects.toMatchObject({ code: 'TM_INVALID_ARGUMENT' });
    await expect(wal.truncateAfter(-1)).rejects.toMatchObject({ code: 'TM_INVALID_ARGUMENT' });
    expect(() => wal.entries({ from: 'a' } as never)).toThrow(/from must be/);
    expect(() => wal.entries({ to: 5 })).toThrow(/TM_OUT_OF_RANGE/);
    await wal.close();
  });
});

