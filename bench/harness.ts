/**
 * The closed-loop driver shared by every contestant of bench/append.ts.
 *
 * N writers each await an append, then issue the next one. After an unmeasured warm-up,
 * every append that completes inside a measured slice is counted and its latency (from the
 * call to the settled promise, in µs) goes into an HDR histogram.
 */
import { createHistogram, monitorEventLoopDelay, type RecordableHistogram } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';

/** Sampling interval of the event-loop delay monitor (ms): a stall shorter than this is seen only partly. */
export const loopDelayResolutionMs = 2;

/** An open store under test. */
export interface BenchStore {
  /** Appends one record; resolves only when the contestant's durability claim holds. */
  append(data: Buffer): Promise<void>;
  /** Syncs issued since open, when the contestant can count them; `undefined` otherwise. */
  syncCount(): number | undefined;
  /** Closes and releases everything (the bench removes the directory afterwards). */
  close(): Promise<void>;
}

/** Bench-wide settings for contestants that have them (`--segment-bytes`). */
export interface StoreTuning {
  /** tidemark's `segmentBytes`. */
  segmentBytes?: number;
}

/** One competitor. */
export interface Contestant {
  /** Row label, also the `--only` name. */
  name: string;
  /** What an acknowledged append means for this contestant (printed under the table). */
  durability: string;
  /** Opens a fresh store in `dir` (an empty directory). `tuning` applies to the contestants it names (others ignore it). */
  open(dir: string, recordBytes: number, tuning?: StoreTuning): Promise<BenchStore>;
  /** A baseline that stores nothing (the harness ceiling): never a "best peer". */
  readonly notAPeer?: boolean;
}

/** What one cell of one contestant measured. */
export interface CellResult {
  appends: number;
  seconds: number;
  appendsPerS: number;
  mbPerS: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  /** Syncs per 1000 appends in the measured window, or `undefined` when not countable. */
  syncsPer1k: number | undefined;
  /**
   * Event-loop delay while this contestant's measured slices ran (`perf_hooks.monitorEventLoopDelay`,
   * sampled every {@link loopDelayResolutionMs} ms; µs). A contestant that blocks the JS thread for
   * its I/O shows it here; a loop blocked for a whole slice shows up as one sample as long as the slice (max).
   */
  loopDelayP50Us: number;
  loopDelayP99Us: number;
  loopDelayMaxUs: number;
}

/**
 * One contestant's measurement of one cell, taken in slices so that contestants can be
 * interleaved (A, B, C, A, B, C, ...) and share whatever else the machine is doing.
 */
export class CellMeasurement {
  readonly #store: BenchStore;
  readonly #recordBytes: number;
  readonly #payloads: Buffer[];
  readonly #histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false });
  #appends = 0;
  #seconds = 0;
  #syncs = 0;
  /** Completions covered by the sync counts: counted appends plus the one per slice that ended it. */
  #syncedAppends = 0;
  #syncsKnown = true;
  /** This contestant's event-loop delay over its measured slices (see {@link addLoopDelay}). */
  readonly #loopDelay: RecordableHistogram = createHistogram();

