/**
 * The typed face of the native write-ahead log.
 *
 * Appends are copied into a native staging buffer and written by one native
 * writer thread per log: it takes everything queued, writes it with one
 * `pwrite`, syncs once and settles the whole batch with one call into JS
 * (group commit, no timer). The JS thread never waits for the disk.
 *
 * @packageDocumentation
 */
import { EventEmitter } from 'node:events';
import { open as openFile, readdir, stat } from 'node:fs/promises';
import { makeDirectories } from './mkdirp';
import * as path from 'node:path';
import { ErrorCodes, TidemarkError, type TidemarkErrorCode } from '../errors';
import { binding, type NativeBinding, type NativeError, type NativeInspection, type NativeLog } from './binding';
import { describe, IO_MODE_CODES, resolveWalOptions, SYNC_MODE_CODES, type ResolvedWalOptions, type SyncMode, type WalOptions } from './options';

export type { ResolvedWalOptions, SyncMode, WalOptions } from './options';

/** Bytes the native staging queue holds (native/limits.h kStagingBytesMax): one appendMany must fit. */
const STAGING_BYTES_MAX = 2 ** 30;

/**
 * appendMany packs records into one buffer (one crossing into native code) up
 * to this many payload bytes and records; larger batches pass the array as is
 * (per-record N-API costs are small next to copying big records twice).
 * The packing buffer is kept for reuse, so this also bounds what a Wal holds.
 */
const PACK_BYTES_MAX = 4 * 1024 * 1024;
const PACK_RECORDS_MAX = 1 << 20;

const BUFFER_PROTOTYPE: object = Buffer.prototype;
const UINT8ARRAY_PROTOTYPE: object = Uint8Array.prototype;

/**
 * `data.byteLength`, fast: V8 (Node 20) does not inline the `byteLength` getter
 * (~40 ns a call) but does inline `length`, which for a Buffer or a plain
 * Uint8Array (one byte per element) is the same number. Subclasses might
 * redefine `length`: they get `byteLength`.
 */
function byteLengthOf(data: Uint8Array): number {
  const proto: unknown = Object.getPrototypeOf(data);
  return proto === BUFFER_PROTOTYPE || proto === UINT8ARRAY_PROTOTYPE ? data.length : data.byteLength;
}

/**
 * The element count of a typed array, from the intrinsic `length` getter:
 * for a Uint8Array (a Buffer, a subclass) that is its byte length, whatever a
 * subclass defines as `length`. Called directly it costs about a third of
 * `byteLengthOf` (no prototype lookup, which V8 does in the runtime here).
 */
const TYPED_ARRAY_LENGTH = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype) as object, 'length')?.get as (
  this: Uint8Array,
) => number;
function typedArrayLength(data: Uint8Array): number {
  return TYPED_ARRAY_LENGTH.call(data);
}

/**
 * What `repairTail` dropped at open ({@link WalOptions.repairTail}): the last
 * batch of one segment, whose damage recovery could not tell from a torn write.
 */
export interface WalTailRepair {
  /** The segment file. */
  path: string;
  /** Where the dropped batch started in it. */
  offset: number;
  /** The first dropped index (the log now ends at `firstIndex - 1`). */
  firstIndex: number;
  /** The last dropped index; `null` when the batch header was unreadable (then: from `firstIndex` on). */
  lastIndex: number | null;
  /** The `TM_CORRUPTION` verdict the open would have failed with. */
  reason: string;
}

/** One record, as {@link Wal.entries} yields it. */
export interface WalEntry {
  /** The record's index (1-based, consecutive). */
  index: number;
  /**
   * The record's bytes; the caller owns them (no one else writes them). Entries
   * of one read-ahead chunk (up to 1 MiB) may share one underlying ArrayBuffer:
   * copy small records you keep for long to let the chunk be collected.
   */
  data: Buffer;
}

/** What {@link Wal.entries} iterates: an inclusive range of indexes, and how. */
export interface WalRange {
  /** First index; default `wal.firstIndex`. */
  from?: number;
  /**
   * Last index; default `wal.lastIndex` when the iteration starts (with
   * `follow`: no end). Without `follow` it may not be above `lastIndex`.
   */
  to?: number;
  /** Newest first: from `to` down to `from`; default `false`. Not with `follow`. */
  reverse?: boolean;
  /** Yield at most this many entries (a non-negative integer); default no limit. */
  limit?: number;
  /**
   * A live tail: after the last record, wait for new durable appends and yield
   * them as they are acknowledged; default `false`. The iteration ends (done) when
   * the log is closed or `to` is reached; it rejects `TM_OUT_OF_RANGE` when a
   * `truncateAfter` cuts records it already yielded. A waiting tail keeps
   * nothing alive: like any pending promise it does not stop the process from exiting.
   */
  follow?: boolean;
  /** Aborting it makes the iteration reject with `signal.reason` (at once, also while a tail waits). */
  signal?: AbortSignal;
}

const RANGE_KEYS: readonly string[] = ['from', 'to', 'reverse', 'limit', 'follow', 'signal'];

/** Where a read-only open found damage ({@link Wal.damage}). */
export interface WalDamage {
  /** The damaged segment file. */
  path: string;
  /** Byte offset of the damage in `path`. */
  offset: number;
  /** The first index that cannot be read (`lastIndex + 1`): records before it all verified. */
  index: number;
  /** What recovery found there (the `TM_CORRUPTION` message). */
  reason: string;
}

/**
 * Events of a {@link Wal} (it is an `EventEmitter`):
 * - `'poisoned'` `(error)`: a write or sync failed; every later append rejects
 *   `TM_POISONED` (promise 4). Emitted once, with the first `TM_POISONED` error
 *   (carrying the original errno). A clean `TM_NOSPC` rejection is not poisoning.
 * - `'close'` `()`: the log is closed (after the `close()` promise resolves).
 */
