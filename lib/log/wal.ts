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
import { mkdir, open as openFile } from 'node:fs/promises';
import * as path from 'node:path';
import { ErrorCodes, TidemarkError, type TidemarkErrorCode } from '../errors';
import { binding, type NativeBinding, type NativeError, type NativeLog } from './binding';
import { describe, resolveWalOptions, SYNC_MODE_CODES, type ResolvedWalOptions, type SyncMode, type WalOptions } from './options';

export type { SyncMode, WalOptions } from './options';

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

/** Bytes one record takes in a segment: 16-byte header, payload padded to 8 (native/record.h). */
function frameBytes(length: number): number {
  return 16 + Math.ceil(length / 8) * 8;
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

/** An inclusive range of indexes for {@link Wal.entries}. */
export interface WalRange {
  /** First index; default `wal.firstIndex`. */
  from?: number;
  /** Last index; default `wal.lastIndex` when the iteration starts. */
  to?: number;
}

/**
 * A histogram with fixed power-of-two buckets: bucket `i` counts values in
 * `[lowerBounds[i], lowerBounds[i + 1] - 1]`, the last bucket everything above.
 */
export interface WalHistogram {
  lowerBounds: number[];
  counts: number[];
}

/** Counters of one open log; cheap to read (atomics). */
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
 */
export class Wal {
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
  #commands = new Map<number, { resolve: () => void; reject: (err: TidemarkError) => void }>();
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

  private constructor(native: NativeLog, dir: string, options: ResolvedWalOptions) {
    this.#native = native;
    this.#dir = dir;
    this.#options = Object.freeze({ ...options });
    this.#firstIndex = native.firstIndex();
    this.#lastIndex = native.lastIndex();
    const repair = native.tailRepair();
    this.#tailRepair = repair === undefined ? undefined : Object.freeze({ ...repair });
  }

  /**
   * Opens (creating if needed) the log in `dir`: takes its lock, recovers it
   * (verifying every record, repairing a torn tail) and starts its writer.
   *
   * @throws `TM_INVALID_ARGUMENT` for bad options, `TM_LOCKED` when another
   *   writer (process or open in this process) holds the directory,
   *   `TM_CORRUPTION` (with `path` and `offset`) when a record is damaged
   *   anywhere but the unacknowledged tail, `TM_DIRECT_UNSUPPORTED`, `TM_IO`.
   */
  static open(dir: string, options?: WalOptions): Promise<Wal> {
    return openWal(binding(), dir, options);
  }

  /** @internal Opens through a given binding (the test-only faults addon). */
  static async _openWith(native: NativeBinding, dir: string, options?: WalOptions): Promise<Wal> {
    if (typeof dir !== 'string' || dir.length === 0) {
      throw TidemarkError.invalidArgument(`Wal.open: dir must be a non-empty string path, got ${describe(dir)}`);
    }
    const resolved = resolveWalOptions(options);
    const abs = path.resolve(dir);
    let created: string | undefined;
    try {
      created = await mkdir(abs, { recursive: true });
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
        resolved.repairTail,
      );
    } catch (err) {
      throw toError(err as NativeError);
    }
    wal = new Wal(handle, abs, resolved);
    return wal;
  }

  /** The directory of this log (absolute). */
  get dir(): string {
    return this.#dir;
  }

  /** The options in effect (defaults applied). */
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
    let payload = 0;
    let framed = 0;
    for (let i = 0; i < count; i++) {
      const d = datas[i];
      if (!(d instanceof Uint8Array)) {
        return Promise.reject(TidemarkError.invalidArgument(`appendMany: datas[${i}] must be a Uint8Array (or Buffer), got ${describe(d)}`));
      }
      const n = byteLengthOf(d);
      if (n > max) {
        return Promise.reject(
          TidemarkError.invalidArgument(`appendMany: datas[${i}] is ${n} bytes, above maxRecordBytes (${max}); nothing was written`),
        );
      }
      payload += n;
      framed += frameBytes(n);
    }
    if (framed > STAGING_BYTES_MAX) {
      return Promise.reject(
        TidemarkError.invalidArgument(
          `appendMany: the batch is ${framed} bytes framed (${datas.length} records), above the staging limit of ${STAGING_BYTES_MAX} bytes (1 GiB); split it into smaller appendMany calls; nothing was written`,
        ),
      );
    }
    if (this.#closing) return Promise.reject(TidemarkError.closed('log'));
    let last: number;
    if (payload <= PACK_BYTES_MAX && count <= PACK_RECORDS_MAX) {
      // Small records: copying them back to back here and crossing into native
      // code once is several times cheaper than two N-API calls per record.
      const data = this.#packBuffer(payload);
      const lengths = this.#packLengths(count);
      let offset = 0;
      for (let i = 0; i < count; i++) {
        const d = datas[i] as Uint8Array;
        const n = byteLengthOf(d);
        data.set(d, offset);
        lengths[i] = n;
        offset += n;
      }
      last = this.#native.appendPacked(data, lengths, count);
    } else {
      last = this.#native.appendMany(datas);
    }
    if (last < 0) return Promise.reject(toError(this.#native.lastError()));
    return this.#enqueue(last);
  }

  /** The reusable packing buffer of appendMany, at least `bytes` long. */
  #packBuffer(bytes: number): Uint8Array {
    if (this.#pack.byteLength < bytes) this.#pack = new Uint8Array(Math.min(Math.max(bytes, 2 * this.#pack.byteLength), PACK_BYTES_MAX));
    return this.#pack;
  }

  /** The reusable lengths array of appendMany, at least `count` long. */
  #packLengths(count: number): Uint32Array {
    if (this.#packLens.length < count) this.#packLens = new Uint32Array(Math.min(Math.max(count, 2 * this.#packLens.length), PACK_RECORDS_MAX));
    return this.#packLens;
  }

  #enqueue(index: number): Promise<number> {
    this.#ticket++;
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
   * Iterates records `from..to` (inclusive), in order, reading ahead in chunks.
   * Defaults: the whole log as it is when called. Like {@link read}, ordered
   * after the truncations issued before it: the first step waits for them and
   * rejects `TM_OUT_OF_RANGE` when they dropped part of the range.
   *
   * @throws `TM_INVALID_ARGUMENT` (bad range, or `from` more than one past `to`; thrown at once), `TM_OUT_OF_RANGE`
   *   (`from` below `firstIndex` or `to` above `lastIndex`, thrown at once);
   *   the iteration rejects `TM_CLOSED`, `TM_OUT_OF_RANGE` (truncated meanwhile),
   *   `TM_CORRUPTION`, `TM_IO`.
   */
  entries(range: WalRange = {}): AsyncIterableIterator<WalEntry> {
    if (range === null || typeof range !== 'object' || Array.isArray(range)) {
      throw TidemarkError.invalidArgument(`entries: range must be an object { from?, to? }, got ${describe(range)}`);
    }
    for (const key of Object.keys(range)) {
      if (key !== 'from' && key !== 'to') {
        throw TidemarkError.invalidArgument(`entries: unknown range key "${key}"; allowed keys are from, to`);
      }
    }
    if (range.from !== undefined && !isIndex(range.from)) {
      throw TidemarkError.invalidArgument(`entries: from must be a non-negative safe integer, got ${describe(range.from)}`);
    }
    if (range.to !== undefined && !isIndex(range.to)) {
      throw TidemarkError.invalidArgument(`entries: to must be a non-negative safe integer, got ${describe(range.to)}`);
    }
    if (this.#closing) throw TidemarkError.closed('log');
    const from = range.from ?? this.#firstIndex;
    const to = range.to ?? this.#lastIndex;
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
      if (to > this.#lastIndex) throw TidemarkError.outOfRange(`entries: to ${to} is above lastIndex ${this.#lastIndex}`);
    }
    return this.#iterate(from, to, this.#truncationsSettled);
  }

  async *#iterate(from: number, to: number, truncations: Promise<void> | undefined): AsyncIterableIterator<WalEntry> {
    let next = from;
    if (truncations !== undefined && from <= to) {
      // Ordered after the truncations issued before entries(): checked against the log they leave.
      await truncations;
      if (from < this.#firstIndex || to > this.#lastIndex) {
        throw TidemarkError.outOfRange(
          `entries: ${from}..${to} is no longer inside [${this.#firstIndex}, ${this.#lastIndex}] after a truncation issued before entries()`,
        );
      }
    }
    while (next <= to) {
      if (this.#closing) throw TidemarkError.closed('log');
      let chunk: [Buffer, number[], number];
      try {
        chunk = await this.#native.readRange(next, to, READ_CHUNK_BYTES);
      } catch (err) {
        throw toError(err as NativeError);
      }
      const [buf, lengths] = chunk;
      let offset = 0;
      for (const length of lengths) {
        yield { index: next, data: buf.subarray(offset, offset + length) };
        offset += length;
        next++;
      }
    }
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
    return this.#truncation(this.#native.truncateAfter(index));
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
    return this.#truncation(this.#native.truncateBefore(index));
  }

  /** A queued truncation: later reads and iterations wait for it to settle. */
  #truncation(id: number): Promise<void> {
    const p = this.#command(id);
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

  #command(id: number): Promise<void> {
    if (id < 0) return Promise.reject(toError(this.#native.lastError()));
    if (!this.#refed) {
      this.#refed = true;
      this.#native.ref();
    }
    return new Promise<void>((resolve, reject) => {
      this.#commands.set(id, { resolve, reject });
    });
  }

  /** A snapshot of the counters. Works after close too. */
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
        if (result === null) pending.resolve();
        else pending.reject(toError(result));
      }
    }
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
      return;
    }
    if (this.#refed && this.#settled === this.#ticket && this.#commands.size === 0 && !this.#closing) {
      this.#refed = false;
      this.#native.unref();
    }
  }
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
