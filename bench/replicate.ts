/**
 * `npm run bench:replicate`: three `tidemark node` processes on loopback (built CLI,
 * dist/cli/main.js; run `npm run build` first), default timing and sync settings
 * (fdatasync), one client process (this one) sending leader-directed `put`s.
 *
 * For 128 B and 4 KiB values × 1, 16, 256 concurrent clients (closed loop, each
 * awaits its put): commits/s, latency p50/p99/p99.9 (HDR histogram, µs), CPU of the
 * client process and of each node (from /proc, user+system, as % of one core).
 * Then the write gap after a SIGKILL of the leader (16 clients; the longest stretch
 * without an acknowledgement), and each node's RSS after `--rss-commands` puts of
 * 128 B over a bounded key space (so the state machine does not grow).
 *
 *   npm run bench:replicate -- [--seconds 3] [--warmup 1] [--rss-commands 200000] [--json FILE]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import { LocalCluster, sleep } from '../lib/cli/local-cluster';
import { writeGap } from '../lib/cli/load';
import { openKv, probeStatus, type KvFacade } from '../lib/cli/wiring';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    'rss-commands': { type: 'string', default: '200000' },
    json: { type: 'string' },
    sizes: { type: 'string', default: '128,4096' },
    clients: { type: 'string', default: '1,16,256' },
  },
});
const seconds = Number(values.seconds);
const warmup = Number(values.warmup);
const rssCommands = Number(values['rss-commands']);
const sizes = String(values.sizes).split(',').map(Number);
const clientCounts = String(values.clients).split(',').map(Number);

const root = path.join(__dirname, '..');
const mainJs = path.join(root, 'dist', 'cli', 'main.js');
if (!fs.existsSync(mainJs)) {
  process.stderr.write('bench:replicate needs the built CLI: run `npm run build` first\n');
  process.exit(2);
}
const CLK_TCK = 100;

/** utime+stime of a process in seconds, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? NaN : Number(m[1]) / 1024;
}

interface Cell {
  valueBytes: number;
  clients: number;
  commits: number;
  commitsPerS: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  clientCpuPct: number;
  nodeCpuPct: Record<string, number>;
  errors: number;
}

/** Closed loop: `clients` writers, each awaiting its put, for `secs`; records latencies if `h`. */
async function drive(kv: KvFacade, clients: number, value: string, secs: number, h: hdr.Histogram | null, keySpace = 1000): Promise<{ commits: number; errors: number; ackTimes: number[] }> {
  const end = performance.now() + secs * 1000;
  let commits = 0;
  let errors = 0;
  const ackTimes: number[] = [];
  const writer = async (w: number) => {
    for (let n = 0; ; n++) {
      const t = performance.now();
      if (t >= end) return;
      try {
        await kv.put(`b${(w * 7919 + n) % keySpace}`, value);
        const done = performance.now();
        if (done < end) {
          commits++;
          ackTimes.push(done);
          h?.recordValue(Math.max(1, Math.round((done - t) * 1000)));
        }
      } catch {
        errors++;
        await sleep(5);
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, w) => writer(w)));
  return { commits, errors, ackTimes };
}

