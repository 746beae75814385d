/**
 * Durable storage under the replication core: the native {@link Wal} for
 * entries, a two-slot hard-state file for (generation, vote, commit) and
 * snapshot files for the state machine, behind the core's synchronous
 * {@link LogReader} (etcd's MemoryStorage model: the log since the last
 * snapshot is kept in memory, bounded by the snapshot policy).
 *
 * Layout of `dir`:
 *
 * - `hardstate`: two 512-byte CRC-checked slots written alternately (pwrite + fdatasync):
 *   a torn write leaves the other slot, the previous state, intact.
 * - `snap-<index, 20 digits>.snap`: a snapshot (written tmp + fsync + rename + directory fsync).
 * - `wal-<offset, 20 digits>/`: a native WAL whose record `i` is raft entry `offset + i`. A new
 *   WAL directory is started when a snapshot from the leader replaces the whole log (the native
 *   log always starts at index 1).
 *
 * Each WAL record is one entry: a 17-byte header (kind u8, generation u64, raft index u64,
 * little endian) then the payload. The index is a self-check: a record that disagrees with its
 * position, an unknown kind or a generation that goes back is `TM_CORRUPTION`.
 *
 * Recovery (`open`): the newest snapshot file is the low-water mark S; the WAL directory
 * with the highest offset ≤ S holds the log; entries ≤ S are ignored. If that WAL does not
 * reach S, or holds a different generation at S (a snapshot install that crashed before its
 * new WAL directory was made), its entries are dropped and a fresh `wal-S` is started. Older
 * WAL directories and snapshot files are then removed. Every crash point of an install or a
 * compaction lands in one of those cases (test/cluster/storage.test.ts leaves each on disk).
 *
 * Commit: stored with the hard state as a lower bound of the high-water mark, only when the
 * generation or vote changes (and at close): a commit-only change costs no sync. When entries
 * are written in the same persist (in parallel with the hard state), the stored commit is
 * capped below the first entry written, so every entry at or below a stored commit is durable
 * and committed. A restart therefore replays (applied = snapshot index) at least up to the
 * stored commit and learns the rest from the leader.
 *
 * @packageDocumentation
 */
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { TidemarkError } from '../errors';
import type { LogReader } from '../core/log-reader';
import { type Entry, type HardState, type PersistWork, type Snapshot, entryBytes } from '../core/types';
import { Wal, type WalOptions, type WalStats } from '../log/wal';
import { sliceEntries } from '../log/memory';
import type { Logger } from '../net/api';
import { HardStateFile, SNAPSHOT_HEADER_BYTES, corruption, decodeSnapshotFile, encodeSnapshotHeader, getU64, ioError, putU64, syncDir, writeFileDurably } from './files';

/** Bytes of the header every entry record starts with. */
export const ENTRY_RECORD_HEADER_BYTES = 17;
const KIND_NORMAL = 0;
const KIND_NOOP = 1;

/** Encodes an entry as a WAL record: kind u8 | generation u64 | index u64 | data. */
export function encodeEntryRecord(e: Entry): Uint8Array {
  const buf = new Uint8Array(ENTRY_RECORD_HEADER_BYTES + e.data.length);
  const view = new DataView(buf.buffer);
  view.setUint8(0, e.kind === 'noop' ? KIND_NOOP : KIND_NORMAL);
  putU64(view, 1, e.generation);
  putU64(view, 9, e.index);
  buf.set(e.data, ENTRY_RECORD_HEADER_BYTES);
  return buf;
}

/**
 * The entry to keep in memory once `record` (its {@link encodeEntryRecord} encoding) is
 * written. Entries decoded from the network are views into whole socket chunks (64 KiB or
 * more): keeping such a view would keep the chunk alive for as long as the entry stays in
 * memory. The record is a private, exactly-sized copy, so its payload part replaces the view
 * at no extra copy.
 */
function compactEntry(e: Entry, record: Uint8Array): Entry {
  const d = e.data;
  if (d.byteOffset === 0 && d.byteLength === d.buffer.byteLength) return e; // already owns its buffer
  return { index: e.index, generation: e.generation, kind: e.kind, data: record.subarray(ENTRY_RECORD_HEADER_BYTES) };
}

/**
 * Decodes a WAL record into the entry at `expectedIndex` (the data is copied).
 * @throws TidemarkError TM_CORRUPTION when short, of an unknown kind, or at another index
 */
