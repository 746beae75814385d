/**
 * Bad input gets a clear, typed error and changes nothing (STYLE.md §5, DESIGN.md promise 7
 * applied to the log API): every option of Wal.open and every argument of every call is
 * checked, the error is TM_INVALID_ARGUMENT (or TM_OUT_OF_RANGE for an index outside the
 * log) with a message naming what was wrong and what is allowed, and after each bad call
 * the log still works and holds exactly what it held. Then damaged files on disk: open
 * refuses them with TM_CORRUPTION naming the file and offset, and modifies nothing.
 */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Wal } from '../../lib/index';
import { Rng, errorCode, recordBytes, rejectionOf, tmpDir } from '../helpers';

const SEED = 0xbad1;
const SEGMENT_BYTES = 64 * 1024;

function expectError(err: Error & { code?: string }, code: string, ...mustMention: RegExp[]): void {
  expect(err.name, err.message).toBe('TidemarkError');
  expect(errorCode(err), err.message).toBe(code);
  for (const re of mustMention) expect(err.message, `the message should mention ${String(re)}`).toMatch(re);
}

/** The log holds exactly `model` (index -> bytes) from `first`. */
async function expectContents(wal: Wal, first: number, model: Buffer[]): Promise<void> {
  expect(wal.firstIndex).toBe(first);
  expect(wal.lastIndex).toBe(first + model.length - 1);
  let i = 0;
  for await (const { index, data } of wal.entries()) {
    expect(index).toBe(first + i);
    expect(data.equals(model[i] as Buffer), `record ${index}`).toBe(true);
    i++;
  }
  expect(i).toBe(model.length);
}

