/**
 * Step 2 of `tidemark bench fsync`: the group-commit curve of tidemark's own Wal
 * (`sync: 'fdatasync'`, default options) with N closed-loop writers, each awaiting its
 * append before the next; and beside each cell the limit the disk sets, derived from step 1.
 *
 * The derived limit: N writers share a batch of B appends (the Wal's own counters tell B
 * and the bytes per batch W), and one batch costs one pwrite + fdatasync of W bytes on a
 * pre-written file. Step 1 measured that (`write+fdatasync`, pre-written) at 512 B to
 * 1 MiB; t(W) is its mean time per operation (1 / ops/s, so that it compares with the
 * Wal's own average rate), log-log interpolated between the measured sizes. Beyond the
 * largest size the bandwidth caps it: t(W) = t(largest) + (W - largest) / the best synced
 * bandwidth of step 1 (more bytes in one sync cost at least their transfer). The limit is
 * B / t(W) appends/s. (Within the measured sizes t(W) never drops below W / that
 * bandwidth, so the cap holds there too.)
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
  /** t(W): the mean write+fdatasync time of one batch's bytes, interpolated from step 1. */
  batchSyncUs: number;
  /** W is beyond step 1's largest size: t(W) extends it at the best synced bandwidth. */
  extrapolated: boolean;
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

function fdatasyncPoints(rows: readonly MethodRow[]): Array<{ bytes: number; us: number }> {
  return rows
    .filter((r) => r.method === SyncMethods.WRITE_FDATASYNC && r.file === FileKinds.PREWRITTEN && r.latency !== undefined && r.latency.meanUs > 0)
    .map((r) => ({ bytes: r.bytes, us: r.latency?.meanUs ?? Number.NaN }))
    .sort((a, b) => a.bytes - b.bytes);
}

/** Best synced bandwidth of step 1 (pre-written write+fdatasync, bytes per µs of mean time). */
export function syncedBandwidthBytesPerUs(rows: readonly MethodRow[]): number | undefined {
  const points = fdatasyncPoints(rows);
  return points.length === 0 ? undefined : Math.max(...points.map((p) => p.bytes / p.us));
}

/** t(W): mean time of a pre-written write+fdatasync of `bytes`, from step 1; undefined without data. */
export function syncTimeUs(rows: readonly MethodRow[], bytes: number): number | undefined {
  const points = fdatasyncPoints(rows);
  const bandwidth = syncedBandwidthBytesPerUs(rows);
  const first = points[0];
  const last = points[points.length - 1];
  if (first === undefined || last === undefined || bandwidth === undefined) return undefined;
  if (bytes <= first.bytes) return first.us;
  if (bytes >= last.bytes) return last.us + (bytes - last.bytes) / bandwidth;
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1];
    const b = points[i];
    if (a === undefined || b === undefined || bytes > b.bytes) continue;
    const f = Math.log(bytes / a.bytes) / Math.log(b.bytes / a.bytes);
    return Math.exp(Math.log(a.us) + f * Math.log(b.us / a.us));
  }
  return last.us;
}

/** The derived limit of a cell with `averageBatch` appends and `bytesPerBatch` bytes per batch. */
export function deriveLimit(rows: readonly MethodRow[], averageBatch: number, bytesPerBatch: number): DerivedLimit | undefined {
  const t = syncTimeUs(rows, bytesPerBatch);
  if (t === undefined || !(averageBatch > 0) || !(bytesPerBatch > 0)) return undefined;
  const largest = Math.max(...fdatasyncPoints(rows).map((p) => p.bytes));
  return { appendsPerS: (averageBatch * 1e6) / t, batchSyncUs: t, extrapolated: bytesPerBatch > largest };
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
