/**
 * Step 3 of `tidemark bench fsync`: does a sync here reach stable storage, as far as a
 * program can tell from outside? Signs that it does not:
 * - the filesystem lives in memory (tmpfs, ramfs);
 * - a sync costs no more than a plain write plus a small margin (nothing was waited for);
 * - a sub-20 µs sync on a device that reports a volatile (write back) cache: no real cache
 *   flush is that fast;
 * - the device completed no flush requests while the benchmark issued thousands of syncs
 *   (/sys/block/DEV/stat), with a write-back cache;
 * - the filesystem is mounted with barriers off (`nobarrier`, `barrier=0`).
 * None of these can prove a disk honest (a virtual disk may acknowledge flushes it ignores,
 * with realistic timing); they only catch the ones that plainly do not flush.
 */
import type { DeviceCounters, FsInfo } from '../fsinfo';
import { FileKinds, PLAIN_WRITE, SyncMethods, type MethodRow } from './methods';

/** Filesystems that keep everything in memory. */
const memoryFilesystems = new Set(['tmpfs', 'ramfs', 'devtmpfs']);
/** A sync must cost at least this much more than a plain write (absolute part, µs)... */
const syncMarginUs = 20;
/** ...plus this fraction of the plain write's time. */
const syncMarginFraction = 0.25;
/** Faster than this, a sync on a write-back device did not flush its cache. */
const volatileCacheFloorUs = 20;

/** The verdict of the honesty check. */
export const Verdicts = {
  FLUSHES: 'appears to flush',
  SUSPICIOUS: 'suspicious',
  DOES_NOT_FLUSH: 'does not flush',
} as const;
export type Verdict = (typeof Verdicts)[keyof typeof Verdicts];

/** The sentence used whenever the check concludes a disk does not flush. */
export const doesNotFlushWarning = 'this disk or filesystem does not appear to flush: tmpfs, a volatile cache, or a virtual disk that ignores flushes';

/** Per size: a plain write against write+fdatasync on the pre-written file (p50s). */
export interface SyncVsWrite {
  bytes: number;
  plainWriteP50Us: number;
  syncP50Us: number;
  /** The sync is within the margin of the plain write. */
  tooFast: boolean;
}

/** What the check found. */
export interface HonestyReport {
  verdict: Verdict;
  /** One sentence per finding, in order of weight. */
  findings: string[];
  syncVsWrite: SyncVsWrite[];
  /** Syncs the benchmark issued: step 1 (every row, warm-up included), step 2 (the Wal's counter). */
  syncsIssued: { methods: number; wal: number; total: number };
  /** Completed requests at the device during the run (all processes, not only this one). */
  device?: { name: string; writes: number; flushes?: number };
  /** Flush requests the device completed while step 1's rows ran (sum over rows; all processes). */
  step1DeviceFlushes?: number;
}

/** Device counter differences between two readings. */
export function counterDelta(before: DeviceCounters | undefined, after: DeviceCounters | undefined): { writes: number; flushes?: number } | undefined {
  if (before === undefined || after === undefined) return undefined;
  const writes = after.writes - before.writes;
  return before.flushes !== undefined && after.flushes !== undefined ? { writes, flushes: after.flushes - before.flushes } : { writes };
}

