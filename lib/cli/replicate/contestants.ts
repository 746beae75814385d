/**
 * The replication benchmark's contestants behind one interface: a three-node tidemark
 * cluster (LocalCluster, the built CLI), the in-process tidemark Wal (the floor), and —
 * loaded lazily with {@link optionalModule}, since they need the `etcd3` and
 * `node-zookeeper-client` packages that tidemark does not depend on (the source repository's
 * bench/package.json has them) — etcd and ZooKeeper ensembles.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { LocalCluster } from '../local-cluster';
import { openKv, probeStatus, type KvFacade } from '../wiring';
import { Wal } from '../../index';
import { dirBytes } from './launcher';
import { EtcdCluster } from './etcd';
import { ZkEnsemble } from './zookeeper';
import type { ContestantInfo } from './report';

/** One connection's worth of writes. */
export interface Writer {
  /** One durable, replicated write of `value` by writer `w` (its `n`-th). */
  put(value: string, w: number, n: number): Promise<void>;
  close(): Promise<void>;
}

/** A running contestant. */
export interface Contestant {
  readonly name: string;
  readonly info: ContestantInfo;
  /** Node id → pid of each running node (empty for the in-process floor). */
  nodes(): Record<string, number>;
  /** A writer aimed at the leader. */
  cellWriter(): Promise<Writer>;
  /** Node id → bytes in its data directory. */
  dataBytes(): Record<string, number>;
  readonly failover?: {
    /** Current leader (polls status: call outside measured windows). */
    leader(): Promise<string>;
    /** A writer that follows the leader across a failover (every node's address). */
    writer(): Promise<Writer>;
    kill(id: string): Promise<void>;
    waitForLeader(notIn: readonly string[], timeoutMs: number): Promise<string>;
    /** Restarts the killed node and waits until it has caught up enough to serve. */
    restart(id: string): Promise<void>;
  };
  stop(): Promise<void>;
}

/** Equivalent timing for every cluster: heartbeat 100 ms, leader loss detected after ~1 s. */
export const TIMING = { heartbeatMs: 100, electionMs: 1000 } as const;

/** Fails `p` after `ms` (the call may still complete later; it is then ignored). */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]);
}

function kvWriter(kv: KvFacade, keySpace: number): Writer {
  return {
    put: async (value, w, n) => {
      await kv.put(`b${(w * 7919 + n) % keySpace}`, value);
    },
    close: () => kv.close(),
  };
}

/**
 * An npm package tidemark does not depend on, required from the first of `bases` (directories)
 * that resolves it; throws an Error saying where it was looked for and how to get it.
 */
export function optionalModule<T>(name: string, bases: readonly string[], what: string): T {
  for (const base of bases) {
    const req = createRequire(path.join(path.resolve(base), 'noop.js'));
    let resolved: string;
    try {
      resolved = req.resolve(name);
    } catch {
      continue;
    }
    return req(resolved) as T;
  }
  const dirs = [...new Set(bases.map((b) => path.resolve(b)))];
  throw new Error(`the npm package ${name} (${what}) is not installed (looked from ${dirs.join(', ')}): \`npm install ${name}\` in ${dirs[0] ?? '.'} includes it`);
}

/**
 * Three `tidemark node` processes on loopback. `command`: how to run the tidemark CLI
 * (`[node, ...flags, main.js]`). `cpuProfDir`: run them under `--cpu-prof`.
 */
