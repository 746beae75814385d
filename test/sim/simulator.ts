/**
 * Seeded, deterministic cluster simulator (TigerBeetle VOPR idea, STYLE.md §2):
 * N replicas of the pure core over a simulated network, simulated disks, clocks
 * with pauses, crashes and restarts, and KV clients whose history is checked for
 * linearizability. A run is a function of (seed, options); a failure prints the
 * seed and the command that replays it. Each seed runs one fault schedule (see
 * {@link SCHEDULES} and README.md).
 */
import { ENTRY_OVERHEAD_BYTES, type Message, describeEntry, describeMessage } from '../../lib/core';
import { type Entry, type Ready, Replica, isTidemarkErrorLike } from './core-imports';
import { SeededRandom } from '../../lib/core/random';
import { checkLinearizable } from '../lin/checker';
import { NodeClock } from './clock';
import { Disk, type SimStorage } from './disk';
import { InvariantError, Invariants, entryKey } from './invariants';
import { History, type HistoryOp, KvState, decodeCommand, decodeSnapshot, encodeCommand, encodeSnapshot } from './kv';
import { Network } from './network';

/**
 * Fault schedules. `random` is the broad mix; the others aim at the windows where Raft
 * implementations break, or check availability properties in a controlled setting.
 */
export const SCHEDULES = [
  'random',
  'stale-acks',
  'crash-before-persist',
  'one-entry-appends',
  'partition-election',
  'paused-leader',
  'stale-messages',
  'slow-disk',
  'rejoin',
  'transfer',
] as const;
export type Schedule = (typeof SCHEDULES)[number];

export interface SimOptions {
  seed: number;
  /** Steps of the fault phase. */
  steps: number;
  /** 3 or 5; default: from the seed. */
  nodes?: number;
  /** Default: SCHEDULES[seed % SCHEDULES.length]. */
  schedule?: Schedule;
  /** Turn every fault off (baseline). */
  noFaults?: boolean;
  /** Receives a line per event (debugging a seed: `npm run sim -- --seed S --trace`). */
  trace?: (line: string) => void;
  /** Durable storage of each node (default: a MemoryLog); see wal-mirror.ts for the native-Wal mode. */
  storage?: (id: string) => SimStorage;
  /** Liveness bound after faults stop, in election timeouts. */
  livenessElectionTimeouts?: number;
}

export interface SimResult {
  seed: number;
  nodes: number;
  steps: number;
  schedule: Schedule;
  ok: boolean;
  error?: string;
  replay: string;
  stats: Record<string, number>;
}

const ELECTION_TICKS = 10;
/** Largest proposal payload the simulated client sends. */
const MAX_PAYLOAD_BYTES = 140;
const KEYS = ['a', 'b', 'c', 'd'];
/** Client operations queued for a paused node at most. */
const MAX_QUEUED = 20;
/**
 * Client processes: each has at most one operation outstanding (as Jepsen's processes), so
 * the history's concurrency stays bounded; one that waits longer than the timeout gives up,
 * leaving that operation's outcome unknown, and moves on.
 */
const CLIENTS = 10;
const CLIENT_TIMEOUT_STEPS = 100;

interface SimNode {
  id: string;
  disk: Disk;
  clock: NodeClock;
  replica: Replica | null;
  /** Role as of the last check (for leader-completeness on transitions). */
  wasLeader: boolean;
  /** (role, generation) as of the last check, for replays after a change. */
  lastRoleGen: string;
  /** State machine: applied index, rolling hash, the map. */
  smIndex: number;
  smHash: number;
  kv: KvState;
  restartAt: number;
  crashes: number;
  /** Ticks this incarnation has taken. */
  ticks: number;
  /** Tick at which it last became leader. */
  leaderSinceTick: number;
  /** Leader: peer → its tick when a response of its generation from that peer was last delivered. */
  heardAt: Map<string, number>;
  /** Linearizable reads this node accepted (readIndex did not throw) and has not answered. */
  acceptedReads: Set<string>;
  /** Reads answered with an index, waiting for the state machine to reach it. */
  waitingReads: Array<{ ctx: string; index: number }>;
  /** Messages held during the pause ending at `heldFor`, in arrival order. */
  heldFor: number;
  heldCount: number;
  /** Client operations that arrived while it was paused (run when it resumes, before its network). */
  queued: Array<(refuse?: boolean) => void>;
  /** Step of its last Ready that sent heartbeats. */
  heartbeatAt: number;
}

interface Proposal {
  id: string;
  payload: string;
  node: string;
  index: number;
  generation: number;
  hist: HistoryOp;
}

interface ReadCheck {
  node: string;
  minIndex: number;
  key: string;
  hist: HistoryOp;
}

/**
 * `stale-acks` schedule, one round: a five-node leader L and a mate are cut off as a minority while
 * clients keep writing to L (the mate acknowledges L's tail, which cannot commit); the majority
 * elects M; the heal truncates L's and the mate's tails; M hands leadership back to L; L writes past
 * the old tail; then the mate's highest acknowledgement from L's first leadership arrives, late, while
 * L's appends to the mate and to one more follower are cut (so only L and one follower can hold the
 * new entries). A correct leader ignores a response of an older generation; one that counts it
 * commits an entry only two of five hold.
 */
interface StaleAckRound {
  phase: 'cut' | 'healed' | 'transferring' | 'leading' | 'delivered';
  leader: string;
  mate: string;
  generation: number;
  ack: Message | null;
  /** Step at which the current phase gives up (or, once delivered, heals). */
  until: number;
}

interface Transfer {
  from: string;
  to: string;
  generation: number;
  startTick: number;
  elections: number;
}

