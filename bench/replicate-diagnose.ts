/**
 * `npx tsx bench/replicate-diagnose.ts [--seconds 10] [--clients 16] [--bytes 128] [--out DIR]`:
 * where a tidemark node's time and memory go. Starts the three-node cluster with every node
 * under `node --cpu-prof` and a preload (bench/replicate/memdump.cjs) that, on SIGUSR2, writes
 * process.memoryUsage(), V8's heap spaces and /proc/self/smaps_rollup to a file. Samples memory
 * idle and after a closed-loop load, stops the nodes cleanly (SIGTERM, so the profiles are
 * written), and prints the leader's top self-time functions and the memory breakdown.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { LocalCluster, sleep } from '../lib/cli/local-cluster';
import { openKv, probeStatus } from '../lib/cli/wiring';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, clients: { type: 'string', default: '16' }, bytes: { type: 'string', default: '128' }, out: { type: 'string' } } });
const root = path.join(__dirname, '..');
const mainJs = path.join(root, 'dist', 'cli', 'main.js');

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function (ms), highest first. */
export function selfTimes(p: CpuProfile): { fn: string; ms: number; pct: number }[] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const t = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const n = byId.get(id);
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    total += dt;
    if (n === undefined) return;
    const f = n.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url === '' ? '' : `${f.url.replace(/^file:\/\//, '').replace(root + '/', '')}:${f.lineNumber + 1}`}`.trim();
    t.set(key, (t.get(key) ?? 0) + dt);
  });
  return [...t.entries()].map(([fn, ms]) => ({ fn, ms: Math.round(ms), pct: Math.round((ms / total) * 1000) / 10 })).sort((a, b) => b.ms - a.ms);
}

async function dump(cluster: LocalCluster, dir: string, tag: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const id of cluster.ids()) {
    const pid = cluster.pid(id) as number;
    const file = path.join(dir, `mem-${id}-${tag}.json`);
    process.env.MEMDUMP = file;
    fs.writeFileSync(path.join(dir, `memdump-target-${pid}`), file);
    process.kill(pid, 'SIGUSR2');
  }
  await sleep(1500);
  for (const id of cluster.ids()) {
    const file = path.join(dir, `mem-${id}-${tag}.json`);
    out[id] = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : 'no dump';
  }
  return out;
}

const mb = (b: number) => `${(b / 1048576).toFixed(1)}`;

function summarizeMem(m: Record<string, unknown>): string {
  const lines: string[] = [];
  for (const [id, v] of Object.entries(m)) {
    if (typeof v !== 'object' || v === null) {
      lines.push(`  ${id}: ${String(v)}`);
      continue;
    }
    const d = v as { mu: Record<string, number>; spaces: { name: string; used: number; size: number }[]; smaps: string };
    const sm = Object.fromEntries([...d.smaps.matchAll(/^(\w+):\s+(\d+) kB/gm)].map((x) => [x[1], Number(x[2]) * 1024]));
    lines.push(`  ${id}: rss ${mb(d.mu.rss ?? 0)} MB = anon ${mb(sm.Anonymous ?? 0)} + file-backed ${mb((sm.Rss ?? 0) - (sm.Anonymous ?? 0))} (shared_clean ${mb(sm.Shared_Clean ?? 0)}, private_clean ${mb(sm.Private_Clean ?? 0)}); heapTotal ${mb(d.mu.heapTotal ?? 0)} heapUsed ${mb(d.mu.heapUsed ?? 0)} external ${mb(d.mu.external ?? 0)} arrayBuffers ${mb(d.mu.arrayBuffers ?? 0)}`);
    lines.push(`      heap spaces (size/used MB): ${d.spaces.map((s) => `${s.name.replace('_space', '')} ${mb(s.size)}/${mb(s.used)}`).join(', ')}`);
  }
  return lines.join('\n');
}

/** Batching and persist latency from a node's Prometheus text. */
function summarizeMetrics(text: string): string {
  const val = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  const quant = (name: string, q: number) => {
    const buckets = [...text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`, 'gm'))].map((m) => [Number(m[1] === '+Inf' ? Infinity : m[1]), Number(m[2])] as const);
    const total = buckets[buckets.length - 1]?.[1] ?? 0;
    const b = buckets.find(([, c]) => c >= q * total);
    return b === undefined ? NaN : b[0] * 1000;
  };
  const commits = val('tidemark_commits_total');
  const syncs = val('tidemark_wal_syncs_total');
  return `commits ${commits}, wal syncs ${syncs} (${(commits / syncs).toFixed(1)} entries/sync), persist count ${val('tidemark_persist_seconds_count')} p50 <= ${quant('tidemark_persist_seconds', 0.5)} ms p99 <= ${quant('tidemark_persist_seconds', 0.99)} ms, wal sync p50 <= ${quant('tidemark_wal_sync_seconds', 0.5)} ms p99 <= ${quant('tidemark_wal_sync_seconds', 0.99)} ms`;
}

