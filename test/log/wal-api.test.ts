// Issue 7 §3/§4: segments that grow (a new log costs a few MiB), the read-only
// open, and the API of a modern storage library (live tail, reverse, limit,
// AbortSignal, events, Symbol.asyncDispose).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { basename, join } from 'node:path';
import { Wal, type WalEntry } from '../../lib/index';
import { rejectionOf } from '../helpers';
import { SMALL, faults, frames, openFaulty, payload, segmentFiles, tempDir } from './helpers';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 3000 && !cond(); i++) await sleep(10);
  expect(cond(), what).toBe(true);
}

async function collect(it: AsyncIterable<WalEntry>): Promise<number[]> {
  const out: number[] = [];
  for await (const { index } of it) out.push(index);
  return out;
}

/** Bytes of disk the files of `dir` really take (st_blocks). */
function diskBytes(dir: string): number {
  return readdirSync(dir).reduce((n, name) => n + statSync(join(dir, name)).blocks * 512, 0);
}

/** A snapshot of every file of `dir`: name -> sha256 and mtime. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    const file = join(dir, name);
    out[name] = `${createHash('sha256').update(readFileSync(file)).digest('hex')} ${statSync(file).mtimeMs}`;
  }
  return out;
}

describe('segments grow from 1 MiB up to segmentBytes', () => {
  it('a new log with default options costs its 1 MiB segment and a 2 MiB spare, not two 64 MiB files', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir);
    await wal.append(Buffer.from('hello'));
    await waitFor('the spare is prepared', () => existsSync(join(dir, 'spare.wal.ready')));
    await wal.close();
    const [first] = segmentFiles(dir);
    expect(statSync(first as string).size).toBe(1 * MiB);
    expect(statSync(join(dir, 'spare.wal.ready')).size).toBe(2 * MiB);
    expect(diskBytes(dir)).toBeLessThanOrEqual(3 * MiB + 64 * 1024);
  });

  it('sizes double (1, 2, 4, 4 MiB), names stay first indexes, and every record reads back after reopen', async () => {
    const dir = tempDir();
    const options = { segmentBytes: 4 * MiB };
    const wal = await Wal.open(dir, options);
    const model: Buffer[] = [];
    for (let i = 0; i < 90; i++) {
      const batch = Array.from({ length: 8 }, (_, k) => Buffer.alloc(16 * 1024 - 64, i * 8 + k + 1));
      await wal.appendMany(batch);
      model.push(...batch);
    }
    await wal.close();
    const sizes = segmentFiles(dir).map((f) => statSync(f).size);
    expect(sizes.slice(0, 4)).toEqual([1 * MiB, 2 * MiB, 4 * MiB, 4 * MiB]);
    expect(sizes.every((s) => s <= 4 * MiB)).toBe(true);
    let expected = 1;
    for (const f of segmentFiles(dir)) {
      expect(Number(basename(f).slice(0, 20))).toBe(expected);
      const records = frames(f).filter((x) => x.kind === 'record');
      expected = (records[records.length - 1]?.index ?? expected - 1) + 1;
    }
    // Reopen with another segmentBytes: each file keeps its size; the log grows on.
    const again = await Wal.open(dir, { segmentBytes: 2 * MiB });
    expect(again.lastIndex).toBe(model.length);
    let i = 0;
    for await (const { index, data } of again.entries()) {
      expect(data.equals(model[index - 1] as Buffer), `record ${index}`).toBe(true);
      i++;
    }
    expect(i).toBe(model.length);
    await again.append(Buffer.alloc(1500 * 1024, 3));
    await again.close();
    const after = segmentFiles(dir).map((f) => statSync(f).size);
    expect(after.slice(0, sizes.length)).toEqual(sizes);
  });

  it('a first record too big for the empty 1 MiB first segment replaces it with a full-size one (same name)', async () => {
    const dir = tempDir();
    const big = Buffer.alloc(3 * MiB, 9);
    const wal = await Wal.open(dir, { segmentBytes: 8 * MiB });
    expect(statSync(segmentFiles(dir)[0] as string).size).toBe(1 * MiB);
    expect(await wal.append(big)).toBe(1);
    expect(await wal.append(Buffer.from('next'))).toBe(2);
    expect(wal.stats().segments).toBe(1);
    await wal.close();
    expect(segmentFiles(dir).map((f) => [basename(f), statSync(f).size])).toEqual([['00000000000000000001.wal', 8 * MiB]]);
    const again = await Wal.open(dir, { segmentBytes: 8 * MiB });
    expect((await again.read(1)).equals(big)).toBe(true);
    expect((await again.read(2)).toString()).toBe('next');
    await again.close();
  });

  describe('through the fault layer', () => {
    beforeEach(() => faults()('reset'));
    afterEach(() => faults()('reset'));
    it('power loss while segments grow: every acknowledged record survives, segments of several sizes recover', async () => {
      for (let round = 0; round < 3; round++) {
        faults()('reset');
        const dir = tempDir();
        const wal = await openFaulty(dir, { segmentBytes: 2 * MiB });
        const acked = new Map<number, Buffer>();
        let stop = false;
        const writer = async (w: number) => {
          for (let n = 0; !stop; n++) {
            const data = payload(w * 100_000 + n, round).subarray(0, 4000);
            try {
              acked.set(await wal.append(data), Buffer.from(data));
            } catch {
              return;
            }
          }
        };
        const writers = Array.from({ length: 16 }, (_, w) => writer(w));
        await waitFor('three segments', () => segmentFiles(dir).length >= 3 + round);
        faults()('powerLoss');
        stop = true;
        await Promise.all(writers);
        await wal.close();
        faults()('reset');
        const sizes = new Set(segmentFiles(dir).map((f) => statSync(f).size));
        expect(sizes.has(1 * MiB) && sizes.has(2 * MiB), `sizes ${[...sizes].join(', ')}`).toBe(true);
        const again = await Wal.open(dir, { segmentBytes: 2 * MiB });
        for (const [i, data] of acked) expect((await again.read(i)).equals(data), `record ${i}`).toBe(true);
        await again.close();
      }
    });
  });
});

describe('Wal.open(dir, { readOnly: true })', () => {
  it('takes no lock: it opens beside a live writer, reads what is durable, and writes nothing', async () => {
    const dir = tempDir();
    const writer = await Wal.open(dir, SMALL);
    for (let i = 1; i <= 200; i++) await writer.append(payload(i));
    const reader = await Wal.open(dir, { ...SMALL, readOnly: true });
    expect(reader.readOnly).toBe(true);
    expect(reader.damage).toBeNull();
    expect([reader.firstIndex, reader.lastIndex]).toEqual([1, 200]);
    // The writer goes on while the reader reads; the reader sees its snapshot.
    const more = (async () => {
      for (let i = 201; i <= 400; i++) await writer.append(payload(i));
    })();
    let n = 0;
    for await (const { index, data } of reader.entries()) {
      expect(data.equals(payload(index)), `record ${index}`).toBe(true);
      n++;
    }
    expect(n).toBe(200);
    await more;
    for (const op of [() => reader.append(Buffer.from('x')), () => reader.appendMany([Buffer.from('x')]), () => reader.truncateAfter(5), () => reader.truncateBefore(5)]) {
      const err = await rejectionOf(op);
      expect(err.code).toBe('TM_INVALID_ARGUMENT');
      expect(err.message).toMatch(/read-only/);
    }
    // Many readers at once, and a second writer is still refused.
    const reader2 = await Wal.open(dir, { readOnly: true });
    expect(reader2.lastIndex).toBeGreaterThanOrEqual(200);
    expect((await rejectionOf(() => Wal.open(dir, SMALL))).code).toBe('TM_LOCKED');
    await Promise.all([reader.close(), reader2.close()]);
    await writer.close();
  });

  it('beside a writer appending large batches, read-only opens never take a batch in flight for damage', async () => {
    const dir = tempDir();
    const writer = await Wal.open(dir, { segmentBytes: 256 * 1024 });
    let stop = false;
    let n = 0;
    const writing = (async () => {
      while (!stop) {
        await writer.appendMany(Array.from({ length: 16 }, (_, k) => Buffer.alloc(4000, (n + k) % 251)));
        n += 16;
      }
    })();
    for (let round = 0; round < 25; round++) {
      const ro = await Wal.open(dir, { readOnly: true });
      expect(ro.damage, `round ${round}`).toBeNull();
      if (ro.lastIndex >= 1) expect((await ro.read(ro.lastIndex)).equals(Buffer.alloc(4000, (ro.lastIndex - 1) % 251))).toBe(true);
      await ro.close();
    }
    stop = true;
    await writing;
    await writer.close();
    expect(n).toBeGreaterThan(0);
  });

  it('close() releases every file of the log at once (no waiting for the garbage collector)', async () => {
    const dir = tempDir();
    const openFiles = () => readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(join('/proc/self/fd', fd)).startsWith(dir);
      } catch {
        return false;
      }
    }).length;
    const wal = await Wal.open(dir, SMALL);
    for (let i = 1; i <= 100; i++) await wal.append(payload(i));
    const ro = await Wal.open(dir, { readOnly: true });
    expect(openFiles()).toBeGreaterThan(segmentFiles(dir).length);
    await ro.close();
    await wal.close();
    expect(openFiles()).toBe(0);
  });

  it('a torn tail is reported and left in place (not even a .tmp file is removed); the next writable open drops it', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    for (let i = 1; i <= 5; i++) await wal.append(payload(i));
    await wal.appendMany(Array.from({ length: 6 }, (_, k) => Buffer.alloc(700, k + 1)));
    await wal.close();
    // Tear the last batch: keep its first sector (the header and the start of its records), zero the rest.
    const file = segmentFiles(dir)[0] as string;
    const last = frames(file).filter((f) => f.kind === 'header').pop();
    if (last === undefined) throw new Error('no batch header');
    const bytes = readFileSync(file);
    bytes.fill(0, last.offset + 512, last.offset + last.length);
    writeFileSync(file, bytes);
    writeFileSync(join(dir, 'first.wal.tmp'), 'leftover');
    const before = snapshot(dir);
    const ro = await Wal.open(dir, { ...SMALL, readOnly: true });
    expect(ro.lastIndex).toBe(5);
    expect(ro.damage).toBeNull();
    expect(ro._inspect().torn).toMatchObject({ path: file, offset: last.offset });
    expect(await collect(ro.entries())).toEqual([1, 2, 3, 4, 5]);
    await ro.close();
    expect(snapshot(dir), 'the read-only open changed nothing').toEqual(before);
    const rw = await Wal.open(dir, SMALL);
    expect(rw.lastIndex).toBe(5);
    await rw.close();
    expect(existsSync(join(dir, 'first.wal.tmp'))).toBe(false);
  });

  it('damage in a sealed segment: the writable open refuses; the read-only one reads up to it and says where it is', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    for (let i = 1; i <= 300; i++) await wal.append(payload(i, 3).subarray(0, 600));
    await wal.close();
    const files = segmentFiles(dir);
    expect(files.length).toBeGreaterThanOrEqual(4);
    const victim = files[1] as string;
    const record = frames(victim).filter((f) => f.kind === 'record' && f.length >= 100)[2];
    if (record === undefined) throw new Error('no record');
    const bytes = readFileSync(victim);
    bytes[record.offset + 20] = (bytes[record.offset + 20] as number) ^ 0x40;
    writeFileSync(victim, bytes);
    const before = snapshot(dir);
    const err = await rejectionOf(() => Wal.open(dir, SMALL));
    expect(err.code).toBe('TM_CORRUPTION');
    const ro = await Wal.open(dir, { readOnly: true });
    expect(ro.damage).toEqual({ path: victim, offset: record.offset, index: record.index, reason: expect.stringMatching(/checksum|bad record/) });
    expect(ro.lastIndex).toBe(record.index - 1);
    const seen: number[] = [];
    for await (const { index, data } of ro.entries()) {
      expect(data.equals(payload(index, 3).subarray(0, 600)), `record ${index}`).toBe(true);
      seen.push(index);
    }
    expect(seen.length).toBe(record.index - 1);
    await expect(ro.read(record.index)).rejects.toMatchObject({ code: 'TM_OUT_OF_RANGE' });
    await ro.close();
    expect(snapshot(dir)).toEqual(before);
  });

  it('a damaged header of the first segment: an empty read-only log, and the damage at offset 0', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await wal.append(Buffer.from('x'));
    await wal.close();
    const file = segmentFiles(dir)[0] as string;
    const bytes = readFileSync(file);
    bytes[8] = 99; // the version
    writeFileSync(file, bytes);
    const ro = await Wal.open(dir, { readOnly: true });
    expect(ro.damage).toMatchObject({ path: file, offset: 0, index: 1 });
    expect(ro.lastIndex).toBe(0);
    expect(await collect(ro.entries())).toEqual([]);
    await ro.close();
  });
});

describe('entries: reverse, limit, AbortSignal', () => {
  it('reverse yields newest first across segments; limit caps forward and reverse', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    for (let i = 1; i <= 400; i++) await wal.append(payload(i).subarray(0, (i * 37) % 900));
    expect(wal.stats().segments).toBeGreaterThan(2);
    const forward = await collect(wal.entries());
    expect(await collect(wal.entries({ reverse: true }))).toEqual([...forward].reverse());
    expect(await collect(wal.entries({ reverse: true, limit: 10 }))).toEqual([400, 399, 398, 397, 396, 395, 394, 393, 392, 391]);
    expect(await collect(wal.entries({ from: 100, to: 130, reverse: true, limit: 5 }))).toEqual([130, 129, 128, 127, 126]);
    expect(await collect(wal.entries({ from: 390, limit: 3 }))).toEqual([390, 391, 392]);
    expect(await collect(wal.entries({ limit: 0 }))).toEqual([]);
    expect(await collect(wal.entries({ from: 5, to: 1000 - 995, reverse: true }))).toEqual([5]);
    for await (const { index, data } of wal.entries({ reverse: true, from: 290, to: 310 })) {
      expect(data.equals(payload(index).subarray(0, (index * 37) % 900))).toBe(true);
    }
    await wal.close();
  });

  it('an aborted signal stops an iteration with signal.reason', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await wal.appendMany(Array.from({ length: 50 }, (_, i) => payload(i + 1)));
    const ac = new AbortController();
    const seen: number[] = [];
    const err = await rejectionOf(async () => {
      for await (const { index } of wal.entries({ signal: ac.signal })) {
        seen.push(index);
        if (index === 10) ac.abort(new Error('enough'));
      }
    });
    expect(err.message).toBe('enough');
    expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    const pre = AbortSignal.abort();
    expect((await rejectionOf(() => collect(wal.entries({ signal: pre, reverse: true })))).name).toBe('AbortError');
    await wal.close();
  });
});

describe('entries({ follow: true }): a live tail', () => {
  it('yields what is there, then each durable append as it is acknowledged, and ends when the log closes', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    for (let i = 1; i <= 3; i++) await wal.append(payload(i));
    const seen: Array<[number, boolean]> = [];
    const durable: number[] = [];
    const tail = (async () => {
      for await (const { index, data } of wal.entries({ from: 2, follow: true })) {
        // Yielded only once acknowledged: the append's promise has resolved (or resolves in this turn).
        seen.push([index, data.equals(payload(index))]);
      }
    })();
    for (let i = 4; i <= 60; i++) durable.push(await wal.append(payload(i)));
    await wal.appendMany(Array.from({ length: 40 }, (_, k) => payload(61 + k)));
    await waitFor('the tail caught up', () => seen.length === 99);
    await wal.close();
    await tail; // ends, no error
    expect(seen.map(([i]) => i)).toEqual(Array.from({ length: 99 }, (_, k) => k + 2));
    expect(seen.every(([, ok]) => ok)).toBe(true);
  });

  it('limit and to end a tail; an abort while it waits rejects at once; a truncateAfter below it rejects TM_OUT_OF_RANGE', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await wal.append(payload(1));
    const limited = collect(wal.entries({ follow: true, limit: 3 }));
    const bounded = collect(wal.entries({ from: 2, to: 4, follow: true }));
    for (let i = 2; i <= 5; i++) await wal.append(payload(i));
    expect(await limited).toEqual([1, 2, 3]);
    expect(await bounded).toEqual([2, 3, 4]);

    const ac = new AbortController();
    const waiting = rejectionOf(() => collect(wal.entries({ from: 6, follow: true, signal: ac.signal })));
    await sleep(20);
    ac.abort();
    expect((await waiting).name).toBe('AbortError');

    const cut = rejectionOf(async () => {
      for await (const { index } of wal.entries({ from: 1, follow: true })) {
        if (index === 5) void wal.truncateAfter(3);
      }
    });
    const err = await cut;
    expect(err.code).toBe('TM_OUT_OF_RANGE');
    expect(err.message).toMatch(/truncateAfter\(3\)/);
    expect(wal.lastIndex).toBe(3);
    // A cut and appends that bring lastIndex back where it was, in one go: a waiting tail above the cut still learns of it.
    const waitingAbove = rejectionOf(() => collect(wal.entries({ from: 4, follow: true })));
    await sleep(20);
    await Promise.all([wal.truncateAfter(2), wal.append(Buffer.from('3b')), wal.append(Buffer.from('4b'))]);
    expect(wal.lastIndex).toBe(4);
    expect((await waitingAbove).code).toBe('TM_OUT_OF_RANGE');
    await wal.truncateAfter(3);
    // A tail at or below the cut goes on with the new records.
    const after = collect(wal.entries({ from: 3, follow: true, limit: 3 }));
    await wal.append(Buffer.from('new 4'));
    await wal.append(Buffer.from('new 5'));
    expect(await after).toEqual([3, 4, 5]);
    await wal.close();
  });
});

describe('events and disposal', () => {
  beforeEach(() => faults()('reset'));
  afterEach(() => faults()('reset'));

  it("'poisoned' is emitted once with the TM_POISONED error; 'close' after close", async () => {
    const dir = tempDir();
    const wal = await openFaulty(dir, SMALL);
    await wal.append(Buffer.from('ok'));
    const poisoned: unknown[] = [];
    let closed = 0;
    wal.on('poisoned', (err) => poisoned.push(err));
    wal.on('close', () => closed++);
    faults()('failSync', constants.errno.EIO);
    const results = await Promise.allSettled([wal.append(Buffer.from('a')), wal.append(Buffer.from('b'))]);
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    await expect(wal.append(Buffer.from('c'))).rejects.toMatchObject({ code: 'TM_POISONED' });
    await sleep(0);
    expect(poisoned).toHaveLength(1);
    expect(poisoned[0]).toMatchObject({ code: 'TM_POISONED', errno: 'EIO' });
    expect(closed).toBe(0);
    await wal.close();
    await sleep(0);
    expect(closed).toBe(1);
  });

  it('a clean TM_NOSPC rejection is not poisoning', async () => {
    const dir = tempDir();
    const wal = await openFaulty(dir, SMALL);
    let poisoned = 0;
    wal.on('poisoned', () => poisoned++);
    faults()('failWrite', constants.errno.ENOSPC);
    await expect(wal.append(Buffer.from('a'))).rejects.toMatchObject({ code: 'TM_NOSPC' });
    faults()('reset');
    expect(await wal.append(Buffer.from('b'))).toBe(1);
    await wal.close();
    expect(poisoned).toBe(0);
  });

  it('Symbol.asyncDispose closes the log (await using)', async () => {
    expect(typeof Symbol.asyncDispose).toBe('symbol');
    const dir = tempDir();
    let kept: Wal | undefined;
    {
      await using wal = await Wal.open(dir, SMALL);
      await wal.append(Buffer.from('x'));
      kept = wal;
    }
    await expect(kept.append(Buffer.from('y'))).rejects.toMatchObject({ code: 'TM_CLOSED' });
    const again = await Wal.open(dir, SMALL); // the lock was released
    expect(again.lastIndex).toBe(1);
    await again[Symbol.asyncDispose]();
    await again[Symbol.asyncDispose](); // idempotent, as close()
  });
});