describe('Wal.open rejects bad options with TM_INVALID_ARGUMENT, before touching the disk', () => {
  const cases: [string, unknown, RegExp[]][] = [
    ["sync: 'fsync'", { sync: 'fsync' }, [/sync/, /'fdatasync'/, /'dsync'/, /'direct'/, /'none'/, /fsync/]],
    ["sync: 'DSYNC' (case matters)", { sync: 'DSYNC' }, [/sync/, /'dsync'/]],
    ['sync: 1', { sync: 1 }, [/sync/, /'fdatasync'/]],
    ['sync: null', { sync: null }, [/sync/, /'fdatasync'/]],
    ['segmentBytes: 4096 (too small)', { segmentBytes: 4096 }, [/segmentBytes/, /65536|64 KiB/, /4096/]],
    ['segmentBytes: 0', { segmentBytes: 0 }, [/segmentBytes/, /65536|64 KiB/]],
    ['segmentBytes: -65536', { segmentBytes: -65536 }, [/segmentBytes/, /-65536/]],
    ['segmentBytes: 65537 (not a multiple of 4096)', { segmentBytes: 65537 }, [/segmentBytes/, /multiple of 4096/]],
    ['segmentBytes: 69632.5 (not an integer)', { segmentBytes: 69632.5 }, [/segmentBytes/, /integer/]],
    ['segmentBytes: NaN', { segmentBytes: Number.NaN }, [/segmentBytes/, /NaN/]],
    ['segmentBytes: Infinity', { segmentBytes: Number.POSITIVE_INFINITY }, [/segmentBytes/]],
    ["segmentBytes: '65536' (a string)", { segmentBytes: '65536' }, [/segmentBytes/]],
    ['segmentBytes: 2 GiB (too large)', { segmentBytes: 2 * 1024 * 1024 * 1024 }, [/segmentBytes/, /1073741824|1 GiB/]],
    ['maxRecordBytes: 0', { maxRecordBytes: 0 }, [/maxRecordBytes/]],
    ['maxRecordBytes: -1', { maxRecordBytes: -1 }, [/maxRecordBytes/]],
    ['maxRecordBytes: 1.5', { maxRecordBytes: 1.5 }, [/maxRecordBytes/, /integer/]],
    ['maxRecordBytes: NaN', { maxRecordBytes: Number.NaN }, [/maxRecordBytes/]],
    ['maxRecordBytes larger than a segment can hold', { segmentBytes: SEGMENT_BYTES, maxRecordBytes: SEGMENT_BYTES }, [/maxRecordBytes/, /segmentBytes/]],
    ["maxRecordBytes: '100'", { maxRecordBytes: '100' }, [/maxRecordBytes/]],
    ['busyPollMicros: -1', { busyPollMicros: -1 }, [/busyPollMicros/, /\[0, 1000\]/]],
    ['busyPollMicros: 1001', { busyPollMicros: 1001 }, [/busyPollMicros/, /\[0, 1000\]/]],
    ['busyPollMicros: 2.5', { busyPollMicros: 2.5 }, [/busyPollMicros/, /integer/]],
    ["busyPollMicros: '50'", { busyPollMicros: '50' }, [/busyPollMicros/]],
    ['unknown option syncMode', { syncMode: 'none' }, [/syncMode/, /sync, segmentBytes, maxRecordBytes, busyPollMicros, createIfMissing, errorIfExists, readOnly, repairTail/]],
    ["createIfMissing: 'yes'", { createIfMissing: 'yes' }, [/createIfMissing/, /true or false/, /"yes"/]],
    ['createIfMissing: 0', { createIfMissing: 0 }, [/createIfMissing/, /true or false/]],
    ['errorIfExists: 1', { errorIfExists: 1 }, [/errorIfExists/, /true or false/]],
    ['errorIfExists: null', { errorIfExists: null }, [/errorIfExists/, /null/]],
    ["readOnly: 'true'", { readOnly: 'true' }, [/readOnly/, /true or false/]],
    ['readOnly with errorIfExists', { readOnly: true, errorIfExists: true }, [/readOnly/, /errorIfExists/]],
    ['readOnly on a missing directory', { readOnly: true }, [/no log/, /readOnly never creates/]],
    ['createIfMissing: false on a missing directory', { createIfMissing: false }, [/no log/, /createIfMissing is false/]],
    ["repairTail: 'yes'", { repairTail: 'yes' }, [/repairTail/, /boolean/]],
    ['repairTail: 1', { repairTail: 1 }, [/repairTail/, /boolean/]],
    ['readOnly with repairTail', { readOnly: true, repairTail: true }, [/readOnly/, /repairTail/]],
    ['unknown option segmentSize', { segmentSize: 65536 }, [/segmentSize/]],
    ["options: 'fdatasync' (a string)", 'fdatasync', [/options/, /object/]],
    ['options: 42', 42, [/options/, /object/]],
    ['options: null', null, [/options/, /object/]],
    ['options: []', [], [/options/, /object/]],
  ];
  it.each(cases)('%s', async (_label, options, mentions) => {
    const parent = await tmpDir('bad-options');
    const dir = join(parent, 'log');
    const err = await rejectionOf(() => Wal.open(dir, options as Parameters<typeof Wal.open>[1]));
    expectError(err, 'TM_INVALID_ARGUMENT', ...mentions);
    expect(existsSync(dir), 'a rejected open must not create the directory').toBe(false);
  });

  it('the bounds themselves are accepted: segmentBytes 64 KiB, maxRecordBytes 1 and segmentBytes - 12 KiB, busyPollMicros 0 and 1000', async () => {
    const parent = await tmpDir('good-options');
    const good = [
      { segmentBytes: 65536 },
      { segmentBytes: 65536, maxRecordBytes: 1 },
      { segmentBytes: 65536, maxRecordBytes: 65536 - 12 * 1024 },
      { busyPollMicros: 0 },
      { busyPollMicros: 1000 },
    ];
    for (const [i, options] of good.entries()) {
      const wal = await Wal.open(join(parent, String(i)), options);
      await wal.close();
    }
  });
});

