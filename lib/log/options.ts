/**
 * Options of {@link Wal.open}: defaults, limits and validation. Every limit is
 * named here; the native side trusts what passes.
 *
 * @packageDocumentation
 */
import { TidemarkError } from '../errors';

/**
 * How an append becomes durable before its promise resolves.
 *
 * - `'fdatasync'` (default): write, then `fdatasync` once per batch.
 * - `'dsync'`: the file is opened `O_DSYNC`; each batch write returns when durable.
 * - `'direct'`: `O_DIRECT | O_DSYNC` with aligned buffers, writes padded to the
 *   device's logical block size. Fails at open with `TM_DIRECT_UNSUPPORTED` on
 *   filesystems that refuse O_DIRECT (tmpfs, some FUSE).
 * - `'none'`: **NO SYNC AT ALL. Appends resolve when the bytes are in the page
 *   cache: a power loss or kernel crash loses acknowledged records and may make
 *   the next open report TM_CORRUPTION.** For tests and benchmarks only.
 */
export type SyncMode = 'fdatasync' | 'dsync' | 'direct' | 'none';

/**
 * Which path appends take to the disk (see {@link WalOptions.io}).
 *
 * - `'thread'`: the native writer thread (every kernel).
 * - `'uring'`: io_uring, submitted from the JS thread; fails at open with
 *   `TM_URING_UNSUPPORTED` where the kernel refuses io_uring.
 * - `'auto'`: io_uring where the open's probe succeeds, else the writer thread.
 */
export type IoMode = 'auto' | 'uring' | 'thread';

/** Options of {@link Wal.open}. */
export interface WalOptions {
  /** Durability mode; default `'fdatasync'`. */
  sync?: SyncMode;
  /**
   * Size of each segment file in bytes: a multiple of 4096 in
   * [{@link SEGMENT_BYTES_MIN} (64 KiB), {@link SEGMENT_BYTES_MAX} (1 GiB)]; default 64 MiB.
   * Segments are preallocated and zero-filled at creation. A new log's first
   * segment is 1 MiB (or `segmentBytes` when smaller) and each later one twice
   * the one before, up to `segmentBytes`; a record too large for that size gets
   * a segment of `segmentBytes`.
   */
  segmentBytes?: number;
  /**
   * Largest record accepted, in bytes; larger appends reject with
   * `TM_INVALID_ARGUMENT` and nothing is written. Default
   * `min(16 MiB, segmentBytes - overhead)`; at most `segmentBytes - overhead` and 256 MiB,
   * where overhead is {@link segmentOverheadBytes} (12 KiB up to 512 KiB segments).
   */
  maxRecordBytes?: number;
  /**
   * Microseconds the writer thread keeps polling for the next append after
   * settling a batch, before it goes to sleep; an integer in
   * [0, {@link BUSY_POLL_MICROS_MAX}], default {@link BUSY_POLL_MICROS_DEFAULT} (0: off).
   *
   * A caller that awaits each append before the next (one writer in a loop)
   * sends its next append one event-loop turn after the last one resolved. A
   * sleeping writer thread must then be woken, which on a virtual machine
   * costs roughly a quarter of a 4 KiB write + fdatasync; polling saves it.
   * The poll only runs while appends keep arriving within the window: a log
   * that is idle or written sporadically spends at most one window per idle
   * period. `0` (the default) never polls. Polling wins only when a core is
   * free for it: on a loaded machine the spinning writer takes CPU from the
   * event loop and makes latency worse. Try e.g. 50 and measure
   * (`npm run bench:append -- --only tidemark,tidemark-poll --writers 1`).
   * Durability is the same either way.
   */
  busyPollMicros?: number;
  /**
   * How appends reach the disk; default {@link IO_DEFAULT} (`'thread'`), or the
   * `TIDEMARK_IO` environment variable (`thread`, `uring` or `auto`) when set and
   * this option is not given.
   *
   * With io_uring (`'uring'`, or `'auto'` where the open's probe succeeds) a batch
   * of appends is written and fdatasync'd by one linked io_uring submission made
   * from the JS thread, and its completion wakes the event loop through an
   * eventfd: no writer-thread hop. Appends of one turn, and those arriving while
   * a batch is in flight, form the next batch. Truncations, rotation to a new
   * segment and close still run on the writer thread, in order. The on-disk
   * format and every guarantee are the same. `'uring'` rejects the open with
   * `TM_URING_UNSUPPORTED` when the kernel refuses io_uring (e.g.
   * `kernel.io_uring_disabled`, a container's seccomp profile, Linux < 5.6);
   * `'auto'` then falls back to the writer thread. {@link Wal.io} says which
   * path a log uses. Read-only opens never write: always `'thread'`.
   */
  io?: IoMode;
  /**
   * Create the directory and a new log when `dir` holds none; default `true`.
   * With `false`, opening a missing directory, or one without segment files,
   * rejects `TM_INVALID_ARGUMENT` (a mistyped path does not become an empty log).
   */
  createIfMissing?: boolean;
  /** Reject `TM_INVALID_ARGUMENT` when `dir` already holds a log; default `false`. */
  errorIfExists?: boolean;
  /**
   * Open without the lock, beside a running writer or on a damaged log, and
   * never write anything (not even the repair of a torn tail); default `false`.
   * The log is what recovery finds at open (a snapshot: later appends of a live
   * writer are not seen); appends and truncations reject `TM_INVALID_ARGUMENT`.
   * Damage does not fail the open: records before it are readable and
   * {@link Wal.damage} says where it is. Never creates a log.
   */
  readOnly?: boolean;
  /**
   * Default `false`. The operator's one way out when the open refuses a log with
   * `TM_CORRUPTION` because of damage inside its **last batch** that recovery
   * cannot tell from a torn write (rows Q and R of the decision table in
   * native/recovery.cc). With `true` that batch is dropped instead, and
   * {@link Wal.tailRepair} reports exactly which indexes were dropped. Those
   * records were never acknowledged if the damage was a torn write; if it was
   * real damage, some may have been: use it only when you know the last
   * writer lost power (or after saving the directory), never as a default.
   * It changes nothing for any other corruption (sealed segments, damage
   * followed by a later batch, bad headers, index gaps), which still fails.
   * `tidemark wal repair DIR` does the same from the command line.
   */
  repairTail?: boolean;
}

