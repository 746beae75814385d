/**
 * Seeded, deterministic cluster simulator (TigerBeetle VOPR idea, STYLE.md §2):
 * N replicas of the pure core over a simulated network, simulated disks, clocks
 * with pauses, crashes and restarts. A run is a function of (seed, options);
 * a failure prints the seed and the command that replays it.
 */
import { ENTRY_OVERHEAD_BYTES, describeEntry, describeMessage } from '../../lib/core';
import { type Entry, type Message, type Ready, Replica, isTidemarkErrorLike } from './core-imports';
import { SeededRandom } from '../../lib/core/random';
import { NodeClock } from './clock';
import { Disk } from './disk';
import { InvariantError, Invariants, entryKey } from './invariants';
import { Network } from './network';

export interface SimOptions {
  seed: number;
  /** Steps of the fault phase. */
  steps: number;
  /** 3 or 5; default: from the seed. */
  nodes?: number;
  /** Turn every fault off (baseline). */
  noFaults?: boolean;
  /** Receives a line per event (debugging a seed: `npm run sim -- --seed S --trace`). */
  trace?: (line: string) => void;
  /** Liveness bound after faults stop, in election timeouts. */
  livenessElectionTimeouts?: number;
}

export interface SimResult {
  seed: number;
  nodes: number;
  steps: number;
  ok: boolean;
  error?: string;
  replay: string;
  stats: Record<string, number>;
}

const ELECTION_TICKS = 10;
/** Largest proposal payload the simulated client sends. */
const MAX_PAYLOAD_BYTES = 140;

interface SimNode {
  id: string;
  disk: Disk;
  clock: NodeClock;
  replica: Replica | null;
  /** Role as of the last check (for leader-completeness on transitions). */
  wasLeader: boolean;
  /** State machine: applied index and rolling hash. */
  smIndex: number;
  smHash: number;
  /** Messages held until the write in flight is durable. */
  restartAt: number;
  crashes: number;
}

interface Proposal {
  id: string;
  node: string;
  index: number;
  generation: number;
}

interface PendingReadCheck {
  node: string;
  minIndex: number;
}

