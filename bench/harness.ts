/**
 * The closed-loop driver shared by every contestant of bench/append.ts.
 *
 * N writers each await an append, then issue the next one. The first `warmupSeconds` are
 * not measured; after that, for `seconds`, every append that completes is counted and its
 * latency (from the call to the settled promise, in µs) goes into an HDR histogram.
 */
import * as hdr from 'hdr-histogram-js';

/** An open store under test. */
export interface BenchStore {
  /** Appends one record; resolves only when the contestant's durability claim holds. */
  append(data: Buffer): Promise<void>;
  /** Syncs issued since open, when the contestant can count them; `undefined` otherwise. */
  syncCount(): number | undefined;
  /** Closes and releases everything (the bench removes the directory afterwards). */
  close(): Promise<void>;
}

/** One competitor. */
export interface Contestant {
  /** Row label, also the `--only` name. */
  name: string;
  /** What an acknowledged append means for this contestant (printed under the table). */
  durability: string;
  /** Opens a fresh store in `dir` (an empty directory). */
  open(dir: string, recordBytes: number): Promise<BenchStore>;
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
}

/** Runs `writers` closed-loop writers against `store` with records of `recordBytes`. */
export async function runClosedLoop(store: BenchStore, recordBytes: number, writers: number, seconds: number, warmupSeconds: number): Promise<CellResult> {
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false });
  // One payload per writer, random so that nothing compresses; never mutated while in flight.
  const payloads = Array.from({ length: writers }, () => {
    const b = Buffer.allocUnsafe(recordBytes);
    for (let i = 0; i < recordBytes; i++) b[i] = (Math.random() * 256) | 0;
    return b;
  });
  // Phases are decided by the clock at each completion, not by timers: a contestant that
  // settles synchronously (better-sqlite3) would starve a timer forever.
  const warmupEnd = performance.now() + warmupSeconds * 1000;
  const measureEnd = warmupEnd + seconds * 1000;
  let measuring = false;
  let appends = 0;
  let syncsAtStart: number | undefined;
  let syncsAtEnd: number | undefined;
  let finished = false;
  const writer = async (payload: Buffer): Promise<void> => {
    for (;;) {
      const start = performance.now();
      await store.append(payload);
      const end = performance.now();
      if (end >= measureEnd) {
        if (!finished) {
          finished = true;
          syncsAtEnd = store.syncCount();
        }
        return;
      }
      if (end >= warmupEnd) {
        if (!measuring) {
          measuring = true;
          syncsAtStart = store.syncCount();
        }
        histogram.recordValue(Math.max(1, Math.round((end - start) * 1000)));
        appends++;
      }
    }
  };
  await Promise.all(payloads.map(writer));
  const elapsed = seconds;
  const measured = appends;
  const result: CellResult = {
    appends: measured,
    seconds: elapsed,
    appendsPerS: measured / elapsed,
    mbPerS: (measured * recordBytes) / elapsed / 1e6,
    p50Us: histogram.getValueAtPercentile(50),
    p99Us: histogram.getValueAtPercentile(99),
    p999Us: histogram.getValueAtPercentile(99.9),
    maxUs: histogram.maxValue,
    syncsPer1k: syncsAtStart !== undefined && syncsAtEnd !== undefined && measured > 0 ? ((syncsAtEnd - syncsAtStart) / measured) * 1000 : undefined,
  };
  histogram.destroy();
  return result;
}

/** A timer promise that keeps the event loop turning (writers run while we wait). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
