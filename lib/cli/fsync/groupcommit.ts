/**
 * Step 2 of `tidemark bench fsync`: the group-commit curve of tidemark's own Wal
 * (`sync: 'fdatasync'`, default options) with N closed-loop writers, each awaiting its
 * append before the next; and beside each cell the limit the disk sets, derived from step 1.
 *
 * The derived limit: N writers share a batch of B appends (the Wal's own counters tell B
 * and the bytes per batch W), and one batch costs one pwrite + fdatasync of W bytes on a
 * pre-written file, whose time t(W) step 1 measured (`write+fdatasync`, pre-written, p50,
 * log-log interpolated between sizes, linear in bytes beyond the largest). So at most
 * B / t(W) appends/s, and never more than the best synced bandwidth of step 1 allows.
 */
import * as path from 'node:path';
import { Wal } from '../../log/wal';
import { FileKinds, SyncMethods, yieldTurn, type MethodRow } from './methods';
import { Samples, summarize, type LatencySummary } from './stats';

/** Concurrent writers of the curve. */
export const groupWriterCounts: readonly number[] = [1, 4, 16, 64, 256, 1024];
/** Record sizes of the curve. */
export const groupRecordBytes: readonly number[] = [128, 4096];

/** The disk's limit for one cell, derived from step 1. */
export interface DerivedLimit {
  appendsPerS: number;
  /** Which bound is the lower: one sync per batch, or the synced bandwidth. */
  boundBy: 'sync time' | 'bandwidth';
  /** t(W): the interpolated write+fdatasync time of one batch's bytes. */
  batchSyncUs: number;
}

/** One cell of the curve. */
export interface GroupRow {
  recordBytes: number;
  writers: number;
  seconds: number;
  appends: number;
  appendsPerS: number;
  /** Payload megabytes (10^6 B) made durable per second. */
  mbPerS: number;
  /** Syncs the Wal issued in the cell (its own counter). */
  syncs: number;
  /** Appends per batch. */
  averageBatch: number;
  /** Bytes written per batch (frames, batch header, padding to the block). */
  bytesPerBatch: number;
  /** Per-append latency, from the append call to its promise resolving. */
  latency: LatencySummary;
  limit?: DerivedLimit;
  /** appendsPerS / limit.appendsPerS. */
  fractionOfLimit?: number;
}

/** Sync time of a pre-written write+fdatasync of `bytes`, from step 1's p50s; undefined without data. */
export function syncTimeUs(rows: readonly MethodRow[], bytes: number): number | undefined {
  const points = rows
    .filter((r) => r.method === SyncMethods.WRITE_FDATASYNC && r.file === FileKinds.PREWRITTEN && r.latency !== undefined && r.latency.p50Us > 0)
    .map((r) => ({ bytes: r.bytes, us: r.latency?.p50Us ?? Number.NaN }))
    .sort((a, b) => a.bytes - b.bytes);
  const first = points[0];
  const last = points[points.length - 1];
  if (first === undefined || last === undefined) return undefined;
  if (bytes <= first.bytes) return first.us;
  if (bytes >= last.bytes) return (last.us * bytes) / last.bytes;
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1];
    const b = points[i];
    if (a === undefined || b === undefined || bytes > b.bytes) continue;
    const f = Math.log(bytes / a.bytes) / Math.log(b.bytes / a.bytes);
    return Math.exp(Math.log(a.us) + f * Math.log(b.us / a.us));
  }
  return last.us;
}

/** Best synced bandwidth of step 1 (pre-written write+fdatasync, bytes per µs at p50). */
export function syncedBandwidthBytesPerUs(rows: readonly MethodRow[]): number | undefined {
  let best: number | undefined;
  for (const r of rows) {
    if (r.method !== SyncMethods.WRITE_FDATASYNC || r.file !== FileKinds.PREWRITTEN || r.latency === undefined || !(r.latency.p50Us > 0)) continue;
    const bw = r.bytes / r.latency.p50Us;
    if (best === undefined || bw > best) best = bw;
  }
  return best;
}

