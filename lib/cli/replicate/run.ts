/**
 * The replication benchmark's run (`tidemark bench replicate`, `npm run bench:replicate`):
 * tidemark's three-node cluster against etcd and ZooKeeper in one run on this machine, with
 * one tidemark Wal in this process as the floor.
 *
 * - Contestants: 3 `tidemark node` processes on loopback (the tidemark CLI); 3 etcd members
 *   (Debian's etcd-server; default durability) driven by the npm `etcd3` client; 3 ZooKeeper
 *   servers (Debian's zookeeper + default-jre-headless, forceSync=yes) taking creates of
 *   sequential znodes through `node-zookeeper-client`; the in-process Wal floor. All
 *   clusters: heartbeat 100 ms, leader loss detected after ~1 s (see contestants.ts). etcd and
 *   ZooKeeper run only when their programs are on this machine (the `install` hook may add
 *   them: bench/replicate.ts uses apt-get) and their npm clients resolve from `moduleBases`;
 *   otherwise they are reported as not measured, with the reason.
 * - Cells: 128 B and 4 KiB × 1, 16, 256 closed-loop clients, leader-directed, measured in
 *   interleaved slices (every contestant's slice k runs before anyone's slice k+1, the order
 *   rotating), commits/s, p50/p99/p99.9 (HDR histogram when hdr-histogram-js resolves, else
 *   exact), CPU of this process and each node. Leader/status polling happens only between slices.
 * - Failover: 16 clients, SIGKILL the leader, longest gap between acknowledged writes, time to
 *   a new leader, client errors; 5 times per cluster (1 with quick); median and worst.
 * - Memory and disk: RSS of each node and data-directory size after a long run of 128 B
 *   writes (1,000,000 on tidemark and etcd; quick: 20,000).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { sleep } from '../local-cluster';
import { etcdClientModule, optionalModule, startEtcd, startTidemark, startWalFloor, startZookeeper, zkClientModule, type Contestant, type Writer } from './contestants';
import { CHART_PERCENTILES, cpuSeconds, ExactRecorder, FailoverMeter, medianWorst, rssMb, type FailoverResult, type Recorder } from './meter';
import { checkTargets, type BenchResult, type CellResult, type ContestantInfo, type FailoverSummary, type MemoryResult } from './report';
import { zkMissing } from './zookeeper';
import { registerCleanup } from './launcher';

/** Every contestant, in the default order. */
export const CONTESTANTS = ['tidemark', 'etcd', 'zookeeper', 'wal-floor'] as const;
export type ContestantName = (typeof CONTESTANTS)[number];

/** What to run; {@link replicateSettings} fills the defaults. */
export interface ReplicateBenchOptions {
  readonly quick: boolean;
  readonly contestants: readonly ContestantName[];
  readonly sizes: readonly number[];
  readonly clientCounts: readonly number[];
  readonly sliceSeconds: number;
  readonly slices: number;
  readonly warmupSeconds: number;
  readonly failovers: number;
  readonly longCommands: number;
  readonly longClients: number;
  /** Parent of the scratch directory (data of every contestant), removed at the end. */
  readonly dir: string;
  /** How to run the tidemark CLI for the nodes: `[node, ...flags, main.js]`. */
  readonly tidemarkCommand: readonly string[];
  /** Run the tidemark nodes under `--cpu-prof`, profiles to this directory. */
  readonly cpuProfDir?: string;
  /** Directories the optional npm packages (etcd3, node-zookeeper-client, hdr-histogram-js) are resolved from. */
  readonly moduleBases: readonly string[];
  /**
   * Called when etcd's or ZooKeeper's Debian packages are missing: installs them and returns
   * undefined, or returns why not. Default: never installs (the reason names the apt-get command).
   */
  readonly install?: (pkgs: readonly string[]) => string | undefined;
  /** The live progress line (overwritten; may ignore it when not a terminal). */
  readonly progress: (text: string) => void;
  /** A finished line (a cell, a failover, a contestant that could not start). */
  readonly say: (text: string) => void;
  /** Called after every phase with the partial result (e.g. to keep a JSON file current). */
  readonly onCheckpoint?: (partial: BenchResult) => void;
}

