/**
 * Step 1 of `tidemark bench fsync`: one write made durable, by each sync method, at each
 * size, on a growing and on a pre-written file (as pg_test_fsync compares them).
 *
 * Each timed operation is exactly what its method says, and nothing else is timed:
 * - `write+fdatasync`: `write` (pwrite) then `fdatasync` on a plain O_WRONLY descriptor;
 * - `write+fsync`: the same with `fsync`;
 * - `O_DSYNC`: one pwrite on a descriptor opened O_DSYNC;
 * - `O_DIRECT+O_DSYNC`: one pwrite from a 4 KiB-aligned buffer on a descriptor opened
 *   O_DIRECT | O_DSYNC;
 * - `io_uring write→fdatasync`: one io_uring_enter submitting a write linked
 *   (IOSQE_IO_LINK) to an fdatasync and waiting for both (native/bench_sync.cc, raw syscalls).
 * The node:fs calls are the synchronous ones (one syscall each on the JS thread, no thread
 * pool in between); every duration is a process.hrtime.bigint() difference around them.
 * The loop yields to the event loop every ~20 ms, between operations, so Ctrl-C is seen.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { elapsedUs, Samples, summarize, type LatencySummary } from './stats';
import { benchNative, type BenchNative } from './native';
import { readDeviceCounters } from '../fsinfo';

/** The sync methods compared. */
export const SyncMethods = {
  WRITE_FDATASYNC: 'write+fdatasync',
  WRITE_FSYNC: 'write+fsync',
  DSYNC: 'O_DSYNC',
  DIRECT_DSYNC: 'O_DIRECT+O_DSYNC',
  URING: 'io_uring write→fdatasync',
} as const;
export type SyncMethod = (typeof SyncMethods)[keyof typeof SyncMethods];

/** The baseline the honesty check compares against: a pwrite with no sync at all. */
export const PLAIN_WRITE = 'write (no sync)';

/** Where the writes go. */
export const FileKinds = {
  /** Each write at the end of a file that grows (a sync must also persist its size and new blocks). */
  GROWING: 'growing',
  /** Overwrites of a file zero-filled and fsynced first (a sync carries only data: tidemark's segments). */
  PREWRITTEN: 'pre-written',
} as const;
export type FileKind = (typeof FileKinds)[keyof typeof FileKinds];

/** Write sizes of the full run. */
export const methodSizesBytes: readonly number[] = [512, 4096, 16384, 65536, 1048576];

/** Alignment of the buffers (and offsets) of every write: enough for O_DIRECT on any common device. */
const bufferAlignBytes = 4096;
/** At least this many timed operations per row. */
const iterationsMin = 5;
/** At most this many per row (bounds memory and time on a fast fake disk). */
const iterationsMax = 200_000;
/** Untimed operations before each row's timed ones (first touch of a new descriptor). */
export const warmupIterations = 2;
/** The loop gives the event loop a turn this often. */
const sliceMs = 20;

/** One (method, file, size) measurement, or why there is none. */
export interface MethodRow {
  method: SyncMethod | typeof PLAIN_WRITE;
  file: FileKind;
  bytes: number;
  /** Present when measured. */
  latency?: LatencySummary;
  /** Why the row was not measured (e.g. the filesystem refuses O_DIRECT). */
  notMeasured?: string;
  /** Syncs this row issued, warm-up included (an fdatasync/fsync call, an O_DSYNC write, a linked io_uring sync). */
  syncsIssued: number;
  /**
   * Flush requests the device completed while the row ran (/sys/block/DEV/stat; every
   * process's, so other work on the device adds to it). Absent without a block device.
   * A device with FUA support may get a write marked FUA instead of a flush.
   */
  deviceFlushes?: number;
  /** The fastest measured method at this size and file kind (by ops/s). */
  winner: boolean;
}

/** What drives a measurement: where, how long, and how to stop. */
export interface MeasureContext {
  dir: string;
  secondsPerRow: number;
  signal: AbortSignal;
  /** Called before each row. */
  onRow?: (label: string) => void;
  /** The block device under `dir` (its flush counter is read around each row). */
  blockDevice?: string;
}

/** Gives the event loop a turn, then stops if asked to. */
export async function yieldTurn(signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  signal.throwIfAborted();
}

