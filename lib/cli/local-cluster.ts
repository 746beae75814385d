/**
 * A cluster of `tidemark node` processes on loopback, for the demo, the
 * real-process tests and the replication benchmark: free ports, one data
 * directory per node, a log file per node (every JSON line it printed, across
 * restarts), signals (SIGKILL, SIGSTOP/SIGCONT, SIGTERM), restart with the same
 * data directory, and "who is the leader" through each node's status.
 *
 * Peer addresses can be rewritten per directed pair (`peerEndpoint`), so a test
 * can put a TCP proxy it controls between every two nodes.
 *
 * @packageDocumentation
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Endpoint } from '../net/api';
import { formatEndpoint } from './cluster-args';
import type { NodeView } from './status-table';

/** Asks one node for its status document (through the client protocol). */
export type StatusProbe = (endpoint: Endpoint, timeoutMs: number, clusterId?: string) => Promise<NodeView>;

/** Options of {@link LocalCluster.start}. */
export interface LocalClusterOptions {
  /** How to run the CLI: `[node, ...execArgv, main.js]`; `node ...` flags are appended. */
  readonly command: readonly string[];
  /** Parent of the nodes' data directories and log files. */
  readonly baseDir: string;
  /** Node ids (default n1, n2, n3). */
  readonly ids?: readonly string[];
  readonly clusterId?: string;
  /** Extra `tidemark node` flags for every node (e.g. `--tick-ms 10`). */
  readonly nodeArgs?: readonly string[];
  /** Extra flags for one node. */
  readonly nodeArgsFor?: (id: string) => readonly string[];
  /** The address `from` dials to reach `to` (default: `to`'s own listen address). */
  readonly peerEndpoint?: (from: string, to: string, listen: Endpoint) => Endpoint;
  /** Reads one node's status. */
  readonly probe: StatusProbe;
  /** Give every node a `--metrics-port` (see {@link LocalCluster.metrics}). */
  readonly metrics?: boolean;
  /** Called with every line a node prints (stdout and stderr). */
  readonly onLine?: (id: string, line: string) => void;
}

interface Member {
  readonly id: string;
  readonly listen: Endpoint;
  readonly dir: string;
  readonly logFile: string;
  readonly metricsPort: number | undefined;
  child: ChildProcess | null;
  exited: Promise<void> | null;
  /** `code C signal S` of the last process that exited, recorded when it exited. */
  exit?: string;
  stopped: boolean;
  starts: number;
}

