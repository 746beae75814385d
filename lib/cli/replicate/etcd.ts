/**
 * A three-member etcd cluster on 127.0.0.1 for the replication benchmark: free ports for
 * every member's client and peer URL, data in a temporary directory, default durability
 * (etcd fsyncs its WAL before acknowledging; `--unsafe-no-fsync` is never passed), the
 * given heartbeat and election timeouts. Health through `GET /health`, the leader through
 * the gRPC gateway's `POST /v3/maintenance/status`, so this file needs no etcd client
 * library (the benchmark drives writes with the npm `etcd3` client).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Ensemble, freePorts, ProcessGroup, waitFor } from './launcher';

/** Options of {@link EtcdCluster.start}. */
export interface EtcdOptions {
  /** The etcd executable (default `etcd`). */
  readonly bin?: string;
  /** Parent directory, created by the caller; removed by {@link EtcdCluster.cleanup}. */
  readonly baseDir: string;
  readonly ids?: readonly string[];
  readonly heartbeatMs: number;
  readonly electionMs: number;
  /** Extra flags for every member. */
  readonly extraArgs?: readonly string[];
  readonly healthTimeoutMs?: number;
}

/** The member's status as the gateway reports it. */
export interface EtcdStatus {
  readonly memberId: string;
  readonly leaderId: string;
  readonly raftTerm: number;
}

export class EtcdCluster extends Ensemble {
  private constructor(group: ProcessGroup, clientPorts: Map<string, number>) {
    super(group, clientPorts);
  }

  /** The flags `etcd` is started with (exported for the output and the tests). */
  static memberArgs(id: string, dir: string, ports: { client: number; peer: number }, initialCluster: string, opts: Pick<EtcdOptions, 'heartbeatMs' | 'electionMs' | 'extraArgs'>): string[] {
    const client = `http://127.0.0.1:${ports.client}`;
    const peer = `http://127.0.0.1:${ports.peer}`;
    return [
      '--name', id,
      '--data-dir', dir,
      '--listen-client-urls', client,
      '--advertise-client-urls', client,
      '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer,
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', 'tidemark-bench',
      '--heartbeat-interval', String(opts.heartbeatMs),
      '--election-timeout', String(opts.electionMs),
      ...(opts.extraArgs ?? []),
    ];
  }

  /** Allocates ports, starts every member and waits until each answers `/health` healthy. */
  static async start(opts: EtcdOptions): Promise<EtcdCluster> {
    const ids = opts.ids ?? ['e1', 'e2', 'e3'];
    const group = new ProcessGroup(opts.baseDir);
    try {
      const ports = await freePorts(2 * ids.length);
      const clientPorts = new Map(ids.map((id, i) => [id, ports[i] as number]));
      const peerPort = (i: number) => ports[ids.length + i] as number;
      const initialCluster = ids.map((id, i) => `${id}=http://127.0.0.1:${peerPort(i)}`).join(',');
      ids.forEach((id, i) => {
        const dir = path.join(opts.baseDir, id);
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        group.spawn(id, { command: opts.bin ?? 'etcd', args: EtcdCluster.memberArgs(id, dir, { client: clientPorts.get(id) as number, peer: peerPort(i) }, initialCluster, opts) });
      });
      const c = new EtcdCluster(group, clientPorts);
      await Promise.all(ids.map((id) => c.waitHealthy(id, opts.healthTimeoutMs ?? 30_000)));
      return c;
    } catch (err) {
      await group.cleanup();
      throw err;
    }
  }

  /** `http://127.0.0.1:port` of the member's client URL. */
  url(id: string): string {
    return `http://127.0.0.1:${this.clientPorts.get(id) ?? 0}`;
  }

  urls(ids: readonly string[] = this.ids()): string[] {
    return ids.map((id) => this.url(id));
  }

  /** Resolves once the member answers `GET /health` with `"health":"true"`. */
  async waitHealthy(id: string, timeoutMs: number): Promise<void> {
    await waitFor(
      `etcd ${id} health`,
      async () => {
        const res = await fetch(`${this.url(id)}/health`, { signal: AbortSignal.timeout(1000) });
        const body = (await res.json()) as { health?: unknown };
        return res.ok && String(body.health) === 'true';
      },
      timeoutMs,
      100,
      () => this.group.running(id),
    );
  }

  /** The member's raft status (member id, leader id, term). */
  async status(id: string, timeoutMs = 1000): Promise<EtcdStatus> {
    const res = await fetch(`${this.url(id)}/v3/maintenance/status`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) throw new Error(`etcd ${id} status: HTTP ${res.status}`);
    const b = (await res.json()) as { header?: { member_id?: string; raft_term?: string }; leader?: string; raftTerm?: string };
    return { memberId: String(b.header?.member_id ?? ''), leaderId: String(b.leader ?? ''), raftTerm: Number(b.raftTerm ?? b.header?.raft_term ?? 0) };
  }

  /**
   * Waits until a running member of `among`, not in `notIn`, is the leader that a majority of
   * running members agree on; resolves with its id.
   */
  async waitForLeader(timeoutMs: number, notIn: readonly string[] = [], intervalMs = 50): Promise<string> {
    return this.pollLeader('etcd leader', timeoutMs, intervalMs, async (running) => {
      const st = await Promise.all(running.map(async (id) => [id, await this.status(id, 500).catch(() => null)] as const));
      const byMember = new Map(st.filter(([, s]) => s !== null).map(([id, s]) => [(s as EtcdStatus).memberId, id]));
      const votes = new Map<string, number>();
      for (const [, s] of st) if (s !== null && s.leaderId !== '0' && s.leaderId !== '') votes.set(s.leaderId, (votes.get(s.leaderId) ?? 0) + 1);
      for (const [leader, n] of votes) {
        const id = byMember.get(leader);
        if (id !== undefined && n >= this.majority() && !notIn.includes(id)) return id;
      }
      return undefined;
    });
  }

  /** Restarts a killed member with its data directory (`--initial-cluster-state new` is ignored once it has data). */
  async restart(id: string, timeoutMs = 30_000): Promise<void> {
    this.group.spawn(id);
    await this.waitHealthy(id, timeoutMs);
  }
}