/** Defaults of the full run and of the quick run (`--quick`); `given` overrides. */
export function replicateSettings(quick: boolean, given: Partial<Record<'sliceSeconds' | 'slices' | 'warmupSeconds' | 'failovers' | 'longCommands', number>> = {}) {
  return {
    sliceSeconds: given.sliceSeconds ?? (quick ? 0.4 : 2),
    slices: given.slices ?? (quick ? 2 : 3),
    warmupSeconds: given.warmupSeconds ?? (quick ? 0.2 : 1),
    failovers: given.failovers ?? (quick ? 1 : 5),
    longCommands: given.longCommands ?? (quick ? 20_000 : 1_000_000),
  };
}

/** What the phases need besides the contestants. */
type RunConfig = Pick<ReplicateBenchOptions, 'sizes' | 'clientCounts' | 'slices' | 'sliceSeconds' | 'warmupSeconds' | 'longClients' | 'progress' | 'say'> & { readonly recorder: () => Recorder };

// ---- latency recorder: hdr-histogram-js when it resolves, else exact ----
/** The part of hdr-histogram-js used here. */
interface HdrModule {
  build(o: { lowestDiscernibleValue: number; highestTrackableValue: number; numberOfSignificantValueDigits: number; useWebAssembly: boolean }): {
    recordValue(v: number): void;
    getValueAtPercentile(p: number): number;
    readonly totalCount: number;
    destroy(): void;
  };
}
function loadHdr(bases: readonly string[]): { histogram: string; recorder: () => Recorder } {
  let lib: HdrModule;
  try {
    lib = optionalModule<HdrModule>('hdr-histogram-js', bases, 'HDR histograms');
  } catch {
    return { histogram: 'exact percentiles (every latency kept and sorted; hdr-histogram-js not installed)', recorder: () => new ExactRecorder() };
  }
  return {
    histogram: 'hdr-histogram-js (1 µs .. 60 s, 3 significant digits)',
    recorder: () => {
      const h = lib.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false });
      return { record: (us) => h.recordValue(us), percentile: (p) => h.getValueAtPercentile(p), count: () => h.totalCount, destroy: () => h.destroy() };
    },
  };
}