/** Finds `count` distinct free TCP ports on 127.0.0.1 (held open together, then released). */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const s = net.createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, host, () => resolve());
      });
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** Sleeps `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A leader as found by {@link LocalCluster.waitForLeader}. */
export interface FoundLeader {
  readonly id: string;
  readonly view: NodeView;
}

/** Three (or more) `tidemark node` processes on 127.0.0.1. */
export class LocalCluster {
  private readonly members = new Map<string, Member>();

  private constructor(private readonly opts: LocalClusterOptions) {}

  /** Allocates ports and directories and starts every node. */
  static async start(opts: LocalClusterOptions): Promise<LocalCluster> {
    const c = await LocalCluster.prepare(opts);
    for (const id of c.ids()) c.spawn(id);
    return c;
  }

  /** Allocates ports and directories without starting anything (call {@link spawn}). */
  static async prepare(opts: LocalClusterOptions): Promise<LocalCluster> {
    const c = new LocalCluster(opts);
    const ids = opts.ids ?? ['n1', 'n2', 'n3'];
    const ports = await freePorts(opts.metrics === true ? 2 * ids.length : ids.length);
    ids.forEach((id, i) => {
      const dir = path.join(opts.baseDir, id);
      fs.mkdirSync(dir, { recursive: true });
      c.members.set(id, { id, listen: { host: '127.0.0.1', port: ports[i] as number }, dir, logFile: path.join(opts.baseDir, `${id}.log`), metricsPort: opts.metrics === true ? ports[ids.length + i] : undefined, child: null, exited: null, stopped: true, starts: 0 });
    });
    return c;
  }

  /** Node ids, in order. */
  ids(): string[] {
    return [...this.members.keys()];
  }

  private member(id: string): Member {
    const m = this.members.get(id);
    if (m === undefined) throw new Error(`no node '${id}'`);
    return m;
  }

  /** The node's client (and peer) listen address. */
  endpoint(id: string): Endpoint {
    return this.member(id).listen;
  }

  /** Every node's listen address, in id order. */
  endpoints(): Endpoint[] {
    return this.ids().map((id) => this.endpoint(id));
  }

  /** `host:port,...` of every node. */
  clusterArg(): string {
    return this.endpoints().map(formatEndpoint).join(',');
  }

  /** The node's data directory. */
  dataDir(id: string): string {
    return this.member(id).dir;
  }

  /** The node's log file (every line it printed, across restarts). */
  logFile(id: string): string {
    return this.member(id).logFile;
  }

  /** Whether the node's process is alive (a SIGSTOPped one is). */
  running(id: string): boolean {
    return this.member(id).child !== null;
  }

  /** The process id of a running node. */
  pid(id: string): number | undefined {
    return this.member(id).child?.pid;
  }

  /** The `tidemark node` arguments for `id`. */
  nodeArgs(id: string): string[] {
    const m = this.member(id);
    const peerEndpoint = this.opts.peerEndpoint ?? ((_from: string, _to: string, listen: Endpoint) => listen);
    const args = ['node', '--id', id, '--dir', m.dir, '--listen', formatEndpoint(m.listen)];
    for (const other of this.ids()) if (other !== id) args.push('--peer', `${other}=${formatEndpoint(peerEndpoint(id, other, this.endpoint(other)))}`);
    if (this.opts.clusterId !== undefined) args.push('--cluster-id', this.opts.clusterId);
    if (m.metricsPort !== undefined) args.push('--metrics-port', String(m.metricsPort));
    args.push(...(this.opts.nodeArgs ?? []), ...(this.opts.nodeArgsFor?.(id) ?? []));
    return args;
  }

  /** Starts the node's process (with its existing data directory). */
  spawn(id: string): void {
    const m = this.member(id);
    if (m.child !== null) throw new Error(`node ${id} is already running`);
    const [exe, ...pre] = this.opts.command;
    if (exe === undefined) throw new Error('LocalCluster: empty command');
    const child = spawn(exe, [...pre, ...this.nodeArgs(id)], { stdio: ['ignore', 'pipe', 'pipe'] });
    m.child = child;
    m.stopped = false;
    m.starts++;
    const log = fs.createWriteStream(m.logFile, { flags: 'a' });
    log.on('error', () => undefined); // a failed log write must not take the harness down; exited still resolves
    log.write(`# start ${m.starts} pid ${child.pid ?? '?'}\n`);
    const lines = (stream: NodeJS.ReadableStream, prefix: string) => {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          log.write(prefix + line + '\n');
          this.opts.onLine?.(id, line);
        }
      });
    };
    if (child.stdout !== null) lines(child.stdout, '');
    if (child.stderr !== null) lines(child.stderr, 'stderr: ');
    m.exited = new Promise<void>((resolve) => {
      child.on('error', () => undefined);
      child.on('close', (code, signal) => {
        m.exit = `code ${String(code)} signal ${String(signal)}`;
        if (m.child === child) m.child = null;
        // Resolve once the log file holds the exit line (readers of the file see it); at once if the log already failed.
        if (log.destroyed) resolve();
        else log.end(`# exit ${m.exit}\n`, () => resolve());
      });
    });
  }

  /** Sends `signal` to the node's process. */
  signal(id: string, signal: NodeJS.Signals): void {
    const child = this.member(id).child;
    if (child === null) throw new Error(`node ${id} is not running`);
    child.kill(signal);
  }

  /** SIGKILLs the node and waits for its process to be gone. */
  async kill(id: string): Promise<void> {
    const m = this.member(id);
    if (m.child === null) return;
    m.child.kill('SIGCONT');
    m.child.kill('SIGKILL');
    await m.exited;
  }

  /** SIGTERM (clean shutdown); SIGKILL after `graceMs`. Resolves with whether it exited in time. */
  async stop(id: string, graceMs = 10_000): Promise<boolean> {
    const m = this.member(id);
    if (m.child === null) return true;
    const child = m.child;
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const clean = await Promise.race([m.exited?.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs)))]);
    clearTimeout(timer);
    if (!clean) await this.kill(id);
    return clean === true;
  }

  /** The node's Prometheus text from its `--metrics-port` (needs the `metrics` option). */
  async metrics(id: string, timeoutMs = 2000): Promise<string> {
    const port = this.member(id).metricsPort;
    if (port === undefined) throw new Error('LocalCluster: started without the metrics option');
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) throw new Error(`metrics of ${id}: HTTP ${res.status}`);
    return res.text();
  }

  /** Exit code and signal (`code C signal S`) of the node's last process that exited, or undefined before any did. */
  lastExit(id: string): string | undefined {
    return this.member(id).exit;
  }

  /** The node's status, or the reason it gave none. */
  async status(id: string, timeoutMs = 1000): Promise<NodeView | Error> {
    try {
      return await this.opts.probe(this.endpoint(id), timeoutMs, this.opts.clusterId);
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  }

  /**
   * Waits until one of `among` (default: every running node) reports itself leader and
   * at least a majority of the cluster's running nodes in `among` agree on it (same leader id
   * and generation), or throws after `timeoutMs`.
   */
  async waitForLeader(timeoutMs = 20_000, among?: readonly string[], notIn: readonly string[] = []): Promise<FoundLeader> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      const ids = (among ?? this.ids()).filter((id) => this.running(id));
      const views = await Promise.all(ids.map(async (id) => [id, await this.status(id, 500)] as const));
      const leaders = views.filter((v): v is readonly [string, NodeView] => !(v[1] instanceof Error) && v[1].role === 'leader' && !notIn.includes(v[0]));
      const majority = Math.floor(this.members.size / 2) + 1;
      for (const [id, view] of leaders) {
        const agree = views.filter(([, v]) => !(v instanceof Error) && (v.id === id || (v.leaderId === id && v.generation === view.generation))).length;
        if (agree >= majority) return { id, view };
      }
      last = views.map(([id, v]) => `${id}: ${v instanceof Error ? v.message : `${v.role} gen ${v.generation} leader ${String(v.leaderId)}`}`).join('; ');
      if (Date.now() > deadline) throw new Error(`no leader within ${timeoutMs} ms (${last})`);
      await sleep(50);
    }
  }

  /** Waits until node `id` has applied (or committed, when it does not say) at least `index`. */
  async waitForApplied(id: string, index: number, timeoutMs = 20_000): Promise<NodeView> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await this.status(id, 500);
      if (!(v instanceof Error) && (v.applied ?? v.commit) >= index) return v;
      if (Date.now() > deadline) throw new Error(`node ${id} did not reach index ${index} within ${timeoutMs} ms (${v instanceof Error ? v.message : `applied ${String(v.applied)} commit ${v.commit}`})`);
      await sleep(50);
    }
  }

  /** SIGKILLs every node still running and waits for all of them to be gone. */
  async killAll(): Promise<void> {
    await Promise.all(this.ids().map((id) => this.kill(id)));
  }

  /** SIGTERMs every node (SIGKILL after `graceMs`); resolves with the ids that did not exit cleanly. */
  async stopAll(graceMs = 10_000): Promise<string[]> {
    const results = await Promise.all(this.ids().map(async (id) => [id, await this.stop(id, graceMs)] as const));
    return results.filter(([, ok]) => !ok).map(([id]) => id);
  }
}