describe('Wal.open: the directory argument', () => {
  const bad: [string, unknown][] = [
    ['a number', 42],
    ['undefined', undefined],
    ['null', null],
    ['an empty string', ''],
    ['an object', { path: '/tmp/x' }],
    ['a Buffer', Buffer.from('/tmp/x')],
  ];
  it.each(bad)('dir as %s rejects TM_INVALID_ARGUMENT naming dir', async (_label, dir) => {
    const err = await rejectionOf(() => Wal.open(dir as string));
    expectError(err, 'TM_INVALID_ARGUMENT', /dir/, /string/);
  });

  // Documented behaviour: open creates the directory and any missing parents (like mkdir -p).
  it('a directory whose parents do not exist is created, parents included', async () => {
    const parent = await tmpDir('mkdir');
    const dir = join(parent, 'a', 'b', 'c');
    const wal = await Wal.open(dir, { segmentBytes: SEGMENT_BYTES });
    expect(await wal.append(Buffer.from('x'))).toBe(1);
    await wal.close();
    expect((await stat(dir)).isDirectory()).toBe(true);
  });

  it('createIfMissing: false and readOnly refuse an existing directory without a log; errorIfExists refuses a log', async () => {
    const parent = await tmpDir('exists');
    const empty = join(parent, 'empty');
    await mkdir(empty);
    for (const options of [{ createIfMissing: false }, { readOnly: true }]) {
      expectError(await rejectionOf(() => Wal.open(empty, options)), 'TM_INVALID_ARGUMENT', /no log/, /no segment files/);
      expect(await readdir(empty), 'nothing was created').toEqual([]);
    }
    const dir = join(parent, 'log');
    expectError(await rejectionOf(() => Wal.open(dir, { createIfMissing: false })), 'TM_INVALID_ARGUMENT', /no log/);
    const wal = await Wal.open(dir, { segmentBytes: SEGMENT_BYTES, errorIfExists: true });
    await wal.append(Buffer.from('x'));
    await wal.close();
    const err = await rejectionOf(() => Wal.open(dir, { segmentBytes: SEGMENT_BYTES, errorIfExists: true }));
    expectError(err, 'TM_INVALID_ARGUMENT', /already exists/, /errorIfExists/);
    const again = await Wal.open(dir, { segmentBytes: SEGMENT_BYTES, createIfMissing: false });
    expect(again.lastIndex).toBe(1);
    await again.close();
  });

  it('a path through a regular file rejects TM_IO (ENOTDIR) naming the path', async () => {
    const parent = await tmpDir('notdir');
    await writeFile(join(parent, 'file'), 'x');
    const err = await rejectionOf(() => Wal.open(join(parent, 'file', 'log')));
    expectError(err, 'TM_IO', /file\/log/);
    expect(err.errno).toBe('ENOTDIR');
  });

  it('a path that is a regular file rejects TM_IO (EEXIST) naming the path, and leaves the file alone', async () => {
    const parent = await tmpDir('isfile');
    const file = join(parent, 'file');
    await writeFile(file, 'keep me');
    const err = await rejectionOf(() => Wal.open(file));
    expectError(err, 'TM_IO', /file/);
    expect(err.errno).toBe('EEXIST');
    expect(await readFile(file, 'utf8')).toBe('keep me');
  });
});