/** A buffer of `bytes` whose first byte is aligned to {@link bufferAlignBytes} (when the addon can tell). */
function alignedBuffer(native: BenchNative | undefined, bytes: number): { data: Buffer; aligned: boolean } {
  // Large enough that V8 keeps the backing store off the heap (it never moves).
  const backing = Buffer.alloc(bytes + bufferAlignBytes + 8192, 0xa5);
  if (native === undefined) return { data: backing.subarray(0, bytes), aligned: false };
  const offset = native.benchAlignOffset(backing, bufferAlignBytes);
  return { data: backing.subarray(offset, offset + bytes), aligned: true };
}

/** Zero-fills `file` to `bytes` and fsyncs it (data and size), yielding between 1 MiB chunks. */
export async function prewriteFile(file: string, bytes: number, signal: AbortSignal): Promise<number> {
  const start = process.hrtime.bigint();
  const fd = fs.openSync(file, 'w');
  try {
    const chunk = Buffer.alloc(1024 * 1024);
    for (let offset = 0; offset < bytes; offset += chunk.length) {
      fs.writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - offset), offset);
      if (offset % (8 * chunk.length) === 0) await yieldTurn(signal);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return elapsedUs(start) / 1e6;
}

/** One open target of a method: `op` does one durable write (or a plain one for the baseline). */
interface Target {
  op(data: Buffer, position: number): void;
  /** Back to an empty file (growing) without timing it. */
  restart(): void;
  close(): void;
}

/** Opens `file` for `method`; throws with the errno code when the filesystem refuses (EINVAL for O_DIRECT). */
function openTarget(method: MethodRow['method'], kind: FileKind, file: string, native: BenchNative | undefined, ring: number | undefined, counter: { syncs: number }): Target {
  const c = fs.constants;
  let flags = c.O_WRONLY | (kind === FileKinds.GROWING ? c.O_CREAT | c.O_TRUNC : 0);
  if (method === SyncMethods.DSYNC) flags |= c.O_DSYNC;
  if (method === SyncMethods.DIRECT_DSYNC) flags |= c.O_DIRECT | c.O_DSYNC;
  const fd = fs.openSync(file, flags, 0o600);
  if (kind === FileKinds.GROWING) fs.fsyncSync(fd); // the truncation, untimed
  let op: (data: Buffer, position: number) => void;
  switch (method) {
    case SyncMethods.WRITE_FDATASYNC:
    case SyncMethods.WRITE_FSYNC: {
      const sync = method === SyncMethods.WRITE_FSYNC ? fs.fsyncSync : fs.fdatasyncSync;
      op = (data, position) => {
        fs.writeSync(fd, data, 0, data.length, position);
        sync(fd);
        counter.syncs++;
      };
      break;
    }
    case SyncMethods.DSYNC:
    case SyncMethods.DIRECT_DSYNC:
      op = (data, position) => {
        fs.writeSync(fd, data, 0, data.length, position);
        counter.syncs++;
      };
      break;
    case SyncMethods.URING: {
      if (native === undefined || ring === undefined) throw new Error('no io_uring ring');
      const uring = native;
      op = (data, position) => {
        const r = uring.benchUringWriteFdatasync(ring, fd, data, position);
        counter.syncs++;
        if (r !== data.length) throw Object.assign(new Error(`io_uring write+fdatasync failed: ${r < 0 ? errnoName(-r) : `wrote ${r} of ${data.length} B`}`), { code: 'EURING' });
      };
      break;
    }
    default:
      op = (data, position) => {
        fs.writeSync(fd, data, 0, data.length, position);
      };
  }
  return {
    op,
    restart: () => {
      fs.ftruncateSync(fd, 0);
      fs.fsyncSync(fd);
    },
    close: () => fs.closeSync(fd),
  };
}

/** `EINVAL (22)` for 22. */
function errnoName(errno: number): string {
  const name = Object.entries(os.constants.errno).find(([, n]) => n === errno)?.[0];
  return name === undefined ? `errno ${errno}` : `${name} (${errno})`;
}

/** The errno code of a failed open/write, or the message. */
function reasonOf(err: unknown, method: string): string {
  const code = (err as { code?: unknown }).code;
  if (code === 'EINVAL' && method === SyncMethods.DIRECT_DSYNC) return 'EINVAL: this filesystem or device refuses O_DIRECT at this size or alignment';
  if (typeof code === 'string') return `${code}: ${err instanceof Error ? err.message : String(err)}`;
  return err instanceof Error ? err.message : String(err);
}

/** What the passes over one row have gathered so far. */
interface RowAccumulator {
  readonly row: MethodRow;
  readonly samples: Samples;
  readonly counter: { syncs: number };
  flushes?: number;
}