export interface WalEvents {
  poisoned: [error: TidemarkError];
  close: [];
}

/** A live tail (entries with follow) waiting for the log to move. */
interface Follower {
  next: number;
  /** Set when a truncateAfter(cut) dropped records this tail yielded. */
  cut: number | undefined;
  wake: (() => void) | undefined;
}

/** Files a log directory may hold (native/segment.h, recovery.cc): anything else is refused at open. */
function isLogFile(name: string): boolean {
  return (
    /^\d{20}\.wal$/.test(name) ||
    name === 'LOCK' ||
    name === 'TRUNCATE' ||
    name === 'spare.wal.ready' ||
    name.endsWith('.tmp') ||
    name === 'lost+found' // a filesystem's root, used as the log directory
  );
}

/**
 * A histogram with fixed power-of-two buckets: bucket `i` counts values in
 * `[lowerBounds[i], lowerBounds[i + 1] - 1]`, the last bucket everything above.
 */
export interface WalHistogram {
  lowerBounds: number[];
  counts: number[];
}

/**
 * Counters of one open log, since it was opened: every `Wal.open` starts them
 * at zero (they are not stored in the log); `segments` is the current count.
 * Cheap to read (atomics).
 */
export interface WalStats {
  /** Records made durable. */
  appends: number;
  /** Batches written (one write per batch, more only across a segment rotation). */
  batches: number;
  /** Syncs: fdatasync calls, or O_DSYNC/O_DIRECT writes. 0 with `sync: 'none'`. */
  syncs: number;
  /** Records per batch. */
  batchSize: WalHistogram;
  /** Sync latency in microseconds (fdatasync, or the whole O_DSYNC/O_DIRECT write). */
  syncLatencyUs: WalHistogram;
  /** Bytes written to segments (frames, padding, segment headers). */
  bytesWritten: number;
  /** Of those, padding written to end batches on a block boundary. */
  paddingBytes: number;
  /** Segment files in the log. */
  segments: number;
}

/** Payload bytes one range read fetches from native code at a time. */
const READ_CHUNK_BYTES = 1024 * 1024;