async function main(): Promise<void> {
  const dir = values.out ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-diagnose-'));
  fs.mkdirSync(dir, { recursive: true });
  const baseDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-diagnose-cluster-'));
  const preload = path.join(__dirname, 'replicate', 'memdump.cjs');
  const cluster = await LocalCluster.start({
    command: [process.execPath, '-r', preload, '--cpu-prof', `--cpu-prof-dir=${dir}`, mainJs],
    baseDir,
    probe: probeStatus,
    nodeArgs: ['--log-level', 'warn', '--tick-ms', '10', '--heartbeat-ticks', '10', '--election-ticks', '100'],
    metrics: true,
  });
  const pidToId = new Map<number, string>();
  try {
    const leader = await cluster.waitForLeader(30_000);
    for (const id of cluster.ids()) pidToId.set(cluster.pid(id) as number, id);
    await sleep(3000);
    const idle = await dump(cluster, dir, 'idle');
    const kv = openKv(cluster.endpoints(), { timeoutMs: 10_000 });
    const value = 'x'.repeat(Number(values.bytes));
    const end = performance.now() + Number(values.seconds) * 1000;
    let commits = 0;
    await Promise.all(
      Array.from({ length: Number(values.clients) }, async (_, w) => {
        for (let n = 0; performance.now() < end; n++) {
          await kv.put(`b${(w * 7919 + n) % 1000}`, value);
          commits++;
        }
      }),
    );
    await kv.close();
    const metrics = Object.fromEntries(await Promise.all(cluster.ids().map(async (id) => [id, await cluster.metrics(id)] as const)));
    const loaded = await dump(cluster, dir, 'loaded');
    await cluster.stopAll(20_000);
    const profiles = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
    process.stdout.write(`leader ${leader.id}; ${commits} puts of ${String(values.bytes)} B by ${String(values.clients)} clients in ${String(values.seconds)} s (${Math.round(commits / Number(values.seconds))}/s); load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
    for (const [id, text] of Object.entries(metrics)) process.stdout.write(`  ${id}: ${summarizeMetrics(text)}\n`);
    process.stdout.write(`memory idle (3 s after election):\n${summarizeMem(idle)}\nmemory after the load:\n${summarizeMem(loaded)}\n`);
    for (const f of profiles) {
      const pid = Number(/CPU\.\d+\.\d+\.(\d+)\./.exec(f)?.[1]);
      const id = pidToId.get(pid) ?? '?';
      if (id !== leader.id) continue;
      const p = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as CpuProfile;
      const top = selfTimes(p).slice(0, 25);
      process.stdout.write(`\nleader ${id} profile ${path.join(dir, f)}: top self time\n${top.map((t) => `  ${String(t.pct).padStart(5)}%  ${String(t.ms).padStart(6)} ms  ${t.fn}`).join('\n')}\n`);
    }
  } finally {
    await cluster.killAll();
    fs.rmSync(baseDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`diagnose: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