function newAccumulator(method: MethodRow['method'], kind: FileKind, bytes: number): RowAccumulator {
  return { row: { method, file: kind, bytes, syncsIssued: 0, winner: false }, samples: new Samples(), counter: { syncs: 0 } };
}

/** The row, once every pass ran. */
function finishRow(acc: RowAccumulator): MethodRow {
  const row: MethodRow = { ...acc.row, syncsIssued: acc.counter.syncs, ...(acc.flushes === undefined ? {} : { deviceFlushes: acc.flushes }) };
  if (row.notMeasured === undefined && acc.samples.count > 0) row.latency = summarize(acc.samples);
  return row;
}

/**
 * One pass over one row: open, warm up, then timed operations for `ctx.secondsPerRow` (at
 * least {@link iterationsMin}), close. A failure marks the row not measured.
 */
async function measurePass(acc: RowAccumulator, files: { growing: string; prewritten: string; prewrittenBytes: number }, ctx: MeasureContext, native: BenchNative | undefined, ring: number | undefined): Promise<void> {
  const { method, file: kind, bytes } = acc.row;
  if (acc.row.notMeasured !== undefined) return;
  const capBytes = files.prewrittenBytes;
  const { data, aligned } = alignedBuffer(native, bytes);
  if (method === SyncMethods.DIRECT_DSYNC && !aligned) {
    acc.row.notMeasured = 'the native addon cannot align buffers (rebuild it)';
    return;
  }
  if (method === SyncMethods.URING && ring === undefined) {
    acc.row.notMeasured = 'io_uring unavailable';
    return;
  }
  let target: Target;
  try {
    target = openTarget(method, kind, kind === FileKinds.GROWING ? files.growing : files.prewritten, native, ring, acc.counter);
  } catch (err) {
    acc.row.notMeasured = reasonOf(err, method);
    return;
  }
  const samples = acc.samples;
  const flushesBefore = readDeviceCounters(ctx.blockDevice)?.flushes;
  const countFlushes = (): void => {
    const after = readDeviceCounters(ctx.blockDevice)?.flushes;
    if (flushesBefore !== undefined && after !== undefined) acc.flushes = (acc.flushes ?? 0) + after - flushesBefore;
  };
  const countAtStart = samples.count;
  try {
    let position = 0;
    const next = (): void => {
      if (position + bytes > capBytes) {
        position = 0;
        if (kind === FileKinds.GROWING) target.restart();
      }
    };
    for (let i = 0; i < warmupIterations; i++) {
      next();
      target.op(data, position);
      position += bytes;
    }
    const deadline = process.hrtime.bigint() + BigInt(Math.round(ctx.secondsPerRow * 1e9));
    const enough = (now: bigint): boolean => samples.count >= iterationsMax || (samples.count - countAtStart >= iterationsMin && now >= deadline);
    for (;;) {
      const sliceEnd = process.hrtime.bigint() + BigInt(sliceMs * 1e6);
      let now = process.hrtime.bigint();
      while (now < sliceEnd && !enough(now)) {
        next();
        const start = process.hrtime.bigint();
        target.op(data, position);
        const end = process.hrtime.bigint();
        samples.push(Number(end - start) / 1000);
        position += bytes;
        now = end;
      }
      if (enough(now)) break;
      await yieldTurn(ctx.signal);
    }
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    acc.row.notMeasured = reasonOf(err, method);
  } finally {
    target.close();
    countFlushes();
  }
}

/** Runs one row in one pass. */
async function measureRow(method: MethodRow['method'], kind: FileKind, bytes: number, files: { growing: string; prewritten: string; prewrittenBytes: number }, ctx: MeasureContext, native: BenchNative | undefined, ring: number | undefined): Promise<MethodRow> {
  const acc = newAccumulator(method, kind, bytes);
  await measurePass(acc, files, ctx, native, ring);
  return finishRow(acc);
}

/** Step 1's result. */
export interface MethodsResult {
  rows: MethodRow[];
  /** Bytes of the pre-written file (also the cap of the growing one). */
  prewrittenFileBytes: number;
  /** Seconds spent zero-filling and syncing it. */
  prewriteSeconds: number;
  /** Why io_uring was not measured, when it was not. */
  uringUnavailable?: string;
}