function isIndex(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

const CODES = new Set<string>(Object.values(ErrorCodes));

function toError(e: NativeError | undefined): TidemarkError {
  if (e === undefined) return new TidemarkError(ErrorCodes.IO, 'unknown native error');
  const code = (CODES.has(e.code) ? e.code : ErrorCodes.IO) as TidemarkErrorCode;
  let message = e.message;
  if (e.path !== undefined) message += ` (${e.path}${e.offset !== undefined ? ` at offset ${e.offset}` : ''})`;
  return new TidemarkError(code, message, {
    ...(e.errno !== undefined ? { errno: e.errno } : {}),
    ...(e.errnoNumber !== undefined ? { errnoNumber: e.errnoNumber } : {}),
    ...(e.syscall !== undefined ? { syscall: e.syscall } : {}),
    ...(e.path !== undefined ? { path: e.path } : {}),
    ...(e.offset !== undefined ? { offset: e.offset } : {}),
  });
}

function histogram(counts: number[], firstLowerBound: number): WalHistogram {
  return { lowerBounds: counts.map((_, i) => (i === 0 ? firstLowerBound : 2 ** i)), counts };
}

/**
 * A durable, segmented write-ahead log in one directory.
 *
 * ```ts
 * const wal = await Wal.open('/var/lib/app/wal');
 * const index = await wal.append(Buffer.from('hello'));   // durable when it resolves
 * const data = await wal.read(index);
 * await wal.close();
 * ```
 *
 * It is an `EventEmitter` of {@link WalEvents} (`'poisoned'`, `'close'`) and
 * async-disposable: `await using wal = await Wal.open(dir)` closes it.
 */
export class Wal extends EventEmitter<WalEvents> {
  readonly #native: NativeLog;
  readonly #dir: string;
  readonly #options: Readonly<ResolvedWalOptions>;
  #firstIndex: number;
  #lastIndex: number;
  readonly #tailRepair: WalTailRepair | undefined;
  // Pending appends, in ticket order: ticket of #resolves[k] is #settled + 1 + (k - #head).
  #resolves: Array<(index: number) => void> = [];
  #rejects: Array<(err: TidemarkError) => void> = [];
  #indexes: number[] = [];
  #head = 0;
  #ticket = 0;
  #settled = 0;
  // Pending truncations; `cut` is truncateAfter's index (live tails above it are told).
  #commands = new Map<number, { resolve: () => void; reject: (err: TidemarkError) => void; cut?: number }>();
  // Settles (never rejects) once the latest truncation issued so far has settled;
  // undefined when none is pending. Reads and iterations issued after a
  // truncation wait for it, so they see its result (the writer settles
  // commands in the order they were issued).
  #truncationsSettled: Promise<void> | undefined;
  // appendMany's packing scratch (payloads back to back, and their lengths); copied
  // into the native staging buffer before appendPacked returns, so reused at once.
  #pack = new Uint8Array(0);
  #packLens = new Uint32Array(0);
  #refed = false;
  #closing = false;
  #closed: Promise<void> | undefined;
  #onClosed: (() => void) | undefined;
  // Reports with `ack` not yet acknowledged to the writer (native/log.h
  // kGateReleaseBytes): acknowledged from setImmediate, i.e. after the
  // microtasks the resolutions started (and the appends they issued) have run.
  #unacked = 0;
  readonly #ack = (): void => {
    const n = this.#unacked;
    this.#unacked = 0;
    this.#native.settled(n);
  };

  // io_uring mode (native/log_uring.cc): the calls of a turn are submitted from a
  // microtask (one batch in flight at a time), and again after every report.
  readonly #uring: boolean;
  #kickPending = false;
  readonly #flush = (): void => {
    this.#kickPending = false;
    this.#native.flush();
  };

  #damage: WalDamage | null = null;
  #poisonedBy: TidemarkError | undefined;
  readonly #followers = new Set<Follower>();

  private constructor(native: NativeLog, dir: string, options: ResolvedWalOptions) {
    super();
    this.#native = native;
    this.#dir = dir;
    this.#options = Object.freeze({ ...options });
    this.#uring = typeof native.io === 'function' && native.io() === 'uring';
    this.#firstIndex = native.firstIndex();
    this.#lastIndex = native.lastIndex();
    const repair = native.tailRepair();
    this.#tailRepair = repair === undefined ? undefined : Object.freeze({ ...repair });
  }

  /**
   * Opens (creating if needed) the log in `dir`: takes its lock, recovers it
   * (verifying every record, repairing a torn tail) and starts its writer.
   * With `readOnly`, see {@link WalOptions.readOnly}: no lock, no writes, damage
   * reported in {@link Wal.damage}.
   *
   * @throws `TM_INVALID_ARGUMENT` for bad options, a directory holding a file
   *   that is not a log's (named in the message), a missing log with
   *   `createIfMissing: false` or `readOnly`, or an existing one with
   *   `errorIfExists`; `TM_IO` (`EEXIST`) for a path that is a file; `TM_LOCKED` when another
   *   writer (process or open in this process) holds the directory,
   *   `TM_CORRUPTION` (with `path` and `offset`) when a record is damaged
   *   anywhere but the unacknowledged tail, `TM_DIRECT_UNSUPPORTED`, `TM_IO`.
   */
  static open(dir: string, options?: WalOptions): Promise<Wal> {
    return openWal(binding(), dir, options);
  }

  /** @internal Opens through a given binding (the test-only faults addon). */
  static async _openWith(native: NativeBinding, dir: string, options?: WalOptions, fromSegment?: number): Promise<Wal> {
    if (typeof dir !== 'string' || dir.length === 0) {
      throw TidemarkError.invalidArgument(`Wal.open: dir must be a non-empty string path, got ${describe(dir)}`);
    }
    const resolved = resolveWalOptions(options);
    const abs = path.resolve(dir);
    const exists = await checkLogDir(abs, resolved);
    let created: string | undefined;
    try {
      if (!exists) created = await makeDirectories(abs);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new TidemarkError(ErrorCodes.IO, `Wal.open: cannot create directory ${abs}: ${e.message}`, {
        ...(e.code !== undefined ? { errno: e.code } : {}),
        syscall: 'mkdir',
        path: abs,
        cause: err,
      });
    }
    if (created !== undefined) await syncCreatedDirs(created, abs);
    let wal: Wal | undefined;
    let handle: NativeLog;
    try {
      handle = await native.openLog(
        abs,
        SYNC_MODE_CODES[resolved.sync],
        resolved.segmentBytes,
        resolved.maxRecordBytes,
        resolved.busyPollMicros,
        (d, f, first, last, failure, commands, closed, ack) => {
          try {
            wal?._onReport(d, f, first, last, failure, commands, closed, ack);
          } catch (err) {
            // A bug here must not vanish inside the native call: surface it as uncaught.
            queueMicrotask(() => {
              throw err;
            });
          }
        },
        resolved.readOnly,
        fromSegment ?? 0,
        resolved.repairTail,
        IO_MODE_CODES[resolved.io],
        process.env.TIDEMARK_URING_PROBE_FAIL === '1',
      );
    } catch (err) {
      throw toError(err as NativeError);
    }
    wal = new Wal(handle, abs, resolved);
    if (resolved.readOnly) {
      const found = handle.inspect().damage;
      if (found !== null) {
        wal.#damage = { path: found.path ?? abs, offset: found.offset ?? 0, index: wal.#lastIndex + 1, reason: found.message };
      }
    }
    return wal;
  }

  /**
   * @internal What the native log holds (`tidemark wal verify`): its segments,
   * a torn tail a read-only open left in place, the damage it found.
   */
  _inspect(): NativeInspection {
    return this.#native.inspect();
  }

  /**
   * Read-only opens: where recovery found damage (`TM_CORRUPTION`), or `null`.
   * The log then ends just before it: records `firstIndex..lastIndex` are
   * readable, `damage.index` (`lastIndex + 1`) is the first that is not. Always
   * `null` for a writable open (damage fails the open instead).
   */
  get damage(): WalDamage | null {
    return this.#damage;
  }

  /** Whether this log was opened with `readOnly`. */
  get readOnly(): boolean {
    return this.#options.readOnly;
  }

  /** The directory of this log (absolute). */
  get dir(): string {
    return this.#dir;
  }

  /** The options in effect (defaults applied). */
  /**
   * The path this log's appends really take: `'uring'` (io_uring submitted from
   * the JS thread) or `'thread'` (the native writer thread). With `io: 'auto'` it
   * says whether the probe at open succeeded; read-only logs say `'thread'`.
   */
  get io(): 'uring' | 'thread' {
    return this.#uring ? 'uring' : 'thread';
  }

  /** @internal io_uring mode: schedule the submission of what this turn queued. */
  #kick(): void {
    if (!this.#uring || this.#kickPending) return;
    this.#kickPending = true;
    queueMicrotask(this.#flush);
  }

  get options(): Readonly<ResolvedWalOptions> {
    return this.#options;
  }

  /**
   * What `repairTail` dropped when this log was opened (see {@link WalOptions.repairTail}),
   * or `undefined` when it dropped nothing (or was not asked for).
   */
  get tailRepair(): WalTailRepair | undefined {
    return this.#tailRepair;
  }

  /** The lowest index still in the log (1 for a new log; raised by {@link truncateBefore}). */
  get firstIndex(): number {
    return this.#firstIndex;
  }

  /** The highest durable index; `firstIndex - 1` when the log is empty (0 for a new log). */
  get lastIndex(): number {
    return this.#lastIndex;
  }

  /**
   * Appends one record. Resolves with its index once it, and everything before
   * it, is on stable storage (per the sync mode).
   *
   * @param data - the record's bytes (copied before this returns; reuse the buffer freely)
   * @throws (rejects) `TM_INVALID_ARGUMENT` (not a Uint8Array, or larger than
   *   `maxRecordBytes`: nothing written), `TM_CLOSED`, `TM_NOSPC` (batch rejected,
   *   nothing of it durable, the log stays usable), `TM_POISONED` (an earlier write
   *   or sync failed; carries the original errno), `TM_BUSY` (over 1 GiB queued, or
   *   errno `ENOMEM`: no memory for the staging or write buffer; nothing written, the log stays usable).
   */
  append(data: Uint8Array): Promise<number> {
    if (!(data instanceof Uint8Array)) {
      return Promise.reject(TidemarkError.invalidArgument(`append: data must be a Uint8Array (or Buffer), got ${describe(data)}`));
    }
    if (byteLengthOf(data) > this.#options.maxRecordBytes) {
      return Promise.reject(
        TidemarkError.invalidArgument(
          `append: record is ${data.byteLength} bytes, above maxRecordBytes (${this.#options.maxRecordBytes}); nothing was written`,
        ),
      );
    }
    if (this.#closing) return Promise.reject(TidemarkError.closed('log'));
    if (this.#options.readOnly) return Promise.reject(readOnlyError('append'));
    const index = this.#native.append(data);
    if (index < 0) return Promise.reject(toError(this.#native.lastError()));
    return this.#enqueue(index);
  }

  /**
   * Appends several records as one batch, with one promise. Resolves with the
   * last record's index when all are durable; the first is `last - datas.length + 1`.
   *
   * @param datas - a non-empty array of Uint8Array records, at most 1 GiB in all
   *   (each record framed: 16-byte header, payload padded to 8 bytes)
   * @throws (rejects) as {@link append}; `TM_INVALID_ARGUMENT` names the bad element,
   *   or the staging limit when the whole batch is above it (it could never be queued)
   */
  appendMany(datas: Uint8Array[]): Promise<number> {
    if (!Array.isArray(datas)) {
      return Promise.reject(TidemarkError.invalidArgument(`appendMany: datas must be an array of Uint8Array, got ${describe(datas)}`));
    }
    if (datas.length === 0) {
      return Promise.reject(TidemarkError.invalidArgument('appendMany: datas must hold at least one record, got an empty array'));
    }
    const max = this.#options.maxRecordBytes;
    const count = datas.length;
    // One pass: check each record, and pack small batches back to back as it
    // goes (one crossing into native code is several times cheaper than two
    // N-API calls per record). Packing stops once the batch is too big for it;
    // a batch that fails a check is simply not sent (the buffer is scratch).
    let packing = count <= PACK_RECORDS_MAX;
    const lengths = packing ? this.#packLengths(count) : this.#packLens;
    let data = this.#pack;
    let payload = 0;
    let framed = 0;
    for (let i = 0; i < count; i++) {
      const d = datas[i];
      if (!(d instanceof Uint8Array)) {
        return Promise.reject(TidemarkError.invalidArgument(`appendMany: datas[${i}] must be a Uint8Array (or Buffer), got ${describe(d)}`));
      }
      const n = typedArrayLength(d);
      if (n > max) {
        return Promise.reject(
          TidemarkError.invalidArgument(`appendMany: datas[${i}] is ${n} bytes, above maxRecordBytes (${max}); nothing was written`),
        );
      }
      if (packing) {
        if (payload + n > PACK_BYTES_MAX) {
          packing = false;
        } else {
          if (payload + n > data.length) data = this.#growPack(payload + n, payload);
          data.set(d, payload);
          lengths[i] = n;
        }
      }
      payload += n;
      framed += 16 + ((n + 7) & ~7); // frameBytes(n); n <= 256 MiB
    }
    if (framed > STAGING_BYTES_MAX) {
      return Promise.reject(
        TidemarkError.invalidArgument(
          `appendMany: the batch is ${framed} bytes framed (${datas.length} records), above the staging limit of ${STAGING_BYTES_MAX} bytes (1 GiB); split it into smaller appendMany calls; nothing was written`,
        ),
      );
    }
    if (this.#closing) return Promise.reject(TidemarkError.closed('log'));
    if (this.#options.readOnly) return Promise.reject(readOnlyError('appendMany'));
    // Small records were packed above; larger batches pass the array as is
    // (per-record N-API costs are small next to copying big records twice).
    const last = packing ? this.#native.appendPacked(data, lengths, count) : this.#native.appendMany(datas);
    if (last < 0) return Promise.reject(toError(this.#native.lastError()));
    return this.#enqueue(last);
  }

  /** Grows appendMany's packing buffer to at least `bytes`, keeping its first `used` bytes. */
  #growPack(bytes: number, used: number): Uint8Array<ArrayBuffer> {
    const grown = new Uint8Array(Math.min(Math.max(bytes, 2 * this.#pack.length), PACK_BYTES_MAX));
    if (used > 0) grown.set(this.#pack.subarray(0, used));
    this.#pack = grown;
    return grown;
  }

  /** The reusable lengths array of appendMany, at least `count` long. */
  #packLengths(count: number): Uint32Array {
    if (this.#packLens.length < count) this.#packLens = new Uint32Array(Math.min(Math.max(count, 2 * this.#packLens.length), PACK_RECORDS_MAX));
    return this.#packLens;
  }

  #enqueue(index: number): Promise<number> {
    this.#ticket++;
    this.#kick();
    if (!this.#refed) {
      this.#refed = true;
      this.#native.ref();
    }
    return new Promise<number>((resolve, reject) => {
      this.#resolves.push(resolve);
      this.#rejects.push(reject);
      this.#indexes.push(index);
    });
  }

  /**
   * Reads record `index`. Ordered after every truncation issued before it: it
   * waits for them to settle, then reads the log they left (a record dropped by
   * an earlier `truncateAfter` is `TM_OUT_OF_RANGE`, never its old bytes).
   *
   * @returns a Buffer copy the caller owns
   * @throws (rejects) `TM_INVALID_ARGUMENT` (not a non-negative integer),
   *   `TM_OUT_OF_RANGE` (outside `[firstIndex, lastIndex]`), `TM_CLOSED`,
   *   `TM_CORRUPTION` (checksum mismatch, with path and offset), `TM_IO`
   */
  async read(index: number): Promise<Buffer> {
    if (!isIndex(index)) {
      throw TidemarkError.invalidArgument(`read: index must be a non-negative safe integer, got ${describe(index)}`);
    }
    if (this.#closing) throw TidemarkError.closed('log');
    // Ordered after the truncations issued before it: it sees the log they leave.
    if (this.#truncationsSettled !== undefined) await this.#truncationsSettled;
    if (index < this.#firstIndex || index > this.#lastIndex) {
      throw TidemarkError.outOfRange(`read: index ${index} is outside [${this.#firstIndex}, ${this.#lastIndex}]`);
    }
    try {
      return await this.#native.read(index);
    } catch (err) {
      throw toError(err as NativeError);
    }
  }

  /**
   * Iterates records `from..to` (inclusive), in order (newest first with
   * `reverse`), reading ahead in chunks; `limit` caps how many; `follow` turns
   * it into a live tail of durable appends; `signal` aborts it (see {@link WalRange}).
   * Defaults: the whole log as it is when called.
   * Like {@link read}, ordered after the truncations issued before it: the first
   * step waits for them and rejects `TM_OUT_OF_RANGE` when they dropped part of the range.
   *
   * ```ts
   * for await (const e of wal.entries({ from: wal.lastIndex + 1, follow: true, signal })) handle(e);
   * for await (const e of wal.entries({ reverse: true, limit: 10 })) {}   // the last ten, newest first
   * ```
   *
   * @throws `TM_INVALID_ARGUMENT` (bad range or option, `reverse` with `follow`, or `from` more than one past `to`; thrown at once), `TM_OUT_OF_RANGE`
   *   (`from` below `firstIndex`, or `to` above `lastIndex` without `follow`, or `from` above `lastIndex + 1`, thrown at once);
   *   the iteration rejects `TM_CLOSED` (not with `follow`: it ends), `TM_OUT_OF_RANGE` (truncated meanwhile),
   *   `TM_CORRUPTION`, `TM_IO`, or `signal.reason` once aborted.
   */
  entries(range: WalRange = {}): AsyncIterableIterator<WalEntry> {
    if (range === null || typeof range !== 'object' || Array.isArray(range)) {
      throw TidemarkError.invalidArgument(`entries: range must be an object { from?, to?, reverse?, limit?, follow?, signal? }, got ${describe(range)}`);
    }
    for (const key of Object.keys(range)) {
      if (!RANGE_KEYS.includes(key)) {
        throw TidemarkError.invalidArgument(`entries: unknown range key "${key}"; allowed keys are ${RANGE_KEYS.join(', ')}`);
      }
    }
    if (range.from !== undefined && !isIndex(range.from)) {
      throw TidemarkError.invalidArgument(`entries: from must be a non-negative safe integer, got ${describe(range.from)}`);
    }
    if (range.to !== undefined && !isIndex(range.to)) {
      throw TidemarkError.invalidArgument(`entries: to must be a non-negative safe integer, got ${describe(range.to)}`);
    }
    for (const key of ['reverse', 'follow'] as const) {
      if (range[key] !== undefined && typeof range[key] !== 'boolean') {
        throw TidemarkError.invalidArgument(`entries: ${key} must be true or false, got ${describe(range[key])}`);
      }
    }
    if (range.limit !== undefined && !isIndex(range.limit)) {
      throw TidemarkError.invalidArgument(`entries: limit must be a non-negative safe integer, got ${describe(range.limit)}`);
    }
    if (range.signal !== undefined && !(range.signal instanceof AbortSignal)) {
      throw TidemarkError.invalidArgument(`entries: signal must be an AbortSignal, got ${describe(range.signal)}`);
    }
    if (range.reverse === true && range.follow === true) {
      throw TidemarkError.invalidArgument('entries: reverse and follow cannot be combined (a live tail runs forward)');
    }
    if (this.#closing) throw TidemarkError.closed('log');
    const limit = range.limit ?? Number.POSITIVE_INFINITY;
    const signal = range.signal;
    const from = range.from ?? this.#firstIndex;
    const follow = range.follow === true;
    const to = range.to ?? (follow ? Number.POSITIVE_INFINITY : this.#lastIndex);
    // An empty range is written from = to + 1 (e.g. { from: lastIndex + 1 } on a caught-up reader);
    // anything further apart is a caller's mistake, not an empty answer.
    if (from > to + 1) {
      if (range.to === undefined) {
        throw TidemarkError.outOfRange(`entries: from ${from} is above lastIndex + 1 (${this.#lastIndex + 1})`);
      }
      throw TidemarkError.invalidArgument(`entries: from ${from} is more than one past to ${to}; use from <= to, or from = to + 1 for an empty range`);
    }
    if (from <= to) {
      if (from < this.#firstIndex) {
        throw TidemarkError.outOfRange(`entries: from ${from} is below firstIndex ${this.#firstIndex}`);
      }
      if (follow) {
        if (from > this.#lastIndex + 1) {
          throw TidemarkError.outOfRange(`entries: from ${from} is above lastIndex + 1 (${this.#lastIndex + 1})`);
        }
        return this.#follow(from, to, limit, signal);
      }
      if (to > this.#lastIndex) throw TidemarkError.outOfRange(`entries: to ${to} is above lastIndex ${this.#lastIndex}`);
    }
    const truncations = this.#truncationsSettled;
    const iterate = (): AsyncIterableIterator<WalEntry> =>
      range.reverse === true ? this.#iterateReverse(from, to, limit, signal) : this.#iterate(from, to, limit, signal);
    return truncations === undefined || from > to ? iterate() : this.#afterTruncations(truncations, from, to, iterate);
  }

  /** Ordered after the truncations issued before entries(): checked against the log they leave. */
  async *#afterTruncations(
    truncations: Promise<void>,
    from: number,
    to: number,
    iterate: () => AsyncIterableIterator<WalEntry>,
  ): AsyncIterableIterator<WalEntry> {
    await truncations;
    if (from < this.#firstIndex || to > this.#lastIndex) {
      throw TidemarkError.outOfRange(
        `entries: ${from}..${to} is no longer inside [${this.#firstIndex}, ${this.#lastIndex}] after a truncation issued before entries()`,
      );
    }
    yield* iterate();
  }

  async #readChunk(from: number, to: number): Promise<[Buffer, number[], number]> {
    try {
      return await this.#native.readRange(from, to, READ_CHUNK_BYTES);
    } catch (err) {
      throw toError(err as NativeError);
    }
  }

  async *#iterate(from: number, to: number, limit: number, signal: AbortSignal | undefined): AsyncIterableIterator<WalEntry> {
    let next = from;
    let left = limit;
    while (next <= to && left > 0) {
      signal?.throwIfAborted();
      if (this.#closing) throw TidemarkError.closed('log');
      const [buf, lengths] = await this.#readChunk(next, to);
      let offset = 0;
      for (const length of lengths) {
        if (left === 0) return;
        signal?.throwIfAborted();
        yield { index: next, data: buf.subarray(offset, offset + length) };
        offset += length;
        next++;
        left--;
      }
    }
  }

  /** Newest first: reads windows of about one chunk forward, yields each backwards. */
  async *#iterateReverse(from: number, to: number, limit: number, signal: AbortSignal | undefined): AsyncIterableIterator<WalEntry> {
    let hi = to;
    let left = limit;
    let step = 64;
    while (hi >= from && left > 0) {
      signal?.throwIfAborted();
      if (this.#closing) throw TidemarkError.closed('log');
      const lo = Math.max(from, hi - step + 1, hi - left + 1);
      const window: WalEntry[] = [];
      let bytes = 0;
      for (let next = lo; next <= hi; ) {
        const [buf, lengths] = await this.#readChunk(next, hi);
        let offset = 0;
        for (const length of lengths) {
          window.push({ index: next, data: buf.subarray(offset, offset + length) });
          offset += length;
          bytes += length;
          next++;
        }
      }
      for (let k = window.length - 1; k >= 0 && left > 0; k--) {
        signal?.throwIfAborted();
        yield window[k] as WalEntry;
        left--;
      }
      // Aim the next window at about one read chunk of payload.
      step = Math.max(1, Math.min(65536, Math.floor((step * READ_CHUNK_BYTES) / Math.max(bytes + 16 * window.length, 1))));
      hi = lo - 1;
    }
  }

  /** A live tail: yields what is durable, then waits for the writer's next report. */
  async *#follow(from: number, to: number, limit: number, signal: AbortSignal | undefined): AsyncIterableIterator<WalEntry> {
    const f: Follower = { next: from, cut: undefined, wake: undefined };
    this.#followers.add(f);
    try {
      let left = limit;
      while (left > 0 && f.next <= to) {
        signal?.throwIfAborted();
        if (f.cut !== undefined) {
          throw TidemarkError.outOfRange(
            `entries: truncateAfter(${f.cut}) dropped records this live tail had yielded (up to ${f.next - 1})`,
          );
        }
        if (this.#closing) return;
        if (f.next > this.#lastIndex) {
          await this.#waitForTail(f, signal);
          continue;
        }
        const [buf, lengths] = await this.#readChunk(f.next, Math.min(to, this.#lastIndex));
        let offset = 0;
        for (const length of lengths) {
          if (left === 0 || f.cut !== undefined) break;
          signal?.throwIfAborted();
          const index = f.next++;
          left--;
          yield { index, data: buf.subarray(offset, offset + length) };
          offset += length;
        }
      }
    } finally {
      this.#followers.delete(f);
    }
  }

  #waitForTail(f: Follower, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        f.wake = undefined;
        reject(signal?.reason);
      };
      f.wake = () => {
        f.wake = undefined;
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #wakeFollowers(): void {
    for (const f of this.#followers) f.wake?.();
  }

  /**
   * Drops records `index + 1 .. lastIndex` (a follower's conflicting tail).
   * Durable when it resolves; the next append gets `index + 1`. Appends made
   * before this call are written first, in order.
   *
   * @param index - in `[firstIndex - 1, last assigned index]`
   * @throws (rejects) `TM_INVALID_ARGUMENT`, `TM_OUT_OF_RANGE`, `TM_CLOSED`,
   *   `TM_POISONED`, `TM_IO` (the log is then poisoned)
   */
  truncateAfter(index: number): Promise<void> {
    if (!isIndex(index)) {
      return Promise.reject(TidemarkError.invalidArgument(`truncateAfter: index must be a non-negative safe integer, got ${describe(index)}`));
    }
    if (this.#closing) return Promise.reject(TidemarkError.closed('log'));
    if (this.#options.readOnly) return Promise.reject(readOnlyError('truncateAfter'));
    return this.#truncation(this.#native.truncateAfter(index), index);
  }

  /**
   * Drops whole sealed segments whose records are all below `index` (the
   * low-water mark, e.g. after a snapshot). Records at or above `index` stay;
   * some below it may stay too (the segment holding `index`, and the active
   * segment, are never removed). Durable when it resolves; `firstIndex` moves up.
   *
   * @param index - at most the next index to be assigned
   * @throws (rejects) `TM_INVALID_ARGUMENT`, `TM_OUT_OF_RANGE`, `TM_CLOSED`, `TM_POISONED`, `TM_IO`
   */
  truncateBefore(index: number): Promise<void> {
    if (!isIndex(index)) {
      return Promise.reject(TidemarkError.invalidArgument(`truncateBefore: index must be a non-negative safe integer, got ${describe(index)}`));
    }
    if (this.#closing) return Promise.reject(TidemarkError.closed('log'));
    if (this.#options.readOnly) return Promise.reject(readOnlyError('truncateBefore'));
    return this.#truncation(this.#native.truncateBefore(index));
  }

  /** A queued truncation: later reads and iterations wait for it to settle. */
  #truncation(id: number, cut?: number): Promise<void> {
    const p = this.#command(id, cut);
    if (id < 0) return p;
    const settled = p.then(
      () => undefined,
      () => undefined,
    );
    this.#truncationsSettled = settled;
    void settled.then(() => {
      if (this.#truncationsSettled === settled) this.#truncationsSettled = undefined;
    });
    return p;
  }

  #command(id: number, cut?: number): Promise<void> {
    if (id < 0) return Promise.reject(toError(this.#native.lastError()));
    this.#kick();
    if (!this.#refed) {
      this.#refed = true;
      this.#native.ref();
    }
    return new Promise<void>((resolve, reject) => {
      this.#commands.set(id, cut === undefined ? { resolve, reject } : { resolve, reject, cut });
    });
  }

  /**
   * A snapshot of the counters of this open (see {@link WalStats}: they start
   * at zero at every `Wal.open`). Works after close too.
   */
  stats(): WalStats {
    const s = this.#native.stats();
    return {
      appends: s.appends,
      batches: s.batches,
      syncs: s.syncs,
      batchSize: histogram(s.batchSize, 1),
      syncLatencyUs: histogram(s.syncLatencyUs, 0),
      bytesWritten: s.bytesWritten,
      paddingBytes: s.paddingBytes,
      segments: s.segments,
    };
  }

  /**
   * Closes the log: later calls reject `TM_CLOSED`; appends already accepted
   * are written and settle (resolve when durable, or reject); then the writer
   * stops and the directory lock is released. Idempotent: every call returns
   * the same promise.
   */
  close(): Promise<void> {
    if (this.#closed !== undefined) return this.#closed;
    this.#closing = true;
    this.#closed = new Promise<void>((resolve) => {
      this.#onClosed = resolve;
    });
    if (!this.#refed) {
      this.#refed = true;
      this.#native.ref();
    }
    this.#native.close();
    this.#kick();
    this.#wakeFollowers();  // live tails end now
    return this.#closed;
  }

  /** @internal One writer iteration's results (native/addon.cc CallJs). */
  _onReport(
    durableTicket: number,
    failedTicket: number,
    firstIndex: number,
    lastIndex: number,
    failure: NativeError | undefined,
    commands: Array<number | NativeError | null> | undefined,
    closed: boolean,
    ack: boolean,
  ): void {
    const moved = this.#lastIndex !== lastIndex || this.#firstIndex !== firstIndex;
    if (!closed) this.#kick();  // io_uring mode: the next batch (or handoff) may start now
    this.#firstIndex = firstIndex;
    this.#lastIndex = lastIndex;
    // First, so nothing below can skip it: the writer waits for it (native/log.h kGateReleaseBytes).
    if (ack && this.#unacked++ === 0) setImmediate(this.#ack);
    while (this.#settled < durableTicket) {
      const k = this.#head++;
      this.#settled++;
      const resolve = this.#resolves[k];
      const index = this.#indexes[k];
      this.#resolves[k] = undefined as unknown as (index: number) => void;
      this.#rejects[k] = undefined as unknown as (err: TidemarkError) => void;
      resolve?.(index ?? 0);
    }
    if (failedTicket > this.#settled) {
      const err = toError(failure);
      if (err.code === ErrorCodes.POISONED) this.#poisoned(err);
      while (this.#settled < failedTicket) {
        const k = this.#head++;
        this.#settled++;
        const reject = this.#rejects[k];
        this.#resolves[k] = undefined as unknown as (index: number) => void;
        this.#rejects[k] = undefined as unknown as (err: TidemarkError) => void;
        reject?.(err);
      }
    }
    if (this.#head > 1024 && this.#head * 2 > this.#resolves.length) {
      this.#resolves.splice(0, this.#head);
      this.#rejects.splice(0, this.#head);
      this.#indexes.splice(0, this.#head);
      this.#head = 0;
    }
    if (commands !== undefined) {
      for (let i = 0; i + 1 < commands.length; i += 2) {
        const id = commands[i] as number;
        const result = commands[i + 1] as NativeError | null;
        const pending = this.#commands.get(id);
        if (pending === undefined) continue;
        this.#commands.delete(id);
        if (result === null) {
          if (pending.cut !== undefined) this.#cutFollowers(pending.cut);
          pending.resolve();
        } else {
          const err = toError(result);
          if (err.code === ErrorCodes.POISONED) this.#poisoned(err);
          pending.reject(err);
        }
      }
    }
    if (moved || closed || commands !== undefined) this.#wakeFollowers();
    if (closed) {
      // Nothing can be pending now; settle defensively anyway.
      const err = TidemarkError.closed('log');
      while (this.#head < this.#rejects.length) {
        const reject = this.#rejects[this.#head++];
        reject?.(err);
      }
      for (const pending of this.#commands.values()) pending.reject(err);
      this.#commands.clear();
      this.#refed = false;
      this.#onClosed?.();
      process.nextTick(() => this.emit('close'));
      return;
    }
    if (this.#refed && this.#settled === this.#ticket && this.#commands.size === 0 && !this.#closing) {
      this.#refed = false;
      this.#native.unref();
    }
  }

  #poisoned(err: TidemarkError): void {
    if (this.#poisonedBy !== undefined) return;
    this.#poisonedBy = err;
    // After the rejections: a listener that throws cannot break the settling above.
    process.nextTick(() => this.emit('poisoned', err));
  }

  /** A truncateAfter(cut) finished: live tails that yielded records above it must stop. */
  #cutFollowers(cut: number): void {
    for (const f of this.#followers) {
      if (f.next - 1 > cut && (f.cut === undefined || cut < f.cut)) f.cut = cut;
    }
  }
}

// `await using wal = await Wal.open(dir)`: closes the log. Defined where the
// runtime has the symbol (Node >= 20.4 / 18.18); older runtimes lack only this.
if (typeof Symbol.asyncDispose === 'symbol') {
  Object.defineProperty(Wal.prototype, Symbol.asyncDispose, {
    value: function asyncDispose(this: Wal): Promise<void> {
      return this.close();
    },
    writable: true,
    configurable: true,
  });
}

// The method's type; the runtime definition is just above.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export interface Wal {
  /** Closes the log (`close()`): `await using wal = await Wal.open(dir)`. Defined on runtimes that have `Symbol.asyncDispose`. */
  [Symbol.asyncDispose](): Promise<void>;
}

function readOnlyError(op: string): TidemarkError {
  return TidemarkError.invalidArgument(`${op}: the log is open read-only (readOnly: true); nothing was written`);
}

/**
 * Checks `dir` before an open (createIfMissing, errorIfExists, readOnly, files
 * that are not a log's); returns whether the directory exists.
 */
async function checkLogDir(dir: string, options: ResolvedWalOptions): Promise<boolean> {
  let names: string[];
  try {
    const st = await stat(dir);
    if (!st.isDirectory()) {
      throw new TidemarkError(ErrorCodes.IO, `Wal.open: cannot create directory ${dir}: a file that is not a directory is there`, {
        errno: 'EEXIST',
        syscall: 'mkdir',
        path: dir,
      });
    }
    names = await readdir(dir);
  } catch (err) {
    if (err instanceof TidemarkError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e.code !== 'ENOENT') {
      throw new TidemarkError(ErrorCodes.IO, `Wal.open: cannot read directory ${dir}: ${e.message}`, {
        ...(e.code !== undefined ? { errno: e.code } : {}),
        path: dir,
        cause: err,
      });
    }
    if (options.readOnly) throw TidemarkError.invalidArgument(`Wal.open: there is no log at ${dir} (the directory does not exist; readOnly never creates one)`);
    if (!options.createIfMissing) {
      throw TidemarkError.invalidArgument(`Wal.open: there is no log at ${dir} (the directory does not exist) and createIfMissing is false`);
    }
    return false;
  }
  const foreign = names.find((n) => !isLogFile(n));
  if (foreign !== undefined) {
    throw new TidemarkError(
      ErrorCodes.INVALID_ARGUMENT,
      `Wal.open: ${dir} holds ${JSON.stringify(foreign)}, which is not a file of a tidemark log; refusing to use the directory as a log ` +
        '(a log directory holds only <20 digits>.wal segments, LOCK, TRUNCATE, spare.wal.ready and *.tmp files)',
      { path: path.join(dir, foreign) },
    );
  }
  const hasLog = names.some((n) => /^\d{20}\.wal$/.test(n));
  if (hasLog && options.errorIfExists) throw TidemarkError.invalidArgument(`Wal.open: a log already exists at ${dir} and errorIfExists is true`);
  if (!hasLog && options.readOnly) throw TidemarkError.invalidArgument(`Wal.open: there is no log at ${dir} (no segment files; readOnly never creates one)`);
  if (!hasLog && !options.createIfMissing) {
    throw TidemarkError.invalidArgument(`Wal.open: there is no log at ${dir} (no segment files) and createIfMissing is false`);
  }
  return true;
}

/** @internal */
export function openWal(native: NativeBinding, dir: string, options?: WalOptions): Promise<Wal> {
  return Wal._openWith(native, dir, options);
}

/**
 * Promise 1 for a directory `mkdir -p` created: makes the entry of every
 * created component (`first` down to `leaf`) durable in its parent by fsyncing
 * each parent, deepest first. The log directory's own entries (its segments)
 * are synced by the native open.
 */
async function syncCreatedDirs(first: string, leaf: string): Promise<void> {
  const parents: string[] = [];
  for (let d = leaf; ; d = path.dirname(d)) {
    const parent = path.dirname(d);
    parents.push(parent);
    if (d === first || parent === d) break;
  }
  for (const p of parents) {
    try {
      const fh = await openFile(p, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new TidemarkError(ErrorCodes.IO, `Wal.open: cannot make the new directory ${first} durable (fsync of ${p}): ${e.message}`, {
        ...(e.code !== undefined ? { errno: e.code } : {}),
        syscall: 'fsync',
        path: p,
        cause: err,
      });
    }
  }
}
