/**
 * RaftStorage: the core's LogReader over the native WAL, the hard-state file and
 * snapshot files. Round trips through reopen, conflicting suffixes, the commit cap,
 * compaction, snapshot install, every intermediate on-disk state of an install or a
 * compaction (left on disk by hand, then reopened), and damaged files (TM_CORRUPTION).
 */
import { describe, expect, it } from 'vitest';
import { open, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Wal } from '../../lib/index';
import type { Entry, HardState, PersistWork, Snapshot } from '../../lib/core/types';
import { RaftStorage, decodeEntryRecord, encodeEntryRecord } from '../../lib/cluster/storage';
import { HARD_STATE_SLOT_BYTES, encodeSnapshotHeader, writeFileDurably } from '../../lib/cluster/files';
import { errorCode, rejectionOf, tmpDir } from '../helpers';

const WAL = { segmentBytes: 64 * 1024, sync: 'fdatasync' as const };

function entry(index: number, generation: number, text = `e${index}g${generation}`): Entry {
  return { index, generation, kind: 'normal', data: Buffer.from(text) };
}
function run(from: number, to: number, generation: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, generation));
  return out;
}
function work(entries: Entry[], hardState: HardState | null = null, snapshot: Snapshot | null = null): PersistWork {
  return { entries, hardState, snapshot };
}
function texts(s: RaftStorage): string[] {
  if (s.lastIndex() < s.firstIndex()) return [];
  return s.entries(s.firstIndex(), s.lastIndex() + 1, Number.MAX_SAFE_INTEGER).map((e) => `${e.index}:${e.generation}:${Buffer.from(e.data).toString()}`);
}
const snapOf = (index: number, generation: number, text = `state@${index}`): Snapshot => ({ meta: { index, generation }, data: Buffer.from(text) });

async function reopen(s: RaftStorage): Promise<RaftStorage> {
  await s.close();
  return RaftStorage.open(s.dir, { wal: WAL });
}