export function decodeEntryRecord(record: Uint8Array, expectedIndex: number, where = 'log'): Entry {
  if (record.length < ENTRY_RECORD_HEADER_BYTES) {
    throw corruption(where, `entry record ${expectedIndex} is ${record.length} bytes, shorter than its ${ENTRY_RECORD_HEADER_BYTES}-byte header`);
  }
  const view = new DataView(record.buffer, record.byteOffset, ENTRY_RECORD_HEADER_BYTES);
  const kindCode = view.getUint8(0);
  if (kindCode !== KIND_NORMAL && kindCode !== KIND_NOOP) throw corruption(where, `entry record ${expectedIndex} has unknown kind ${kindCode}`);
  const generation = getU64(view, 1);
  const index = getU64(view, 9);
  if (!Number.isSafeInteger(generation) || generation < 1) throw corruption(where, `entry record ${expectedIndex} has generation ${generation}`);
  if (index !== expectedIndex) throw corruption(where, `entry record at position ${expectedIndex} says index ${index}`);
  const data = record.slice(ENTRY_RECORD_HEADER_BYTES);
  if (kindCode === KIND_NOOP && data.length !== 0) throw corruption(where, `no-op entry ${expectedIndex} carries ${data.length} bytes`);
  return { index, generation, kind: kindCode === KIND_NOOP ? 'noop' : 'normal', data };
}

/** Options of {@link RaftStorage.open}. */
export interface RaftStorageOptions {
  /** Options of the native WAL (sync mode, segment size). */
  readonly wal?: WalOptions;
  /** Optional pino-compatible logger. */
  readonly logger?: Logger;
  /** @internal Opens a WAL (tests: the faults addon). Default {@link Wal.open}. */
  readonly openWal?: (dir: string, options: WalOptions | undefined) => Promise<Wal>;
}

/** What {@link RaftStorage.stats} reports. */
export interface RaftStorageStats {
  readonly walDir: string;
  readonly walOffset: number;
  readonly snapshotIndex: number;
  readonly snapshotBytes: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  /** Payload bytes (with {@link ENTRY_OVERHEAD_BYTES} each) held in memory. */
  readonly memoryEntryBytes: number;
  readonly wal: WalStats;
}

const HARD_STATE_FILE = 'hardstate';
const SNAP_RE = /^snap-(\d{20})\.snap$/;
const WAL_RE = /^wal-(\d{20})$/;

function pad20(n: number): string {
  return String(n).padStart(20, '0');
}

/** The stored log, hard state and snapshot of one node. */
export class RaftStorage implements LogReader {
  private snap: Snapshot | null;
  /** Entries snapIndex + 1 .. lastIndex. */
  private log: Entry[];
  private memBytes = 0;
  /** Serialises snapshot writes (compaction, install) with each other and with close. */
  private snapshotChain: Promise<void> = Promise.resolve();
  /** Highest commit seen in a persisted Ready (written at close, or with the next vote change). */
  private latestCommit: number;
  private closing: Promise<void> | undefined;

  private constructor(
    readonly dir: string,
    private wal: Wal,
    private walOffset: number,
    private readonly hsFile: HardStateFile,
    snap: Snapshot | null,
    log: Entry[],
    private readonly options: RaftStorageOptions,
  ) {
    this.snap = snap;
    this.log = log;
    for (const e of log) this.memBytes += entryBytes(e);
    this.latestCommit = hsFile.hardState.commit;
  }

