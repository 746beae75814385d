/**
 * Measurement pieces of the replication benchmark that need no benchmark-only dependency:
 * the failover meter (acknowledgement times, errors, kill and election marks, the write
 * gap, a write-rate timeline), a latency recorder interface with an exact fallback (used
 * when hdr-histogram-js is not installed, e.g. in the root test suite), CPU and RSS from /proc.
 */
import * as fs from 'node:fs';
import { longestGap, writeGap } from '../load';

/** One failover, as measured. */
export interface FailoverResult {
  readonly killed: string;
  readonly newLeader: string;
  /** SIGKILL to a new leader seen by polling the survivors (ms). */
  readonly electedAfterMs: number;
  /**
   * Longest stretch without an acknowledged write anywhere from the kill to the last
   * acknowledgement before the load stopped (it runs ≥ 3 s past the kill and until writes
   * resumed after the election), so a second stall after the election counts too (ms).
   */
  readonly writeGapMs: number;
  /** lib/cli/load.ts `writeGap`: the same, but only until the first acknowledgement after the election (what the demo prints). */
  readonly firstGapMs: number;
  /** Writes that failed (rejected or timed out) between the kill and the end of the load. */
  readonly errors: number;
  /** Acknowledged writes per second in `bucketMs` buckets, from `timelineFromMs` relative to the kill. */
  readonly timeline: { readonly bucketMs: number; readonly fromMs: number; readonly rates: readonly number[] };
}

/**
 * Collects what a load sees around a leader kill. Times are `performance.now()` values
 * (ms); acknowledgements must be recorded in ascending order (one event loop does that).
 */
export class FailoverMeter {
  private readonly acks: number[] = [];
  private readonly errorTimes: number[] = [];
  private tKill = NaN;
  private tElected = NaN;
  private tStop = Infinity;

  ack(t: number): void {
    this.acks.push(t);
  }

  error(t: number): void {
    this.errorTimes.push(t);
  }

  killed(t: number): void {
    this.tKill = t;
  }

  elected(t: number): void {
    this.tElected = t;
  }

  /**
   * The load stopped issuing writes at `t`: acknowledgements after it (writes that were stuck,
   * e.g. on the dead node, finishing late) no longer bound a gap.
   */
  stopped(t: number): void {
    this.tStop = t;
  }

  /** Whether a write was acknowledged after the election was marked. */
  resumed(): boolean {
    const last = this.acks[this.acks.length - 1];
    return last !== undefined && last > this.tElected;
  }

  /** When the kill was marked. */
  killedAt(): number {
    return this.tKill;
  }

  /** The result; `timelineFromMs`/`timelineToMs` relative to the kill. */
  result(killed: string, newLeader: string, bucketMs = 50, timelineFromMs = -1000, timelineToMs = 3000): FailoverResult {
    if (Number.isNaN(this.tKill) || Number.isNaN(this.tElected)) throw new Error('FailoverMeter: kill and election not both marked');
    const first = writeGap(this.acks, this.tKill, this.tElected);
    const during = this.acks.filter((t) => t <= this.tStop);
    const last = during[during.length - 1];
    const gap = first === undefined || last === undefined || last <= this.tElected ? undefined : longestGap(during, this.tKill, last);
    const n = Math.ceil((timelineToMs - timelineFromMs) / bucketMs);
    const counts = new Array<number>(n).fill(0);
    for (const t of this.acks) {
      const i = Math.floor((t - this.tKill - timelineFromMs) / bucketMs);
      if (i >= 0 && i < n) counts[i] = (counts[i] as number) + 1;
    }
    return {
      killed,
      newLeader,
      electedAfterMs: Math.round(this.tElected - this.tKill),
      writeGapMs: gap === undefined ? NaN : Math.round(gap * 10) / 10,
      firstGapMs: first === undefined ? NaN : Math.round(first * 10) / 10,
      errors: this.errorTimes.filter((t) => t >= this.tKill).length,
      timeline: { bucketMs, fromMs: timelineFromMs, rates: counts.map((c) => Math.round((c * 1000) / bucketMs)) },
    };
  }
}

/** Median and worst of a list (NaN when empty; NaN entries count as worst). */
export function medianWorst(xs: readonly number[]): { median: number; worst: number } {
  if (xs.length === 0) return { median: NaN, worst: NaN };
  if (xs.some((x) => Number.isNaN(x))) return { median: NaN, worst: NaN };
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { median: s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2, worst: s[s.length - 1] as number };
}

/** Latency recorder in microseconds (an HDR histogram or the exact fallback). */
export interface Recorder {
  record(us: number): void;
  percentile(p: number): number;
  count(): number;
  destroy(): void;
}

/** Keeps every value; exact percentiles (nearest rank). */
export class ExactRecorder implements Recorder {
  private values: number[] = [];
  private sorted = true;

  record(us: number): void {
    this.values.push(us);
    this.sorted = false;
  }

  percentile(p: number): number {
    if (this.values.length === 0) return NaN;
    if (!this.sorted) {
      this.values.sort((a, b) => a - b);
      this.sorted = true;
    }
    const rank = Math.max(1, Math.ceil((p / 100) * this.values.length - 1e-9));
    return this.values[Math.min(rank, this.values.length) - 1] as number;
  }

  count(): number {
    return this.values.length;
  }

  destroy(): void {
    this.values = [];
  }
}

/** The percentiles the latency-distribution chart plots (x axis in "nines"). */
export const CHART_PERCENTILES = [0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99] as const;

const CLK_TCK = 100;

/** utime+stime of a process in seconds, from /proc/<pid>/stat (NaN when it is gone). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** Resident set size in MB, from /proc/<pid>/status (NaN when it is gone). */
export function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? NaN : Math.round(Number(m[1]) / 102.4) / 10;
  } catch {
    return NaN;
  }
}