describe('RaftStorage', () => {
  it('round-trips entries and hard state through reopen', async () => {
    const dir = await tmpDir('storage');
    let s = await RaftStorage.open(dir, { wal: WAL });
    expect([s.firstIndex(), s.lastIndex(), s.hardState(), s.snapshot()]).toEqual([1, 0, { generation: 0, votedFor: null, commit: 0 }, null]);
    await s.persist(work(run(1, 5, 1), { generation: 1, votedFor: 'a', commit: 0 }));
    await s.persist(work(run(6, 7, 1)));
    expect(s.generationAt(0)).toBe(0);
    expect(s.generationAt(7)).toBe(1);
    expect(s.generationAt(8)).toBeUndefined();
    s = await reopen(s);
    expect(texts(s)).toEqual(run(1, 7, 1).map((e) => `${e.index}:1:e${e.index}g1`));
    expect(s.hardState()).toEqual({ generation: 1, votedFor: 'a', commit: 0 });
    await s.close();
  });

  it('keeps no view into a larger buffer (a socket chunk) for entries it holds in memory', async () => {
    const dir = await tmpDir('storage');
    const s = await RaftStorage.open(dir, { wal: WAL });
    const chunk = new Uint8Array(64 * 1024).fill(7); // what a decoded frame's payloads point into
    const views: Entry[] = [1, 2, 3].map((i) => ({ index: i, generation: 1, kind: 'normal', data: chunk.subarray(i * 100, i * 100 + 10) }));
    const own = entry(4, 1);
    await s.persist(work([...views, own]));
    const held = s.entries(1, 5, Number.MAX_SAFE_INTEGER);
    for (const e of held.slice(0, 3)) {
      expect(e.data.buffer).not.toBe(chunk.buffer);
      expect(e.data.buffer.byteLength).toBeLessThan(64);
      expect(Array.from(e.data)).toEqual(new Array(10).fill(7));
    }
    chunk.fill(0); // whoever owns the chunk may reuse it: what the log holds must not change
    expect(s.entries(1, 4, Number.MAX_SAFE_INTEGER).every((e) => e.data.every((b) => b === 7))).toBe(true);
    expect(Buffer.from((held[3] as Entry).data).toString()).toBe('e4g1');
    await s.close();
  });

  it('overwrites a conflicting suffix durably', async () => {
    const dir = await tmpDir('storage');
    let s = await RaftStorage.open(dir, { wal: WAL });
    await s.persist(work(run(1, 10, 1)));
    await s.persist(work(run(6, 8, 2)));
    expect(s.lastIndex()).toBe(8);
    s = await reopen(s);
    expect(texts(s).map((t) => t.split(':').slice(0, 2).join(':'))).toEqual(['1:1', '2:1', '3:1', '4:1', '5:1', '6:2', '7:2', '8:2']);
    await expect(s.persist(work(run(10, 10, 2)))).rejects.toMatchObject({ code: 'TM_OUT_OF_RANGE' });
    await s.close();
  });

  it('caps the stored commit below entries written in parallel and skips commit-only changes; close stores the latest commit', async () => {
    const dir = await tmpDir('storage');
    let s = await RaftStorage.open(dir, { wal: WAL });
    await s.persist(work(run(1, 4, 1), { generation: 1, votedFor: null, commit: 0 }));
    // A vote change with new entries 5..6 and commit 6: the stored commit stays below 5.
    await s.persist(work(run(5, 6, 2), { generation: 2, votedFor: 'b', commit: 6 }));
    expect(s.hardState()).toEqual({ generation: 2, votedFor: 'b', commit: 4 });
    // Commit-only change: no write.
    await s.persist(work([], { generation: 2, votedFor: 'b', commit: 6 }));
    expect(s.hardState().commit).toBe(4);
    s = await reopen(s);
    expect(s.hardState()).toEqual({ generation: 2, votedFor: 'b', commit: 6 });
    await expect(s.persist(work([], { generation: 1, votedFor: null, commit: 6 }))).rejects.toMatchObject({ code: 'TM_INVALID_ARGUMENT' });
    await s.close();
  });

  it('compacts: snapshot file, entries below leave memory and WAL segments, reopen gives the same view', async () => {
    const dir = await tmpDir('storage');
    let s = await RaftStorage.open(dir, { wal: WAL });
    const big = (i: number): Entry => ({ index: i, generation: 1, kind: 'normal', data: Buffer.alloc(2000, i % 256) });
    const all: Entry[] = [];
    for (let i = 1; i <= 200; i++) all.push(big(i));
    for (let i = 0; i < all.length; i += 20) await s.persist(work(all.slice(i, i + 20)));
    const segmentsBefore = s.stats().wal.segments;
    await s.compact(snapOf(150, 1));
    expect([s.firstIndex(), s.lastIndex(), s.snapshot()?.meta.index, s.generationAt(150), s.generationAt(149)]).toEqual([151, 200, 150, 1, undefined]);
    expect(s.stats().wal.segments).toBeLessThan(segmentsBefore);
    await expect(rejectionOf(() => Promise.resolve().then(() => s.entries(150, 151, 100)))).resolves.toMatchObject({ code: 'TM_OUT_OF_RANGE' });
    await expect(s.compact(snapOf(210, 1))).rejects.toMatchObject({ code: 'TM_OUT_OF_RANGE' });
    await expect(s.compact(snapOf(160, 2))).rejects.toMatchObject({ code: 'TM_INVALID_ARGUMENT' });
    s = await reopen(s);
    expect([s.firstIndex(), s.lastIndex(), Buffer.from(s.snapshot()?.data ?? []).toString()]).toEqual([151, 200, 'state@150']);
    expect(Buffer.from(s.entries(151, 152, 1)[0]?.data ?? []).equals(big(151).data as Buffer)).toBe(true);
    await s.persist(work(run(201, 202, 2)));
    await s.compact(snapOf(201, 2));
    s = await reopen(s);
    expect([s.firstIndex(), s.lastIndex()]).toEqual([202, 202]);
    expect((await readdir(dir)).filter((n) => n.startsWith('snap-'))).toEqual([`snap-${'201'.padStart(20, '0')}.snap`]);
    await s.close();
  });

  it('installs a snapshot from the leader: new WAL directory, old one removed, appends continue after it', async () => {
    const dir = await tmpDir('storage');
    let s = await RaftStorage.open(dir, { wal: WAL });
    await s.persist(work(run(1, 10, 1), { generation: 1, votedFor: null, commit: 0 }));
    await s.persist(work(run(1001, 1003, 3), { generation: 3, votedFor: null, commit: 1000 }, snapOf(1000, 3)));
    expect([s.firstIndex(), s.lastIndex(), s.hardState().commit]).toEqual([1001, 1003, 1000]);
    expect((await readdir(dir)).sort()).toEqual(['hardstate', `snap-${'1000'.padStart(20, '0')}.snap`, `wal-${'1000'.padStart(20, '0')}`]);
    s = await reopen(s);
    expect([s.firstIndex(), s.lastIndex(), s.generationAt(1000), s.generationAt(1002)]).toEqual([1001, 1003, 3, 3]);
    await s.close();
  });
});