  /**
   * Opens (creating) the storage in `dir` and recovers it (see the module comment).
   * @throws TidemarkError TM_CORRUPTION (damaged record, snapshot or hard state; a stored commit
   *   beyond the log), TM_LOCKED (another process holds the WAL), TM_IO, TM_INVALID_ARGUMENT
   */
  static async open(dir: string, options: RaftStorageOptions = {}): Promise<RaftStorage> {
    if (typeof dir !== 'string' || dir.length === 0) throw TidemarkError.invalidArgument('RaftStorage.open: dir must be a non-empty string');
    const abs = path.resolve(dir);
    try {
      const created = await mkdir(abs, { recursive: true });
      if (created !== undefined) await syncDir(path.dirname(abs));
    } catch (err) {
      throw ioError('creating directory', abs, err);
    }
    const openWal = options.openWal ?? ((d: string, o: WalOptions | undefined) => Wal.open(d, o));
    const hsFile = await HardStateFile.open(path.join(abs, HARD_STATE_FILE));
    let wal: Wal | undefined;
    try {
      const names = await readdir(abs);
      const snaps: number[] = [];
      const wals: number[] = [];
      for (const name of names) {
        const s = SNAP_RE.exec(name);
        if (s !== null) snaps.push(Number(s[1]));
        const w = WAL_RE.exec(name);
        if (w !== null) wals.push(Number(w[1]));
      }
      snaps.sort((a, b) => b - a);
      wals.sort((a, b) => b - a);
      let snap: Snapshot | null = null;
      if (snaps.length > 0) {
        const file = path.join(abs, `snap-${pad20(snaps[0] as number)}.snap`);
        let bytes: Buffer;
        try {
          bytes = await readFile(file);
        } catch (err) {
          throw ioError('reading', file, err);
        }
        snap = decodeSnapshotFile(file, bytes);
        if (snap.meta.index !== snaps[0]) throw corruption(file, `snapshot file name says index ${snaps[0]}, its header ${snap.meta.index}`);
      }
      const snapIndex = snap?.meta.index ?? 0;
      const snapGeneration = snap?.meta.generation ?? 0;
      const above = wals.find((o) => o > snapIndex);
      if (above !== undefined) {
        throw corruption(path.join(abs, `wal-${pad20(above)}`), `WAL directory starts after the newest snapshot (index ${snapIndex})`);
      }
      let offset = wals.find((o) => o <= snapIndex) ?? snapIndex;
      let walDir = path.join(abs, `wal-${pad20(offset)}`);
      wal = await openWal(walDir, options.wal);
      let log = await readLog(wal, offset, snapIndex, walDir);
      const walFirst = offset + wal.firstIndex;
      const walLast = offset + wal.lastIndex;
      const walEmpty = wal.lastIndex < wal.firstIndex;
      let keep = true;
      if (walLast < snapIndex) keep = false;
      else if (walFirst <= snapIndex) keep = log.generationAtSnapshot === snapGeneration;
      else if (walFirst > snapIndex + 1) {
        if (!walEmpty) throw corruption(walDir, `the log starts at ${walFirst}, after snapshot index ${snapIndex} + 1`);
        keep = false;
      }
      if (!keep) {
        // A snapshot install crashed before its own WAL directory was made: finish it.
        options.logger?.warn({ dir: abs, snapIndex, walDir }, 'finishing an interrupted snapshot install: starting a new WAL');
        await wal.close();
        offset = snapIndex;
        walDir = path.join(abs, `wal-${pad20(offset)}`);
        await rm(walDir, { recursive: true, force: true });
        wal = await openWal(walDir, options.wal);
        log = { entries: [], generationAtSnapshot: undefined };
      }
      // Remove what the chosen snapshot and WAL supersede (only now: the WAL's lock is held, so
      // no other process is using this directory).
      let removed = false;
      for (const name of names) {
        if (name.endsWith('.tmp')) {
          await rm(path.join(abs, name), { force: true });
          removed = true;
        }
      }
      for (const o of wals) {
        if (o !== offset) {
          await rm(path.join(abs, `wal-${pad20(o)}`), { recursive: true, force: true });
          removed = true;
        }
      }
      for (const s of snaps.slice(1)) {
        await rm(path.join(abs, `snap-${pad20(s)}.snap`), { force: true });
        removed = true;
      }
      if (removed || !keep) await syncDir(abs);
      const storage = new RaftStorage(abs, wal, offset, hsFile, snap, log.entries, options);
      const hs = hsFile.hardState;
      if (hs.commit > storage.lastIndex()) {
        throw corruption(hsFile.file, `stored commit ${hs.commit} is beyond the log's last index ${storage.lastIndex()}`);
      }
      return storage;
    } catch (err) {
      await wal?.close().catch(() => undefined);
      await hsFile.close().catch(() => undefined);
      throw err;
    }
  }

  // ---- LogReader ---------------------------------------------------------------

  private get snapIndex(): number {
    return this.snap?.meta.index ?? 0;
  }

  hardState(): HardState {
    return this.hsFile.hardState;
  }
  firstIndex(): number {
    return this.snapIndex + 1;
  }
  lastIndex(): number {
    return this.snapIndex + this.log.length;
  }
  generationAt(index: number): number | undefined {
    const s = this.snapIndex;
    if (index === s) return this.snap?.meta.generation ?? 0;
    if (index < s || index > this.lastIndex()) return undefined;
    return this.log[index - s - 1]?.generation;
  }
  entries(lo: number, hi: number, maxBytes: number): readonly Entry[] {
    if (lo < this.firstIndex() || hi > this.lastIndex() + 1 || lo > hi) {
      throw TidemarkError.outOfRange(`entries [${lo}, ${hi}) outside [${this.firstIndex()}, ${this.lastIndex() + 1})`);
    }
    return sliceEntries(this.log, this.snapIndex + 1, lo, hi, maxBytes);
  }
  snapshot(): Snapshot | null {
    return this.snap;
  }