/** Smallest `segmentBytes` (64 KiB). */
export const SEGMENT_BYTES_MIN = 64 * 1024;
/** Largest `segmentBytes` (1 GiB). */
export const SEGMENT_BYTES_MAX = 1024 * 1024 * 1024;
/** `segmentBytes` must be a multiple of this. */
export const SEGMENT_ALIGN_BYTES = 4096;
/** Default `segmentBytes` (64 MiB). */
export const SEGMENT_BYTES_DEFAULT = 64 * 1024 * 1024;
/** Default `maxRecordBytes` (16 MiB, lowered to fit small segments). */
export const RECORD_BYTES_DEFAULT = 16 * 1024 * 1024;
/** Hard ceiling of `maxRecordBytes` (256 MiB). */
export const RECORD_BYTES_MAX = 256 * 1024 * 1024;
/** Default `busyPollMicros` (0: the writer never polls; see {@link WalOptions.busyPollMicros}). */
export const BUSY_POLL_MICROS_DEFAULT = 0;
/** Largest `busyPollMicros` (1 ms). */
export const BUSY_POLL_MICROS_MAX = 1000;
/** Default `io`: the writer thread (io_uring did not beat it in the same-run bench, bench/results/2026-12-07-uring.md). */
export const IO_DEFAULT: IoMode = 'thread';
/** Native io mode numbers (native/log.h IoMode). */
export const IO_MODE_CODES = { thread: 0, uring: 1, auto: 2 } as const;
const IO_MODES: readonly IoMode[] = ['auto', 'uring', 'thread'];

/** Bytes of a segment a record cannot use, at least: header block, frame header, worst-case padding. */
export const SEGMENT_OVERHEAD_BYTES = 12 * 1024;

/**
 * Bytes of a segment of `segmentBytes` a record cannot use: the segment's header
 * block, the batch header (4 bytes of sector checksum per 512 bytes of the batch,
 * native/record.h), the frame header and the worst-case padding:
 * `max(12 KiB, 8 KiB + segmentBytes / 128)`, so 12 KiB up to 512 KiB segments.
 */
export function segmentOverheadBytes(segmentBytes: number): number {
  return Math.max(SEGMENT_OVERHEAD_BYTES, 8 * 1024 + Math.ceil(segmentBytes / 128));
}

const SYNC_MODES: readonly SyncMode[] = ['fdatasync', 'dsync', 'direct', 'none'];
const OPTION_KEYS: readonly string[] = [
  'sync',
  'segmentBytes',
  'maxRecordBytes',
  'busyPollMicros',
  'createIfMissing',
  'errorIfExists',
  'readOnly',
  'repairTail',
  'io',
];

/** Native sync mode numbers (native/log.h SyncMode). */
export const SYNC_MODE_CODES = { fdatasync: 0, dsync: 1, direct: 2, none: 3 } as const;

/** Options after defaults and validation ({@link Wal.options}); each field as in {@link WalOptions}. */
export interface ResolvedWalOptions {
  sync: SyncMode;
  segmentBytes: number;
  maxRecordBytes: number;
  busyPollMicros: number;
  io: IoMode;
  createIfMissing: boolean;
  errorIfExists: boolean;
  readOnly: boolean;
  repairTail: boolean;
}

