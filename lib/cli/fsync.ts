/**
 * `tidemark bench fsync`: what does this disk really do when asked for durability?
 *
 * For each size it times three ways of making a write durable:
 * - `append+fdatasync`: write at the end of a growing file, then fdatasync (every sync
 *   also has to persist a size change and allocate blocks);
 * - `prewritten+fdatasync`: overwrite blocks of a file that was zero-filled and synced
 *   first, then fdatasync (a sync carries only data: what tidemark's segments do);
 * - `prewritten O_DSYNC`: the same file opened with O_DSYNC, each write durable on return.
 *
 * Synchronous fs calls on purpose: this measures the disk, not the libuv pool. Between timed
 * calls it yields to the event loop every {@link yieldEveryMs} ms, so a Ctrl-C handler can
 * remove the scratch files (lib/cli/cleanup.ts). Shipped with the package, so it uses only
 * node: modules.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeFilesystem, formatFilesystem, type FsInfo } from './fsinfo';

/** The three durable-write methods measured. */
export const FsyncModes = {
  APPEND_FDATASYNC: 'append+fdatasync',
  PREWRITTEN_FDATASYNC: 'prewritten+fdatasync',
  PREWRITTEN_DSYNC: 'prewritten O_DSYNC',
} as const;
export type FsyncMode = (typeof FsyncModes)[keyof typeof FsyncModes];

/** Default write sizes: 512 B, 4 KiB, 64 KiB, 1 MiB. */
export const fsyncDefaultSizesBytes: readonly number[] = [512, 4096, 65536, 1048576];

/** Bytes of the pre-written file and the cap of the growing file (it is truncated and regrown past this). */
const fileBytesMax = 64 * 1024 * 1024;
/** At least this many timed writes per row, however short `seconds` is. */
const iterationsMin = 5;
/** At most this many timed writes per row, however long `seconds` is (bounds memory). */
const iterationsMax = 200_000;

/** Options of {@link runFsyncBench}. */
export interface FsyncBenchOptions {
  /** An existing directory on the filesystem to measure; a scratch file is created in it and removed. */
  dir: string;
  /** Seconds to spend on each (mode, size) row. */
  seconds: number;
  /** Write sizes in bytes (default {@link fsyncDefaultSizesBytes}). */
  sizesBytes?: readonly number[];
}

/** One measured (mode, size) row. */
export interface FsyncRow {
  mode: FsyncMode;
  bytes: number;
  iterations: number;
  medianUs: number;
  p99Us: number;
  /** Bytes made durable per second of time spent in the timed calls. */
  mbPerS: number;
}

/** The whole measurement. */
export interface FsyncResult {
  fs: FsInfo;
  rows: FsyncRow[];
  /** Seconds spent zero-filling and syncing the pre-written file. */
  prewriteSeconds: number;
}

function percentile(sortedUs: Float64Array, p: number): number {
  if (sortedUs.length === 0) return Number.NaN;
  const rank = Math.min(sortedUs.length - 1, Math.max(0, Math.ceil((p / 100) * sortedUs.length) - 1));
  return sortedUs[rank] ?? Number.NaN;
}

function summarize(mode: FsyncMode, bytes: number, samplesUs: number[]): FsyncRow {
  const sorted = Float64Array.from(samplesUs).sort();
  let totalUs = 0;
  for (const s of samplesUs) totalUs += s;
  return {
    mode,
    bytes,
    iterations: samplesUs.length,
    medianUs: percentile(sorted, 50),
    p99Us: percentile(sorted, 99),
    mbPerS: totalUs > 0 ? (bytes * samplesUs.length) / totalUs : 0, // bytes/µs = MB/s
  };
}

/** Longest stretch of synchronous work between two turns of the event loop. */
export const yieldEveryMs = 50;

