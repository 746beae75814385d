/**
 * CRC-32C from JavaScript: tidemark's `crc32c` against the `sse4_crc32` package, in the
 * same process, on the same buffers, measured with benchmark.js.
 *
 *   npm run bench:crc [-- --max-time 0.5]
 *
 * Per size, one benchmark.js suite holds the three contestants; benchmark.js calibrates
 * the loop count, takes samples until `max-time` seconds (per contestant and size) have
 * passed (at least 5 samples), and reports the mean time per call with its relative
 * margin of error (95 % confidence, ±%). Every result is folded into a sink that is printed
 * at the end, so no call can be optimised away. Data is random and the same buffer is
 * reused, so it is cache-resident (a checksum on data just written or just read is the
 * WAL's case). GB/s is 10^9 bytes per second. "speedup" is sse4_crc32's time over
 * tidemark's. The "N-API call only" column calls the native function directly, without the
 * argument checks and without the JavaScript path crc32c() takes for inputs of up to 32 bytes.
 */
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import Benchmark from 'benchmark';
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
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
}
const MAX_TIME_S = option('max-time', 0.5);

let sink = 0;

/** Mean ns per call and benchmark.js's relative margin of error (%) of one contestant at one size. */
interface Timing { ns: number; rme: number; samples: number }

/** Runs one benchmark.js suite: every contestant on `buf`. */
function measure(contestants: Array<[string, CrcFn]>, buf: Buffer): Timing[] {
  const suite = new Benchmark.Suite();
  let seed = 0;
  for (const [name, fn] of contestants) {
    suite.add(name, () => {
      seed = (seed + 1) & 0xff;
      sink = (sink + fn(buf, seed)) | 0;
    }, { maxTime: MAX_TIME_S, minSamples: 5 });
  }
  suite.run();
  return Array.from({ length: contestants.length }, (_, i) => {
    const bench = (suite as unknown as ArrayLike<Benchmark>)[i] as Benchmark;
    if (bench.error) throw bench.error;
    return { ns: bench.stats.mean * 1e9, rme: bench.stats.rme, samples: bench.stats.sample.length };
  });
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

interface Row { size: number; tidemark: Timing; napi: Timing; sse4: Timing }

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
    const [tidemark, napi, sse4Timing] = measure(contestants, buf);
    rows.push({ size, tidemark: tidemark!, napi: napi!, sse4: sse4Timing! });
  }

  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(`crc32c from JS, node ${process.version}, ${cpu}, tidemark implementation '${crc32cImplementation()}'`);
  console.log(`benchmark.js ${Benchmark.version}: mean time per call ± relative margin of error (95 %), ${MAX_TIME_S} s per contestant and size; GB/s = 1e9 B/s\n`);
  console.log('| size | tidemark ns/call | tidemark GB/s | (N-API call only) ns/call | sse4_crc32 ns/call | sse4_crc32 GB/s | speedup |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  const cell = (t: Timing): string => `${t.ns.toFixed(1)} ±${t.rme.toFixed(1)}%`;
  for (const r of rows) {
    console.log(
      `| ${fmtSize(r.size)} | ${cell(r.tidemark)} | ${(r.size / r.tidemark.ns).toFixed(2)} | ${cell(r.napi)} | ` +
        `${cell(r.sse4)} | ${(r.size / r.sse4.ns).toFixed(2)} | ${(r.sse4.ns / r.tidemark.ns).toFixed(2)}x |`,
    );
  }
  const at = (size: number): Row | undefined => rows.find((r) => r.size === size);
  const small = at(16);
  const mid = at(65536);
  const worstRatio = Math.min(...rows.filter((r) => r.size >= 1024).map((r) => r.sse4.ns / r.tidemark.ns));
  console.log('\ntargets (issue 2):');
  console.log(`- >= 2x sse4_crc32 at 1 KiB and above: worst ${worstRatio.toFixed(2)}x ${worstRatio >= 2 ? 'MET' : 'MISSED'}`);
  if (mid) {
    const gbs = mid.size / mid.tidemark.ns;
    console.log(`- >= 20 GB/s at 64 KiB: ${gbs.toFixed(2)} GB/s ${gbs >= 20 ? 'MET' : 'MISSED'}`);
  }
  if (small) console.log(`- < 50 ns a call at 16 B: ${small.tidemark.ns.toFixed(1)} ns ${small.tidemark.ns < 50 ? 'MET' : 'MISSED'}`);
  console.log(`(sink ${sink >>> 0})`);
}

main();