function mix(h: number, s: string): number {
  let x = h ^ 0x9e3779b9;
  for (let i = 0; i < s.length; i++) x = Math.imul(x ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return x >>> 0;
}

export function replayCommand(o: SimOptions): string {
  return `npm run sim -- --seed ${o.seed} --steps ${o.steps}${o.nodes !== undefined ? ` --nodes ${o.nodes}` : ''}`;
}

export class Simulator {
  readonly rng: SeededRandom;
  readonly n: number;
  readonly nodes: SimNode[] = [];
  readonly net: Network;
  readonly inv = new Invariants();
  now = 0;
  faultsOn = true;
  private readonly ids: string[];
  private readonly trace: ((line: string) => void) | undefined;
  private proposals = new Map<string, Proposal>();
  private acked = new Map<string, Proposal>();
  private maxAckedIndex = 0;
  private proposalSeq = 0;
  private reads = new Map<string, PendingReadCheck>();
  private readSeq = 0;
  readonly stats: Record<string, number> = {
    proposed: 0,
    refused: 0,
    acked: 0,
    crashes: 0,
    restarts: 0,
    pauses: 0,
    partitions: 0,
    compactions: 0,
    snapshotsInstalled: 0,
    transfers: 0,
    reads: 0,
    readsServed: 0,
    elections: 0,
  };
  // fault mix, drawn from the seed
  private readonly crashRate: number;
  private readonly pauseRate: number;
  private readonly partitionRate: number;
  private readonly diskLatencyMax: number;
  private readonly proposeRate: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  /** Replica bounds drawn per seed, so flow control and batching are exercised at many sizes. */
  private readonly bounds: { heartbeatTicks: number; maxAppendBytes: number; maxInflightAppends: number; maxInflightBytes: number; maxUncommittedBytes: number; snapshotChunkBytes: number };

  constructor(readonly options: SimOptions) {
    this.rng = new SeededRandom(options.seed);
    this.trace = options.trace;
    const rng = this.rng;
    this.n = options.nodes ?? (options.seed % 2 === 0 ? 3 : 5);
    this.ids = Array.from({ length: this.n }, (_, i) => `n${i + 1}`);
    const quiet = options.noFaults === true;
    this.net = new Network(rng, {
      dropRate: quiet ? 0 : [0, 0.01, 0.05, 0.2][rng.int(4)] as number,
      duplicateRate: quiet ? 0 : [0, 0.02, 0.1][rng.int(3)] as number,
      maxDelaySteps: 1 + rng.int(quiet ? 3 : 8),
    });
    this.crashRate = quiet ? 0 : [0.002, 0.01, 0.03][rng.int(3)] as number;
    this.pauseRate = quiet ? 0 : [0, 0.005, 0.02][rng.int(3)] as number;
    this.partitionRate = quiet ? 0 : [0.003, 0.01, 0.03][rng.int(3)] as number;
    this.diskLatencyMax = [0, 3, 8][rng.int(3)] as number;
    this.proposeRate = [0.05, 0.2, 0.5][rng.int(3)] as number;
    this.bounds = {
      heartbeatTicks: 1 + rng.int(3),
      maxAppendBytes: [1, 200, 2000][rng.int(3)] as number,
      maxInflightAppends: [1, 4, 32][rng.int(3)] as number,
      maxInflightBytes: [300, 1000, 100_000][rng.int(3)] as number,
      maxUncommittedBytes: [500, 4000, 1 << 20][rng.int(3)] as number,
      snapshotChunkBytes: [16, 64, 4096][rng.int(3)] as number,
    };
    this.preVote = rng.int(4) !== 0;
    this.checkQuorum = rng.int(4) !== 0;
    for (const id of this.ids) {
      const node: SimNode = {
        id,
        disk: new Disk(rng),
        clock: new NodeClock(4 + rng.int(3), 0),
        replica: null,
        wasLeader: false,
        smIndex: 0,
        smHash: 0,
        restartAt: -1,
        crashes: 0,
      };
      (node.clock as { phase: number }).phase = rng.int(node.clock.periodSteps);
      this.nodes.push(node);
      this.start(node);
    }
  }

  private start(node: SimNode): void {
    const snap = node.disk.log.snapshot();
    node.smIndex = snap === null ? 0 : snap.meta.index;
    node.smHash = snap === null ? 0 : decodeSnapshot(snap.data).hash;
    node.replica = new Replica({
      id: node.id,
      voters: this.ids,
      clusterId: 'sim',
      log: node.disk.log,
      random: new SeededRandom(this.rng.nextU32()),
      electionTimeoutTicks: ELECTION_TICKS,
      preVote: this.preVote,
      checkQuorum: this.checkQuorum,
      ...this.bounds,
    });
    node.wasLeader = false;
    this.inv.restarted(node.id, node.replica.commit);
  }

  /** Runs fault phase then liveness phase; never throws. */
  run(): SimResult {
    const replay = replayCommand(this.options);
    try {
      for (let i = 0; i < this.options.steps; i++) this.step();
      this.liveness();
      return { seed: this.options.seed, nodes: this.n, steps: this.options.steps, ok: true, replay, stats: this.collectStats() };
    } catch (e) {
      const err = e as Error;
      return {
        seed: this.options.seed,
        nodes: this.n,
        steps: this.options.steps,
        ok: false,
        error: `step ${this.now}: ${err.stack ?? err.message}`,
        replay,
        stats: this.collectStats(),
      };
    }
  }

  private collectStats(): Record<string, number> {
    return { ...this.stats, messages: this.net.sent, dropped: this.net.dropped, duplicated: this.net.duplicated };
  }

  step(): void {
    this.now++;
    const now = this.now;
    if (this.faultsOn) this.injectFaults();
    // restarts
    for (const node of this.nodes) {
      if (node.replica === null && node.restartAt >= 0 && node.restartAt <= now) {
        node.restartAt = -1;
        this.stats.restarts = (this.stats.restarts ?? 0) + 1;
        this.start(node);
      }
    }
    // network
    for (const m of this.net.take(now)) {
      const node = this.nodeById(m.to);
      if (node.replica === null) continue;
      if (node.clock.isPaused(now)) {
        this.net.enqueue(m, node.clock.pausedUntil);
        continue;
      }
      this.trace?.(`${now} deliver ${describeMessage(m)}`);
      node.replica.step(m);
    }
    for (const node of this.nodes) {
      const r = node.replica;
      if (r === null || node.clock.isPaused(now)) continue;
      // disk completions
      const done = node.disk.completeIfDue(now);
      if (done !== null) this.afterPersist(node, r, done);
      if (node.clock.ticksAt(now)) r.tick();
    }
    if (this.faultsOn) this.client();
    for (const node of this.nodes) {
      const r = node.replica;
      if (r === null || node.clock.isPaused(now)) continue;
      this.handleReady(node, r);
    }
    this.checkInvariants();
  }

  private handleReady(node: SimNode, r: Replica): void {
    // Loop while writes complete at once (zero latency); bounded.
    for (let k = 0; k < 8; k++) {
      if (node.disk.pending !== null) return;
      const rd = r.ready();
      if (rd === null) return;
      for (const m of rd.messages) this.net.send(m, this.now);
      const latency = this.diskLatencyMax === 0 ? 0 : this.rng.int(this.diskLatencyMax + 1);
      node.disk.submit(rd, this.now + latency);
      if (latency > 0) return;
      const done = node.disk.completeIfDue(this.now);
      if (done === null) return;
      this.afterPersist(node, r, done);
    }
  }

  /** The write is durable: check what was written, send what waited for it, apply, advance. */
  private afterPersist(node: SimNode, r: Replica, rd: Ready): void {
    const p = rd.persist;
    if (this.trace !== undefined) {
      const hs = p.hardState;
      this.trace(
        `${this.now} ${node.id} durable${p.snapshot !== null ? ` snapshot@${p.snapshot.meta.index}` : ''}${p.entries.length > 0 ? ` entries ${p.entries.map(describeEntry).join(',')}` : ''}${hs !== null ? ` hs g${hs.generation} vote=${hs.votedFor} commit=${hs.commit}` : ''}${rd.committedEntries.length > 0 ? ` apply ${rd.committedEntries[0]?.index}..${rd.committedEntries[rd.committedEntries.length - 1]?.index}` : ''} role=${rd.softState.role}`,
      );
    }
    if (p.snapshot !== null) {
      const { hash } = decodeSnapshot(p.snapshot.data);
      this.inv.checkSnapshot(node.id, p.snapshot.meta.index, hash);
      node.smIndex = p.snapshot.meta.index;
      node.smHash = hash;
      this.stats.snapshotsInstalled = (this.stats.snapshotsInstalled ?? 0) + 1;
    }
    const first = p.entries[0];
    if (first !== undefined) {
      const prevGen = node.disk.log.generationAt(first.index - 1);
      if (prevGen !== undefined) this.inv.checkWritten(node.id, p.entries, prevGen);
    }
    for (const m of rd.messagesAfterPersist) this.net.send(m, this.now);
    for (const e of rd.committedEntries) this.apply(node, e);
    for (const rs of rd.readStates) {
      const check = this.reads.get(rs.ctx);
      if (check === undefined) continue;
      this.reads.delete(rs.ctx);
      if (rs.index === null) continue;
      this.stats.readsServed = (this.stats.readsServed ?? 0) + 1;
      if (rs.index < check.minIndex) {
        throw new InvariantError('linearizable read index', `read ${rs.ctx} on ${node.id} served at ${rs.index} < acknowledged ${check.minIndex}`);
      }
    }
    r.advance(rd);
  }

  private apply(node: SimNode, e: Entry): void {
    if (e.index !== node.smIndex + 1) {
      throw new InvariantError('apply in order', `${node.id} applies ${e.index} after ${node.smIndex}`);
    }
    const key = entryKey(e);
    node.smIndex = e.index;
    node.smHash = mix(node.smHash, key);
    this.inv.checkApplied(node.id, e, node.smHash);
    if (e.kind === 'normal') {
      const id = String.fromCharCode(...e.data);
      const p = this.proposals.get(id);
      // The proposer learns its command committed when it applies it at the promised position.
      if (p !== undefined && p.node === node.id && p.index === e.index && p.generation === e.generation) {
        this.acked.set(id, p);
        this.proposals.delete(id);
        this.stats.acked = (this.stats.acked ?? 0) + 1;
        if (p.index > this.maxAckedIndex) this.maxAckedIndex = p.index;
      }
    }
  }

  private client(): void {
    if (!this.rng.chance(this.proposeRate)) return;
    const leaders = this.nodes.filter((n) => n.replica !== null && n.replica.role === 'leader' && !n.clock.isPaused(this.now));
    const target =
      leaders.length > 0 && this.rng.chance(0.9)
        ? (leaders[this.rng.int(leaders.length)] as SimNode)
        : (this.nodes[this.rng.int(this.nodes.length)] as SimNode);
    const r = target.replica;
    if (r === null || target.clock.isPaused(this.now)) return;
    if (this.rng.chance(0.1)) {
      const ctx = `read${++this.readSeq}`;
      try {
        r.readIndex(ctx);
        this.reads.set(ctx, { node: target.id, minIndex: this.maxAckedIndex });
        this.stats.reads = (this.stats.reads ?? 0) + 1;
      } catch (e) {
        if (!isTidemarkErrorLike(e)) throw e;
      }
      return;
    }
    const id = `p${++this.proposalSeq}`;
    const size = this.rng.int(MAX_PAYLOAD_BYTES - 20);
    const payload = id.padEnd(id.length + size, '.');
    try {
      const at = r.propose(ascii(payload));
      this.proposals.set(payload, { id: payload, node: target.id, index: at.index, generation: at.generation });
      this.stats.proposed = (this.stats.proposed ?? 0) + 1;
    } catch (e) {
      if (!isTidemarkErrorLike(e)) throw e;
      this.stats.refused = (this.stats.refused ?? 0) + 1;
    }
  }

  private injectFaults(): void {
    const rng = this.rng;
    const now = this.now;
    if (rng.chance(this.crashRate)) this.crash(this.nodes[rng.int(this.n)] as SimNode);
    // Crash at the worst moment: a vote or new entries written but not yet synced.
    for (const node of this.nodes) {
      const w = node.disk.pending;
      if (w !== null && (w.ready.messagesAfterPersist.length > 0 || w.ready.persist.entries.length > 0 || w.ready.persist.hardState !== null) && rng.chance(this.crashRate * 5)) {
        this.crash(node);
      }
    }
    if (rng.chance(this.pauseRate)) {
      const node = this.nodes[rng.int(this.n)] as SimNode;
      if (node.replica !== null && !node.clock.isPaused(now)) {
        node.clock.pause(now, 10 + rng.int(150));
        this.stats.pauses = (this.stats.pauses ?? 0) + 1;
      }
    }
    if (rng.chance(this.partitionRate)) {
      if (this.net.partitioned && rng.chance(0.5)) {
        this.net.heal();
      } else {
        this.stats.partitions = (this.stats.partitions ?? 0) + 1;
        const kind = rng.int(3);
        if (kind === 0) {
          // isolate one node
          const a = this.ids[rng.int(this.n)] as string;
          for (const b of this.ids) if (b !== a) {
            this.net.cut(a, b);
            this.net.cut(b, a);
          }
        } else if (kind === 1) {
          // random split into two sides
          const side = new Map(this.ids.map((id) => [id, rng.chance(0.5)]));
          for (const a of this.ids) for (const b of this.ids) if (side.get(a) !== side.get(b)) this.net.cut(a, b);
        } else {
          // one-way: a cannot reach b
          const a = this.ids[rng.int(this.n)] as string;
          const b = this.ids[rng.int(this.n)] as string;
          if (a !== b) this.net.cut(a, b);
        }
      }
    }
    if (rng.chance(0.01)) {
      const node = this.nodes[rng.int(this.n)] as SimNode;
      const r = node.replica;
      if (r !== null && node.smIndex > node.disk.log.firstIndex() && node.disk.pending === null) {
        node.disk.log.compact(node.smIndex, encodeSnapshot(node.smIndex, node.smHash, rng.int(300)));
        this.stats.compactions = (this.stats.compactions ?? 0) + 1;
      }
    }
    if (rng.chance(0.005)) this.forgedMessage();
    if (rng.chance(0.002)) {
      const leader = this.nodes.find((n) => n.replica !== null && n.replica.role === 'leader');
      if (leader !== undefined) {
        const to = this.ids[rng.int(this.n)] as string;
        leader.replica?.transferLeadership(to);
        this.stats.transfers = (this.stats.transfers ?? 0) + 1;
      }
    }
  }

  /** Messages of another cluster or an unknown peer must be ignored without effect. */
  private forgedMessage(): void {
    const node = this.nodes[this.rng.int(this.n)] as SimNode;
    const r = node.replica;
    if (r === null) return;
    const otherCluster = this.rng.chance(0.5);
    const m: Message = {
      type: 'heartbeat',
      from: otherCluster ? (this.ids[0] === node.id ? (this.ids[1] as string) : (this.ids[0] as string)) : 'intruder',
      to: node.id,
      clusterId: otherCluster ? 'other-cluster' : 'sim',
      generation: r.generation + 100,
      commit: 1_000_000,
      readRound: 0,
    };
    const before = `${r.role}/${r.generation}/${r.commit}`;
    const outcome = r.step(m);
    const after = `${r.role}/${r.generation}/${r.commit}`;
    if (outcome === 'handled' || before !== after) {
      throw new InvariantError('foreign messages are ignored', `${node.id}: ${outcome}, ${before} -> ${after}`);
    }
    this.stats.forged = (this.stats.forged ?? 0) + 1;
  }

  private crash(node: SimNode): void {
    if (node.replica === null) return;
    node.replica = null;
    node.disk.crash();
    this.trace?.(`${this.now} ${node.id} CRASH durable last=${node.disk.log.lastIndex()} g=${node.disk.log.hardState().generation} vote=${node.disk.log.hardState().votedFor}`);
    node.clock.resume();
    // Half the restarts are quick (a supervisor restarts the process), half slow.
    node.restartAt = this.now + 1 + (this.rng.chance(0.5) ? this.rng.int(4) : this.rng.int(60));
    node.crashes++;
    this.stats.crashes = (this.stats.crashes ?? 0) + 1;
  }

  private checkInvariants(): void {
    for (const node of this.nodes) {
      const r = node.replica;
      if (r === null) continue;
      this.inv.checkCommit(node.id, r);
      const isLeader = r.role === 'leader';
      if (isLeader && !node.wasLeader) this.stats.elections = (this.stats.elections ?? 0) + 1;
      this.inv.checkLeader(node.id, r, node.wasLeader);
      if (isLeader !== node.wasLeader) this.trace?.(`${this.now} ${node.id} ${isLeader ? 'LEADS' : 'stops leading'} g${r.generation} last=${r.lastIndex} commit=${r.commit}`);
      node.wasLeader = isLeader;
      if (isLeader && this.now % 10 === 0) this.checkFlowControl(node.id, r);
    }
  }

  /** Request Pipeline bounds: a slow follower cannot make the leader's memory grow without bound. */
  private checkFlowControl(id: string, r: Replica): void {
    const st = r.status();
    const b = this.bounds;
    const largestMessage = Math.max(b.maxAppendBytes, MAX_PAYLOAD_BYTES + ENTRY_OVERHEAD_BYTES);
    for (const p of st.peers) {
      if (p.inflightAppends > b.maxInflightAppends) {
        throw new InvariantError('bounded in-flight window', `${id} has ${p.inflightAppends} appends in flight to ${p.id} (max ${b.maxInflightAppends})`);
      }
      if (p.inflightBytes >= b.maxInflightBytes + largestMessage) {
        throw new InvariantError('bounded in-flight window', `${id} has ${p.inflightBytes} bytes in flight to ${p.id}`);
      }
    }
    if (st.uncommittedBytes > Math.max(b.maxUncommittedBytes, MAX_PAYLOAD_BYTES)) {
      throw new InvariantError('bounded uncommitted bytes', `${id} holds ${st.uncommittedBytes} uncommitted bytes`);
    }
  }

  /** Faults stop; a leader must emerge and everything acknowledged must reach every node. */
  private liveness(): void {
    this.faultsOn = false;
    this.net.heal();
    this.net.faults = { dropRate: 0, duplicateRate: 0, maxDelaySteps: this.net.faults.maxDelaySteps };
    for (const node of this.nodes) {
      node.clock.resume();
      if (node.replica === null) node.restartAt = this.now + 1;
    }
    const periodMax = 6;
    // Bound: time to elect a leader, plus a backlog allowance of one round trip (network both
    // ways plus a sync) per entry still to replicate, since a seed may run with one entry per
    // append and one append in flight.
    let backlog = 0;
    const lastMax = Math.max(...this.nodes.map((n) => n.disk.log.lastIndex()));
    const commitMin = Math.min(...this.nodes.map((n) => n.smIndex));
    backlog = Math.max(0, lastMax - commitMin);
    const perEntry = 2 * (this.net.faults.maxDelaySteps + this.diskLatencyMax + 1);
    const bound = (this.options.livenessElectionTimeouts ?? 30) * ELECTION_TICKS * periodMax + backlog * perEntry;
    this.stats.livenessBound = bound;
    const deadline = this.now + bound;
    let probe: Proposal | null = null;
    while (this.now < deadline) {
      this.step();
      const leader = this.nodes.find((n) => n.replica !== null && n.replica.role === 'leader');
      if (leader === undefined || leader.replica === null) continue;
      if (probe === null || (!this.acked.has(probe.id) && !this.proposals.has(probe.id))) {
        try {
          const id = `live${this.now}`;
          const at = leader.replica.propose(ascii(id));
          probe = { id, node: leader.id, index: at.index, generation: at.generation };
          this.proposals.set(id, probe);
        } catch (e) {
          if (!isTidemarkErrorLike(e)) throw e;
        }
        continue;
      }
      if (!this.acked.has(probe.id)) {
        // The leader changed before committing the probe: propose again on the new leader.
        if (leader.id !== probe.node || leader.replica.generation !== probe.generation) {
          this.proposals.delete(probe.id);
          probe = null;
        }
        continue;
      }
      const target = Math.max(probe.index, this.maxAckedIndex);
      if (this.nodes.every((n) => n.replica !== null && n.smIndex >= target)) {
        this.stats.livenessSteps = this.now - (deadline - bound);
        this.stats.livenessPermille = Math.round((1000 * this.stats.livenessSteps) / bound);
        this.finalCheck();
        return;
      }
    }
    const view = this.nodes
      .map((n) => (n.replica === null ? `${n.id}:down` : `${n.id}:${n.replica.role}/g${n.replica.generation}/c${n.replica.commit}/a${n.smIndex}/l${n.replica.lastIndex}`))
      .join(' ');
    throw new InvariantError('liveness', `no leader committed a fresh proposal on every node within ${bound} steps (backlog ${backlog}) after faults stopped: ${view}`);
  }

  /** Every acknowledged proposal is applied on every node, at the acknowledged index. */
  private finalCheck(): void {
    for (const p of this.acked.values()) {
      const key = this.inv.applied.get(p.index);
      if (key !== `${p.generation}/${p.id}`) {
        throw new InvariantError('no acknowledged command lost', `${p.id} acknowledged at ${p.index}/${p.generation}, applied there: ${key}`);
      }
      for (const n of this.nodes) {
        if (n.smIndex < p.index) throw new InvariantError('no acknowledged command lost', `${n.id} applied only to ${n.smIndex} < ${p.index}`);
      }
    }
  }

  private nodeById(id: string): SimNode {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`unknown node ${id}`);
    return n;
  }
}

function ascii(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Snapshot bytes: index (4), hash (4), then padding so transfers take several chunks. */
export function encodeSnapshot(index: number, hash: number, padding: number): Uint8Array {
  const b = new Uint8Array(8 + padding);
  const v = new DataView(b.buffer);
  v.setUint32(0, index);
  v.setUint32(4, hash);
  return b;
}
export function decodeSnapshot(data: Uint8Array): { index: number; hash: number } {
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { index: v.getUint32(0), hash: v.getUint32(4) };
}