/** Lets the event loop run (signal handlers, timers); outside every timed region. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function elapsedUs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1000;
}

/** Zero-fills `file` to `bytes` and makes it durable (data and size). */
async function prewrite(file: string, bytes: number): Promise<void> {
  const fd = fs.openSync(file, 'w');
  try {
    const chunk = Buffer.alloc(1024 * 1024);
    for (let offset = 0; offset < bytes; offset += chunk.length) {
      fs.writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - offset), offset);
      await yieldToEventLoop();
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Runs one mode at one size for `seconds`; returns per-write latencies in µs. */
async function measure(mode: FsyncMode, file: string, bytes: number, seconds: number): Promise<number[]> {
  const data = Buffer.alloc(bytes, 0xa5);
  const samples: number[] = [];
  const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  let fd: number;
  if (mode === FsyncModes.APPEND_FDATASYNC) fd = fs.openSync(file, 'w');
  else if (mode === FsyncModes.PREWRITTEN_FDATASYNC) fd = fs.openSync(file, fs.constants.O_WRONLY);
  else fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_DSYNC);
  try {
    if (mode === FsyncModes.APPEND_FDATASYNC) fs.fsyncSync(fd); // the truncation, untimed
    let position = 0;
    const yieldEveryNs = BigInt(yieldEveryMs * 1e6);
    let lastYield = process.hrtime.bigint();
    while (samples.length < iterationsMax && (samples.length < iterationsMin || process.hrtime.bigint() < deadline)) {
      if (process.hrtime.bigint() - lastYield > yieldEveryNs) {
        await yieldToEventLoop();
        lastYield = process.hrtime.bigint();
      }
      if (position + bytes > fileBytesMax) {
        position = 0;
        if (mode === FsyncModes.APPEND_FDATASYNC) {
          // Start growing again from empty; the truncation itself is not timed.
          fs.ftruncateSync(fd, 0);
          fs.fsyncSync(fd);
        }
      }
      const start = process.hrtime.bigint();
      fs.writeSync(fd, data, 0, bytes, position);
      if (mode !== FsyncModes.PREWRITTEN_DSYNC) fs.fdatasyncSync(fd);
      samples.push(elapsedUs(start));
      position += bytes;
    }
  } finally {
    fs.closeSync(fd);
  }
  return samples;
}

/** The two scratch files {@link runFsyncBench} creates in `dir` (and removes). */
export function fsyncScratchFiles(dir: string): { growing: string; prewritten: string } {
  return {
    growing: path.join(dir, `tidemark-fsync-growing-${process.pid}.tmp`),
    prewritten: path.join(dir, `tidemark-fsync-prewritten-${process.pid}.tmp`),
  };
}

/**
 * Measures durable writes in `options.dir`. Takes about `3 × sizes × seconds` plus the time
 * to zero-fill a 64 MiB file, mostly in synchronous calls (yielding every {@link yieldEveryMs} ms).
 */
export async function runFsyncBench(options: FsyncBenchOptions): Promise<FsyncResult> {
  const sizes = options.sizesBytes ?? fsyncDefaultSizesBytes;
  const { growing, prewritten } = fsyncScratchFiles(options.dir);
  const rows: FsyncRow[] = [];
  try {
    const start = process.hrtime.bigint();
    await prewrite(prewritten, fileBytesMax);
    const prewriteSeconds = elapsedUs(start) / 1e6;
    for (const bytes of sizes) {
      for (const mode of [FsyncModes.APPEND_FDATASYNC, FsyncModes.PREWRITTEN_FDATASYNC, FsyncModes.PREWRITTEN_DSYNC]) {
        const file = mode === FsyncModes.APPEND_FDATASYNC ? growing : prewritten;
        rows.push(summarize(mode, bytes, await measure(mode, file, bytes, options.seconds)));
      }
    }
    return { fs: describeFilesystem(options.dir), rows, prewriteSeconds };
  } finally {
    fs.rmSync(growing, { force: true });
    fs.rmSync(prewritten, { force: true });
  }
}

/** `512 B`, `4 KiB`, `1 MiB`. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1048576 && bytes % 1048576 === 0) return `${bytes / 1048576} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} B`;
}

function fixed(x: number, digits = 0): string {
  return Number.isFinite(x) ? x.toFixed(digits) : 'n/a';
}

/** A markdown table of the rows. */
export function formatFsyncTable(result: FsyncResult): string {
  const lines = [
    '| size | method | writes | median µs | p99 µs | MB/s |',
    '| ---: | --- | ---: | ---: | ---: | ---: |',
  ];
  for (const r of result.rows) {
    lines.push(`| ${formatBytes(r.bytes)} | ${r.mode} | ${r.iterations} | ${fixed(r.medianUs, 1)} | ${fixed(r.p99Us, 1)} | ${fixed(r.mbPerS, 1)} |`);
  }
  return lines.join('\n');
}

function row(result: FsyncResult, mode: FsyncMode, bytes: number): FsyncRow | undefined {
  return result.rows.find((r) => r.mode === mode && r.bytes === bytes);
}

