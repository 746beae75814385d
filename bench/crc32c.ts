/**
 * CRC-32C from JavaScript: tidemark's `crc32c` against the `sse4_crc32` package, in the
 * same process, on the same buffers.
 *
 *   npm run bench:crc [-- --rounds 7 --ms 150]
 *
 * Per size, each contestant is warmed up, then timed in `rounds` interleaved rounds of
 * about `ms` milliseconds each (the calls run in a tight loop; every result is folded
 * into a sink that is printed at the end, so no call can be optimised away). The table
 * shows the median round. Data is random and the same buffer is reused, so it is
 * cache-resident (a checksum on data just written or just read is the WAL's case).
 * GB/s is 10^9 bytes per second. "speedup" is sse4_crc32's time over tidemark's.
 * The "N-API call only" column calls the native function directly, without the argument
 * checks and without the JavaScript path crc32c() takes for inputs of up to 32 bytes.
 */
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { crc32c, crc32cImplementation } from '../lib/crc32c';
import { binding } from '../lib/log/binding';

type CrcFn = (data: Buffer, seed: number) => number;

const requireCjs = createRequire(__filename);
const sse4 = requireCjs('sse4_crc32') as { calculate: (data: Buffer, initial?: number) => number };

const SIZES = [16, 64, 256, 1024, 4096, 65536, 1 << 20] as const;

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} must be a positive integer`);
  return value;
}
const ROUNDS = option('rounds', 7);
const ROUND_MS = option('ms', 150);

let sink = 0;

// Calls fn `iterations` times on `buf`; returns ns per call.
function timeLoop(fn: CrcFn, buf: Buffer, iterations: number): number {
  let acc = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) acc = (acc + fn(buf, i & 0xff)) | 0;
  const ns = Number(process.hrtime.bigint() - start);
  sink ^= acc;
  return ns / iterations;
}

// Iterations that take about `ms` milliseconds.
function calibrate(fn: CrcFn, buf: Buffer, ms: number): number {
  let iterations = 16;
  for (;;) {
    const nsPerCall = timeLoop(fn, buf, iterations);
    if (nsPerCall * iterations > 20e6 || iterations >= 1 << 30) return Math.max(1, Math.round((ms * 1e6) / nsPerCall));
    iterations *= 4;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1] ?? NaN;
}

function randomBuffer(size: number, seed: number): Buffer {
  const buf = Buffer.allocUnsafeSlow(size);
  let s = seed;
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    buf[i] = s >>> 24;
  }
  return buf;
}

interface Row { size: number; tidemarkNs: number; napiNs: number; sse4Ns: number }

function fmtSize(size: number): string {
  if (size >= 1 << 20) return `${size / (1 << 20)} MiB`;
  if (size >= 1024) return `${size / 1024} KiB`;
  return `${size} B`;
}

function main(): void {
  const native = binding().crc32c;
  const contestants: Array<[string, CrcFn]> = [
    ['tidemark', (b, s) => crc32c(b, s)],
    // The bare native call (no validation, no JS short path), to show the N-API floor.
    ['tidemark N-API call', (b, s) => native(b, s)],
    ['sse4_crc32', (b, s) => sse4.calculate(b, s)],
  ];
  const rows: Row[] = [];
  for (const size of SIZES) {
    const buf = randomBuffer(size, size);
    // Same answer from both, or the comparison means nothing.
    const want = crc32c(buf, 12345);
    if (sse4.calculate(buf, 12345) !== want) throw new Error(`sse4_crc32 disagrees with tidemark at ${size} B`);
    const iterations = contestants.map(([, fn]) => calibrate(fn, buf, ROUND_MS));
    const samples: number[][] = contestants.map(() => []);
    for (let round = 0; round < ROUNDS; round++) {
      contestants.forEach(([, fn], c) => samples[c]?.push(timeLoop(fn, buf, iterations[c] ?? 1)));
    }
    rows.push({ size, tidemarkNs: median(samples[0] ?? []), napiNs: median(samples[1] ?? []), sse4Ns: median(samples[2] ?? []) });
  }

  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(`crc32c from JS, node ${process.version}, ${cpu}, tidemark implementation '${crc32cImplementation()}'`);
  console.log(`median of ${ROUNDS} rounds of ~${ROUND_MS} ms per cell; GB/s = 1e9 B/s\n`);
  console.log('| size | tidemark ns/call | tidemark GB/s | (N-API call only) ns/call | sse4_crc32 ns/call | sse4_crc32 GB/s | speedup |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    console.log(
      `| ${fmtSize(r.size)} | ${r.tidemarkNs.toFixed(1)} | ${(r.size / r.tidemarkNs).toFixed(2)} | ${r.napiNs.toFixed(1)} | ` +
        `${r.sse4Ns.toFixed(1)} | ${(r.size / r.sse4Ns).toFixed(2)} | ${(r.sse4Ns / r.tidemarkNs).toFixed(2)}x |`,
    );
  }
  const at = (size: number): Row | undefined => rows.find((r) => r.size === size);
  const small = at(16);
  const mid = at(65536);
  const worstRatio = Math.min(...rows.filter((r) => r.size >= 1024).map((r) => r.sse4Ns / r.tidemarkNs));
  console.log('\ntargets (issue 2):');
  console.log(`- >= 2x sse4_crc32 at 1 KiB and above: worst ${worstRatio.toFixed(2)}x ${worstRatio >= 2 ? 'MET' : 'MISSED'}`);
  if (mid) {
    const gbs = mid.size / mid.tidemarkNs;
    console.log(`- >= 20 GB/s at 64 KiB: ${gbs.toFixed(2)} GB/s ${gbs >= 20 ? 'MET' : 'MISSED'}`);
  }
  if (small) console.log(`- < 50 ns a call at 16 B: ${small.tidemarkNs.toFixed(1)} ns ${small.tidemarkNs < 50 ? 'MET' : 'MISSED'}`);
  console.log(`(sink ${sink >>> 0})`);
}

main();
