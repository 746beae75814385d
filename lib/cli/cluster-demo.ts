/**
 * `tidemark demo`: a three-node cluster on loopback, a write load, SIGKILL of the
 * leader, the election and the write gap it caused, every acknowledged write read
 * back from the survivors, the killed node restarted and caught up, a summary.
 * Exit code 0 only if every check passed. Node processes are this same CLI
 * (`tidemark node`), data lives in a temporary directory; both are cleaned up on
 * exit and on SIGINT (the directory is kept when a check failed, for its logs).
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { LocalCluster, sleep } from './local-cluster';
import type { Endpoint } from '../net/api';
import { readAll, startLoad, verify, writeGap } from './load';
import { openKv, probeStatus, type KvFacade } from './wiring';

/** Options of {@link runClusterDemo}. */
export interface ClusterDemoOptions {
  /** How to run this CLI again (`[node, ...execArgv, main.js]`). */
  readonly selfCommand: readonly string[];
  /** Seconds of load before the kill (default 3). */
  readonly seconds?: number;
  /** Concurrent writers (default 16). */
  readonly clients?: number;
  /** Keep the temporary directory even when every check passed. */
  readonly keep?: boolean;
  /** Prints one line. */
  readonly print: (line: string) => void;
  /** Whether to draw a live progress line (`\r`); plain lines otherwise. */
  readonly tty: boolean;
  /** Extra `tidemark node` flags. */
  readonly nodeArgs?: readonly string[];
}

