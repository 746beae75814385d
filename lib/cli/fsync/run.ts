/**
 * Runs the three steps of `tidemark bench fsync` in a fresh scratch directory inside the
 * directory measured, and removes it whatever happens (finished, failed or aborted).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeFilesystem, readDeviceCounters } from '../fsinfo';
import { groupRecordBytes, groupWriterCounts, measureGroupCommit } from './groupcommit';
import { checkHonesty, counterDelta } from './honesty';
import { measureMethods, methodSizesBytes, SyncMethods, warmupIterations } from './methods';
import type { FsyncBenchResult, FsyncBenchSettings, MachineFacts } from './result';

/** Options of {@link runFsyncBench}. */
export interface FsyncBenchOptions {
  /** An existing directory on the filesystem to measure. */
  dir: string;
  /** The short run (under 20 s): shorter rows and cells, a 16 MiB pre-written file. */
  quick: boolean;
  /** Aborting stops the run between two operations; the scratch directory is removed. */
  signal: AbortSignal;
  /** Called as each row starts: `done` rows of `total` finished. */
  onProgress?: (progress: { done: number; total: number; label: string }) => void;
}

/** Prefix of the scratch directory (`<dir>/tidemark-fsync-XXXXXX`). */
export const scratchPrefix = 'tidemark-fsync-';

/** The settings of a quick or a full run. */
export function fsyncBenchSettings(quick: boolean): FsyncBenchSettings {
  return {
    quick,
    secondsPerRow: quick ? 0.1 : 1.2,
    passes: quick ? 1 : 3,
    warmupPerPass: warmupIterations,
    secondsPerCell: quick ? 0.35 : 2.5,
    sizesBytes: [...methodSizesBytes],
    prewrittenFileBytes: (quick ? 16 : 64) * 1024 * 1024,
    writerCounts: [...groupWriterCounts],
    recordBytes: [...groupRecordBytes],
  };
}

function machineFacts(loadAverageStart: number[]): MachineFacts {
  const cpus = os.cpus();
  return {
    hostname: os.hostname(),
    platform: process.platform,
    arch: process.arch,
    kernel: os.release(),
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpus: cpus.length,
    memoryBytes: os.totalmem(),
    node: process.version,
    loadAverageStart,
    loadAverageEnd: os.loadavg(),
  };
}

/** Runs the benchmark. Rejects with the abort reason when `options.signal` fires. */
export async function runFsyncBench(options: FsyncBenchOptions): Promise<FsyncBenchResult> {
  const settings = fsyncBenchSettings(options.quick);
  const startedAt = new Date().toISOString();
  const start = performance.now();
  const loadAverageStart = os.loadavg();
  const fsInfo = describeFilesystem(options.dir);
  const scratch = fs.mkdtempSync(path.join(options.dir, scratchPrefix));
  const total = settings.passes * settings.sizesBytes.length * (1 + 2 * Object.values(SyncMethods).length) + settings.writerCounts.length * settings.recordBytes.length + 2;
  let done = 0;
  const onRow = (label: string): void => {
    options.onProgress?.({ done, total, label });
    done++;
  };
  try {
    const countersBefore = readDeviceCounters(fsInfo.blockDevice);
    const methods = await measureMethods({ dir: scratch, secondsPerRow: settings.secondsPerRow, signal: options.signal, onRow, ...(fsInfo.blockDevice === undefined ? {} : { blockDevice: fsInfo.blockDevice }) }, settings.sizesBytes, settings.prewrittenFileBytes, settings.passes);
    fs.rmSync(path.join(scratch, 'growing.tmp'), { force: true });
    fs.rmSync(path.join(scratch, 'prewritten.tmp'), { force: true });
    const groupCommit = await measureGroupCommit({ dir: scratch, secondsPerCell: settings.secondsPerCell, signal: options.signal, onRow }, methods.rows, settings.writerCounts, settings.recordBytes);
    const countersAfter = readDeviceCounters(fsInfo.blockDevice);
    const walSyncs = groupCommit.reduce((n, g) => n + g.syncs, 0);
    const honesty = checkHonesty(fsInfo, methods.rows, walSyncs, counterDelta(countersBefore, countersAfter));
    return {
      tool: 'tidemark bench fsync',
      startedAt,
      durationSeconds: (performance.now() - start) / 1000,
      settings,
      machine: machineFacts(loadAverageStart),
      fs: fsInfo,
      methods,
      groupCommit,
      honesty,
    };
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