describe('RaftStorage recovery of interrupted snapshot steps', () => {
  async function logWithEntries(dir: string, n: number, generation = 1): Promise<void> {
    const s = await RaftStorage.open(dir, { wal: WAL });
    await s.persist(work(run(1, n, generation), { generation, votedFor: null, commit: 0 }));
    await s.close();
  }
  const snapName = (i: number): string => `snap-${String(i).padStart(20, '0')}.snap`;
  const walName = (i: number): string => `wal-${String(i).padStart(20, '0')}`;
  async function writeSnap(dir: string, snap: Snapshot): Promise<void> {
    await writeFileDurably(join(dir, snapName(snap.meta.index)), [encodeSnapshotHeader(snap), snap.data]);
  }

  it('install crashed after the snapshot file, before its WAL: the old log is dropped, a new WAL starts after it', async () => {
    const dir = await tmpDir('storage');
    await logWithEntries(dir, 10);
    await writeSnap(dir, snapOf(15, 2));
    const s = await RaftStorage.open(dir, { wal: WAL });
    expect([s.firstIndex(), s.lastIndex(), s.generationAt(15)]).toEqual([16, 15, 2]);
    expect((await readdir(dir)).sort()).toEqual(['hardstate', snapName(15), walName(15)]);
    await s.persist(work(run(16, 17, 2)));
    const t = await reopen(s);
    expect(texts(t)).toEqual(['16:2:e16g2', '17:2:e17g2']);
    await t.close();
  });

  it('install crashed with the snapshot inside the old log at another generation: the old log is dropped', async () => {
    const dir = await tmpDir('storage');
    await logWithEntries(dir, 10);
    await writeSnap(dir, snapOf(8, 2));
    const s = await RaftStorage.open(dir, { wal: WAL });
    expect([s.firstIndex(), s.lastIndex()]).toEqual([9, 8]);
    await s.close();
  });

  it('install crashed after the new WAL was made, before the old was removed: the new one wins', async () => {
    const dir = await tmpDir('storage');
    await logWithEntries(dir, 10);
    await writeSnap(dir, snapOf(15, 2));
    const w = await Wal.open(join(dir, walName(15)), WAL);
    await w.append(encodeEntryRecord(entry(16, 2)));
    await w.close();
    const s = await RaftStorage.open(dir, { wal: WAL });
    expect(texts(s)).toEqual(['16:2:e16g2']);
    expect((await readdir(dir)).sort()).toEqual(['hardstate', snapName(15), walName(15)]);
    await s.close();
  });

  it('compaction crashed after the snapshot file, before the WAL was truncated: entries after it are kept; older snapshots and tmp files removed', async () => {
    const dir = await tmpDir('storage');
    await logWithEntries(dir, 10);
    await writeSnap(dir, snapOf(3, 1, 'old'));
    await writeSnap(dir, snapOf(6, 1));
    await writeFile(join(dir, `${snapName(9)}.tmp`), 'half a snapshot');
    const s = await RaftStorage.open(dir, { wal: WAL });
    expect([s.firstIndex(), s.lastIndex(), Buffer.from(s.snapshot()?.data ?? []).toString()]).toEqual([7, 10, 'state@6']);
    expect((await readdir(dir)).sort()).toEqual(['hardstate', snapName(6), walName(0)]);
    await s.close();
  });

  it('a WAL directory beyond the newest snapshot is TM_CORRUPTION (never made by an install)', async () => {
    const dir = await tmpDir('storage');
    await logWithEntries(dir, 3);
    const w = await Wal.open(join(dir, walName(50)), WAL);
    await w.close();
    expect(errorCode(await rejectionOf(RaftStorage.open(dir, { wal: WAL })))).toBe('TM_CORRUPTION');
  });
});