/** Runs the demo; resolves with the exit code. */
export async function runClusterDemo(opts: ClusterDemoOptions): Promise<number> {
  const seconds = opts.seconds ?? 3;
  const writers = opts.clients ?? 16;
  const print = opts.print;
  const baseDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-demo-'));
  const checks: Array<{ name: string; ok: boolean; detail: string }> = [];
  const check = (name: string, ok: boolean, detail: string) => {
    checks.push({ name, ok, detail });
    print(`${ok ? '  ok  ' : '  FAIL'} ${name}: ${detail}`);
  };
  let cluster: LocalCluster | undefined;
  const clients: KvFacade[] = [];
  let progress: NodeJS.Timeout | undefined;
  let interrupted = false;
  const cleanup = async () => {
    clearInterval(progress);
    await Promise.allSettled(clients.map((c) => c.close()));
    await cluster?.killAll();
  };
  const onSigint = () => {
    interrupted = true;
    void cleanup().finally(() => {
      fs.rmSync(baseDir, { recursive: true, force: true });
      process.stderr.write('\ntidemark demo: interrupted; nodes stopped, temporary directory removed\n');
      process.exit(130);
    });
  };
  process.on('SIGINT', onSigint);
  const kvOn = (endpoints: readonly Endpoint[]) => {
    const kv = openKv(endpoints, { timeoutMs: 5000 });
    clients.push(kv);
    return kv;
  };

  try {
    print(`tidemark demo: three nodes on 127.0.0.1, data in ${baseDir}`);
    cluster = await LocalCluster.start({ command: opts.selfCommand, baseDir, probe: probeStatus, nodeArgs: opts.nodeArgs ?? [] });
    const c = cluster;
    print(`  nodes: ${c.ids().map((id) => `${id}=${c.endpoints()[c.ids().indexOf(id)]?.port ?? '?'}`).join(' ')}`);
    const first = await c.waitForLeader(20_000);
    print(`  leader: ${first.id} (generation ${first.view.generation})`);

    const kv = kvOn(c.endpoints());
    const load = startLoad(kv, writers);
    const t0 = performance.now();
    let leaderNow = first.id;
    const line = () => {
      const s = (performance.now() - t0) / 1000;
      return `  writes acknowledged ${load.acked.size}  (${Math.round(load.acked.size / Math.max(s, 0.001))}/s)  unknown ${load.unknown.size}  leader ${leaderNow}  ${s.toFixed(1)} s`;
    };
    let lastPlain = 0;
    progress = setInterval(() => {
      if (opts.tty) process.stdout.write(`\r${line()}\u001b[K`);
      else if (performance.now() - lastPlain >= 1000) {
        lastPlain = performance.now();
        print(line());
      }
    }, 200);
    const endProgress = () => {
      clearInterval(progress);
      if (opts.tty) process.stdout.write(`\r${line()}\u001b[K\n`);
    };

    await sleep(seconds * 1000);
    const before = await c.waitForLeader(5000);
    const ackedBeforeKill = load.acked.size;
    const tKill = performance.now();
    await c.kill(before.id);
    if (opts.tty) process.stdout.write('\n');
    print(`  SIGKILL leader ${before.id} (generation ${before.view.generation}, high-water mark ${before.view.commit}) after ${ackedBeforeKill} acknowledged writes`);
    const survivors = c.ids().filter((id) => id !== before.id);
    const after = await c.waitForLeader(15_000, survivors, [before.id]);
    const tElected = performance.now();
    leaderNow = after.id;
    // Keep writing on the new leader for a while, then measure the gap around the kill.
    const firstAck = async () => {
      for (let i = 0; i < 300; i++) {
        if (load.ackTimes.some((t) => t > tElected)) return;
        await sleep(20);
      }
    };
    await firstAck();
    await sleep(Math.min(1500, seconds * 500));
    load.stop = true;
    await load.done;
    endProgress();
    const gap = writeGap(load.ackTimes, tKill, tElected);
    const gapMs = gap ?? NaN;
    print(`  new leader: ${after.id} (generation ${after.view.generation}) elected ${Math.round(tElected - tKill)} ms after the kill`);
    check('new leader elected', after.id !== before.id && after.view.generation > before.view.generation, `${after.id}, generation ${before.view.generation} -> ${after.view.generation}`);
    check('writes resumed', gap !== undefined, gap === undefined ? 'no write acknowledged after the new leader was elected' : `write gap ${Math.round(gapMs)} ms (longest stretch without an acknowledgement around the kill)`);

    const survivorsKv = kvOn(survivors.map((id) => c.endpoint(id)));
    const lin = await readAll(survivorsKv, false);
    const linProblems = verify(lin, load);
    check('acknowledged writes readable (linearizable range)', linProblems.length === 0, linProblems.length === 0 ? `${load.acked.size} of ${load.acked.size} read back with their values${load.unknown.size === 0 ? '' : ` (${load.unknown.size} unknown outcomes, ${[...load.unknown.keys()].filter((k) => lin.has(k)).length} of them applied)`}` : `${linProblems.length} problems, first: ${linProblems[0]}`);
    const leaderView = await c.waitForLeader(5000, survivors);
    for (const id of survivors) {
      await c.waitForApplied(id, leaderView.view.commit, 10_000);
      const one = kvOn([c.endpoint(id)]);
      const problems = verify(await readAll(one, true), load);
      check(`follower read on ${id}`, problems.length === 0, problems.length === 0 ? `every acknowledged write present at its high-water mark` : `${problems.length} problems, first: ${problems[0]}`);
    }

    const tRestart = performance.now();
    c.spawn(before.id);
    const caught = await c.waitForApplied(before.id, leaderView.view.commit, 20_000);
    const catchUpMs = performance.now() - tRestart;
    const rejoined = verify(await readAll(kvOn([c.endpoint(before.id)]), true), load);
    check(`restarted ${before.id} caught up`, rejoined.length === 0, rejoined.length === 0 ? `applied ${caught.applied ?? caught.commit} in ${Math.round(catchUpMs)} ms (incl. process start), every acknowledged write present` : `${rejoined.length} problems, first: ${rejoined[0]}`);
    const final = await c.waitForLeader(5000);

    await Promise.allSettled(clients.map((k) => k.close()));
    clients.length = 0;
    const unclean = await c.stopAll(10_000);
    check('clean shutdown (SIGTERM)', unclean.length === 0, unclean.length === 0 ? 'every node exited' : `killed after the grace period: ${unclean.join(', ')}`);

    const ok = checks.every((x) => x.ok);
    print('');
    print('summary');
    print(`  writes: ${load.acked.size} acknowledged, ${load.unknown.size} unknown outcome, ${load.notApplied} refused (not applied); ${writers} concurrent writers${load.failures.size === 0 ? '' : `; failures: ${[...load.failures].map(([code, n]) => `${code} ${n}`).join(', ')}`}`);
    print(`  failover: ${before.id} (gen ${before.view.generation}) killed -> ${after.id} (gen ${after.view.generation}) leader after ${Math.round(tElected - tKill)} ms; write gap ${Math.round(gapMs)} ms`);
    print(`  final: leader ${final.id}, generation ${final.view.generation}, high-water mark ${final.view.commit}`);
    print(`  checks: ${checks.filter((x) => x.ok).length}/${checks.length} passed${ok ? '' : ` — logs kept in ${baseDir}`}`);
    return ok ? 0 : 1;
  } catch (err) {
    if (interrupted) return 130;
    if (opts.tty) process.stdout.write('\n');
    print(`  FAIL demo aborted: ${err instanceof Error ? err.message : String(err)}`);
    print(`  logs kept in ${baseDir}`);
    return 1;
  } finally {
    process.off('SIGINT', onSigint);
    await cleanup();
    if (!interrupted && checks.length > 0 && checks.every((x) => x.ok) && opts.keep !== true) fs.rmSync(baseDir, { recursive: true, force: true });
  }
}