  constructor(store: BenchStore, recordBytes: number, writers: number) {
    this.#store = store;
    this.#recordBytes = recordBytes;
    // One payload per writer, random so that nothing compresses; never mutated while in flight.
    this.#payloads = Array.from({ length: writers }, () => {
      const b = Buffer.allocUnsafe(recordBytes);
      for (let i = 0; i < recordBytes; i++) b[i] = (Math.random() * 256) | 0;
      return b;
    });
  }

  /** Runs the writers for `seconds` without recording anything. */
  async warmup(seconds: number): Promise<void> {
    await this.#drive(seconds, false);
  }

  /** Runs the writers for `seconds` and adds what completed to the measurement. */
  async slice(seconds: number): Promise<void> {
    // A monitor per slice: a re-enabled monitor records the time it was disabled (other
    // contestants' slices) as one delay.
    const monitor = monitorEventLoopDelay({ resolution: loopDelayResolutionMs });
    monitor.enable();
    try {
      // The monitor's first tick only sets its baseline: let it happen before the slice, or a
      // contestant that holds the loop for the whole slice would not be measured at all.
      await new Promise((resolve) => setTimeout(resolve, loopDelayResolutionMs + 1));
      await this.#drive(seconds, true);
      // One timer turn before stopping: a contestant that never yielded to the loop during the
      // slice (synchronous commits resolved through microtasks) is sampled now, with the whole delay.
      await new Promise((resolve) => setTimeout(resolve, loopDelayResolutionMs + 1));
    } finally {
      monitor.disable();
      addLoopDelay(this.#loopDelay, monitor);
    }
  }

  /**
   * N writers, each awaiting its append before the next. Appends that complete within the
   * window are counted; the writers then finish their in-flight append and stop. Phases are
   * decided by the clock at each completion, not by timers: a contestant that settles
   * synchronously (better-sqlite3) would starve a timer forever.
   */
  async #drive(seconds: number, record: boolean): Promise<void> {
    const windowEnd = performance.now() + seconds * 1000;
    const syncsAtStart = this.#store.syncCount();
    const appendsAtStart = this.#appends;
    let syncsAtEnd: number | undefined;
    let finished = false;
    const writer = async (payload: Buffer): Promise<void> => {
      for (;;) {
        const start = performance.now();
        await this.#store.append(payload);
        const end = performance.now();
        if (end >= windowEnd) {
          if (!finished) {
            finished = true;
            syncsAtEnd = this.#store.syncCount();
          }
          return;
        }
        if (record) {
          this.#histogram.recordValue(Math.max(1, Math.round((end - start) * 1000)));
          this.#appends++;
        }
      }
    };
    await Promise.all(this.#payloads.map(writer));
    if (!record) return;
    this.#seconds += seconds;
    if (syncsAtStart === undefined || syncsAtEnd === undefined) {
      this.#syncsKnown = false;
    } else {
      // The end snapshot is taken at the first completion past the window, whose sync is in it.
      this.#syncs += syncsAtEnd - syncsAtStart;
      this.#syncedAppends += this.#appends - appendsAtStart + 1;
    }
  }

  /** Everything measured so far. */
  result(): CellResult {
    const h = this.#histogram;
    const n = this.#appends;
    return {
      appends: n,
      seconds: this.#seconds,
      appendsPerS: n / this.#seconds,
      mbPerS: (n * this.#recordBytes) / this.#seconds / 1e6,
      p50Us: h.getValueAtPercentile(50),
      p99Us: h.getValueAtPercentile(99),
      p999Us: h.getValueAtPercentile(99.9),
      maxUs: h.maxValue,
      syncsPer1k: this.#syncsKnown && this.#syncedAppends > 0 ? (this.#syncs / this.#syncedAppends) * 1000 : undefined,
      ...loopDelayOf(this.#loopDelay),
    };
  }

  /** Frees the histogram. */
  destroy(): void {
    this.#histogram.destroy();
  }
}

/**
 * Adds one slice's event-loop delay samples to `total`. An ELDHistogram cannot be merged
 * (`RecordableHistogram.add` refuses it), so its percentile distribution (`percentiles`: the
 * value at 0, 50, 75, 87.5, ... 100 %) is replayed: the samples between two points are recorded
 * at the higher point's value. That rounds delays up, never down, and keeps max exact.
 */
export function addLoopDelay(total: RecordableHistogram, slice: { count: number; percentiles: Map<number, number> }): void {
  let recorded = 0;
  for (const [p, v] of [...slice.percentiles].sort((a, b) => a[0] - b[0])) {
    const upTo = Math.round((slice.count * p) / 100);
    for (; recorded < upTo; recorded++) total.record(Math.max(1, Math.round(v)));
  }
}

/** p50/p99/max of an event-loop delay histogram (ns) in µs (NaN when it holds no sample). */
export function loopDelayOf(h: RecordableHistogram): { loopDelayP50Us: number; loopDelayP99Us: number; loopDelayMaxUs: number } {
  if (h.count === 0) return { loopDelayP50Us: Number.NaN, loopDelayP99Us: Number.NaN, loopDelayMaxUs: Number.NaN };
  // The monitor records the time between its ticks: minus the sampling interval, the delay.
  const us = (ns: number): number => Math.max(0, ns / 1000 - loopDelayResolutionMs * 1000);
  return { loopDelayP50Us: us(h.percentile(50)), loopDelayP99Us: us(h.percentile(99)), loopDelayMaxUs: us(h.max) };
}