describe('RaftStorage damaged files', () => {
  it('a record whose header disagrees with its position is TM_CORRUPTION', async () => {
    const dir = await tmpDir('storage');
    const w = await Wal.open(join(dir, `wal-${'0'.padStart(20, '0')}`), WAL);
    await w.append(encodeEntryRecord(entry(1, 1)));
    await w.append(encodeEntryRecord(entry(3, 1)));
    await w.close();
    const err = await rejectionOf(RaftStorage.open(dir, { wal: WAL }));
    expect(errorCode(err)).toBe('TM_CORRUPTION');
    expect(err.message).toMatch(/position 2 says index 3/);
  });

  it('decodeEntryRecord rejects short records, unknown kinds, zero generations and a no-op with data', () => {
    const good = encodeEntryRecord(entry(7, 2));
    expect(decodeEntryRecord(good, 7)).toMatchObject({ index: 7, generation: 2, kind: 'normal' });
    const codeOf = (f: () => unknown): string | undefined => {
      try {
        f();
        return undefined;
      } catch (e) {
        return errorCode(e);
      }
    };
    expect(codeOf(() => decodeEntryRecord(good.subarray(0, 10), 7))).toBe('TM_CORRUPTION');
    const badKind = Uint8Array.from(good);
    badKind[0] = 9;
    expect(codeOf(() => decodeEntryRecord(badKind, 7))).toBe('TM_CORRUPTION');
    const zeroGen = encodeEntryRecord({ ...entry(7, 1), generation: 0 });
    expect(codeOf(() => decodeEntryRecord(zeroGen, 7))).toBe('TM_CORRUPTION');
    const noopData = encodeEntryRecord({ ...entry(7, 1), kind: 'noop' });
    expect(codeOf(() => decodeEntryRecord(noopData, 7))).toBe('TM_CORRUPTION');
    expect(decodeEntryRecord(encodeEntryRecord({ index: 7, generation: 1, kind: 'noop', data: new Uint8Array(0) }), 7).kind).toBe('noop');
  });

  it('a torn hard-state slot falls back to the previous state; two damaged slots are TM_CORRUPTION', async () => {
    const dir = await tmpDir('storage');
    const s = await RaftStorage.open(dir, { wal: WAL });
    await s.persist(work([], { generation: 1, votedFor: 'a', commit: 0 })); // slot 1
    await s.persist(work([], { generation: 2, votedFor: 'b', commit: 0 })); // slot 0
    await s.close();
    const file = join(dir, 'hardstate');
    const fh = await open(file, 'r+');
    await fh.write(Buffer.alloc(100, 0xab), 0, 100, 200); // tear slot 0 (the newer)
    await fh.close();
    let t = await RaftStorage.open(dir, { wal: WAL });
    expect(t.hardState()).toEqual({ generation: 1, votedFor: 'a', commit: 0 });
    await t.persist(work([], { generation: 3, votedFor: null, commit: 0 }));
    t = await reopen(t);
    expect(t.hardState()).toEqual({ generation: 3, votedFor: null, commit: 0 });
    await t.close();
    const fh2 = await open(file, 'r+');
    await fh2.write(Buffer.alloc(10, 0xcd), 0, 10, 40);
    await fh2.write(Buffer.alloc(10, 0xcd), 0, 10, HARD_STATE_SLOT_BYTES + 40);
    await fh2.close();
    expect(errorCode(await rejectionOf(RaftStorage.open(dir, { wal: WAL })))).toBe('TM_CORRUPTION');
  });

  it('a flipped bit in a snapshot file is TM_CORRUPTION', async () => {
    const dir = await tmpDir('storage');
    const s = await RaftStorage.open(dir, { wal: WAL });
    await s.persist(work(run(1, 5, 1)));
    await s.compact(snapOf(4, 1, 'x'.repeat(100)));
    await s.close();
    const file = join(dir, `snap-${'4'.padStart(20, '0')}.snap`);
    const bytes = await readFile(file);
    bytes[60] = (bytes[60] as number) ^ 1;
    await writeFile(file, bytes);
    expect(errorCode(await rejectionOf(RaftStorage.open(dir, { wal: WAL })))).toBe('TM_CORRUPTION');
  });
});

describe('RaftStorage single writer', () => {
  it('a second open of the same directory fails TM_LOCKED and removes nothing', async () => {
    const dir = await tmpDir('storage');
    const s = await RaftStorage.open(dir, { wal: WAL });
    await s.persist(work(run(1, 3, 1), { generation: 1, votedFor: 'a', commit: 0 }));
    await writeFile(join(dir, 'snap-00000000000000000009.snap.tmp'), 'being written');
    expect(errorCode(await rejectionOf(RaftStorage.open(dir, { wal: WAL })))).toBe('TM_LOCKED');
    expect((await readdir(dir)).includes('snap-00000000000000000009.snap.tmp')).toBe(true);
    expect(s.lastIndex()).toBe(3);
    const t = await reopen(s);
    expect([t.lastIndex(), t.hardState().votedFor]).toEqual([3, 'a']);
    expect((await readdir(dir)).some((n) => n.endsWith('.tmp'))).toBe(false);
    await t.close();
  });
});