  // ---- writes ------------------------------------------------------------------

  /**
   * Makes a Ready's persist work durable, in order: snapshot (install), then entries (a
   * conflicting suffix is truncated first) and hard state in parallel. Resolves when all of
   * it is durable; the {@link LogReader} view reflects it from then on.
   * @throws TidemarkError TM_OUT_OF_RANGE (entries not contiguous with the log), TM_CLOSED, TM_IO,
   *   TM_POISONED, TM_NOSPC: the storage must then be closed (the node stops)
   */
  async persist(work: PersistWork): Promise<void> {
    if (this.closing !== undefined) throw TidemarkError.closed('storage');
    if (work.snapshot !== null) await this.installSnapshot(work.snapshot);
    const tasks: Promise<void>[] = [];
    const first = work.entries[0];
    if (first !== undefined) tasks.push(this.writeEntries(work.entries));
    const hs = work.hardState;
    if (hs !== null) {
      const stored = this.hsFile.hardState;
      if (hs.generation < stored.generation) {
        throw TidemarkError.invalidArgument(`hard state generation would go back from ${stored.generation} to ${hs.generation}`);
      }
      if (hs.generation !== stored.generation || hs.votedFor !== stored.votedFor) {
        // Entries written alongside may not be durable when this is: cap the commit below them.
        let commit = first === undefined ? hs.commit : Math.min(hs.commit, first.index - 1);
        commit = Math.max(stored.commit, Math.min(commit, this.lastIndex()));
        tasks.push(this.hsFile.write({ generation: hs.generation, votedFor: hs.votedFor, commit }));
      }
    }
    if (tasks.length === 1) await tasks[0];
    else if (tasks.length > 1) await Promise.all(tasks);
    if (hs !== null) this.latestCommit = Math.max(this.latestCommit, hs.commit);
  }