export async function startTidemark(baseDir: string, command: readonly string[], opts: { cpuProfDir?: string; keySpace?: number } = {}): Promise<Contestant & { cluster: LocalCluster }> {
  const tickMs = 10;
  const timing = ['--tick-ms', String(tickMs), '--heartbeat-ticks', String(TIMING.heartbeatMs / tickMs), '--election-ticks', String(TIMING.electionMs / tickMs)];
  const pre = opts.cpuProfDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`];
  const [exe = process.execPath, ...args] = command;
  const cluster = await LocalCluster.start({ command: [exe, ...pre, ...args], baseDir, probe: probeStatus, nodeArgs: ['--log-level', 'warn', ...timing] });
  const keySpace = opts.keySpace ?? 1000;
  try {
    await cluster.waitForLeader(30_000);
  } catch (err) {
    await cluster.killAll();
    throw err;
  }
  const pids = () => Object.fromEntries(cluster.ids().filter((id) => cluster.running(id)).map((id) => [id, cluster.pid(id) as number]));
  return {
    name: 'tidemark',
    cluster,
    info: {
      name: 'tidemark',
      measured: true,
      description: '3 `tidemark node` processes on 127.0.0.1, default sync (fdatasync before acknowledging), lib/cli KvFacade put()',
      timeouts: `--tick-ms ${tickMs} --heartbeat-ticks ${TIMING.heartbeatMs / tickMs} --election-ticks ${TIMING.electionMs / tickMs} (heartbeat ${TIMING.heartbeatMs} ms, election timeout ${TIMING.electionMs} ms)`,
    },
    nodes: pids,
    cellWriter: async () => kvWriter(openKv(cluster.endpoints(), { timeoutMs: 10_000 }), keySpace),
    dataBytes: () => Object.fromEntries(cluster.ids().map((id) => [id, dirBytes(cluster.dataDir(id))])),
    failover: {
      leader: async () => (await cluster.waitForLeader(20_000)).id,
      writer: async () => kvWriter(openKv(cluster.endpoints(), { timeoutMs: 10_000 }), keySpace),
      kill: (id) => cluster.kill(id),
      waitForLeader: async (notIn, timeoutMs) => (await cluster.waitForLeader(timeoutMs, cluster.ids().filter((id) => !notIn.includes(id)), notIn)).id,
      restart: async (id) => {
        cluster.spawn(id);
        const l = await cluster.waitForLeader(30_000);
        await cluster.waitForApplied(id, l.view.commit, 60_000);
      },
    },
    stop: async () => {
      if (opts.cpuProfDir !== undefined) await cluster.stopAll(15_000);
      await cluster.killAll();
    },
  };
}

/** The floor: one tidemark Wal in this process (default sync), no replication. */
export async function startWalFloor(dir: string): Promise<Contestant> {
  fs.mkdirSync(dir, { recursive: true });
  const wal = await Wal.open(dir);
  return {
    name: 'wal-floor',
    info: { name: 'wal-floor', measured: true, description: 'one tidemark Wal in the client process, default sync (fdatasync), awaited append(); no network, no replication', timeouts: 'n/a (single process)' },
    nodes: () => ({}),
    cellWriter: async () => ({ put: async (value) => void (await wal.append(Buffer.from(value))), close: async () => undefined }),
    dataBytes: () => ({ wal: dirBytes(dir) }),
    stop: () => wal.close(),
  };
}

/** The parts of a contestant common to etcd and ZooKeeper: `writerFor(ids)` aims at those members. */
function ensembleParts(e: EtcdCluster | ZkEnsemble, writerFor: (ids: string[]) => Promise<Writer>): Pick<Contestant, 'nodes' | 'cellWriter' | 'dataBytes' | 'failover'> {
  return {
    nodes: () => Object.fromEntries(e.ids().filter((id) => e.pid(id) !== undefined).map((id) => [id, e.pid(id) as number])),
    cellWriter: async () => writerFor([await e.waitForLeader(20_000)]),
    dataBytes: () => Object.fromEntries(e.ids().map((id) => [id, e.dataBytes(id)])),
    failover: {
      leader: () => e.waitForLeader(20_000),
      writer: () => writerFor(e.ids()),
      kill: (id) => e.kill(id),
      waitForLeader: (notIn, timeoutMs) => e.waitForLeader(timeoutMs, notIn),
      restart: async (id) => {
        await e.restart(id);
        await e.waitForLeader(30_000);
      },
    },
  };
}

/** The part of the npm `etcd3` client the benchmark uses. */
interface Etcd3Client {
  put(key: string): { value(v: string): { exec(): Promise<unknown> } };
  close(): void;
}
/** The `etcd3` package's client, or the reason it is not there (see {@link optionalModule}). */
export function etcdClientModule(bases: readonly string[]): { Etcd3: new (o: { hosts: string[] }) => Etcd3Client } {
  return optionalModule('etcd3', bases, 'the etcd client');
}
/** The part of `node-zookeeper-client` the benchmark uses. */
interface ZkModule {
  createClient(cs: string, o: Record<string, unknown>): ZkClient;
  CreateMode: { PERSISTENT_SEQUENTIAL: number };
}
/** The `node-zookeeper-client` package, or the reason it is not there (see {@link optionalModule}). */
export function zkClientModule(bases: readonly string[]): ZkModule {
  const zkc = optionalModule<{ default?: unknown } & Record<string, unknown>>('node-zookeeper-client', bases, 'the ZooKeeper client');
  return (zkc.default ?? zkc) as ZkModule;
}

/** etcd (needs the `etcd3` client, looked up from `moduleBases`, and the `etcd` binary). */
export async function startEtcd(baseDir: string, bin: string, version: string, moduleBases: readonly string[]): Promise<Contestant> {
  const { Etcd3 } = etcdClientModule(moduleBases);
  const extra = ['--log-level', 'warn', '--logger', 'zap', '--auto-compaction-mode', 'revision', '--auto-compaction-retention', '10000'];
  const c = await EtcdCluster.start({ bin, baseDir, heartbeatMs: TIMING.heartbeatMs, electionMs: TIMING.electionMs, extraArgs: extra });
  const clients: Etcd3Client[] = [];
  const writer = (hosts: string[]): Writer => {
    const client = new Etcd3({ hosts });
    clients.push(client);
    return {
      put: async (value, w, n) => {
        await withTimeout(client.put(`b${(w * 7919 + n) % 1000}`).value(value).exec(), 10_000, 'etcd put');
      },
      close: async () => client.close(),
    };
  };
  try {
    await c.waitForLeader(30_000);
  } catch (err) {
    await c.cleanup();
    throw err;
  }
  return {
    name: 'etcd',
    info: {
      name: 'etcd',
      measured: true,
      version,
      description: `3 etcd members on 127.0.0.1 (Debian etcd-server), default durability (WAL fsync before ack; never --unsafe-no-fsync), ${extra.slice(4).join(' ')}, npm etcd3 put()`,
      timeouts: `--heartbeat-interval ${TIMING.heartbeatMs} --election-timeout ${TIMING.electionMs}`,
    },
    ...ensembleParts(c, async (ids) => writer(c.urls(ids))),
    stop: async () => {
      for (const cl of clients) cl.close();
      await c.cleanup();
    },
  };
}

interface ZkClient {
  connect(): void;
  close(): void;
  once(ev: string, cb: (...a: unknown[]) => void): void;
  on(ev: string, cb: (...a: unknown[]) => void): void;
  create(p: string, data: Buffer | null, mode: number, cb: (err: Error | null, p?: string) => void): void;
  mkdirp(p: string, cb: (err: Error | null) => void): void;
}

/** ZooKeeper (needs `node-zookeeper-client`, looked up from `moduleBases`, Java and Debian's zookeeper). */
export async function startZookeeper(baseDir: string, moduleBases: readonly string[]): Promise<Contestant> {
  const lib = zkClientModule(moduleBases);
  const tickTimeMs = 200;
  const syncLimit = TIMING.electionMs / tickTimeMs;
  const z = await ZkEnsemble.start({ baseDir, tickTimeMs, syncLimit, initLimit: 10 });
  const clients: ZkClient[] = [];
  const connect = async (cs: string): Promise<ZkClient> => {
    const client = lib.createClient(cs, { sessionTimeout: 4000, spinDelay: 100, retries: 0 });
    clients.push(client);
    await withTimeout(new Promise<void>((resolve) => {
      client.once('connected', () => resolve());
      client.connect();
    }), 20_000, 'zookeeper connect');
    await new Promise<void>((resolve, reject) => client.mkdirp('/bench', (e) => (e ? reject(e) : resolve())));
    return client;
  };
  const writer = async (cs: string): Promise<Writer> => {
    const client = await connect(cs);
    return {
      put: (value) =>
        withTimeout(
          new Promise<void>((resolve, reject) => client.create('/bench/w-', Buffer.from(value), lib.CreateMode.PERSISTENT_SEQUENTIAL, (e) => (e ? reject(e) : resolve()))),
          10_000,
          'zookeeper create',
        ),
      close: async () => client.close(),
    };
  };
  return {
    name: 'zookeeper',
    info: {
      name: 'zookeeper',
      measured: true,
      description: '3 ZooKeeper servers on 127.0.0.1 (Debian zookeeper 3.8, -Xmx512m), forceSync=yes, writes = create of PERSISTENT_SEQUENTIAL znodes, npm node-zookeeper-client (session 4 s)',
      timeouts: `tickTime=${tickTimeMs} syncLimit=${syncLimit} initLimit=10 (leader pings every ${tickTimeMs / 2} ms, follower gives up after ${tickTimeMs * syncLimit} ms)`,
    },
    ...ensembleParts(z, (ids) => writer(z.connectString(ids))),
    stop: async () => {
      for (const cl of clients) cl.close();
      await z.cleanup();
    },
  };
}
