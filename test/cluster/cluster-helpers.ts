/**
 * In-process clusters for the node tests: N TidemarkNodes over a MemoryNetwork,
 * real WALs in temp directories, and a small client that finds the leader and
 * retries with the same (clientId, seq) (Idempotent Receiver).
 */
import { join } from 'node:path';
import { TidemarkNode, type TidemarkNodeOptions } from '../../lib/cluster/node';
import { MemoryNetwork } from '../../lib/cluster/memory-transport';
import type { ClusterCaller } from '../../lib/cluster/kv';
import type { StateMachine } from '../../lib/cluster/state-machine';
import type { ClientResponse } from '../../lib/net/api';

/** A state machine that records every command it applied (to check exactly-once). */
export class ListMachine implements StateMachine {
  items: Array<{ index: number; text: string }> = [];
  applyCalls = 0;
  apply(command: Uint8Array, index: number): Uint8Array {
    this.applyCalls++;
    this.items.push({ index, text: Buffer.from(command).toString() });
    return Buffer.from(`#${this.items.length}`);
  }
  query(q: Uint8Array): Uint8Array {
    const text = Buffer.from(q).toString();
    return Buffer.from(String(this.items.filter((i) => i.text === text).length));
  }
  snapshot(): Uint8Array {
    return Buffer.from(JSON.stringify(this.items));
  }
  restore(data: Uint8Array): void {
    this.items = JSON.parse(Buffer.from(data).toString()) as Array<{ index: number; text: string }>;
  }
}

export const FAST = { tickMs: 10, electionTimeoutTicks: 30, heartbeatTicks: 5 } as const;

export class TestCluster {
  readonly net = new MemoryNetwork();
  readonly nodes = new Map<string, TidemarkNode>();
  readonly machines = new Map<string, StateMachine>();

  constructor(
    readonly root: string,
    readonly ids: readonly string[],
    private readonly extra: Partial<TidemarkNodeOptions> = {},
    private readonly machineFactory: (() => StateMachine) | undefined = undefined,
  ) {}

  dir(id: string): string {
    return join(this.root, id);
  }

  async start(id: string, extra: Partial<TidemarkNodeOptions> = {}): Promise<TidemarkNode> {
    const machine = this.machineFactory?.();
    const node = await TidemarkNode.open({
      id,
      dir: this.dir(id),
      clusterId: 'test-cluster',
      voters: this.ids,
      transport: this.net.transport(id),
      wal: { sync: 'fdatasync', segmentBytes: 1024 * 1024 },
      ...FAST,
      ...(machine !== undefined ? { stateMachine: machine } : {}),
      ...this.extra,
      ...extra,
    });
    node.on('error', (err: unknown) => {
      throw err;
    });
    this.nodes.set(id, node);
    this.machines.set(id, node.stateMachine);
    return node;
  }

  async startAll(): Promise<void> {
    for (const id of this.ids) await this.start(id);
  }

  async stop(id: string): Promise<void> {
    const n = this.nodes.get(id);
    this.nodes.delete(id);
    await n?.close();
  }

  async stopAll(): Promise<void> {
    for (const id of [...this.nodes.keys()]) await this.stop(id);
  }

  leader(): TidemarkNode | undefined {
    const leaders = [...this.nodes.values()].filter((n) => n.role === 'leader');
    // Two leaders can coexist briefly (an old one not yet deposed): prefer the newest generation.
    leaders.sort((a, b) => b.generation - a.generation);
    return leaders[0];
  }

  async waitForLeader(timeoutMs = 20_000, exclude?: string): Promise<TidemarkNode> {
    return waitUntil(() => {
      const l = this.leader();
      return l !== undefined && l.id !== exclude ? l : undefined;
    }, timeoutMs, 'a leader');
  }

  /** Resolves once every running node applied at least `index`. */
  async waitForApplied(index: number, timeoutMs = 20_000): Promise<void> {
    await waitUntil(() => ([...this.nodes.values()].every((n) => n.applied >= index) ? true : undefined), timeoutMs, `every node applied ${index}`);
  }

  /** One client session: commands go to the leader, retried with the same seq until a definite answer. */
  client(clientId: string): TestClient {
    return new TestClient(this, clientId);
  }
}

export class TestClient implements ClusterCaller {
  private seq = 0;
  attempts = 0;
  constructor(
    private readonly cluster: TestCluster,
    readonly clientId: string,
  ) {}

  /** Sends (clientId, seq) until it gets a definite answer; returns the response. */
  async call(kind: 'propose' | 'read', payload: Uint8Array, seq: number, readMode?: 'linearizable' | 'follower', timeoutMs = 20_000): Promise<ClientResponse & { ok: true }> {
    const deadline = Date.now() + timeoutMs;
    let last: ClientResponse | undefined;
    while (Date.now() < deadline) {
      const target = this.cluster.leader() ?? [...this.cluster.nodes.values()][0];
      if (target !== undefined) {
        this.attempts++;
        const res = await target.request({ kind, clientId: kind === 'propose' ? this.clientId : '', seq: kind === 'propose' ? seq : 0, payload, ...(readMode !== undefined ? { readMode } : {}) });
        if (res.ok) return res;
        last = res;
        if (!['TM_NOT_LEADER', 'TM_UNKNOWN_OUTCOME', 'TM_CLOSED', 'TM_BUSY'].includes(res.code)) throw new Error(`request failed: ${res.code} ${res.message}`);
      }
      await sleep(20);
    }
    throw new Error(`no definite answer in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
  }

  async propose(payload: Uint8Array): Promise<Uint8Array> {
    return (await this.call('propose', payload, ++this.seq)).result;
  }
  async read(payload: Uint8Array, options?: { mode?: 'linearizable' | 'follower' }): Promise<Uint8Array> {
    return (await this.call('read', payload, 0, options?.mode ?? 'linearizable')).result;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitUntil<T>(f: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * Writes `line` to stdout and resolves once it was handed to the kernel: a pipe to a slow
 * reader can leave writes queued inside the process, and a SIGKILL would lose them, so a
 * crash-test child that reports progress this way never runs ahead of its reports.
 */
export function emit(line: string): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(line, (err) => (err ? reject(err) : resolve())));
}