describe('bad arguments on an open log: a clear error, and the log unchanged and still working', () => {
  it('every call, every kind of bad argument', async () => {
    const dir = await tmpDir('bad-args');
    const MAX = 2000;
    const wal = await Wal.open(dir, { segmentBytes: SEGMENT_BYTES, maxRecordBytes: MAX });
    const model: Buffer[] = [];
    const rng = new Rng(SEED);
    for (let i = 1; i <= 80; i++) {
      const data = recordBytes(i, rng.int(16, MAX), SEED);
      expect(await wal.append(data)).toBe(i);
      model.push(data);
    }
    // A few sealed segments exist; drop the first so firstIndex > 1 and the lower bounds mean something.
    await wal.truncateBefore(40);
    const first = wal.firstIndex;
    expect(first, 'truncateBefore(40) dropped at least one sealed segment').toBeGreaterThan(1);
    model.splice(0, first - 1);
    await expectContents(wal, first, model);

    const big = Buffer.alloc(MAX + 1, 7);
    const ok = Buffer.from('fine');
    // Mentions are computed when the case runs: lastIndex grows by one good append after each case.
    type Case = [string, () => Promise<unknown>, string, RegExp[] | (() => RegExp[])];
    const last = (): number => wal.lastIndex;
    const cases: Case[] = [
      ["append('text')", () => wal.append('text' as unknown as Uint8Array), 'TM_INVALID_ARGUMENT', [/append/, /Uint8Array/, /"text"/]],
      ['append(null)', () => wal.append(null as unknown as Uint8Array), 'TM_INVALID_ARGUMENT', [/Uint8Array/, /null/]],
      ['append(undefined)', () => wal.append(undefined as unknown as Uint8Array), 'TM_INVALID_ARGUMENT', [/Uint8Array/, /undefined/]],
      ['append(123)', () => wal.append(123 as unknown as Uint8Array), 'TM_INVALID_ARGUMENT', [/Uint8Array/, /123/]],
      ['append([1, 2, 3])', () => wal.append([1, 2, 3] as unknown as Uint8Array), 'TM_INVALID_ARGUMENT', [/Uint8Array/, /array/]],
      ['append(ArrayBuffer)', () => wal.append(new ArrayBuffer(8) as unknown as Uint8Array), 'TM_INVALID_ARGUMENT', [/Uint8Array/, /ArrayBuffer/]],
      ['append(Uint16Array)', () => wal.append(new Uint16Array(4) as unknown as Uint8Array), 'TM_INVALID_ARGUMENT', [/Uint8Array/, /Uint16Array/]],
      ['append(DataView)', () => wal.append(new DataView(new ArrayBuffer(4)) as unknown as Uint8Array), 'TM_INVALID_ARGUMENT', [/Uint8Array/, /DataView/]],
      [`append(${MAX + 1} bytes) over maxRecordBytes ${MAX}`, () => wal.append(big), 'TM_INVALID_ARGUMENT', [new RegExp(String(MAX + 1)), /maxRecordBytes/, new RegExp(String(MAX))]],
      ['appendMany([])', () => wal.appendMany([]), 'TM_INVALID_ARGUMENT', [/appendMany/, /empty/]],
      ["appendMany('x')", () => wal.appendMany('x' as unknown as Uint8Array[]), 'TM_INVALID_ARGUMENT', [/appendMany/, /array/]],
      ['appendMany(null)', () => wal.appendMany(null as unknown as Uint8Array[]), 'TM_INVALID_ARGUMENT', [/appendMany/, /array/]],
      ['appendMany(a Uint8Array, not an array of them)', () => wal.appendMany(new Uint8Array(3) as unknown as Uint8Array[]), 'TM_INVALID_ARGUMENT', [/appendMany/, /array/]],
      ["appendMany([ok, 'bad', ok])", () => wal.appendMany([ok, 'bad' as unknown as Uint8Array, ok]), 'TM_INVALID_ARGUMENT', [/datas\[1\]/, /Uint8Array/]],
      ['appendMany([ok, ok, undefined])', () => wal.appendMany([ok, ok, undefined as unknown as Uint8Array]), 'TM_INVALID_ARGUMENT', [/datas\[2\]/]],
      ['appendMany([ok, too large, ok])', () => wal.appendMany([ok, big, ok]), 'TM_INVALID_ARGUMENT', [/datas\[1\]/, /maxRecordBytes/]],
      ['read(0)', () => wal.read(0), 'TM_OUT_OF_RANGE', () => [/0/, new RegExp(`\\[${first}, ${last()}\\]`)]],
      ['read(firstIndex - 1)', () => wal.read(first - 1), 'TM_OUT_OF_RANGE', [new RegExp(String(first - 1))]],
      ['read(lastIndex + 1)', () => wal.read(last() + 1), 'TM_OUT_OF_RANGE', () => [new RegExp(String(last() + 1))]],
      ['read(1.5)', () => wal.read(1.5), 'TM_INVALID_ARGUMENT', [/read/, /integer/, /1\.5/]],
      ['read(-1)', () => wal.read(-1), 'TM_INVALID_ARGUMENT', [/read/, /-1/]],
      ['read(NaN)', () => wal.read(Number.NaN), 'TM_INVALID_ARGUMENT', [/read/, /NaN/]],
      ["read('45')", () => wal.read('45' as unknown as number), 'TM_INVALID_ARGUMENT', [/read/]],
      ['read(2 ** 53)', () => wal.read(2 ** 53), 'TM_INVALID_ARGUMENT', [/read/]],
      ['truncateAfter(lastIndex + 1)', () => wal.truncateAfter(last() + 1), 'TM_OUT_OF_RANGE', () => [/truncateAfter/, new RegExp(String(last() + 1))]],
      ['truncateAfter(firstIndex - 2)', () => wal.truncateAfter(first - 2), 'TM_OUT_OF_RANGE', [/truncateAfter/, new RegExp(String(first - 2))]],
      ['truncateAfter(1.5)', () => wal.truncateAfter(1.5), 'TM_INVALID_ARGUMENT', [/truncateAfter/, /integer/]],
      ['truncateAfter(-1)', () => wal.truncateAfter(-1), 'TM_INVALID_ARGUMENT', [/truncateAfter/]],
      ["truncateAfter('50')", () => wal.truncateAfter('50' as unknown as number), 'TM_INVALID_ARGUMENT', [/truncateAfter/]],
      ['truncateBefore(lastIndex + 2)', () => wal.truncateBefore(last() + 2), 'TM_OUT_OF_RANGE', () => [/truncateBefore/, new RegExp(String(last() + 2))]],
      ['truncateBefore(2.5)', () => wal.truncateBefore(2.5), 'TM_INVALID_ARGUMENT', [/truncateBefore/, /integer/]],
      ['truncateBefore(NaN)', () => wal.truncateBefore(Number.NaN), 'TM_INVALID_ARGUMENT', [/truncateBefore/]],
    ];
    for (const [label, call, code, mentionsOf] of cases) {
      const mentions = typeof mentionsOf === 'function' ? mentionsOf() : mentionsOf;
      const err = await rejectionOf(call);
      try {
        expectError(err, code, ...mentions);
      } catch (e) {
        throw new Error(`${label}: ${(e as Error).message}`);
      }
      await expectContents(wal, first, model);
      // Still works: one good append after each bad call.
      const data = recordBytes(first + model.length, 16 + model.length, SEED);
      expect(await wal.append(data), `append after ${label}`).toBe(first + model.length);
      model.push(data);
    }

    // Bounds: maxRecordBytes itself is accepted, and an empty record is a record.
    const atMax = recordBytes(first + model.length, MAX, SEED);
    expect(await wal.append(atMax)).toBe(first + model.length);
    model.push(atMax);
    expect(await wal.append(new Uint8Array(0))).toBe(first + model.length);
    model.push(Buffer.alloc(0));
    // A view into a larger buffer appends exactly the viewed bytes.
    const backing = recordBytes(999_999, 300, SEED);
    expect(await wal.append(backing.subarray(100, 164))).toBe(first + model.length);
    model.push(Buffer.from(backing.subarray(100, 164)));

    // Documented behaviour: truncateBefore below firstIndex is a no-op (the low-water mark never moves back).
    await wal.truncateBefore(first - 1);
    await wal.truncateBefore(0);
    await expectContents(wal, first, model);

    await wal.close();
    const again = await Wal.open(dir, { segmentBytes: SEGMENT_BYTES, maxRecordBytes: MAX });
    await expectContents(again, first, model);
    await again.close();
  });

  const entryCases: [string, (wal: Wal) => unknown, string, RegExp[]][] = [
    ['entries({ from: 5, to: 3 }) (from > to + 1)', (wal) => wal.entries({ from: 5, to: 3 }), 'TM_INVALID_ARGUMENT', [/from/, /to/]],
    ['entries({ from: 0 })', (wal) => wal.entries({ from: 0 }), 'TM_OUT_OF_RANGE', [/from/]],
    ['entries({ to: 11 }) past lastIndex 10', (wal) => wal.entries({ to: 11 }), 'TM_OUT_OF_RANGE', [/to/, /11/]],
    ['entries({ from: 1.5 })', (wal) => wal.entries({ from: 1.5 }), 'TM_INVALID_ARGUMENT', [/from/, /integer/]],
    ['entries({ to: -1 })', (wal) => wal.entries({ to: -1 }), 'TM_INVALID_ARGUMENT', [/to/]],
    ['entries({ start: 1 })', (wal) => wal.entries({ start: 1 } as unknown as { from: number }), 'TM_INVALID_ARGUMENT', [/start/, /from, to/]],
    ['entries(null)', (wal) => wal.entries(null as unknown as { from: number }), 'TM_INVALID_ARGUMENT', [/range/, /object/]],
    ["entries({ reverse: 'yes' })", (wal) => wal.entries({ reverse: 'yes' as unknown as boolean }), 'TM_INVALID_ARGUMENT', [/reverse/, /true or false/]],
    ['entries({ follow: 1 })', (wal) => wal.entries({ follow: 1 as unknown as boolean }), 'TM_INVALID_ARGUMENT', [/follow/, /true or false/]],
    ['entries({ limit: -1 })', (wal) => wal.entries({ limit: -1 }), 'TM_INVALID_ARGUMENT', [/limit/, /-1/]],
    ['entries({ limit: 1.5 })', (wal) => wal.entries({ limit: 1.5 }), 'TM_INVALID_ARGUMENT', [/limit/, /integer/]],
    ['entries({ signal: {} })', (wal) => wal.entries({ signal: {} as AbortSignal }), 'TM_INVALID_ARGUMENT', [/signal/, /AbortSignal/]],
    ['entries({ reverse, follow })', (wal) => wal.entries({ reverse: true, follow: true }), 'TM_INVALID_ARGUMENT', [/reverse/, /follow/]],
    ['entries({ from: 12, follow }) past lastIndex + 1', (wal) => wal.entries({ from: 12, follow: true }), 'TM_OUT_OF_RANGE', [/from/, /12/]],
  ];
  // entries() returns an iterator, not a promise: bad ranges throw at the call (documented in lib/log/wal.ts).
  it.each(entryCases)('%s throws at once, and the log is unchanged', async (_label, call, code, mentions) => {
    const dir = await tmpDir('bad-entries');
    const wal = await Wal.open(dir, { segmentBytes: SEGMENT_BYTES });
    const model: Buffer[] = [];
    for (let i = 1; i <= 10; i++) {
      model.push(recordBytes(i, 100, SEED));
      await wal.append(model[i - 1] as Buffer);
    }
    try {
      let thrown: unknown;
      try {
        call(wal);
      } catch (err) {
        thrown = err;
      }
      if (thrown === undefined) throw new Error('did not throw');
      expectError(thrown as Error, code, ...mentions);
      await expectContents(wal, 1, model);
      expect(await wal.append(recordBytes(11, 100, SEED))).toBe(11);
    } finally {
      await wal.close();
    }
  });

  it('entries({ from: lastIndex + 1, to: lastIndex }) is an empty range, not an error', async () => {
    const dir = await tmpDir('empty-entries');
    const wal = await Wal.open(dir, { segmentBytes: SEGMENT_BYTES });
    for (let i = 1; i <= 10; i++) await wal.append(recordBytes(i, 100, SEED));
    const seen: number[] = [];
    for await (const { index } of wal.entries({ from: 11, to: 10 })) seen.push(index);
    expect(seen).toEqual([]);
    await wal.close();
  });
});

