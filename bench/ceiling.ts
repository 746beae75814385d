/**
 * The disk's ceiling for a cell: N closed-loop writers can at best share one durable write
 * of N records, so they can do at most N appends per (latency of one durable write of
 * N × record bytes), and never more than the synced bandwidth allows.
 *
 * Measured as a raw O_DSYNC pwrite (fs.openSync with O_DSYNC, fs.writeSync) of the batch
 * size rounded up to 4 KiB, at sequential offsets of a PRE-WRITTEN (zero-filled, fsynced)
 * file, i.e. the cheapest durable write the filesystem offers without O_DIRECT. The bench
 * probes it before the grid, after every cell and after the grid, and keeps the best median.
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

/**
 * A pre-written file to time durable writes on. The file is zero-filled and fsynced once at
 * open; every {@link measure} then overwrites it at sequential offsets (wrapping around).
 */
export class DurableWriteProbe {
  readonly #file: string;
  readonly #fileBytes: number;
  #fd: number;
  #position = 0;

  /** Creates and pre-writes the file in `dir`, big enough for writes up to `largestBytes`. */
  constructor(dir: string, largestBytes: number) {
    this.#fileBytes = Math.max(64 * 1024 * 1024, 8 * roundUpToPage(largestBytes));
    this.#file = path.join(dir, 'ceiling.bin');
    const fd = fs.openSync(this.#file, 'w');
    try {
      const zeros = Buffer.alloc(1024 * 1024);
      for (let at = 0; at < this.#fileBytes; at += zeros.length) fs.writeSync(fd, zeros, 0, Math.min(zeros.length, this.#fileBytes - at), at);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    this.#fd = fs.openSync(this.#file, fs.constants.O_WRONLY | fs.constants.O_DSYNC);
  }

  /** Times O_DSYNC writes of each size for `secondsEach` (at least 5 writes each). */
  measure(sizesBytes: readonly number[], secondsEach: number): DurableWritePoint[] {
    const points: DurableWritePoint[] = [];
    for (const bytes of sizesBytes) {
      if (bytes > this.#fileBytes) throw new Error(`probe file is ${this.#fileBytes} B, cannot time a ${bytes} B write`);
      const data = Buffer.alloc(bytes, 0x3c);
      const samples: number[] = [];
      const deadline = performance.now() + secondsEach * 1000;
      while (samples.length < 5 || (performance.now() < deadline && samples.length < 100_000)) {
        if (this.#position + bytes > this.#fileBytes) this.#position = 0;
        const t = performance.now();
        fs.writeSync(this.#fd, data, 0, bytes, this.#position);
        samples.push((performance.now() - t) * 1000);
        this.#position += bytes;
      }
      samples.sort((a, b) => a - b);
      const at = (p: number): number => samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))] ?? Number.NaN;
      points.push({ bytes, iterations: samples.length, medianUs: at(50), p99Us: at(99) });
    }
    return points;
  }

  /** Closes and removes the file. */
  close(): void {
    if (this.#fd >= 0) fs.closeSync(this.#fd);
    this.#fd = -1;
    fs.rmSync(this.#file, { force: true });
  }
}

/**
 * Per size, the probe with the lowest median: other load on the machine can only make a
 * durable write slower, so the fastest median seen is the best estimate of what the disk does.
 */
export function bestPoints(probes: readonly (readonly DurableWritePoint[])[]): DurableWritePoint[] {
  const best = new Map<number, DurableWritePoint>();
  for (const probe of probes) {
    for (const p of probe) {
      const b = best.get(p.bytes);
      if (b === undefined || p.medianUs < b.medianUs) best.set(p.bytes, p);
    }
  }
  return [...best.values()].sort((a, b) => a.bytes - b.bytes);
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