// ---- external programs ----
/** The executable `bin` on PATH, or undefined. */
export function which(bin: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(':')) if (d !== '' && fs.existsSync(path.join(d, bin))) return path.join(d, bin);
  return undefined;
}
/** The apt-get command that installs `pkgs`. */
export function aptCommand(pkgs: readonly string[]): string {
  return `apt-get update && apt-get install -y ${pkgs.join(' ')}`;
}
const neverInstall = (pkgs: readonly string[]): string => `not installed (to include it: sudo ${aptCommand(pkgs)})`;
function versionOf(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.error !== undefined ? '?' : (`${r.stdout}${r.stderr}`.split('\n')[0]?.trim() ?? '');
}
function dpkgVersion(pkg: string): string {
  try {
    return `${pkg} ${execFileSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })}`;
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

async function runCells(cfg: RunConfig, contestants: Contestant[], cells: CellResult[]): Promise<void> {
  const { sizes, clientCounts, slices, sliceSeconds, warmupSeconds, progress, say, recorder } = cfg;
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

async function runFailover(cfg: RunConfig, c: Contestant, run: number): Promise<FailoverResult> {
  const { progress, say } = cfg;
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

async function runLong(cfg: RunConfig, c: Contestant, commands: number): Promise<MemoryResult> {
  const { progress, say } = cfg;
  const pids = c.nodes();
  const before = Object.fromEntries(Object.entries(pids).map(([id, pid]) => [id, rssMb(pid)]));
  const writer = await c.cellWriter();
  const value = 'x'.repeat(128);
  let issued = 0;
  let done = 0;
  const t0 = performance.now();
  const timer = setInterval(() => progress(`long run ${c.name}: ${done}/${commands} (${Math.round(done / ((performance.now() - t0) / 1000))}/s) RSS ${Object.entries(c.nodes()).map(([id, pid]) => `${id} ${rssMb(pid).toFixed(0)} MB`).join(' ')}`), 500);
  try {
    await drive(writer, cfg.longClients, value, () => issued++ >= commands, () => done++, () => undefined);
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

/**
 * Runs the benchmark: starts the contestants (one that cannot start is reported as not
 * measured, with why), the cells, the failovers, the long runs; stops everything and removes
 * the scratch directory (also on SIGINT/SIGTERM once the caller ran the launcher's
 * `installSignalHandlers`). Resolves with every number.
 */
export async function runReplicateBench(opts: ReplicateBenchOptions): Promise<BenchResult> {
  const { quick, sliceSeconds, slices, warmupSeconds, failovers, longCommands, progress, say } = opts;
  const sizes = [...opts.sizes];
  const clientCounts = [...opts.clientCounts];
  const install = opts.install ?? neverInstall;
  const { histogram, recorder } = loadHdr(opts.moduleBases);
  const cfg: RunConfig = { sizes, clientCounts, slices, sliceSeconds, warmupSeconds, longClients: opts.longClients, progress, say, recorder };
  const baseDir = fs.mkdtempSync(path.join(opts.dir, 'tidemark-bench-repl-'));
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
    tmpdir: opts.dir,
    filesystem: spawnSync('df', ['-T', opts.dir], { encoding: 'utf8' }).stdout?.split('\n')[1]?.split(/\s+/)[1] ?? '?',
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
    for (const name of opts.contestants) {
      progress(`starting ${name}`);
      try {
        if (name === 'tidemark') started.push(await startTidemark(path.join(baseDir, 'tidemark'), opts.tidemarkCommand, opts.cpuProfDir === undefined ? {} : { cpuProfDir: opts.cpuProfDir }));
        else if (name === 'wal-floor') started.push(await startWalFloor(path.join(baseDir, 'wal-floor')));
        else if (name === 'etcd') {
          etcdClientModule(opts.moduleBases);
          let bin = which('etcd');
          if (bin === undefined) {
            const why = install(['etcd-server']);
            if (why !== undefined) throw new Error(`etcd: ${why}`);
            bin = which('etcd');
            if (bin === undefined) throw new Error('etcd not on PATH after installing etcd-server');
          }
          started.push(await startEtcd(path.join(baseDir, 'etcd'), bin, `${versionOf(bin, ['--version'])}, ${dpkgVersion('etcd-server')}`, opts.moduleBases));
        } else {
          zkClientModule(opts.moduleBases);
          const missing = zkMissing();
          if (missing !== undefined) {
            const why = install(['zookeeper', 'default-jre-headless']);
            if (why !== undefined) throw new Error(`${missing}; ${why}`);
            const still = zkMissing();
            if (still !== undefined) throw new Error(still);
          }
          const zk = await startZookeeper(path.join(baseDir, 'zookeeper'), opts.moduleBases);
          started.push({ ...zk, info: { ...zk.info, version: `${dpkgVersion('zookeeper')}, ${versionOf('java', ['-version'])}` } });
        }
        const c = started[started.length - 1] as Contestant;
        infos.push(c.info);
        say(`started ${name}: ${c.info.timeouts}`);
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        infos.push({ name, measured: false, reason, description: '', timeouts: '' });
        say(`${name}: not measured (${reason})`);
      }
    }
    // Partial results after every phase, so an interrupted long run still leaves the rest.
    const checkpoint = () => {
      const part = { version: 1 as const, mode: quick ? ('quick' as const) : ('full' as const), machine: { ...machine, partial: true }, histogram, contestants: infos, cells, failover, memory };
      opts.onCheckpoint?.({ ...part, targets: checkTargets(part) });
    };
    await runCells(cfg, started, cells);
    checkpoint();
    for (const c of started) {
      if (c.failover === undefined) continue;
      const runs: FailoverResult[] = [];
      for (let i = 1; i <= failovers; i++) {
        try {
          runs.push(await runFailover(cfg, c, i));
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
      memory.push(await runLong(cfg, c, longCommands));
      checkpoint();
    }
  } finally {
    progress('stopping');
    await Promise.allSettled(started.map((c) => c.stop()));
    fs.rmSync(baseDir, { recursive: true, force: true });
    unregister();
  }
  machine.loadavgEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);
  const partial = { version: 1 as const, mode: quick ? ('quick' as const) : ('full' as const), machine, histogram, contestants: infos, cells, failover, memory };
  return { ...partial, targets: checkTargets(partial) };
}