/** A plain-language reading of the numbers: is the disk honest, and what it means for a WAL. */
export function interpretFsync(result: FsyncResult): string {
  const sentences: string[] = [];
  const fsType = result.fs.fsType ?? 'unknown';
  if (fsType === 'tmpfs' || fsType === 'ramfs') {
    sentences.push(`This directory is on ${fsType}: it lives in memory, a sync does nothing and nothing survives a reboot, so these numbers say nothing about durability.`);
  }
  const sizes = [...new Set(result.rows.map((r) => r.bytes))].sort((a, b) => a - b);
  const small = sizes.includes(4096) ? 4096 : sizes[0];
  const large = sizes[sizes.length - 1];
  if (small !== undefined) {
    const pre = row(result, FsyncModes.PREWRITTEN_FDATASYNC, small);
    const grow = row(result, FsyncModes.APPEND_FDATASYNC, small);
    const dsync = row(result, FsyncModes.PREWRITTEN_DSYNC, small);
    if (pre !== undefined) {
      const us = pre.medianUs;
      let verdict: string;
      if (us < 20) verdict = 'suspiciously fast: faster than any flush that reaches stable media on common hardware. Either the device has power-loss protection (enterprise SSD, battery-backed RAID cache) or something in the stack acknowledges flushes from a volatile cache (a virtual disk with an unsafe cache mode, a drive that ignores FLUSH); timing alone cannot tell which, so check the hardware before trusting durability here.';
      else if (us < 150) verdict = 'typical of a flash device or a virtual disk that honours flushes (or has power-loss protection).';
      else if (us < 2000) verdict = 'typical of a flash device with a real flush, or a networked/virtual disk.';
      else verdict = 'slow, as a rotating disk or a busy network volume would be: group commit is what makes throughput possible here.';
      sentences.push(`A ${formatBytes(small)} overwrite plus fdatasync takes a median ${fixed(us)} µs (p99 ${fixed(pre.p99Us)} µs): ${verdict}`);
      if (pre.p99Us > 5 * us) {
        sentences.push(
          `Its p99 is ${(pre.p99Us / us).toFixed(0)}× the median: something else is using this device (other processes, a throttled or shared virtual disk), so treat every number here as an upper bound on latency and run again when the machine is quiet.`,
        );
      }
    }
    const cache = result.fs.writeCache;
    if (cache !== undefined) {
      sentences.push(
        cache === 'write back'
          ? `The kernel reports a volatile write cache on ${result.fs.blockDevice ?? 'the device'} ("write back"), so every fdatasync must also send a cache flush; if the syncs above look too cheap for that, the flush is not reaching stable media.`
          : `The kernel reports "${cache}" for ${result.fs.blockDevice ?? 'the device'}: it claims no volatile cache, so no cache flush is sent with a sync.`,
      );
    }
    if (pre !== undefined && grow !== undefined && pre.medianUs > 0) {
      const ratio = grow.medianUs / pre.medianUs;
      sentences.push(
        ratio > 1.3
          ? `Appending to a growing file costs ${ratio.toFixed(1)}× as much per sync as overwriting pre-written blocks (${fixed(grow.medianUs)} vs ${fixed(pre.medianUs)} µs): each sync also persists the new size and block allocation, which is why tidemark zero-fills its segments ahead of use.`
          : `Appending to a growing file costs about the same per sync as overwriting pre-written blocks (${fixed(grow.medianUs)} vs ${fixed(pre.medianUs)} µs) on this filesystem.`,
      );
    }
    if (pre !== undefined && dsync !== undefined && pre.medianUs > 0) {
      sentences.push(`An O_DSYNC write takes ${fixed(dsync.medianUs)} µs against ${fixed(pre.medianUs)} µs for write + fdatasync.`);
    }
  }
  if (large !== undefined && large !== small) {
    const pre = row(result, FsyncModes.PREWRITTEN_FDATASYNC, large);
    const grow = row(result, FsyncModes.APPEND_FDATASYNC, large);
    if (pre !== undefined && grow !== undefined) {
      sentences.push(`At ${formatBytes(large)} per sync the durable bandwidth is ${fixed(pre.mbPerS)} MB/s on a pre-written file and ${fixed(grow.mbPerS)} MB/s on a growing one: the bigger the batch per sync, the closer a log gets to it.`);
    }
  }
  return sentences.join(' ');
}

/** The full human-readable report: where, the table, the interpretation. */
export function formatFsyncReport(result: FsyncResult): string {
  return [
    `Filesystem: ${formatFilesystem(result.fs)}`,
    `Pre-written a ${formatBytes(fileBytesMax)} file in ${result.prewriteSeconds.toFixed(2)} s.`,
    '',
    formatFsyncTable(result),
    '',
    interpretFsync(result),
  ].join('\n');
}