describe('damaged files: open refuses with TM_CORRUPTION naming file and offset, and changes nothing', () => {
  /** A log of `count` records of 1500..2500 bytes, each its own batch; returns the segment file names in order. */
  async function makeLog(dir: string, count: number): Promise<{ files: string[]; lengths: number[] }> {
    const wal = await Wal.open(dir, { segmentBytes: SEGMENT_BYTES });
    const lengths: number[] = [];
    const rng = new Rng(SEED + count);
    for (let i = 1; i <= count; i++) {
      const length = rng.int(1500, 2500);
      lengths.push(length);
      await wal.append(recordBytes(i, length, SEED));
    }
    await wal.close();
    const files = (await readdir(dir)).filter((f) => /^\d{20}\.wal$/.test(f)).sort();
    return { files, lengths };
  }

  /** Overwrites 64 bytes in the middle of record `index`'s payload; returns the file and the payload's offset. */
  async function damageRecord(dir: string, files: string[], index: number, length: number): Promise<{ file: string; payloadOffset: number; before: Buffer }> {
    const payload = recordBytes(index, length, SEED);
    for (const name of files) {
      const file = join(dir, name);
      const bytes = await readFile(file);
      const at = bytes.indexOf(payload);
      if (at < 0) continue;
      const before = Buffer.from(bytes);
      const garbage = Buffer.alloc(64);
      new Rng(index).fill(garbage);
      garbage.copy(bytes, at + Math.floor(length / 2));
      await writeFile(file, bytes);
      return { file, payloadOffset: at, before };
    }
    throw new Error(`record ${index} not found in any segment`);
  }

  async function expectRefusedThenRepairable(dir: string, file: string, offset: number | undefined, original: Buffer, count: number): Promise<void> {
    const damaged = await readFile(file);
    const err = await rejectionOf(() => Wal.open(dir, { segmentBytes: SEGMENT_BYTES }));
    expectError(err, 'TM_CORRUPTION');
    expect(err.path, err.message).toBe(file);
    expect(err.message, 'the message names the file').toContain(file.split('/').pop() as string);
    if (offset !== undefined) expect(err.offset, err.message).toBe(offset);
    expect((await readFile(file)).equals(damaged), 'a refused open must not modify the damaged file').toBe(true);
    // The refused open released the lock: with the bytes put back, the log opens in this process, intact.
    await writeFile(file, original);
    const wal = await Wal.open(dir, { segmentBytes: SEGMENT_BYTES });
    try {
      expect(wal.lastIndex).toBe(count);
      for (const i of [1, Math.ceil(count / 2), count]) {
        const data = await wal.read(i);
        expect(data.equals(recordBytes(i, data.length, SEED)), `record ${i}`).toBe(true);
      }
    } finally {
      await wal.close();
    }
  }

  it('garbage in the middle of a record in a sealed segment: TM_CORRUPTION at that record', async () => {
    const dir = await tmpDir('damage-sealed');
    const { files, lengths } = await makeLog(dir, 60);
    expect(files.length).toBeGreaterThanOrEqual(3);
    const { file, payloadOffset, before } = await damageRecord(dir, files, 5, lengths[4] as number);
    expect(file).toBe(join(dir, files[0] as string));
    await expectRefusedThenRepairable(dir, file, payloadOffset - 16, before, 60);
  });

  it('garbage in a record of the last segment with valid records after it: TM_CORRUPTION, not a torn tail', async () => {
    const dir = await tmpDir('damage-last');
    const { files, lengths } = await makeLog(dir, 60);
    const lastFirst = Number((files[files.length - 1] as string).slice(0, 20));
    expect(60 - lastFirst, 'at least 3 records follow the damaged one in the last segment').toBeGreaterThanOrEqual(4);
    const { file, payloadOffset, before } = await damageRecord(dir, files, lastFirst + 1, lengths[lastFirst] as number);
    expect(file).toBe(join(dir, files[files.length - 1] as string));
    await expectRefusedThenRepairable(dir, file, payloadOffset - 16, before, 60);
  });

  // Documented behaviour (native/recovery.cc row A): a file named like a segment whose header is not a
  // segment header is corruption at offset 0, whether it is the only file or follows a valid log.
  it('a random-garbage file named like a segment, alone: TM_CORRUPTION at offset 0', async () => {
    const dir = await tmpDir('garbage-alone');
    const file = join(dir, '00000000000000000001.wal');
    const garbage = Buffer.alloc(SEGMENT_BYTES);
    new Rng(SEED).fill(garbage);
    await writeFile(file, garbage);
    const err = await rejectionOf(() => Wal.open(dir, { segmentBytes: SEGMENT_BYTES }));
    expectError(err, 'TM_CORRUPTION');
    expect(err.path).toBe(file);
    expect(err.offset).toBe(0);
    expect((await readFile(file)).equals(garbage)).toBe(true);
  });

  it('a random-garbage file named as the next segment after a valid log: TM_CORRUPTION naming it, offset 0', async () => {
    const dir = await tmpDir('garbage-next');
    await makeLog(dir, 60);
    const file = join(dir, `${String(61).padStart(20, '0')}.wal`);
    const garbage = Buffer.alloc(SEGMENT_BYTES);
    new Rng(SEED + 1).fill(garbage);
    await writeFile(file, garbage);
    const err = await rejectionOf(() => Wal.open(dir, { segmentBytes: SEGMENT_BYTES }));
    expectError(err, 'TM_CORRUPTION');
    expect(err.path).toBe(file);
    expect(err.offset).toBe(0);
  });

  // Documented behaviour: segments are created full size (preallocated, then renamed into place), so a
  // zero-length segment file cannot come from a crash; open refuses it as corruption ("bad size"), offset 0.
  it('a zero-length segment file, alone: TM_CORRUPTION naming it, offset 0', async () => {
    const dir = await tmpDir('empty-alone');
    const file = join(dir, '00000000000000000001.wal');
    await writeFile(file, '');
    const err = await rejectionOf(() => Wal.open(dir, { segmentBytes: SEGMENT_BYTES }));
    expectError(err, 'TM_CORRUPTION', /size/);
    expect(err.path).toBe(file);
    expect(err.offset).toBe(0);
    expect((await stat(file)).size).toBe(0);
  });

  it('a zero-length file in place of a sealed segment: TM_CORRUPTION naming it', async () => {
    const dir = await tmpDir('empty-sealed');
    const { files } = await makeLog(dir, 60);
    const file = join(dir, files[1] as string);
    await writeFile(file, '');
    const err = await rejectionOf(() => Wal.open(dir, { segmentBytes: SEGMENT_BYTES }));
    expectError(err, 'TM_CORRUPTION');
    expect(err.path).toBe(file);
    expect(err.offset).toBe(0);
  });

  it('a directory holding files that are not a log\'s is refused, naming one, and the files are left alone', async () => {
    const dir = await tmpDir('stray');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'notes.txt'), 'hello');
    await writeFile(join(dir, 'abc.wal'), 'not a segment');
    const err = await rejectionOf(() => Wal.open(dir, { segmentBytes: SEGMENT_BYTES }));
    expectError(err, 'TM_INVALID_ARGUMENT', /not a file of a tidemark log/, /"(notes\.txt|abc\.wal)"/);
    expect([join(dir, 'notes.txt'), join(dir, 'abc.wal')]).toContain(err.path);
    expect((await readdir(dir)).sort()).toEqual(['abc.wal', 'notes.txt']);
    expect(await readFile(join(dir, 'notes.txt'), 'utf8')).toBe('hello');
    expect(await readFile(join(dir, 'abc.wal'), 'utf8')).toBe('not a segment');
    // Beside a real log too; a log's own leftovers (*.tmp, spare, LOCK) are no reason to refuse.
    const log = await tmpDir('stray-log');
    await (await Wal.open(log, { segmentBytes: SEGMENT_BYTES })).close();
    await writeFile(join(log, 'spare.held.0.tmp'), '');
    const again = await Wal.open(log, { segmentBytes: SEGMENT_BYTES });
    await again.close();
    await writeFile(join(log, 'README'), 'x');
    expectError(await rejectionOf(() => Wal.open(log, { segmentBytes: SEGMENT_BYTES })), 'TM_INVALID_ARGUMENT', /"README"/);
  });
});