  private async writeEntries(entries: readonly Entry[]): Promise<void> {
    const first = (entries[0] as Entry).index;
    if (first <= this.snapIndex || first > this.lastIndex() + 1) {
      throw TidemarkError.outOfRange(`append at ${first} outside (${this.snapIndex}, ${this.lastIndex() + 1}]`);
    }
    const records: Uint8Array[] = [];
    const kept: Entry[] = [];
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as Entry;
      if (e.index !== first + i) throw TidemarkError.invalidArgument('persist: entries must be contiguous');
      const record = encodeEntryRecord(e);
      records.push(record);
      kept.push(compactEntry(e, record));
    }
    const wal = this.wal;
    const offset = this.walOffset;
    if (first <= this.lastIndex()) await wal.truncateAfter(first - 1 - offset);
    await wal.appendMany(records);
    // Durable: show it. Positions are relative to the snapshot index as it is now (a compaction
    // may have moved it meanwhile; it never moves past an entry being written).
    const keep = first - this.snapIndex - 1;
    for (let i = keep; i < this.log.length; i++) this.memBytes -= entryBytes(this.log[i] as Entry);
    this.log.length = keep;
    for (const e of kept) {
      this.log.push(e);
      this.memBytes += entryBytes(e);
    }
  }

  private withSnapshotLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.snapshotChain.then(fn);
    this.snapshotChain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private snapFile(index: number): string {
    return path.join(this.dir, `snap-${pad20(index)}.snap`);
  }

  private async writeSnapshotFile(s: Snapshot): Promise<void> {
    await writeFileDurably(this.snapFile(s.meta.index), [encodeSnapshotHeader(s), s.data]);
  }

  private async removeOlderSnapshots(index: number): Promise<void> {
    const names = await readdir(this.dir);
    for (const name of names) {
      const m = SNAP_RE.exec(name);
      if (m !== null && Number(m[1]) < index) await rm(path.join(this.dir, name), { force: true });
    }
  }

  /** Replaces the whole log by `snapshot` (a follower behind the leader's low-water mark). */
  private installSnapshot(snapshot: Snapshot): Promise<void> {
    return this.withSnapshotLock(async () => {
      const s = snapshot.meta.index;
      if (s <= this.snapIndex) throw TidemarkError.outOfRange(`snapshot at ${s} is not beyond the stored snapshot ${this.snapIndex}`);
      await this.writeSnapshotFile(snapshot);
      const newDir = path.join(this.dir, `wal-${pad20(s)}`);
      await rm(newDir, { recursive: true, force: true });
      const openWal = this.options.openWal ?? ((d: string, o: WalOptions | undefined) => Wal.open(d, o));
      const fresh = await openWal(newDir, this.options.wal);
      const old = this.wal;
      const oldDir = old.dir;
      this.wal = fresh;
      this.walOffset = s;
      this.snap = snapshot;
      this.log = [];
      this.memBytes = 0;
      await old.close();
      await rm(oldDir, { recursive: true, force: true });
      await this.removeOlderSnapshots(s);
      await syncDir(this.dir);
      this.options.logger?.info({ index: s, generation: snapshot.meta.generation, bytes: snapshot.data.length }, 'snapshot installed');
    });
  }

  /**
   * Records a snapshot the state machine took locally at `snapshot.meta.index` (at most the
   * applied index, inside the stored log, with that entry's generation): the file is written
   * and fsynced, then the entries it covers leave memory and the WAL segments wholly below it
   * are deleted. Safe to call while a {@link persist} is in flight.
   * @throws TidemarkError TM_INVALID_ARGUMENT (generation mismatch), TM_OUT_OF_RANGE, TM_IO
   */
  compact(snapshot: Snapshot): Promise<void> {
    if (this.closing !== undefined) return Promise.reject(TidemarkError.closed('storage'));
    return this.withSnapshotLock(async () => {
      const s = snapshot.meta.index;
      if (s <= this.snapIndex) return;
      if (s > this.lastIndex()) throw TidemarkError.outOfRange(`compact at ${s} beyond last index ${this.lastIndex()}`);
      if (this.generationAt(s) !== snapshot.meta.generation) {
        throw TidemarkError.invalidArgument(`compact at ${s}: generation ${snapshot.meta.generation} but the entry has ${this.generationAt(s)}`);
      }
      await this.writeSnapshotFile(snapshot);
      const drop = s - this.snapIndex;
      for (let i = 0; i < drop && i < this.log.length; i++) this.memBytes -= entryBytes(this.log[i] as Entry);
      this.log = this.log.slice(drop);
      this.snap = snapshot;
      await this.wal.truncateBefore(s + 1 - this.walOffset);
      await this.removeOlderSnapshots(s);
      await syncDir(this.dir);
    });
  }

  /** Bytes of the entries held in memory (payloads plus {@link ENTRY_OVERHEAD_BYTES} each). */
  get memoryEntryBytes(): number {
    return this.memBytes;
  }

  /** Largest entry payload a WAL record can carry (the WAL's `maxRecordBytes` less the entry header). */
  get maxEntryBytes(): number {
    return this.wal.options.maxRecordBytes - ENTRY_RECORD_HEADER_BYTES;
  }

  /** Counters for status pages and tests. */
  stats(): RaftStorageStats {
    return {
      walDir: this.wal.dir,
      walOffset: this.walOffset,
      snapshotIndex: this.snapIndex,
      snapshotBytes: (this.snap?.data.length ?? 0) + (this.snap === null ? 0 : SNAPSHOT_HEADER_BYTES),
      firstIndex: this.firstIndex(),
      lastIndex: this.lastIndex(),
      memoryEntryBytes: this.memBytes,
      wal: this.wal.stats(),
    };
  }

  /**
   * Waits for snapshot writes, stores the latest commit seen (so a restart replays up to it),
   * and closes the WAL and the hard-state file. Idempotent. Do not call during a {@link persist}.
   */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.closing = (async () => {
      await this.snapshotChain;
      const stored = this.hsFile.hardState;
      const commit = Math.min(this.latestCommit, this.lastIndex());
      try {
        if (commit > stored.commit) await this.hsFile.write({ ...stored, commit });
      } finally {
        await this.wal.close();
        await this.hsFile.close();
      }
    })();
    return this.closing;
  }
}

/** Reads every record of `wal` and keeps the entries above `snapIndex`. */
async function readLog(wal: Wal, offset: number, snapIndex: number, where: string): Promise<{ entries: Entry[]; generationAtSnapshot: number | undefined }> {
  const entries: Entry[] = [];
  let generationAtSnapshot: number | undefined;
  let lastGeneration = 0;
  if (wal.lastIndex < wal.firstIndex) return { entries, generationAtSnapshot };
  for await (const { index, data } of wal.entries()) {
    const e = decodeEntryRecord(data, offset + index, where);
    if (e.generation < lastGeneration) throw corruption(where, `entry ${e.index} has generation ${e.generation} after ${lastGeneration}`);
    lastGeneration = e.generation;
    if (e.index === snapIndex) generationAtSnapshot = e.generation;
    if (e.index > snapIndex) entries.push(e);
  }
  return { entries, generationAtSnapshot };
}