/** Runs the check over step 1's rows, the syncs step 2 issued and the device counters. */
export function checkHonesty(fsInfo: FsInfo, rows: readonly MethodRow[], walSyncs: number, device: { writes: number; flushes?: number } | undefined): HonestyReport {
  const findings: string[] = [];
  let notFlushing = false;
  let suspicious = false;
  const fsType = fsInfo.fsType ?? 'unknown';
  if (memoryFilesystems.has(fsType)) {
    notFlushing = true;
    findings.push(`${fsInfo.dir} is on ${fsType}: it lives in memory, a sync has nothing to flush and nothing survives a reboot.`);
  }
  const options = (fsInfo.options ?? '').split(',');
  if (options.includes('nobarrier') || options.includes('barrier=0')) {
    suspicious = true;
    findings.push(`The filesystem is mounted with write barriers off (${options.includes('nobarrier') ? 'nobarrier' : 'barrier=0'}): syncs do not ask the device to flush its cache.`);
  }
  const syncVsWrite: SyncVsWrite[] = [];
  for (const plain of rows) {
    if (plain.method !== PLAIN_WRITE || plain.latency === undefined) continue;
    const sync = rows.find((r) => r.method === SyncMethods.WRITE_FDATASYNC && r.file === FileKinds.PREWRITTEN && r.bytes === plain.bytes);
    if (sync?.latency === undefined) continue;
    const tooFast = sync.latency.p50Us < plain.latency.p50Us * (1 + syncMarginFraction) + syncMarginUs;
    syncVsWrite.push({ bytes: plain.bytes, plainWriteP50Us: plain.latency.p50Us, syncP50Us: sync.latency.p50Us, tooFast });
  }
  const tooFast = syncVsWrite.filter((s) => s.tooFast);
  if (tooFast.length > 0) {
    if (tooFast.length === syncVsWrite.length) notFlushing = true;
    else suspicious = true;
    findings.push(
      `write+fdatasync costs no more than a plain write plus ${syncMarginUs} µs + ${syncMarginFraction * 100} % at ${tooFast.length} of ${syncVsWrite.length} sizes ` +
        `(e.g. ${tooFast[0]?.syncP50Us.toFixed(1)} µs vs ${tooFast[0]?.plainWriteP50Us.toFixed(1)} µs at ${tooFast[0]?.bytes} B): nothing was waited for.`,
    );
  }
  const small = syncVsWrite.find((s) => s.bytes === 4096) ?? syncVsWrite[0];
  if (fsInfo.writeCache === 'write back' && small !== undefined && small.syncP50Us < volatileCacheFloorUs) {
    notFlushing = true;
    findings.push(`The device reports a volatile write cache, yet a ${small.bytes} B write+fdatasync takes ${small.syncP50Us.toFixed(1)} µs: no cache flush is that fast.`);
  }
  const methodSyncs = rows.reduce((n, r) => n + r.syncsIssued, 0);
  const syncsIssued = { methods: methodSyncs, wal: walSyncs, total: methodSyncs + walSyncs };
  if (device?.flushes !== undefined && fsInfo.writeCache === 'write back' && syncsIssued.total >= 100) {
    if (device.flushes === 0) {
      notFlushing = true;
      findings.push(`The benchmark issued ${syncsIssued.total} syncs, yet device ${fsInfo.blockDevice ?? '?'} completed no flush request: the flushes never reached it.`);
    } else if (device.flushes < syncsIssued.methods / 10) {
      suspicious = true;
      findings.push(`The benchmark issued ${syncsIssued.total} syncs but device ${fsInfo.blockDevice ?? '?'} completed only ${device.flushes} flush requests.`);
    }
  }
  const rowsWithFlushes = rows.filter((r) => r.deviceFlushes !== undefined);
  const step1DeviceFlushes = rowsWithFlushes.length > 0 ? rowsWithFlushes.reduce((n, r) => n + (r.deviceFlushes ?? 0), 0) : undefined;
  if (step1DeviceFlushes !== undefined && fsInfo.writeCache === 'write back') {
    const ours = rowsWithFlushes.reduce((n, r) => n + r.syncsIssued, 0);
    if (step1DeviceFlushes > ours * 1.2 + 50) {
      findings.push(`While step 1 ran, device ${fsInfo.blockDevice ?? '?'} completed ${step1DeviceFlushes} flush requests for the ${ours} syncs issued here: other processes were syncing too, so expect noise in every number.`);
    }
  }
  if (fsInfo.writeCache === 'write through' && !memoryFilesystems.has(fsType)) {
    findings.push(`Device ${fsInfo.blockDevice ?? '?'} reports no volatile cache (write through), so the kernel sends it no flushes: durability rests on the device (or its hypervisor) keeping that promise.`);
  }
  const verdict = notFlushing ? Verdicts.DOES_NOT_FLUSH : suspicious ? Verdicts.SUSPICIOUS : Verdicts.FLUSHES;
  if (verdict === Verdicts.DOES_NOT_FLUSH) findings.unshift(`Warning: ${doesNotFlushWarning}.`);
  return { verdict, findings, syncVsWrite, syncsIssued, ...(step1DeviceFlushes === undefined ? {} : { step1DeviceFlushes }), ...(device === undefined || fsInfo.blockDevice === undefined ? {} : { device: { name: fsInfo.blockDevice, ...device } }) };
}
