/**
 * Latency samples and their summary for `tidemark bench fsync`: percentiles by rank over
 * the sorted samples (no interpolation) and a log-spaced histogram for the charts.
 */

/** A growable list of latencies in microseconds. */
export class Samples {
  #values = new Float64Array(1024);
  #count = 0;

  get count(): number {
    return this.#count;
  }

  push(us: number): void {
    if (this.#count === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2);
      grown.set(this.#values);
      this.#values = grown;
    }
    this.#values[this.#count++] = us;
  }

  /** A sorted copy of the samples. */
  sorted(): Float64Array {
    return this.#values.slice(0, this.#count).sort();
  }
}

/** Histogram bucket lower bounds: 4 per octave from 1 µs (the last bucket takes everything above). */
export const histogramBoundsUs: readonly number[] = Array.from({ length: 4 * 24 + 1 }, (_, i) => Math.round(2 ** (i / 4) * 100) / 100);

/** Counts per bucket of {@link histogramBoundsUs}; trailing empty buckets are dropped. */
export function histogram(sortedUs: Float64Array): number[] {
  const counts = new Array<number>(histogramBoundsUs.length).fill(0);
  let bucket = 0;
  for (const us of sortedUs) {
    while (bucket + 1 < histogramBoundsUs.length && us >= (histogramBoundsUs[bucket + 1] ?? Infinity)) bucket++;
    counts[bucket] = (counts[bucket] ?? 0) + 1;
  }
  let last = counts.length;
  while (last > 0 && counts[last - 1] === 0) last--;
  return counts.slice(0, last);
}

/** The value at percentile `p` (0..100) of sorted samples, by rank. NaN when empty. */
export function percentile(sortedUs: Float64Array, p: number): number {
  if (sortedUs.length === 0) return Number.NaN;
  const rank = Math.min(sortedUs.length - 1, Math.max(0, Math.ceil((p / 100) * sortedUs.length) - 1));
  return sortedUs[rank] ?? Number.NaN;
}

/** What one set of timed operations came to. */
export interface LatencySummary {
  /** Timed operations. */
  count: number;
  /** Operations per second of time spent inside the timed calls. */
  opsPerS: number;
  meanUs: number;
  minUs: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  /** Counts per bucket of {@link histogramBoundsUs}. */
  histogram: number[];
}

/** Summarizes samples. */
export function summarize(samples: Samples): LatencySummary {
  const sorted = samples.sorted();
  let totalUs = 0;
  for (const s of sorted) totalUs += s;
  return {
    count: sorted.length,
    opsPerS: totalUs > 0 ? (sorted.length * 1e6) / totalUs : Number.NaN,
    meanUs: sorted.length > 0 ? totalUs / sorted.length : Number.NaN,
    minUs: sorted[0] ?? Number.NaN,
    p50Us: percentile(sorted, 50),
    p99Us: percentile(sorted, 99),
    p999Us: percentile(sorted, 99.9),
    maxUs: sorted[sorted.length - 1] ?? Number.NaN,
    histogram: histogram(sorted),
  };
}

/** Microseconds since `start` (a process.hrtime.bigint() reading). */
export function elapsedUs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1000;
}
