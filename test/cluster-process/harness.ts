/**
 * Harness of the real-process cluster tests: three `tidemark node` processes on
 * 127.0.0.1 (run from source through tsx), their logs collected in a temporary
 * directory and printed when a test fails, every process SIGKILLed and the
 * directory removed after the test whatever happened; a register workload
 * whose history goes to the linearizability checker; a seeded PRNG.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect, onTestFinished } from 'vitest';
import { LocalCluster, sleep, type LocalClusterOptions } from '../../lib/cli/local-cluster';
import { readAll, verify, type Load } from '../../lib/cli/load';
import { classifyFailure, openKv, probeStatus, type KvFacade } from '../../lib/cli/wiring';
import type { Endpoint } from '../../lib/net/api';
import { Rng } from '../helpers';
import { HistoryRecorder } from './history';
import { checkLinearizable } from '../lin/checker';

const root = path.join(__dirname, '..', '..');

/** Timing flags every test node runs with: 10 ms ticks, election timeout 30 ticks, heartbeat 3. */
export const TEST_NODE_ARGS = ['--tick-ms', '10', '--election-ticks', '30', '--heartbeat-ticks', '3', '--log-level', 'info'];
/** The election timeout those flags give (the randomized timeout is in [T, 2T)). */
export const ELECTION_TIMEOUT_MS = 300;

/** Starts a cluster for the current test; it is killed and its directory removed when the test ends. */
export async function testCluster(opts: Partial<LocalClusterOptions> & { start?: boolean } = {}): Promise<{ cluster: LocalCluster; dir: string; kv: (endpoints?: readonly Endpoint[]) => KvFacade }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-proc-'));
  const clients: KvFacade[] = [];
  const options: LocalClusterOptions = {
    command: [process.execPath, '--import', 'tsx', path.join(root, 'lib', 'cli', 'main.ts')],
    baseDir: dir,
    probe: probeStatus,
    nodeArgs: TEST_NODE_ARGS,
    ...opts,
  };
  const cluster = opts.start === false ? await LocalCluster.prepare(options) : await LocalCluster.start(options);
  onTestFinished(async (ctx) => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await cluster.killAll();
    if (ctx.task.result?.state === 'fail') {
      for (const id of cluster.ids()) {
        let text: string;
        try {
          text = fs.readFileSync(cluster.logFile(id), 'utf8');
        } catch {
          text = '(no log)';
        }
        const lines = text.split('\n');
        process.stderr.write(`\n----- ${id} log (last 80 of ${lines.length} lines; all in ${cluster.logFile(id)} with TIDEMARK_KEEP_TMP=1) -----\n${lines.slice(-80).join('\n')}\n`);
      }
    }
    if (process.env.TIDEMARK_KEEP_TMP !== '1') fs.rmSync(dir, { recursive: true, force: true });
  });
  const kv = (endpoints: readonly Endpoint[] = cluster.endpoints()) => {
    const c = openKv(endpoints, { timeoutMs: 3000 });
    clients.push(c);
    return c;
  };
  return { cluster, dir, kv };
}

/** Seed of a test round: TIDEMARK_SEED, or a fixed one (printed, so a failure replays). */
export function testSeed(round: number): number {
  const base = process.env.TIDEMARK_SEED === undefined ? 20261207 : Number(process.env.TIDEMARK_SEED);
  return (base + round * 7919) >>> 0;
}

/**
 * Clients doing random put/get/cas/del on a few keys, one operation at a time each,
 * recording the history. Values are unique (`c<client>.<n>`), so the checker can tell writes apart.
 */
export class RegisterWorkload {
  readonly history = new HistoryRecorder((err) => {
    const f = classifyFailure(err);
    return { outcome: f.outcome === 'unknown' ? 'unknown' : 'fail', code: f.code };
  });
  private stopped = false;
  private readonly running: Promise<void>[] = [];

  constructor(
    private readonly kv: KvFacade,
    private readonly rng: Rng,
    private readonly keys: readonly string[] = ['r0', 'r1', 'r2', 'r3'],
  ) {}

  /** Starts `clients` logical clients. */
  start(clients: number): void {
    for (let c = 0; c < clients; c++) this.running.push(this.client(c));
  }

  private async client(c: number): Promise<void> {
    for (let n = 0; !this.stopped; n++) {
      const key = this.keys[this.rng.next32() % this.keys.length] as string;
      const dice = this.rng.next32() % 10;
      const value = `c${c}.${n}`;
      let r;
      if (dice < 4) r = await this.history.run(c, { kind: 'put', key, value }, async () => (await this.kv.put(key, value), undefined));
      else if (dice < 7) r = await this.history.run(c, { kind: 'get', key }, async () => (await this.kv.get(key)).value);
      else if (dice < 9) {
        const last = this.lastWritten.get(key) ?? null;
        r = await this.history.run(c, { kind: 'cas', key, expected: last, value }, async () => (await this.kv.cas(key, last, value)).swapped);
      } else r = await this.history.run(c, { kind: 'del', key }, async () => (await this.kv.del(key), undefined));
      if (r.ok && dice < 4) this.lastWritten.set(key, value);
      if (!r.ok) await sleep(10);
    }
  }

  private readonly lastWritten = new Map<string, string | null>();

  /** Stops the clients and waits for their last operations. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.running);
  }

  /** Reads every key once more (linearizably) and checks the whole history. */
  async check(finalKv: KvFacade): Promise<{ ok: boolean; message: string; ops: number; unknown: number }> {
    for (const key of this.keys) await this.history.run(999, { kind: 'get', key }, async () => (await finalKv.get(key)).value);
    const result = checkLinearizable(this.history.toLinOps());
    const s = this.history.summary();
    return {
      ok: result.ok && result.inconclusive.length === 0,
      message: result.ok ? (result.inconclusive.length === 0 ? `linearizable: ${result.ops} ops, ${result.unknown} unknown` : `inconclusive keys: ${result.inconclusive.join(', ')}`) : (result.failure?.message ?? 'not linearizable'),
      ops: s.ok + s.unknown,
      unknown: s.unknown,
    };
  }
}

/** Waits until `fn` returns true (polling), or throws `what` after `timeoutMs`. */
export async function eventually(what: string, fn: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(50);
  }
}

/**
 * Waits until every node has applied the leader's high-water mark, then checks on every
 * node (follower reads) that each load's acknowledged writes are there with their values
 * and that nothing else is (only unknown outcomes may be present).
 */
export async function expectEveryNodeHas(cluster: LocalCluster, kv: (endpoints?: readonly Endpoint[]) => KvFacade, loads: readonly Load[], label: string): Promise<void> {
  const leader = await cluster.waitForLeader(20_000);
  for (const id of cluster.ids()) await cluster.waitForApplied(id, leader.view.commit, 30_000);
  for (const load of loads) expect(load.acked.size, `${label}: a load had no acknowledged write`).toBeGreaterThan(0);
  for (const id of cluster.ids()) {
    for (const load of loads) {
      const read = await readAll(kv([cluster.endpoint(id)]), true, load.prefix);
      expect(verify(read, load).slice(0, 5), `${label}: node ${id}, load '${load.prefix}'`).toEqual([]);
    }
  }
}