function mix(h: number, s: string): number {
  let x = h ^ 0x9e3779b9;
  for (let i = 0; i < s.length; i++) x = Math.imul(x ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return x >>> 0;
}

export function replayCommand(o: SimOptions): string {
  return `npm run sim -- --seed ${o.seed} --steps ${o.steps}${o.nodes !== undefined ? ` --nodes ${o.nodes}` : ''}`;
}

export function scheduleOf(seed: number): Schedule {
  return SCHEDULES[seed % SCHEDULES.length] as Schedule;
}

export class Simulator {
  readonly rng: SeededRandom;
  readonly n: number;
  readonly schedule: Schedule;
  readonly nodes: SimNode[] = [];
  readonly net: Network;
  readonly inv = new Invariants();
  readonly history = new History();
  now = 0;
  faultsOn = true;
  private readonly ids: string[];
  private readonly trace: ((line: string) => void) | undefined;
  private proposals = new Map<string, Proposal>();
  private acked = new Map<string, Proposal>();
  private maxAckedIndex = 0;
  private proposalSeq = 0;
  private reads = new Map<string, ReadCheck>();
  private readSeq = 0;
  private valueSeq = 0;
  /** Per client process: its outstanding operation and since when. */
  private readonly clients: Array<{ busy: HistoryOp | null; since: number }> = Array.from({ length: CLIENTS }, () => ({ busy: null, since: 0 }));
  readonly stats: Record<string, number> = {
    proposed: 0,
    refused: 0,
    acked: 0,
    crashes: 0,
    crashesAfterSend: 0,
    restarts: 0,
    pauses: 0,
    queuedWhilePaused: 0,
    partitions: 0,
    compactions: 0,
    snapshotsInstalled: 0,
    transfers: 0,
    transfersCompleted: 0,
    reads: 0,
    readsServed: 0,
    readsLocal: 0,
    elections: 0,
    stepDowns: 0,
  };
  // fault mix, drawn from the seed and the schedule
  private readonly crashRate: number;
  private readonly pauseRate: number;
  private readonly partitionRate: number;
  private readonly diskLatencyMax: number;
  private readonly proposeRate: number;
  private readonly replayRate: number;
  private readonly crashAfterSendRate: number;
  private readonly transferRate: number;
  private readonly retransmitRate: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  /** Replica bounds drawn per seed, so flow control and batching are exercised at many sizes. */
  private readonly bounds: { heartbeatTicks: number; maxAppendBytes: number; maxInflightAppends: number; maxInflightBytes: number; maxUncommittedBytes: number; snapshotChunkBytes: number };
  /** rejoin schedule: the leader that must not be deposed. */
  private stableLeader: { id: string; generation: number } | null = null;
  private transfer: Transfer | null = null;
  private staleAck: StaleAckRound | null = null;
  /**
   * paused-leader: the paused leader (its commit when paused, and the step it resumes). Once a successor
   * acknowledged a write, clients whose leader cache still names it send it their reads.
   */
  private deposed: { id: string; commit: number; until: number } | null = null;
  /** Clients send to this node when it is up (the stale-acks schedule's old leader). */
  private favoured: string | null = null;
  /**
   * partition-election: the nodes cut off with the old leader, healed at `from`; until `until` the leader
   * retransmits to them (from low in its log: they may still hold the old leader's tail beyond entries that match).
   */
  private rejoined: { ids: string[]; from: number; until: number } | null = null;
  private nextScheduledFault = 0;
  /** rejoin: client writes pause in [quietFrom, quietUntil), so the cut-off node's log is up to date. */
  private quietFrom = Number.POSITIVE_INFINITY;
  private quietUntil = -1;

  constructor(readonly options: SimOptions) {
    this.rng = new SeededRandom(options.seed);
    this.trace = options.trace;
    this.history.onSettled = (h) => {
      for (const c of this.clients) if (c.busy === h) c.busy = null;
    };
    const rng = this.rng;
    this.schedule = options.schedule ?? scheduleOf(options.seed);
    // stale-acks needs a leader with a minority that can acknowledge its tail: five nodes.
    this.n = options.nodes ?? (this.schedule === 'stale-acks' || Math.floor(options.seed / SCHEDULES.length) % 2 === 1 ? 5 : 3);
    this.inv.quorum = Math.floor(this.n / 2) + 1;
    this.ids = Array.from({ length: this.n }, (_, i) => `n${i + 1}`);
    const quiet = options.noFaults === true;
    const sch = this.schedule;
    const controlled = sch === 'rejoin' || sch === 'transfer' || quiet;
    this.net = new Network(rng, {
      dropRate: controlled ? 0 : ([0, 0.01, 0.05, 0.2][rng.int(4)] as number),
      duplicateRate: controlled ? 0 : sch === 'stale-messages' ? 0.1 : ([0, 0.02, 0.1][rng.int(3)] as number),
      maxDelaySteps: 1 + rng.int(controlled ? 3 : 8),
      longDelayRate: controlled ? 0 : sch === 'stale-messages' ? ([0.05, 0.1, 0.15][rng.int(3)] as number) : ([0, 0.005, 0.02][rng.int(3)] as number),
      maxLongDelaySteps: 400,
      splitRate: controlled ? 0 : sch === 'stale-messages' ? 0.2 : ([0, 0.02, 0.1][rng.int(3)] as number),
    });
    // paused-leader: crashes rare enough that most pauses depose a leader that stays up (a crash ends its stale view).
    this.crashRate = controlled
      ? 0
      : sch === 'slow-disk'
      ? 0.01
      : sch === 'stale-acks'
      ? 0.001
      : ((sch === 'paused-leader' ? [0.0002, 0.0005, 0.001] : sch === 'partition-election' ? [0.0005, 0.001, 0.003] : [0.002, 0.01, 0.03])[rng.int(3)] as number);
    this.pauseRate = controlled || sch === 'paused-leader' || sch === 'stale-acks' ? 0 : ([0, 0.005, 0.02][rng.int(3)] as number);
    // The targeted cuts of these schedules are their own; random cuts and heals would undo them.
    // paused-leader: its pauses are what deposes leaders; a random cut (lasting hundreds of steps) would keep the others from electing one.
    this.partitionRate = controlled || sch === 'partition-election' || sch === 'stale-acks' || sch === 'paused-leader' ? 0 : ([0.003, 0.01, 0.03][rng.int(3)] as number);
    this.diskLatencyMax = sch === 'slow-disk' ? 40 : sch === 'crash-before-persist' ? 2 + rng.int(6) : ([0, 3, 8][rng.int(3)] as number);
    this.proposeRate = sch === 'stale-acks' ? 0.5 : ([0.05, 0.2, 0.5][rng.int(3)] as number);
    this.replayRate = controlled ? 0 : sch === 'stale-messages' ? 0.8 : ([0, 0.1, 0.3][rng.int(3)] as number);
    this.crashAfterSendRate = sch === 'crash-before-persist' ? 0.15 : 0;
    this.transferRate = controlled || sch === 'stale-acks' ? 0 : 0.002;
    this.retransmitRate = controlled ? 0 : sch === 'stale-messages' || sch === 'partition-election' ? 0.15 : ([0, 0.02, 0.1][rng.int(3)] as number);
    this.bounds = {
      heartbeatTicks: 1 + rng.int(3),
      maxAppendBytes: sch === 'one-entry-appends' ? 1 : ([1, 200, 2000][rng.int(3)] as number),
      maxInflightAppends: sch === 'one-entry-appends' ? 1 + rng.int(2) : ([1, 4, 32][rng.int(3)] as number),
      maxInflightBytes: [300, 1000, 100_000][rng.int(3)] as number,
      maxUncommittedBytes: [500, 4000, 1 << 20][rng.int(3)] as number,
      snapshotChunkBytes: [16, 64, 4096][rng.int(3)] as number,
    };
    const forced = sch === 'rejoin' || sch === 'partition-election';
    this.preVote = forced || rng.int(4) !== 0;
    this.checkQuorum = forced || rng.int(4) !== 0;
    for (const id of this.ids) {
      const node: SimNode = {
        id,
        disk: new Disk(rng, options.storage?.(id)),
        clock: new NodeClock(4 + rng.int(3), 0),
        replica: null,
        wasLeader: false,
        lastRoleGen: '',
        smIndex: 0,
        smHash: 0,
        kv: new KvState(),
        restartAt: -1,
        crashes: 0,
        ticks: 0,
        leaderSinceTick: 0,
        heardAt: new Map(),
        acceptedReads: new Set(),
        waitingReads: [],
        heldFor: -1,
        heldCount: 0,
        queued: [],
        heartbeatAt: -1,
      };
      (node.clock as { phase: number }).phase = rng.int(node.clock.periodSteps);
      this.nodes.push(node);
      this.start(node);
    }
  }

  private start(node: SimNode): void {
    const snap = node.disk.log.snapshot();
    if (snap === null) {
      node.smIndex = 0;
      node.smHash = 0;
      node.kv = new KvState();
    } else {
      const d = decodeSnapshot(snap.data);
      node.smIndex = snap.meta.index;
      node.smHash = d.hash;
      node.kv = d.state;
    }
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
    node.ticks = 0;
    node.heardAt.clear();
    this.inv.restarted(node.id, node.replica.commit);
  }

  /** Runs fault phase then liveness phase; never throws. */
  run(): SimResult {
    try {
      for (let i = 0; i < this.options.steps; i++) this.step();
      return this.finish();
    } catch (e) {
      return this.failed(e);
    }
  }

  /**
   * {@link run} for storages that work asynchronously (the native-Wal mode, wal-mirror.ts):
   * after every step of the fault phase, `settle()` may return a promise (a crashed node's
   * power loss and reopen) that is awaited before the next step. The steps themselves stay
   * synchronous, so the history is the same function of the seed as long as what `settle`
   * does depends only on the steps before it. Never throws.
   */
  async runAsync(settle: () => Promise<void> | undefined): Promise<SimResult> {
    try {
      for (let i = 0; i < this.options.steps; i++) {
        this.step();
        const p = settle();
        if (p !== undefined) await p;
      }
      return this.finish();
    } catch (e) {
      return this.failed(e);
    }
  }

  private base(): Omit<SimResult, 'ok' | 'stats'> {
    return { seed: this.options.seed, nodes: this.n, steps: this.options.steps, schedule: this.schedule, replay: replayCommand(this.options) };
  }

  /** Liveness phase (no crashes: the storages need no settling) and the history check. */
  private finish(): SimResult {
    this.liveness();
    this.checkHistory();
    return { ...this.base(), ok: true, stats: this.collectStats() };
  }

  private failed(e: unknown): SimResult {
    const err = e as Error;
    return { ...this.base(), ok: false, error: `step ${this.now} (schedule ${this.schedule}): ${err.stack ?? err.message}`, stats: this.collectStats() };
  }

  private collectStats(): Record<string, number> {
    const n = this.net;
    return { ...this.stats, messages: n.sent, dropped: n.dropped, duplicated: n.duplicated, delayedLong: n.delayedLong, heldAtCut: n.heldAtCut, replayed: n.replayed, split: n.split };
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
    // A node back from a pause serves the clients' requests that waited for it before anything
    // its network held: it acts on its stale view first.
    for (const node of this.nodes) {
      if (node.queued.length > 0 && node.replica !== null && !node.clock.isPaused(now)) {
        const q = node.queued.splice(0);
        for (const f of q) f();
      }
    }
    // network
    for (const m of this.net.take(now)) {
      const node = this.nodeById(m.to);
      const r = node.replica;
      if (r === null) continue;
      if (node.clock.isPaused(now)) {
        // Held for the paused node (its socket buffers) and read in arrival order once it resumes, two
        // a step: it first acts on its stale view (the clients' queued requests, one Ready), then
        // hears, oldest first, what happened meanwhile.
        if (node.heldFor !== node.clock.pausedUntil) {
          node.heldFor = node.clock.pausedUntil;
          node.heldCount = 0;
        }
        this.net.enqueue(m, node.clock.pausedUntil + 1 + Math.floor(node.heldCount++ / 2));
        continue;
      }
      this.trace?.(`${now} deliver ${describeMessage(m)}`);
      if (r.role === 'leader' && m.generation === r.generation && (m.type === 'append-response' || m.type === 'heartbeat-response' || m.type === 'snapshot-response')) {
        node.heardAt.set(m.from, node.ticks);
      }
      this.net.delivered(m);
      const sa = this.staleAck;
      if (sa !== null && sa.phase === 'cut' && m.to === sa.leader && m.from === sa.mate && m.type === 'append-response' && m.success && m.generation === sa.generation && (sa.ack === null || (sa.ack.type === 'append-response' && m.index > sa.ack.index))) {
        sa.ack = m;
      }
      const outcome = r.step(m);
      // The generation rule (Raft Fig. 2, all servers): a handled request or response of a higher
      // generation moves the receiver to it (as a follower). Only pre-vote and granted pre-vote
      // answers are exempt (thesis §9.6), and votes refused by the leader lease are not handled.
      if (outcome === 'handled' && m.generation > r.generation && m.type !== 'pre-vote' && !(m.type === 'pre-vote-response' && m.granted)) {
        throw new InvariantError('generation rule', `${node.id} handled ${m.type} of g${m.generation} from ${m.from} and stayed ${r.role} in g${r.generation}`);
      }
    }
    for (const node of this.nodes) {
      const r = node.replica;
      if (r === null || node.clock.isPaused(now)) continue;
      // disk completions
      const done = node.disk.completeIfDue(now);
      if (done !== null) this.afterPersist(node, r, done);
      if (node.clock.ticksAt(now)) {
        r.tick();
        node.ticks++;
      }
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
      const has = r.hasReady();
      const rd = r.ready();
      if (has !== (rd !== null)) throw new InvariantError('hasReady() agrees with ready()', `${node.id}: hasReady() ${has}, ready() ${rd === null ? 'null' : 'a Ready'}`);
      if (rd === null) return;
      for (const m of rd.messages) {
        if (m.type === 'heartbeat') node.heartbeatAt = this.now;
        this.net.send(m, this.now);
      }
      const latency = this.diskLatencyMax === 0 ? 0 : this.rng.int(this.diskLatencyMax + 1);
      node.disk.submit(rd, this.now + latency);
      // Crash after the messages left and before the write is durable (leader and candidate).
      const role = rd.softState.role;
      if (
        this.faultsOn &&
        this.crashAfterSendRate > 0 &&
        latency > 0 &&
        rd.messages.length > 0 &&
        (role === 'leader' || role === 'candidate') &&
        this.rng.chance(this.crashAfterSendRate)
      ) {
        this.stats.crashesAfterSend = (this.stats.crashesAfterSend ?? 0) + 1;
        this.crash(node);
        return;
      }
      if (latency > 0) return;
      const done = node.disk.completeIfDue(this.now);
      if (done === null) return;
      this.afterPersist(node, r, done);
    }
  }

  /** The write is durable: record what it proves, send what waited for it, apply, answer reads, advance. */
  private afterPersist(node: SimNode, r: Replica, rd: Ready): void {
    const p = rd.persist;
    const log = node.disk.log;
    if (this.trace !== undefined) {
      const hs = p.hardState;
      this.trace(
        `${this.now} ${node.id} durable${p.snapshot !== null ? ` snapshot@${p.snapshot.meta.index}` : ''}${p.entries.length > 0 ? ` entries ${p.entries.map(describeEntry).join(',')}` : ''}${hs !== null ? ` hs g${hs.generation} vote=${hs.votedFor} commit=${hs.commit}` : ''}${rd.committedEntries.length > 0 ? ` apply ${rd.committedEntries[0]?.index}..${rd.committedEntries[rd.committedEntries.length - 1]?.index}` : ''} role=${rd.softState.role}`,
      );
    }
    if (p.snapshot !== null) {
      const d = decodeSnapshot(p.snapshot.data);
      this.inv.checkSnapshot(node.id, p.snapshot.meta.index, d.hash);
      node.smIndex = p.snapshot.meta.index;
      node.smHash = d.hash;
      node.kv = d.state;
      this.stats.snapshotsInstalled = (this.stats.snapshotsInstalled ?? 0) + 1;
    }
    const first = p.entries[0];
    if (first !== undefined) {
      const prevGen = log.generationAt(first.index - 1);
      if (prevGen !== undefined) this.inv.checkWritten(node.id, p.entries, prevGen);
    }
    // Ground truth: what this node now durably holds in its own generation, and its durable vote.
    const last = log.lastIndex();
    const hsNow = log.hardState();
    const hsGen = hsNow.generation;
    if (p.hardState !== null) this.inv.votedDurably(node.id, hsGen, hsNow.votedFor);
    if (last >= log.firstIndex() && log.generationAt(last) === hsGen) this.inv.held(node.id, last, hsGen, log);
    for (const m of rd.messagesAfterPersist) {
      if (m.type === 'append-response' && m.success && m.index >= log.firstIndex() && m.index <= last && log.generationAt(m.index) === m.generation) {
        this.inv.held(node.id, m.index, m.generation, log);
      }
      this.net.send(m, this.now);
    }
    for (const e of rd.committedEntries) this.apply(node, e);
    for (const rs of rd.readStates) this.answerRead(node, rs.ctx, rs.index, rs.linearizable);
    r.advance(rd);
  }

  private answerRead(node: SimNode, ctx: string, index: number | null, linearizable: boolean): void {
    const check = this.reads.get(ctx);
    if (check === undefined) {
      // A local read (readLocal) or a read of an earlier incarnation.
      if (ctx.startsWith('local') && linearizable) throw new InvariantError('local reads are marked', `${node.id}: readLocal answer ${ctx} says linearizable`);
      return;
    }
    if (!linearizable) throw new InvariantError('local reads are marked', `${node.id}: readIndex answer ${ctx} says not linearizable`);
    node.acceptedReads.delete(ctx);
    if (index === null) {
      this.reads.delete(ctx);
      this.history.fail(check.hist);
      return;
    }
    if (index < check.minIndex) {
      throw new InvariantError('linearizable read index', `read ${ctx} on ${node.id} served at ${index} < acknowledged ${check.minIndex}`);
    }
    node.waitingReads.push({ ctx, index });
    this.serveReads(node);
  }

  /** Serves reads whose index the state machine has reached. */
  private serveReads(node: SimNode): void {
    if (node.waitingReads.length === 0) return;
    const keep: Array<{ ctx: string; index: number }> = [];
    for (const w of node.waitingReads) {
      const check = this.reads.get(w.ctx);
      if (check === undefined) continue;
      if (w.index > node.smIndex) {
        keep.push(w);
        continue;
      }
      this.reads.delete(w.ctx);
      this.history.complete(check.hist, { ok: true, result: node.kv.get(check.key) });
      this.stats.readsServed = (this.stats.readsServed ?? 0) + 1;
    }
    node.waitingReads = keep;
  }

  private apply(node: SimNode, e: Entry): void {
    if (e.index !== node.smIndex + 1) {
      throw new InvariantError('apply in order', `${node.id} applies ${e.index} after ${node.smIndex}`);
    }
    const key = entryKey(e);
    node.smIndex = e.index;
    node.smHash = mix(node.smHash, key);
    this.inv.checkApplied(node.id, e, node.smHash);
    const cmd = e.kind === 'normal' ? decodeCommand(e.data) : null;
    const swapped = cmd !== null ? node.kv.apply(cmd) : false;
    // The proposer (or, after it crashed, a client that reconnected to ask: node '*') learns the
    // outcome when it applies that index: committed if it is the proposed entry, else gone for good.
    const ids = this.proposalIndex.get(e.index);
    if (ids !== undefined) {
      for (const id of [...ids]) {
        const p = this.proposals.get(id);
        if (p === undefined) {
          ids.delete(id);
          continue;
        }
        if (p.node !== node.id && p.node !== '*') continue;
        ids.delete(id);
        this.proposals.delete(id);
        if (p.generation === e.generation && key === `${p.generation}/${p.payload}`) {
          this.acked.set(id, p);
          this.history.complete(p.hist, { ok: cmd?.op === 'cas' ? swapped : true });
          this.stats.acked = (this.stats.acked ?? 0) + 1;
          if (p.index > this.maxAckedIndex) this.maxAckedIndex = p.index;
        } else {
          this.history.fail(p.hist);
        }
      }
      if (ids.size === 0) this.proposalIndex.delete(e.index);
    }
    this.serveReads(node);
  }

  /** index → ids of proposals waiting there. */
  private readonly proposalIndex = new Map<number, Set<string>>();

  /** A client operation on `node`; queued if it is paused (the client does not know). */
  private clientOp(node: SimNode, f: (refuse?: boolean) => void): void {
    if (node.clock.isPaused(this.now)) {
      if (node.queued.length < MAX_QUEUED) {
        node.queued.push(f);
        this.stats.queuedWhilePaused = (this.stats.queuedWhilePaused ?? 0) + 1;
      } else {
        f(true);
      }
      return;
    }
    f();
  }

  private client(): void {
    for (const c of this.clients) {
      if (c.busy !== null && this.now - c.since > CLIENT_TIMEOUT_STEPS) this.history.abandon(c.busy);
    }
    if (this.now >= this.quietFrom) {
      if (this.now < this.quietUntil || this.quietUntil < this.quietFrom) return;
      this.quietFrom = Number.POSITIVE_INFINITY;
    }
    if (!this.rng.chance(this.proposeRate)) return;
    const free = this.clients.filter((c) => c.busy === null);
    if (free.length === 0) return;
    const client = free[this.rng.int(free.length)] as { busy: HistoryOp | null; since: number };
    // The client sends to whoever it believes leads, paused or not.
    const leaders = this.nodes.filter((n) => n.replica !== null && n.replica.role === 'leader');
    const fav = this.favoured === null ? undefined : this.nodeById(this.favoured);
    let target =
      fav !== undefined && fav.replica !== null && (this.staleAck?.phase === 'cut' || this.rng.chance(0.9))
        ? fav
        : leaders.length > 0 && this.rng.chance(0.9)
        ? (leaders[this.rng.int(leaders.length)] as SimNode)
        : (this.nodes[this.rng.int(this.nodes.length)] as SimNode);
    if (target.replica === null) return;
    const rng = this.rng;
    const key = KEYS[rng.int(KEYS.length)] as string;
    // Reads are a fifth of the operations, two fifths where a deposed leader may serve stale ones.
    const readShare = this.schedule === 'paused-leader' ? 40 : 20;
    const roll = rng.int(100);
    if (roll < readShare) {
      const ctx = `read${++this.readSeq}`;
      const hist = this.history.call({ key, op: 'get', id: ctx });
      client.busy = hist;
      client.since = this.now;
      const minIndex = this.maxAckedIndex;
      // paused-leader: once its successor acknowledged a write, a client whose leader cache is stale reads from the paused leader.
      const dep = this.deposed;
      const old = dep !== null && this.now < dep.until && minIndex > dep.commit ? this.nodeById(dep.id) : undefined;
      const reader = old !== undefined && old.replica !== null ? old : target;
      if (reader === old) this.stats.deposedReads = (this.stats.deposedReads ?? 0) + 1;
      this.clientOp(reader, (refuse) => (refuse === true ? this.history.fail(hist) : this.readIndex(reader, ctx, key, hist, minIndex)));
      return;
    }
    if (roll < readShare + 5) {
      this.clientOp(target, (refuse) => {
        if (refuse === true) return;
        target.replica?.readLocal(`local${++this.readSeq}`);
        this.stats.readsLocal = (this.stats.readsLocal ?? 0) + 1;
      });
      return;
    }
    // paused-leader: most writers noticed the timeout and found the successor; the others keep writing to the paused leader.
    const dep = this.deposed;
    if (dep !== null && this.now < dep.until) {
      const running = leaders.filter((l) => l.id !== dep.id);
      if (running.length > 0 && rng.chance(0.7)) target = running[rng.int(running.length)] as SimNode;
    }
    const id = `p${++this.proposalSeq}`;
    const value = `v${++this.valueSeq}`;
    const op = roll < 75 ? 'put' : roll < 93 ? 'cas' : 'del';
    // A cas expects what the target's state machine shows (what a client would have read), or a stale guess.
    const expected = op === 'cas' ? (rng.chance(0.8) ? target.kv.get(key) : rng.chance(0.5) ? null : `v${rng.int(this.valueSeq) + 1}`) : null;
    const hist = this.history.call({ key, op, id, ...(op !== 'del' ? { value } : {}), ...(op === 'cas' ? { expected } : {}) });
    client.busy = hist;
    client.since = this.now;
    const size = rng.int(MAX_PAYLOAD_BYTES - 40);
    const data = encodeCommand({ id, op, key, value, expected }, size);
    this.clientOp(target, (refuse) => (refuse === true ? this.history.fail(hist) : void this.propose(target, id, data, hist)));
  }

  private propose(node: SimNode, id: string, data: Uint8Array, hist: HistoryOp): Proposal | null {
    const r = node.replica;
    if (r === null) {
      this.history.fail(hist);
      return null;
    }
    const tr = this.transfer;
    try {
      const at = r.propose(data);
      if (tr !== null && tr.from === node.id && r.role === 'leader' && r.generation === tr.generation) {
        throw new InvariantError('leadership transfer', `${node.id} accepted a proposal while transferring leadership to ${tr.to}`);
      }
      const p: Proposal = { id, payload: String.fromCharCode(...data), node: node.id, index: at.index, generation: at.generation, hist };
      this.proposals.set(id, p);
      const set = this.proposalIndex.get(at.index);
      if (set === undefined) this.proposalIndex.set(at.index, new Set([id]));
      else set.add(id);
      this.stats.proposed = (this.stats.proposed ?? 0) + 1;
      return p;
    } catch (e) {
      if (!isTidemarkErrorLike(e)) throw e;
      this.history.fail(hist);
      this.stats.refused = (this.stats.refused ?? 0) + 1;
      return null;
    }
  }

  private readIndex(node: SimNode, ctx: string, key: string, hist: HistoryOp, minIndex: number): void {
    const r = node.replica;
    if (r === null) return this.history.fail(hist);
    try {
      r.readIndex(ctx);
      this.reads.set(ctx, { node: node.id, minIndex, key, hist });
      node.acceptedReads.add(ctx);
      this.stats.reads = (this.stats.reads ?? 0) + 1;
    } catch (e) {
      if (!isTidemarkErrorLike(e)) throw e;
      this.history.fail(hist);
    }
  }

  private leader(): SimNode | undefined {
    return this.nodes.find((n) => n.replica !== null && n.replica.role === 'leader');
  }

  private isolate(a: string): void {
    for (const b of this.ids) {
      if (b === a) continue;
      this.net.cut(a, b);
      this.net.cut(b, a);
    }
  }

  private injectFaults(): void {
    const rng = this.rng;
    const now = this.now;
    this.scheduledFaults();
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
          this.isolate(this.ids[rng.int(this.n)] as string);
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
    if (this.schedule !== 'rejoin' && this.schedule !== 'transfer' && rng.chance(0.01)) this.compact(this.nodes[rng.int(this.n)] as SimNode);
    if (rng.chance(0.005)) this.forgedMessage();
    if (this.retransmitRate > 0 && rng.chance(this.retransmitRate)) this.retransmit();
    const rj = this.rejoined;
    if (rj !== null && now >= rj.from && now < rj.until) {
      // paused-leader: two retransmissions race the rest of what was held for the resumed node (after the oldest,
      // the answers to its last heartbeat round); partition-election sends its own at the heal.
      if (now === rj.from + 3 && this.schedule === 'paused-leader') for (const id of rj.ids) for (let k = 0; k < 2; k++) this.retransmit(id);
      else if (rng.chance(0.3)) this.retransmit(rj.ids[rng.int(rj.ids.length)]);
    }
    if (rng.chance(this.transferRate)) {
      const leader = this.leader();
      if (leader !== undefined) {
        const to = this.ids[rng.int(this.n)] as string;
        leader.replica?.transferLeadership(to);
        this.stats.transfers = (this.stats.transfers ?? 0) + 1;
      }
    }
  }

  /** Compaction behind a snapshot of what `node` applied (when nothing is being written). */
  private compact(node: SimNode): void {
    if (node.replica !== null && node.smIndex > node.disk.log.firstIndex() && node.disk.pending === null) {
      node.disk.log.compact(node.smIndex, encodeSnapshot(node.smIndex, node.smHash, node.kv, this.rng.int(300)));
      this.stats.compactions = (this.stats.compactions ?? 0) + 1;
    }
  }

  /** The targeted schedules' own faults, at fixed rhythms. */
  private scheduledFaults(): void {
    const rng = this.rng;
    const now = this.now;
    const T = ELECTION_TICKS * 5; // an election timeout in steps, about
    // partition-election: clients write to the cut-off leader while it still leads.
    if (this.schedule === 'partition-election' && this.favoured !== null && this.nodeById(this.favoured).replica?.role !== 'leader') this.favoured = null;
    if (now < this.nextScheduledFault) return;
    switch (this.schedule) {
      case 'partition-election': {
        // Cut the leader (alone or with a minority) off while clients keep writing to it (its tail cannot
        // commit), wait past an election, heal; the new leader then retransmits to the rejoined nodes and,
        // half the time, has just compacted its log (so they get a snapshot over their stale tail).
        if (this.net.partitioned) {
          // Past the drawn duration, the cut lasts until the majority side has a leader that committed in its
          // generation (at most 10 election timeouts): the heal then meets a new leader and a stale minority.
          const rj = this.rejoined;
          const successor = this.nodes.find((n) => n.replica !== null && n.replica.role === 'leader' && !(rj?.ids.includes(n.id) ?? false));
          const sr = successor?.replica;
          const settled = sr !== undefined && sr !== null && sr.generationAt(sr.commit) === sr.generation;
          if (!settled && rj !== null && now < rj.until) return;
          this.net.heal();
          this.favoured = null;
          if (settled && successor !== undefined && rng.chance(0.3)) {
            // The network flaps: as the old minority comes back, the new leader is cut off. The old leader's
            // uncommitted tail is then still there, longer than the others' logs, when they elect a leader.
            this.isolate(successor.id);
            this.favoured = successor.id;
            this.rejoined = { ids: [successor.id], from: Number.POSITIVE_INFINITY, until: now + 10 * T };
            this.stats.partitions = (this.stats.partitions ?? 0) + 1;
            this.trace?.(`${now} FLAP cut ${successor.id}`);
            this.nextScheduledFault = now + 2 * T + rng.int(4 * T);
            return;
          }
          const l = this.leader();
          // The leader's retransmissions to the rejoined nodes race its probes; then, half the time, it compacts.
          for (const id of rj?.ids ?? []) for (let k = 0; k < 2; k++) this.retransmit(id);
          if (rj !== null && l !== undefined && rng.chance(0.5)) this.compact(l);
          if (this.rejoined !== null) {
            this.rejoined.from = now;
            this.rejoined.until = now + 10 * ELECTION_TICKS;
          }
          this.trace?.(`${now} HEAL ${this.rejoined?.ids.join(',')} (leader ${l?.id})`);
          this.nextScheduledFault = now + T + rng.int(3 * T);
          return;
        }
        const leader = this.leader();
        if (leader === undefined) return;
        this.stats.partitions = (this.stats.partitions ?? 0) + 1;
        let minority = new Set([leader.id]);
        if (this.n === 5 && rng.chance(0.5)) {
          const others = this.ids.filter((x) => x !== leader.id);
          const mate = others[rng.int(others.length)] as string;
          minority = new Set([leader.id, mate]);
          for (const a of this.ids) for (const b of this.ids) if (minority.has(a) !== minority.has(b)) this.net.cut(a, b);
        } else {
          this.isolate(leader.id);
        }
        this.favoured = leader.id;
        this.rejoined = { ids: [...minority], from: Number.POSITIVE_INFINITY, until: now + 10 * T };
        this.trace?.(`${now} CUT ${[...minority].join(',')}`);
        this.nextScheduledFault = now + 2 * T + rng.int(4 * T);
        return;
      }
      case 'paused-leader': {
        const leader = this.leader();
        const r = leader?.replica;
        if (leader === undefined || r === null || r === undefined || leader.clock.isPaused(now)) return;
        // Right after a heartbeat round, so its answers arrive during the pause and are held for it, and
        // once it has committed in its generation (it then takes reads without waiting for a commit).
        if (leader.heartbeatAt !== now - 1 || r.generationAt(r.commit) !== r.generation) return;
        // Well past the election timeout (40..120 steps): the others elect a new leader and acknowledge writes meanwhile.
        leader.clock.pause(now, 4 * T + rng.int(4 * T));
        this.deposed = { id: leader.id, commit: r.commit, until: leader.clock.pausedUntil };
        // Once it resumes (a follower soon, holding what it appended while paused), the leader retransmits to it.
        this.rejoined = { ids: [leader.id], from: leader.clock.pausedUntil, until: leader.clock.pausedUntil + 10 * ELECTION_TICKS };
        this.trace?.(`${now} ${leader.id} PAUSED until ${leader.clock.pausedUntil} (g${r.generation}, commit ${r.commit})`);
        this.stats.pauses = (this.stats.pauses ?? 0) + 1;
        this.nextScheduledFault = leader.clock.pausedUntil + T + rng.int(3 * T);
        return;
      }
      case 'stale-acks':
        this.staleAckRound();
        return;
      case 'rejoin': {
        // Isolate one follower for a while, then let it rejoin; the leader must stay.
        // Half the time the clients stop writing from an election timeout before the cut until the
        // heal: the cut-off node then has an up-to-date log and could win if it were let campaign.
        if (this.net.partitioned) {
          this.net.heal();
          this.nextScheduledFault = now + 2 * T + rng.int(2 * T);
          if (rng.chance(0.5)) this.quietFrom = this.nextScheduledFault - T;
          return;
        }
        const leader = this.leader();
        if (leader === undefined) return;
        const others = this.ids.filter((x) => x !== leader.id);
        const victim = others[rng.int(others.length)] as string;
        // Either cut it off entirely, or only from hearing the leader (it can still reach the others,
        // who still hear the leader: their lease must make them ignore its campaign).
        if (rng.chance(0.5)) this.isolate(victim);
        else this.net.cut(leader.id, victim);
        this.stats.partitions = (this.stats.partitions ?? 0) + 1;
        this.nextScheduledFault = now + 2 * T + rng.int(6 * T);
        if (this.quietFrom <= now) this.quietUntil = this.nextScheduledFault;
        return;
      }
      case 'transfer': {
        if (this.transfer !== null) return;
        const leader = this.leader();
        const r = leader?.replica;
        if (leader === undefined || r === null || r === undefined || r.commit < r.lastIndex) return;
        const caughtUp = r.status().peers.filter((p) => p.match === r.lastIndex);
        if (caughtUp.length === 0) return;
        const to = (caughtUp[rng.int(caughtUp.length)] as { id: string }).id;
        r.transferLeadership(to);
        this.transfer = { from: leader.id, to, generation: r.generation, startTick: leader.ticks, elections: this.stats.elections ?? 0 };
        this.stats.transfers = (this.stats.transfers ?? 0) + 1;
        this.nextScheduledFault = now + 2 * T + rng.int(2 * T);
        return;
      }
      default:
        return;
    }
  }

  /** One step of the stale-acks round (see {@link StaleAckRound}). */
  private staleAckRound(): void {
    const rng = this.rng;
    const now = this.now;
    const T = ELECTION_TICKS * 5;
    const sa = this.staleAck;
    const end = (): void => {
      if (sa !== null && sa.phase !== 'delivered') this.stats[`staleAckEnd_${sa.phase}`] = (this.stats[`staleAckEnd_${sa.phase}`] ?? 0) + 1;
      this.net.heal();
      this.staleAck = null;
      this.favoured = null;
      this.nextScheduledFault = now + T + rng.int(2 * T);
    };
    if (sa === null) {
      const leader = this.leader();
      const r = leader?.replica;
      if (leader === undefined || r === null || r === undefined) return;
      const others = this.ids.filter((x) => x !== leader.id);
      const mate = others[rng.int(others.length)] as string;
      const minority = new Set([leader.id, mate]);
      for (const a of this.ids) for (const b of this.ids) if (minority.has(a) !== minority.has(b)) this.net.cut(a, b);
      this.staleAck = { phase: 'cut', leader: leader.id, mate, generation: r.generation, ack: null, until: now + 2 * T + rng.int(2 * T) };
      this.favoured = leader.id;
      this.stats.partitions = (this.stats.partitions ?? 0) + 1;
      return;
    }
    const L = this.nodeById(sa.leader);
    const lr = L.replica;
    if (lr === null) return end();
    switch (sa.phase) {
      case 'cut':
        if (now < sa.until) return;
        this.net.heal();
        this.favoured = null;
        sa.phase = 'healed';
        sa.until = now + 6 * T;
        return;
      case 'healed': {
        if (now >= sa.until) return end();
        if (lr.role === 'leader' && lr.generation > sa.generation + 1) {
          sa.phase = 'transferring';
          return;
        }
        const m = this.leader();
        const mr = m?.replica;
        if (m === undefined || mr === null || mr === undefined || m.id === sa.leader || mr.generation <= sa.generation) return;
        // L follows M (its stale tail is gone once it accepted M's appends); M hands leadership back.
        if (lr.role !== 'follower' || lr.generation !== mr.generation || lr.commit < mr.commit - 2) return;
        mr.transferLeadership(sa.leader);
        this.stats.transfers = (this.stats.transfers ?? 0) + 1;
        sa.phase = 'transferring';
        sa.until = now + 4 * T;
        return;
      }
      case 'transferring':
        if (now >= sa.until) return end();
        if (lr.role !== 'leader' || lr.generation <= sa.generation + 1) return;
        sa.phase = 'leading';
        sa.until = now + 4 * T;
        this.favoured = sa.leader;
        return;
      case 'leading': {
        const ack = sa.ack;
        if (now >= sa.until || ack === null || ack.type !== 'append-response' || lr.role !== 'leader') return end();
        // L's log reaches the old acknowledgement with entries of its current generation, not yet sent on.
        if (lr.lastIndex < ack.index || lr.generationAt(ack.index) !== lr.generation || lr.commit >= ack.index) return;
        const peers = lr.status().peers;
        const lagging = peers.filter((p) => p.id !== sa.mate && p.match < ack.index);
        const mateMatch = peers.find((p) => p.id === sa.mate)?.match ?? 0;
        if (mateMatch >= ack.index || lagging.length < 2) return end();
        // Cut L's appends to the mate and to two of the three others: only L and one follower can hold the new entries.
        const ids = lagging.map((p) => p.id);
        const y1 = ids.splice(rng.int(ids.length), 1)[0] as string;
        const y2 = ids[rng.int(ids.length)] as string;
        this.net.cut(sa.leader, sa.mate);
        this.net.cut(sa.leader, y1);
        this.net.cut(sa.leader, y2);
        this.net.enqueue(ack, now);
        this.stats.staleAcks = (this.stats.staleAcks ?? 0) + 1;
        this.trace?.(`${now} stale-acks: ${describeMessage(ack)} replayed to ${sa.leader} (g${lr.generation}, last ${lr.lastIndex}); cut ${sa.leader} > ${sa.mate}, ${y1}, ${y2}`);
        sa.phase = 'delivered';
        sa.until = now + T;
        return;
      }
      case 'delivered':
        if (now >= sa.until) end();
        return;
    }
  }

  /**
   * A leader's append from any point of its log: (prevIndex, a few entries after it, its commit).
   * Raft lets a leader send any such message (another probing strategy, a retransmission, a smaller
   * batch), so followers must be safe for all of them, not only for the ones this leader's progress
   * tracking happens to produce. Aimed at low prevIndexes, where a follower may still hold a stale tail.
   */
  private retransmit(to?: string): void {
    const rng = this.rng;
    // A paused process sends nothing: a running leader (a paused one may still think it leads).
    const leader = this.nodes.find((n) => n.replica !== null && n.replica.role === 'leader' && !n.clock.isPaused(this.now));
    const r = leader?.replica;
    if (leader === undefined || r === null || r === undefined) return;
    // Mostly to the follower furthest behind (a rejoining node may still hold a stale tail), from
    // around its match index.
    const st = r.status();
    const peers = [...st.peers].sort((a, b) => a.match - b.match);
    const target = to !== undefined ? peers.find((p) => p.id === to) : rng.chance(0.7) ? peers[0] : peers[rng.int(peers.length)];
    if (target === undefined) return;
    const lo = Math.max(st.firstIndex - 1, rng.chance(0.7) ? target.match - 2 : 0);
    // To a rejoined node, half the time from below where this leader's generation begins in its log (where
    // its probes start): the rejoined node's stale tail, if any, lies beyond entries that match there.
    let hi = Math.max(lo, r.commit);
    if (to !== undefined && rng.chance(0.5)) {
      let a = lo;
      let b = r.lastIndex;
      while (a < b) {
        const mid = Math.ceil((a + b) / 2);
        if ((r.generationAt(mid) ?? r.generation) < r.generation) a = mid;
        else b = mid - 1;
      }
      hi = Math.min(hi, a);
    }
    const prevIndex = lo + rng.int(hi - lo + 1);
    const prevGeneration = r.generationAt(prevIndex);
    if (prevGeneration === undefined) return;
    const count = Math.min(rng.int(4), r.lastIndex - prevIndex);
    const entries = count > 0 ? r.entries(prevIndex + 1, prevIndex + 1 + count) : [];
    this.stats.retransmits = (this.stats.retransmits ?? 0) + 1;
    this.net.send({ type: 'append', from: leader.id, to: target.id, clusterId: 'sim', generation: r.generation, prevIndex, prevGeneration, entries, commit: r.commit }, this.now);
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
    const hs = node.disk.log.hardState();
    this.inv.votedDurably(node.id, hs.generation, hs.votedFor);
    this.trace?.(`${this.now} ${node.id} CRASH durable last=${node.disk.log.lastIndex()} g=${node.disk.log.hardState().generation} vote=${node.disk.log.hardState().votedFor}`);
    node.clock.resume();
    // The clients of the crashed process: a quarter never hear back (the outcome stays unknown), the
    // others reconnect and ask whether their operation happened (answered once it is decided).
    for (const p of this.proposals.values()) {
      if (p.node !== node.id) continue;
      if (this.rng.chance(0.25)) this.proposals.delete(p.id);
      else p.node = '*';
    }
    for (const [ctx, rc] of [...this.reads]) if (rc.node === node.id) this.reads.delete(ctx);
    node.acceptedReads.clear();
    node.waitingReads = [];
    // Requests the process had not read yet are refused with the connection: certainly not applied.
    for (const f of node.queued) f(true);
    node.queued = [];
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
      if (isLeader && !node.wasLeader) {
        this.inv.checkElected(node.id, r.generation);
        this.stats.elections = (this.stats.elections ?? 0) + 1;
        node.leaderSinceTick = node.ticks;
      }
      this.inv.checkLeader(node.id, r, node.wasLeader);
      if (isLeader !== node.wasLeader) {
        this.trace?.(`${this.now} ${node.id} ${isLeader ? 'LEADS' : 'stops leading'} g${r.generation} last=${r.lastIndex} commit=${r.commit}`);
        if (!isLeader) this.leaderStopped(node, r);
      }
      node.wasLeader = isLeader;
      const roleGen = `${r.role}/${r.generation}`;
      if (roleGen !== node.lastRoleGen) {
        // Late copies of what this node just received, now that it is in another role or generation.
        if (node.lastRoleGen !== '' && this.faultsOn && this.replayRate > 0 && this.rng.chance(this.replayRate)) this.net.replayTo(node.id, 1 + this.rng.int(4), this.now);
        node.lastRoleGen = roleGen;
      }
      if (isLeader) {
        if (this.now % 10 === 0) this.checkFlowControl(node.id, r);
        this.checkQuorumStepDown(node, r);
      } else if (node.acceptedReads.size > 0 && node.disk.pending === null && !node.clock.isPaused(this.now) && !r.hasReady()) {
        throw new InvariantError('every accepted read is answered', `${node.id} stopped leading with reads ${[...node.acceptedReads].join(',')} neither served nor failed`);
      }
    }
    this.checkTransfer();
  }

  /** Check-quorum: a leader that has not heard from a majority for two election timeouts is no longer leader. */
  private checkQuorumStepDown(node: SimNode, r: Replica): void {
    if (!this.checkQuorum) return;
    const window = 2 * ELECTION_TICKS + 2;
    if (node.ticks - node.leaderSinceTick < window) return;
    let heard = 1;
    for (const t of node.heardAt.values()) if (t > node.ticks - window && t >= node.leaderSinceTick) heard++;
    if (heard < this.inv.quorum) {
      throw new InvariantError('check-quorum step-down', `${node.id} still leads g${r.generation} after ${window} ticks without hearing from a majority (heard ${heard})`);
    }
  }

  private leaderStopped(node: SimNode, r: Replica): void {
    this.stats.stepDowns = (this.stats.stepDowns ?? 0) + 1;
    const st = this.stableLeader;
    if (this.schedule === 'rejoin' && this.faultsOn && st !== null && st.id === node.id) {
      throw new InvariantError('a leader reaching a quorum is not deposed', `${node.id} (g${st.generation}) lost leadership to generation ${r.generation} while only a follower was cut off and rejoined (pre-vote and check-quorum on)`);
    }
  }

  /** Leadership transfer to a caught-up follower: done in one election, and the old leader refuses proposals meanwhile. */
  private checkTransfer(): void {
    if (this.schedule === 'rejoin' && this.stableLeader === null) {
      const l = this.leader();
      if (l?.replica && l.replica.commit === l.replica.lastIndex && l.replica.commit > 0) this.stableLeader = { id: l.id, generation: l.replica.generation };
    }
    const tr = this.transfer;
    if (tr === null) return;
    const from = this.nodeById(tr.from);
    const r = from.replica;
    if (r === null) return;
    if (r.role === 'leader' && r.generation === tr.generation) {
      if (from.ticks - tr.startTick > ELECTION_TICKS + 2) {
        throw new InvariantError('leadership transfer', `transfer ${tr.from} → ${tr.to} (caught up) did not complete within an election timeout`);
      }
      return;
    }
    const l = this.leader();
    if (l === undefined) return;
    const lr = l.replica as Replica;
    if (l.id !== tr.to || lr.generation !== tr.generation + 1 || (this.stats.elections ?? 0) !== tr.elections + 1) {
      throw new InvariantError(
        'leadership transfer',
        `transfer ${tr.from} → ${tr.to} from g${tr.generation} ended with ${l.id} leading g${lr.generation} after ${(this.stats.elections ?? 0) - tr.elections} elections`,
      );
    }
    this.stats.transfersCompleted = (this.stats.transfersCompleted ?? 0) + 1;
    this.transfer = null;
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
    this.transfer = null;
    this.net.heal();
    this.net.faults = { dropRate: 0, duplicateRate: 0, maxDelaySteps: this.net.faults.maxDelaySteps, longDelayRate: 0, maxLongDelaySteps: 1, splitRate: 0 };
    for (const node of this.nodes) {
      node.clock.resume();
      if (node.replica === null) node.restartAt = this.now + 1;
    }
    const periodMax = 6;
    // Bound: time to elect a leader, plus a backlog allowance of one round trip (network both
    // ways plus a sync) per entry still to replicate, since a seed may run with one entry per
    // append and one append in flight; plus the longest delay a message still in flight may take.
    const lastMax = Math.max(...this.nodes.map((n) => n.disk.log.lastIndex()));
    const commitMin = Math.min(...this.nodes.map((n) => n.smIndex));
    const backlog = Math.max(0, lastMax - commitMin);
    const perEntry = 2 * (this.net.faults.maxDelaySteps + this.diskLatencyMax + 1);
    const bound = (this.options.livenessElectionTimeouts ?? 30) * ELECTION_TICKS * periodMax + backlog * perEntry + 400;
    this.stats.livenessBound = bound;
    const deadline = this.now + bound;
    let probe: Proposal | null = null;
    while (this.now < deadline) {
      this.step();
      const leader = this.leader();
      if (leader === undefined || leader.replica === null) continue;
      if (probe === null || (!this.acked.has(probe.id) && !this.proposals.has(probe.id))) {
        const id = `live${this.now}`;
        const hist = this.history.call({ key: 'live', op: 'put', value: id, id });
        probe = this.propose(leader, id, encodeCommand({ id, op: 'put', key: 'live', value: id, expected: null }, 0), hist);
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
      if (key !== `${p.generation}/${p.payload}`) {
        throw new InvariantError('no acknowledged command lost', `${p.id} acknowledged at ${p.index}/${p.generation}, applied there: ${key}`);
      }
      for (const n of this.nodes) {
        if (n.smIndex < p.index) throw new InvariantError('no acknowledged command lost', `${n.id} applied only to ${n.smIndex} < ${p.index}`);
      }
    }
  }

  /** The clients' history is linearizable (unknown outcomes may or may not have happened). */
  private checkHistory(): void {
    const res = checkLinearizable(this.history.ops, { maxStatesPerKey: 200_000 });
    this.stats.historyOps = res.ops;
    this.stats.historyUnknown = res.unknown;
    this.stats.historyInconclusive = res.inconclusive.length;
    if (!res.ok) throw new InvariantError('linearizable KV history', res.failure?.message ?? '');
  }

  private nodeById(id: string): SimNode {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`unknown node ${id}`);
    return n;
  }
}

