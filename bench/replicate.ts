/**
 * `npm run bench:replicate`: tidemark's three-node cluster against etcd and ZooKeeper in one
 * run on this machine, with one tidemark Wal in this process as the floor.
 *
 * - Contestants: 3 `tidemark node` processes on loopback (built CLI, dist/cli/main.js);
 *   3 etcd members (Debian's etcd-server, installed with apt-get when missing and we are
 *   root; default durability) driven by the npm `etcd3` client; 3 ZooKeeper servers
 *   (Debian's zookeeper + default-jre-headless, forceSync=yes) taking creates of
 *   sequential znodes through `node-zookeeper-client`; the in-process Wal floor. All
 *   clusters: heartbeat 100 ms, leader loss detected after ~1 s (see contestants.ts).
 * - Cells: 128 B and 4 KiB × 1, 16, 256 closed-loop clients, leader-directed, measured in
 *   interleaved slices (every contestant's slice k runs before anyone's slice k+1, the order
 *   rotating), commits/s, p50/p99/p99.9 (HDR histogram), CPU of this process and each node.
 *   Leader/status polling happens only between slices.
 * - Failover: 16 clients, SIGKILL the leader, longest gap between acknowledged writes, time to
 *   a new leader, client errors; 5 times per cluster (1 with --quick); median and worst.
 * - Memory and disk: RSS of each node and data-directory size after a long run of 128 B
 *   writes (1,000,000 on tidemark and etcd; --quick: 20,000).
 * - Output: tables (live progress line on a TTY), --json FILE, --svg FILE.
 *
 *   npm run bench:replicate -- [--quick] [--contestants tidemark,etcd,zookeeper,wal-floor]
 *       [--json FILE] [--svg FILE] [--long-commands N] [--failovers N] [--slice-seconds S]
 *       [--slices N] [--no-install] [--cpu-prof DIR]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { sleep } from '../lib/cli/local-cluster';
import { startEtcd, startTidemark, startWalFloor, startZookeeper, type Contestant, type Writer } from './replicate/contestants';
import { CHART_PERCENTILES, cpuSeconds, ExactRecorder, FailoverMeter, medianWorst, rssMb, type FailoverResult, type Recorder } from './replicate/meter';
import { checkTargets, renderSvg, renderTables, type BenchResult, type CellResult, type ContestantInfo, type FailoverSummary, type MemoryResult } from './replicate/report';
import { zkMissing } from './replicate/zookeeper';
import { installSignalHandlers, registerCleanup } from './replicate/launcher';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    contestants: { type: 'string', default: 'tidemark,etcd,zookeeper,wal-floor' },
    json: { type: 'string' },
    svg: { type: 'string' },
    sizes: { type: 'string', default: '128,4096' },
    clients: { type: 'string', default: '1,16,256' },
    'slice-seconds': { type: 'string' },
    slices: { type: 'string' },
    warmup: { type: 'string' },
    failovers: { type: 'string' },
    'long-commands': { type: 'string' },
    'long-clients': { type: 'string', default: '256' },
    'no-install': { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
  },
});
const quick = values.quick === true;
const num = (v: string | undefined, full: number, q: number) => (v === undefined ? (quick ? q : full) : Number(v));
const sliceSeconds = num(values['slice-seconds'], 2, 0.4);
const slices = num(values.slices, 3, 2);
const warmupSeconds = num(values.warmup, 1, 0.2);
const failovers = num(values.failovers, 5, 1);
const longCommands = num(values['long-commands'], 1_000_000, 20_000);
const sizes = String(values.sizes).split(',').map(Number);
const clientCounts = String(values.clients).split(',').map(Number);
const wanted = String(values.contestants).split(',').filter((s) => s !== '');

const root = path.join(__dirname, '..');
const mainJs = path.join(root, 'dist', 'cli', 'main.js');
if (wanted.includes('tidemark') && !fs.existsSync(mainJs)) {
  process.stderr.write('bench:replicate needs the built CLI: run `npm run build` first\n');
  process.exit(2);
}

// ---- progress line (TTY only) ----
const tty = process.stderr.isTTY === true;
function progress(text: string): void {
  if (tty) process.stderr.write(`\r\x1b[K${text.slice(0, (process.stderr.columns ?? 100) - 1)}`);
}
function say(text: string): void {
  if (tty) process.stderr.write('\r\x1b[K');
  process.stderr.write(text + '\n');
}

// ---- latency recorder: hdr-histogram-js when installed (bench/package.json), else exact ----
type HdrModule = typeof import('hdr-histogram-js');
let hdrLib: HdrModule | null = null;
async function loadHdr(): Promise<string> {
  try {
    hdrLib = (await import('hdr-histogram-js')) as HdrModule;
    return 'hdr-histogram-js (1 µs .. 60 s, 3 significant digits)';
  } catch {
    return 'exact percentiles (hdr-histogram-js not installed: run bash bench/deps.sh)';
  }
}
function recorder(): Recorder {
  const lib = hdrLib;
  if (lib === null) return new ExactRecorder();
  const h = lib.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false });
  return { record: (us) => h.recordValue(us), percentile: (p) => h.getValueAtPercentile(p), count: () => h.totalCount, destroy: () => h.destroy() };
}

// ---- external programs ----
function which(bin: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(':')) if (d !== '' && fs.existsSync(path.join(d, bin))) return path.join(d, bin);
  return undefined;
}
let aptUpdated = false;
/** Installs Debian packages when root and allowed; returns why not otherwise. */
function aptInstall(pkgs: string[]): string | undefined {
  const cmd = `apt-get update && apt-get install -y ${pkgs.join(' ')}`;
  if (values['no-install'] === true) return `missing; --no-install given (run: ${cmd})`;
  if (process.getuid?.() !== 0) return `missing; not root (run: sudo ${cmd})`;
  say(`bench: installing ${pkgs.join(' ')} with apt-get (${cmd})`);
  try {
    if (!aptUpdated) execFileSync('apt-get', ['update'], { stdio: ['ignore', 'ignore', 'inherit'] });
    aptUpdated = true;
    execFileSync('apt-get', ['install', '-y', ...pkgs], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    return undefined;
  } catch (err) {
    return `apt-get install ${pkgs.join(' ')} failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
  }
}
function versionOf(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.error !== undefined ? '?' : (`${r.stdout}${r.stderr}`.split('\n')[0]?.trim() ?? '');
}
function dpkgVersion(pkg: string): string {
  try {
    return `${pkg} ${execFileSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8' })}`;
  } catch {
    return `${pkg} ?`;
  }
}

// ---- the load ----
interface DriveResult {
  commits: number;
  errors: number;
}
/** Closed loop: `clients` writers on `writer`, each awaiting its write, until `until()` is true. */
async function drive(writer: Writer, clients: number, value: string, until: () => boolean, onAck: (t0: number, t1: number) => void, onError: (t: number) => void): Promise<DriveResult> {
  let commits = 0;
  let errors = 0;
  let seq = 0;
  const one = async (w: number) => {
    for (let n = 0; !until(); n++) {
      const t0 = performance.now();
      try {
        await writer.put(value, w, n + seq++);
        const t1 = performance.now();
        commits++;
        onAck(t0, t1);
      } catch {
        errors++;
        onError(performance.now());
        await sleep(5);
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, w) => one(w)));
  return { commits, errors };
}

interface CellAcc {
  commits: number;
  errors: number;
  seconds: number;
  clientCpuS: number;
  nodeCpuS: Record<string, number>;
  rec: Recorder;
}

async function runCells(contestants: Contestant[], cells: CellResult[]): Promise<void> {
  const total = sizes.length * clientCounts.length * slices * contestants.length;
  let done = 0;
  for (const valueBytes of sizes) {
    const value = 'x'.repeat(valueBytes);
    for (const clients of clientCounts) {
      const acc = new Map<string, CellAcc>();
      const writers = new Map<string, Writer>();
      for (const c of contestants) {
        progress(`cell ${valueBytes} B x ${clients}: warming up ${c.name}`);
        const w = await c.cellWriter();
        writers.set(c.name, w);
        const end = performance.now() + warmupSeconds * 1000;
        await drive(w, clients, value, () => performance.now() >= end, () => undefined, () => undefined);
        acc.set(c.name, { commits: 0, errors: 0, seconds: 0, clientCpuS: 0, nodeCpuS: {}, rec: recorder() });
      }
      for (let s = 0; s < slices; s++) {
        const order = contestants.map((_, i) => contestants[(i + s) % contestants.length] as Contestant);
        for (const c of order) {
          const a = acc.get(c.name) as CellAcc;
          const w = writers.get(c.name) as Writer;
          progress(`[${++done}/${total}] ${valueBytes} B x ${clients} clients: ${c.name} slice ${s + 1}/${slices}  (so far ${a.seconds > 0 ? Math.round(a.commits / a.seconds) : '-'} commits/s)`);
          const pids = c.nodes();
          const n0 = Object.fromEntries(Object.entries(pids).map(([id, pid]) => [id, cpuSeconds(pid)]));
          const cpu0 = process.cpuUsage();
          const t0 = performance.now();
          const end = t0 + sliceSeconds * 1000;
          const r = await drive(w, clients, value, () => performance.now() >= end, (s0, s1) => a.rec.record(Math.max(1, Math.round((s1 - s0) * 1000))), () => undefined);
          const wall = (performance.now() - t0) / 1000;
          const cpu = process.cpuUsage(cpu0);
          a.commits += r.commits;
          a.errors += r.errors;
          a.seconds += wall;
          a.clientCpuS += (cpu.user + cpu.system) / 1e6;
          for (const [id, pid] of Object.entries(pids)) a.nodeCpuS[id] = (a.nodeCpuS[id] ?? 0) + (cpuSeconds(pid) - (n0[id] as number));
        }
      }
      for (const c of contestants) {
        const a = acc.get(c.name) as CellAcc;
        await (writers.get(c.name) as Writer).close().catch(() => undefined);
        const pct = (x: number) => Math.round((x / a.seconds) * 100);
        const cell: CellResult = {
          contestant: c.name,
          valueBytes,
          clients,
          slices,
          seconds: Math.round(a.seconds * 100) / 100,
          commits: a.commits,
          commitsPerS: Math.round(a.commits / a.seconds),
          p50Us: a.rec.percentile(50),
          p99Us: a.rec.percentile(99),
          p999Us: a.rec.percentile(99.9),
          percentiles: CHART_PERCENTILES.map((p) => [p, a.rec.percentile(p)] as const),
          clientCpuPct: pct(a.clientCpuS),
          nodeCpuPct: Object.fromEntries(Object.entries(a.nodeCpuS).map(([id, v]) => [id, pct(v)])),
          errors: a.errors,
        };
        a.rec.destroy();
        cells.push(cell);
        say(`${c.name.padEnd(10)} ${String(valueBytes).padStart(5)} B x ${String(clients).padStart(3)}: ${String(cell.commitsPerS).padStart(7)} commits/s  p50 ${(cell.p50Us / 1000).toFixed(2)} ms  p99 ${(cell.p99Us / 1000).toFixed(2)} ms  p99.9 ${(cell.p999Us / 1000).toFixed(2)} ms  client CPU ${cell.clientCpuPct}%  nodes ${Object.entries(cell.nodeCpuPct).map(([id, v]) => `${id} ${v}%`).join(' ')}${cell.errors > 0 ? `  errors ${cell.errors}` : ''}`);
      }
    }
  }
}

async function runFailover(c: Contestant, run: number): Promise<FailoverResult> {
  const f = c.failover;
  if (f === undefined) throw new Error(`${c.name} has no failover`);
  const leader = await f.leader();
  const writer = await f.writer();
  const meter = new FailoverMeter();
  const value = 'x'.repeat(128);
  let stop = false;
  // Warm the writer's connections before measuring.
  const warmEnd = performance.now() + 300;
  await drive(writer, 16, value, () => performance.now() >= warmEnd, () => undefined, () => undefined);
  const load = drive(writer, 16, value, () => stop, (_t0, t1) => meter.ack(t1), (t) => meter.error(t));
  await sleep(1000);
  progress(`failover ${c.name} ${run}: SIGKILL ${leader}`);
  meter.killed(performance.now());
  await f.kill(leader);
  let next: string;
  try {
    next = await f.waitForLeader([leader], 30_000);
  } catch (err) {
    stop = true;
    await load;
    await writer.close().catch(() => undefined);
    throw err;
  }
  const tElected = performance.now();
  meter.elected(tElected);
  progress(`failover ${c.name} ${run}: ${next} leads; waiting for writes to resume`);
  // Keep the load on for 3 s after the kill (the timeline) and until writes resumed (≤ 20 s).
  const resumedBy = tElected + 20_000;
  while (performance.now() < resumedBy && !(meter.resumed() && performance.now() - meter.killedAt() >= 3000)) await sleep(50);
  meter.stopped(performance.now());
  stop = true;
  await load;
  await writer.close().catch(() => undefined);
  const result = meter.result(leader, next);
  progress(`failover ${c.name} ${run}: restarting ${leader}`);
  await f.restart(leader);
  say(`failover ${c.name.padEnd(10)} #${run}: killed ${leader}, ${next} leader after ${result.electedAfterMs} ms, write gap ${result.writeGapMs} ms (until the first write after the election ${result.firstGapMs} ms), ${result.errors} client errors`);
  return result;
}

async function runLong(c: Contestant, commands: number): Promise<MemoryResult> {
  const pids = c.nodes();
  const before = Object.fromEntries(Object.entries(pids).map(([id, pid]) => [id, rssMb(pid)]));
  const writer = await c.cellWriter();
  const value = 'x'.repeat(128);
  let issued = 0;
  let done = 0;
  const t0 = performance.now();
  const timer = setInterval(() => progress(`long run ${c.name}: ${done}/${commands} (${Math.round(done / ((performance.now() - t0) / 1000))}/s) RSS ${Object.entries(c.nodes()).map(([id, pid]) => `${id} ${rssMb(pid).toFixed(0)} MB`).join(' ')}`), 500);
  try {
    await drive(writer, Number(values['long-clients']), value, () => issued++ >= commands, () => done++, () => undefined);
  } finally {
    clearInterval(timer);
    await writer.close().catch(() => undefined);
  }
  const seconds = Math.round((performance.now() - t0) / 100) / 10;
  await sleep(1000);
  const after = Object.fromEntries(Object.entries(c.nodes()).map(([id, pid]) => [id, rssMb(pid)]));
  const r: MemoryResult = { contestant: c.name, commands: done, seconds, rssBeforeMb: before, rssAfterMb: after, dataBytes: c.dataBytes() };
  say(`long run ${c.name.padEnd(10)}: ${done} writes of 128 B in ${seconds} s; RSS ${Object.keys(after).map((id) => `${id} ${before[id]} -> ${after[id]} MB`).join(', ')}; data ${Object.entries(r.dataBytes).map(([id, b]) => `${id} ${(b / 1048576).toFixed(1)} MB`).join(', ')}`);
  return r;
}

async function main(): Promise<void> {
  installSignalHandlers();
  const histogram = await loadHdr();
  const baseDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-bench-repl-'));
  const started: Contestant[] = [];
  const infos: ContestantInfo[] = [];
  const cells: CellResult[] = [];
  const failover: FailoverSummary[] = [];
  const memory: MemoryResult[] = [];
  const machine: Record<string, unknown> = {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model,
    memGb: Math.round(os.totalmem() / 1073741824),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    tmpdir: os.tmpdir(),
    filesystem: spawnSync('df', ['-T', os.tmpdir()], { encoding: 'utf8' }).stdout?.split('\n')[1]?.split(/\s+/)[1] ?? '?',
    loadavgStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
    date: new Date().toISOString(),
    settings: { quick, sliceSeconds, slices, warmupSeconds, failovers, longCommands, sizes, clientCounts },
  };
  // Ctrl-C: the foreign clusters' groups clean themselves; kill the tidemark nodes and remove everything here.
  const unregister = registerCleanup(() => {
    for (const c of started) for (const pid of Object.values(c.nodes())) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    fs.rmSync(baseDir, { recursive: true, force: true });
  });
  try {
    for (const name of wanted) {
      progress(`starting ${name}`);
      try {
        if (name === 'tidemark') started.push(await startTidemark(path.join(baseDir, 'tidemark'), mainJs, values['cpu-prof'] === undefined ? {} : { cpuProfDir: path.resolve(values['cpu-prof']) }));
        else if (name === 'wal-floor') started.push(await startWalFloor(path.join(baseDir, 'wal-floor')));
        else if (name === 'etcd') {
          let bin = which('etcd');
          if (bin === undefined) {
            const why = aptInstall(['etcd-server']);
            if (why !== undefined) throw new Error(why);
            bin = which('etcd');
            if (bin === undefined) throw new Error('etcd not on PATH after installing etcd-server');
          }
          started.push(await startEtcd(path.join(baseDir, 'etcd'), bin, `${versionOf(bin, ['--version'])}, ${dpkgVersion('etcd-server')}`));
        } else if (name === 'zookeeper') {
          if (zkMissing() !== undefined) {
            const why = aptInstall(['zookeeper', 'default-jre-headless']);
            if (why !== undefined) throw new Error(why);
            const still = zkMissing();
            if (still !== undefined) throw new Error(still);
          }
          const zk = await startZookeeper(path.join(baseDir, 'zookeeper'));
          started.push({ ...zk, info: { ...zk.info, version: `${dpkgVersion('zookeeper')}, ${versionOf('java', ['-version'])}` } });
        } else throw new Error(`unknown contestant '${name}' (tidemark, etcd, zookeeper, wal-floor)`);
        const c = started[started.length - 1] as Contestant;
        infos.push(c.info);
        say(`started ${name}: ${c.info.timeouts}`);
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        if (reason.startsWith('unknown contestant')) throw err;
        infos.push({ name, measured: false, reason, description: '', timeouts: '' });
        say(`${name}: not measured (${reason})`);
      }
    }
    // Partial results after every phase, so an interrupted long run still leaves the rest.
    const checkpoint = () => {
      const part = { version: 1 as const, mode: quick ? ('quick' as const) : ('full' as const), machine: { ...machine, partial: true }, histogram, contestants: infos, cells, failover, memory };
      if (values.json !== undefined) fs.writeFileSync(values.json, JSON.stringify({ ...part, targets: checkTargets(part) }, null, 2) + '\n');
    };
    await runCells(started, cells);
    checkpoint();
    for (const c of started) {
      if (c.failover === undefined) continue;
      const runs: FailoverResult[] = [];
      for (let i = 1; i <= failovers; i++) {
        try {
          runs.push(await runFailover(c, i));
        } catch (err) {
          say(`failover ${c.name} #${i} failed: ${err instanceof Error ? err.message : String(err)}`);
          break;
        }
      }
      failover.push({ contestant: c.name, runs, writeGapMs: medianWorst(runs.map((r) => r.writeGapMs)), electedAfterMs: medianWorst(runs.map((r) => r.electedAfterMs)), errors: medianWorst(runs.map((r) => r.errors)) });
      checkpoint();
    }
    for (const c of started) {
      if (c.name !== 'tidemark' && c.name !== 'etcd') continue;
      memory.push(await runLong(c, longCommands));
      checkpoint();
    }
  } finally {
    progress('stopping');
    await Promise.allSettled(started.map((c) => c.stop()));
    fs.rmSync(baseDir, { recursive: true, force: true });
    unregister();
    if (tty) process.stderr.write('\r\x1b[K');
  }
  machine.loadavgEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);
  const partial = { version: 1 as const, mode: quick ? ('quick' as const) : ('full' as const), machine, histogram, contestants: infos, cells, failover, memory };
  const result: BenchResult = { ...partial, targets: checkTargets(partial) };
  process.stdout.write(renderTables(result));
  if (values.json !== undefined) fs.writeFileSync(values.json, JSON.stringify(result, null, 2) + '\n');
  if (values.svg !== undefined) fs.writeFileSync(values.svg, renderSvg(result));
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:replicate: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
