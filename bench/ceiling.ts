/**
 * The disk's ceiling for a cell: N closed-loop writers can at best share one durable write
 * of N records, so they can do at most N appends per (latency of one durable write of
 * N × record bytes), and never more than the synced bandwidth allows.
 *
 * Measured as a raw O_DSYNC pwrite (fs.openSync with O_DSYNC, fs.writeSync) of the batch
 * size rounded up to 4 KiB, at sequential offsets of a PRE-WRITTEN (zero-filled, fsynced)
 * file, i.e. the cheapest durable write the filesystem offers without O_DIRECT.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Rounding of a batch to the page size. */
export const ceilingPageBytes = 4096;
/** The size at which the synced bandwidth is measured. */
export const bandwidthProbeBytes = 4 * 1024 * 1024;

/** Median and p99 of a raw durable write of `bytes`. */
export interface DurableWritePoint {
  bytes: number;
  iterations: number;
  medianUs: number;
  p99Us: number;
}

export function roundUpToPage(bytes: number): number {
  return Math.ceil(bytes / ceilingPageBytes) * ceilingPageBytes;
}

/** Times O_DSYNC writes of each size for `secondsEach` (at least 5 writes each). */
export function measureDurableWrites(dir: string, sizesBytes: readonly number[], secondsEach: number): DurableWritePoint[] {
  const largest = Math.max(...sizesBytes, ceilingPageBytes);
  const fileBytes = Math.max(64 * 1024 * 1024, 8 * largest);
  const file = path.join(dir, 'ceiling.bin');
  const points: DurableWritePoint[] = [];
  try {
    // Pre-write: zero-fill and sync once, so each measured write carries only data.
    let fd = fs.openSync(file, 'w');
    const zeros = Buffer.alloc(1024 * 1024);
    for (let at = 0; at < fileBytes; at += zeros.length) fs.writeSync(fd, zeros, 0, Math.min(zeros.length, fileBytes - at), at);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_DSYNC);
    try {
      let position = 0;
      for (const bytes of sizesBytes) {
        const data = Buffer.alloc(bytes, 0x3c);
        const samples: number[] = [];
        const deadline = performance.now() + secondsEach * 1000;
        while (samples.length < 5 || (performance.now() < deadline && samples.length < 100_000)) {
          if (position + bytes > fileBytes) position = 0;
          const t = performance.now();
          fs.writeSync(fd, data, 0, bytes, position);
          samples.push((performance.now() - t) * 1000);
          position += bytes;
        }
        samples.sort((a, b) => a - b);
        const at = (p: number): number => samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))] ?? Number.NaN;
        points.push({ bytes, iterations: samples.length, medianUs: at(50), p99Us: at(99) });
      }
    } finally {
      fs.closeSync(fd);
    }
  } finally {
    fs.rmSync(file, { force: true });
  }
  return points;
}

/** The ceiling of one cell, from the durable-write points. */
export interface CellCeiling {
  batchBytes: number;
  batchMedianUs: number;
  /** N / median latency of one durable write of the batch. */
  latencyLimitPerS: number;
  /** Synced bandwidth (best measured) / record bytes. */
  bandwidthLimitPerS: number;
  /** The smaller of the two. */
  appendsPerS: number;
}

export function cellCeiling(points: readonly DurableWritePoint[], recordBytes: number, writers: number): CellCeiling {
  const batchBytes = roundUpToPage(recordBytes * writers);
  const point = points.find((p) => p.bytes === batchBytes);
  if (point === undefined) throw new Error(`no durable-write measurement at ${batchBytes} B`);
  let bandwidthBytesPerUs = 0;
  for (const p of points) bandwidthBytesPerUs = Math.max(bandwidthBytesPerUs, p.bytes / p.medianUs);
  const latencyLimitPerS = writers / (point.medianUs / 1e6);
  const bandwidthLimitPerS = (bandwidthBytesPerUs * 1e6) / recordBytes;
  return { batchBytes, batchMedianUs: point.medianUs, latencyLimitPerS, bandwidthLimitPerS, appendsPerS: Math.min(latencyLimitPerS, bandwidthLimitPerS) };
}