/** Marks the fastest measured sync method per (size, file kind). */
export function markWinners(rows: MethodRow[]): void {
  const best = new Map<string, MethodRow>();
  for (const r of rows) {
    if (r.method === PLAIN_WRITE || r.latency === undefined) continue;
    const key = `${r.bytes}/${r.file}`;
    const current = best.get(key);
    if (current?.latency === undefined || r.latency.opsPerS > current.latency.opsPerS) best.set(key, r);
  }
  for (const r of rows) r.winner = best.get(`${r.bytes}/${r.file}`) === r;
}

/**
 * Measures every method at every size on both file kinds, plus a plain-write baseline per
 * size, in `passes` interleaved passes of `ctx.secondsPerRow / passes` each per row.
 */
export async function measureMethods(ctx: MeasureContext, sizesBytes: readonly number[], prewrittenFileBytes: number, passes = 1): Promise<MethodsResult> {
  const native = benchNative();
  const files = { growing: path.join(ctx.dir, 'growing.tmp'), prewritten: path.join(ctx.dir, 'prewritten.tmp'), prewrittenBytes: prewrittenFileBytes };
  ctx.onRow?.(`pre-writing a ${prewrittenFileBytes / 1048576} MiB file`);
  const prewriteSeconds = await prewriteFile(files.prewritten, prewrittenFileBytes, ctx.signal);
  let ring: number | undefined;
  let uringUnavailable: string | undefined;
  if (native === undefined) uringUnavailable = 'the native addon is not loaded';
  else if (typeof native.benchUringOpen !== 'function') uringUnavailable = 'this build of the native addon has no io_uring primitive';
  else {
    const opened = native.benchUringOpen();
    if (typeof opened === 'number') ring = opened;
    else uringUnavailable = opened;
  }
  // Rows in measuring order; every pass goes through all of them (noise spreads over all methods).
  const accs: RowAccumulator[] = [];
  for (const bytes of sizesBytes) {
    accs.push(newAccumulator(PLAIN_WRITE, FileKinds.PREWRITTEN, bytes));
    for (const kind of [FileKinds.PREWRITTEN, FileKinds.GROWING]) for (const method of Object.values(SyncMethods)) accs.push(newAccumulator(method, kind, bytes));
  }
  try {
    for (let pass = 1; pass <= passes; pass++) {
      for (const acc of accs) {
        const { method, file, bytes } = acc.row;
        const passLabel = passes > 1 ? ` · pass ${pass}/${passes}` : '';
        ctx.onRow?.(method === PLAIN_WRITE ? `${method} · ${bytes} B${passLabel}` : `${method} · ${file} · ${bytes} B${passLabel}`);
        const seconds = (method === PLAIN_WRITE ? ctx.secondsPerRow / 4 : ctx.secondsPerRow) / passes;
        await measurePass(acc, files, { ...ctx, secondsPerRow: seconds }, native, ring);
      }
    }
  } finally {
    if (ring !== undefined) native?.benchUringClose(ring);
  }
  const rows = accs.map(finishRow);
  for (const row of rows) if (row.method === SyncMethods.URING && uringUnavailable !== undefined) row.notMeasured = `io_uring unavailable: ${uringUnavailable}`;
  markWinners(rows);
  return { rows, prewrittenFileBytes, prewriteSeconds, ...(uringUnavailable === undefined ? {} : { uringUnavailable }) };
}

/**
 * One row on its own (for cross-checks, bench/fsync-fio.ts): pre-writes `prewrittenFileBytes`
 * in `ctx.dir` first when `kind` is pre-written, and removes its files afterwards.
 */
export async function measureOne(ctx: MeasureContext, method: SyncMethod, kind: FileKind, bytes: number, prewrittenFileBytes: number): Promise<MethodRow> {
  const native = benchNative();
  const files = { growing: path.join(ctx.dir, 'growing.tmp'), prewritten: path.join(ctx.dir, 'prewritten.tmp'), prewrittenBytes: prewrittenFileBytes };
  const opened = method === SyncMethods.URING ? native?.benchUringOpen() : undefined;
  const ring = typeof opened === 'number' ? opened : undefined;
  try {
    if (kind === FileKinds.PREWRITTEN) await prewriteFile(files.prewritten, prewrittenFileBytes, ctx.signal);
    return await measureRow(method, kind, bytes, files, ctx, native, ring);
  } finally {
    if (ring !== undefined) native?.benchUringClose(ring);
    fs.rmSync(files.growing, { force: true });
    fs.rmSync(files.prewritten, { force: true });
  }
}