/** The derived limit of a cell with `averageBatch` appends and `bytesPerBatch` bytes per batch. */
export function deriveLimit(rows: readonly MethodRow[], averageBatch: number, bytesPerBatch: number): DerivedLimit | undefined {
  const t = syncTimeUs(rows, bytesPerBatch);
  const bw = syncedBandwidthBytesPerUs(rows);
  if (t === undefined || bw === undefined || !(averageBatch > 0) || !(bytesPerBatch > 0)) return undefined;
  const bySync = (averageBatch * 1e6) / t;
  const byBandwidth = (bw * 1e6) / (bytesPerBatch / averageBatch);
  return bySync <= byBandwidth ? { appendsPerS: bySync, boundBy: 'sync time', batchSyncUs: t } : { appendsPerS: byBandwidth, boundBy: 'bandwidth', batchSyncUs: t };
}

/** What drives step 2. */
export interface GroupContext {
  dir: string;
  secondsPerCell: number;
  signal: AbortSignal;
  onRow?: (label: string) => void;
}

/** Runs one cell on an open Wal. */
async function measureCell(wal: Wal, recordBytes: number, writers: number, ctx: GroupContext): Promise<Omit<GroupRow, 'limit' | 'fractionOfLimit'>> {
  const record = Buffer.alloc(recordBytes, 0x5a);
  const samples = new Samples();
  const before = wal.stats();
  const start = performance.now();
  const deadline = start + ctx.secondsPerCell * 1000;
  const writer = async (): Promise<void> => {
    while (!ctx.signal.aborted && performance.now() < deadline) {
      const t = performance.now();
      await wal.append(record);
      samples.push((performance.now() - t) * 1000);
    }
  };
  await Promise.all(Array.from({ length: writers }, writer));
  const seconds = (performance.now() - start) / 1000;
  ctx.signal.throwIfAborted();
  const after = wal.stats();
  const appends = after.appends - before.appends;
  const batches = after.batches - before.batches;
  return {
    recordBytes,
    writers,
    seconds,
    appends,
    appendsPerS: appends / seconds,
    mbPerS: (appends * recordBytes) / seconds / 1e6,
    syncs: after.syncs - before.syncs,
    averageBatch: batches > 0 ? appends / batches : Number.NaN,
    bytesPerBatch: batches > 0 ? (after.bytesWritten - before.bytesWritten) / batches : Number.NaN,
    latency: summarize(samples),
  };
}

/** Step 2: every (record size, writers) cell on one Wal in `ctx.dir`; closes it (the caller removes the directory). */
export async function measureGroupCommit(ctx: GroupContext, methodRows: readonly MethodRow[], writerCounts = groupWriterCounts, recordSizes = groupRecordBytes): Promise<GroupRow[]> {
  ctx.onRow?.('opening a tidemark Wal');
  const wal = await Wal.open(path.join(ctx.dir, 'wal'), { sync: 'fdatasync' });
  const rows: GroupRow[] = [];
  try {
    // Warm-up: the first batches of a new log (untimed).
    await Promise.all(Array.from({ length: 16 }, () => wal.append(Buffer.alloc(128))));
    for (const recordBytes of recordSizes) {
      for (const writers of writerCounts) {
        ctx.onRow?.(`Wal group commit · ${recordBytes} B × ${writers} writers`);
        await yieldTurn(ctx.signal);
        const cell = await measureCell(wal, recordBytes, writers, ctx);
        const limit = deriveLimit(methodRows, cell.averageBatch, cell.bytesPerBatch);
        rows.push(limit === undefined ? cell : { ...cell, limit, fractionOfLimit: cell.appendsPerS / limit.appendsPerS });
      }
    }
  } finally {
    await wal.close();
  }
  return rows;
}