async function main(): Promise<void> {
  const baseDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-bench-repl-'));
  const cluster = await LocalCluster.start({ command: [process.execPath, mainJs], baseDir, probe: probeStatus, nodeArgs: ['--log-level', 'warn'] });
  const kvs: KvFacade[] = [];
  const out: { machine: Record<string, unknown>; cells: Cell[]; failover?: Record<string, unknown>; rss?: Record<string, unknown> } = {
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, loadavg: os.loadavg(), node: process.version, date: new Date().toISOString() },
    cells: [],
  };
  try {
    await cluster.waitForLeader(30_000);
    const kv = openKv(cluster.endpoints(), { timeoutMs: 10_000 });
    kvs.push(kv);
    const pids = () => Object.fromEntries(cluster.ids().map((id) => [id, cluster.pid(id) as number]));
    for (const valueBytes of sizes) {
      const value = 'x'.repeat(valueBytes);
      for (const clients of clientCounts) {
        await drive(kv, clients, value, warmup, null);
        const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false });
        const p = pids();
        const nodeCpu0 = Object.fromEntries(Object.entries(p).map(([id, pid]) => [id, cpuSeconds(pid)]));
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        const r = await drive(kv, clients, value, seconds, h);
        const wall = (performance.now() - t0) / 1000;
        const cpu = process.cpuUsage(cpu0);
        const cell: Cell = {
          valueBytes,
          clients,
          commits: r.commits,
          commitsPerS: Math.round(r.commits / wall),
          p50Us: h.getValueAtPercentile(50),
          p99Us: h.getValueAtPercentile(99),
          p999Us: h.getValueAtPercentile(99.9),
          clientCpuPct: Math.round(((cpu.user + cpu.system) / 1e6 / wall) * 100),
          nodeCpuPct: Object.fromEntries(Object.entries(p).map(([id, pid]) => [id, Math.round(((cpuSeconds(pid) - (nodeCpu0[id] as number)) / wall) * 100)])),
          errors: r.errors,
        };
        h.destroy();
        out.cells.push(cell);
        process.stdout.write(`${String(valueBytes).padStart(5)} B x ${String(clients).padStart(3)}: ${String(cell.commitsPerS).padStart(7)} commits/s  p50 ${(cell.p50Us / 1000).toFixed(2)} ms  p99 ${(cell.p99Us / 1000).toFixed(2)} ms  p99.9 ${(cell.p999Us / 1000).toFixed(2)} ms  client CPU ${cell.clientCpuPct}%  nodes ${Object.entries(cell.nodeCpuPct).map(([id, v]) => `${id} ${v}%`).join(' ')}${cell.errors > 0 ? `  errors ${cell.errors}` : ''}\n`);
      }
    }

    // Failover: 16 writers, SIGKILL the leader mid-load, longest stretch without an ack.
    const value = 'x'.repeat(128);
    const leader = await cluster.waitForLeader(10_000);
    const loadDone = drive(kv, 16, value, 4, null);
    await sleep(1500);
    const tKill = performance.now();
    await cluster.kill(leader.id);
    const next = await cluster.waitForLeader(20_000, cluster.ids().filter((id) => id !== leader.id), [leader.id]);
    const tElected = performance.now();
    const r = await loadDone;
    const gap = writeGap(r.ackTimes, tKill, tElected) ?? NaN;
    out.failover = { killed: leader.id, newLeader: next.id, electedAfterMs: Math.round(tElected - tKill), writeGapMs: Math.round(gap) };
    process.stdout.write(`failover: killed ${leader.id}, ${next.id} leader after ${Math.round(tElected - tKill)} ms, write gap ${Math.round(gap)} ms\n`);
    cluster.spawn(leader.id);
    const l2 = await cluster.waitForLeader(20_000);
    await cluster.waitForApplied(leader.id, l2.view.commit, 30_000);

    // RSS after rssCommands puts (bounded key space).
    const rss0 = Object.fromEntries(cluster.ids().map((id) => [id, rssMb(cluster.pid(id) as number)]));
    let done = 0;
    const t0 = performance.now();
    const writers = 64;
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let n = w; n < rssCommands; n += writers) {
          try {
            await kv.put(`b${n % 1000}`, value);
            done++;
          } catch {
            await sleep(5);
          }
        }
      }),
    );
    const rss1 = Object.fromEntries(cluster.ids().map((id) => [id, rssMb(cluster.pid(id) as number)]));
    out.rss = { commands: done, seconds: Math.round((performance.now() - t0) / 100) / 10, beforeMb: rss0, afterMb: rss1 };
    process.stdout.write(`rss after ${done} puts of 128 B (${out.rss.seconds} s): ${cluster.ids().map((id) => `${id} ${rss0[id]?.toFixed(0)} -> ${rss1[id]?.toFixed(0)} MB`).join(', ')}\n`);
  } finally {
    await Promise.allSettled(kvs.map((k) => k.close()));
    await cluster.killAll();
    fs.rmSync(baseDir, { recursive: true, force: true });
  }
  if (values.json !== undefined) fs.writeFileSync(values.json, JSON.stringify(out, null, 2) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:replicate: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
