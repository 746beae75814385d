/**
 * `npx tsx bench/replicate-latency.ts [--seconds 5] [--clients 1] [--bytes 128] [--runs 1] [--cpu-prof DIR]`:
 * a quick closed-loop probe of the three-node tidemark cluster (the built CLI, the benchmark's
 * timing) for latency and throughput work: commits/s and p50/p99 per run, with the load
 * average, so before/after comparisons can alternate builds on a noisy machine.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { startTidemark } from './replicate/contestants';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    clients: { type: 'string', default: '1' },
    bytes: { type: 'string', default: '128' },
    runs: { type: 'string', default: '1' },
    'cpu-prof': { type: 'string' },
    dist: { type: 'string' },
  },
});
const root = path.join(__dirname, '..');
const mainJs = path.join(values.dist ?? path.join(root, 'dist'), 'cli', 'main.js');

function pct(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

async function main(): Promise<void> {
  const baseDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-latency-'));
  const prof = values['cpu-prof'];
  const t = await startTidemark(baseDir, mainJs, prof === undefined ? {} : { cpuProfDir: prof });
  try {
    const clients = Number(values.clients);
    const value = 'x'.repeat(Number(values.bytes));
    const writers = await Promise.all(Array.from({ length: clients }, () => t.cellWriter()));
    // Warm up.
    const warmEnd = performance.now() + 1000;
    await Promise.all(writers.map(async (wr, w) => { for (let n = 0; performance.now() < warmEnd; n++) await wr.put(value, w, n); }));
    for (let run = 0; run < Number(values.runs); run++) {
      const lat: number[] = [];
      const end = performance.now() + Number(values.seconds) * 1000;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await Promise.all(
        writers.map(async (wr, w) => {
          for (let n = 0; performance.now() < end; n++) {
            const s = performance.now();
            await wr.put(value, w, n);
            lat.push(performance.now() - s);
          }
        }),
      );
      const el = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const sorted = Float64Array.from(lat).sort();
      process.stdout.write(
        `${values.bytes} B x ${clients}: ${Math.round(lat.length / el)} commits/s p50 ${pct(sorted, 0.5).toFixed(3)} ms p99 ${pct(sorted, 0.99).toFixed(3)} ms client cpu ${Math.round(((cpu.user + cpu.system) / 1e6 / el) * 100)}% load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}\n`,
      );
    }
    await Promise.all(writers.map((w) => w.close()));
  } finally {
    await t.stop();
    fs.rmSync(baseDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`latency: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