function flag(o: Record<string, unknown>, key: string, fallback: boolean): boolean {
  const v = o[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw TidemarkError.invalidArgument(`Wal.open: options.${key} must be true or false, got ${describe(v)}`);
  return v;
}

/** How a bad argument is named in an error message: `null`, `an array`, `a Map`, `"text"`, `-1`. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `a ${(value as object).constructor?.name ?? 'object'}`;
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

/** Validates `options` and applies defaults; throws `TM_INVALID_ARGUMENT` saying what is wrong and what is allowed. */
export function resolveWalOptions(options: unknown): ResolvedWalOptions {
  if (options === undefined) options = {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw TidemarkError.invalidArgument(`Wal.open: options must be an object, got ${describe(options)}`);
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!OPTION_KEYS.includes(key)) {
      throw TidemarkError.invalidArgument(`Wal.open: unknown option "${key}"; allowed options are ${OPTION_KEYS.join(', ')}`);
    }
  }
  let sync: SyncMode = 'fdatasync';
  if (o.sync !== undefined) {
    if (typeof o.sync !== 'string' || !(SYNC_MODES as readonly string[]).includes(o.sync)) {
      throw TidemarkError.invalidArgument(
        `Wal.open: options.sync must be one of ${SYNC_MODES.map((m) => `'${m}'`).join(', ')}, got ${describe(o.sync)}`,
      );
    }
    sync = o.sync as SyncMode;
  }
  let segmentBytes = SEGMENT_BYTES_DEFAULT;
  if (o.segmentBytes !== undefined) {
    const v = o.segmentBytes;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < SEGMENT_BYTES_MIN || v > SEGMENT_BYTES_MAX || v % SEGMENT_ALIGN_BYTES !== 0) {
      throw TidemarkError.invalidArgument(
        `Wal.open: options.segmentBytes must be an integer multiple of ${SEGMENT_ALIGN_BYTES} in ` +
          `[${SEGMENT_BYTES_MIN}, ${SEGMENT_BYTES_MAX}] (64 KiB to 1 GiB), got ${describe(v)}`,
      );
    }
    segmentBytes = v;
  }
  const overhead = segmentOverheadBytes(segmentBytes);
  const recordCeiling = Math.min(RECORD_BYTES_MAX, segmentBytes - overhead);
  let maxRecordBytes = Math.min(RECORD_BYTES_DEFAULT, recordCeiling);
  if (o.maxRecordBytes !== undefined) {
    const v = o.maxRecordBytes;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > recordCeiling) {
      throw TidemarkError.invalidArgument(
        `Wal.open: options.maxRecordBytes must be an integer in [1, ${recordCeiling}] ` +
          `(at most segmentBytes - ${overhead} and ${RECORD_BYTES_MAX}), got ${describe(v)}`,
      );
    }
    maxRecordBytes = v;
  }
  let busyPollMicros = BUSY_POLL_MICROS_DEFAULT;
  if (o.busyPollMicros !== undefined) {
    const v = o.busyPollMicros;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > BUSY_POLL_MICROS_MAX) {
      throw TidemarkError.invalidArgument(
        `Wal.open: options.busyPollMicros must be an integer in [0, ${BUSY_POLL_MICROS_MAX}] (microseconds; 0 never polls), got ${describe(v)}`,
      );
    }
    busyPollMicros = v;
  }
  let io: IoMode = IO_DEFAULT;
  const env = typeof process !== 'undefined' ? process.env.TIDEMARK_IO : undefined;
  if (o.io !== undefined) {
    if (typeof o.io !== 'string' || !(IO_MODES as readonly string[]).includes(o.io)) {
      throw TidemarkError.invalidArgument(
        `Wal.open: options.io must be one of ${IO_MODES.map((m) => `'${m}'`).join(', ')}, got ${describe(o.io)}`,
      );
    }
    io = o.io as IoMode;
  } else if (env !== undefined && env !== '') {
    if (!(IO_MODES as readonly string[]).includes(env)) {
      throw TidemarkError.invalidArgument(
        `Wal.open: the TIDEMARK_IO environment variable must be one of ${IO_MODES.join(', ')}, got ${JSON.stringify(env)}`,
      );
    }
    io = env as IoMode;
  }
  const createIfMissing = flag(o, 'createIfMissing', true);
  const errorIfExists = flag(o, 'errorIfExists', false);
  const readOnly = flag(o, 'readOnly', false);
  if (readOnly && errorIfExists) {
    throw TidemarkError.invalidArgument('Wal.open: options.readOnly and options.errorIfExists cannot both be true (a read-only open needs an existing log)');
  }
  if (o.repairTail !== undefined && typeof o.repairTail !== 'boolean') {
    throw TidemarkError.invalidArgument(`Wal.open: options.repairTail must be a boolean, got ${describe(o.repairTail)}`);
  }
  const repairTail = o.repairTail === true;
  if (readOnly && repairTail) {
    throw TidemarkError.invalidArgument('Wal.open: options.readOnly and options.repairTail cannot both be true (a read-only open never writes; a repair does)');
  }
  return { sync, segmentBytes, maxRecordBytes, busyPollMicros, io, createIfMissing, errorIfExists, readOnly, repairTail };
}
