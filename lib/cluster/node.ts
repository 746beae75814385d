/**
 * The driver: the only place where the replication core, durable storage, the
 * network and time meet. A {@link TidemarkNode} ticks its {@link Replica} from
 * monotonic time, carries out every {@link Ready} in its documented order, applies
 * committed commands to the user's {@link StateMachine} exactly once (Idempotent
 * Receiver sessions), answers clients, takes snapshots and installs the leader's.
 *
 * Ready handling (one Ready outstanding; steps and proposals keep flowing into the
 * core while it is being persisted, which is the pipeline):
 * 1. `messages` leave at once (the leader's appends go out while its own write is in flight);
 * 2. `persist` is made durable by {@link RaftStorage.persist};
 * 3. then `messagesAfterPersist` (votes, acknowledgements) leave;
 * 4. a received snapshot restores the state machine, `committedEntries` are applied (those
 *    already durable here before this Ready apply at step 2, while its persist is in flight);
 * 5. read states are answered once the state machine has applied up to their index;
 * 6. `advance`, and the next Ready.
 *
 * @packageDocumentation
 */
import { EventEmitter } from 'node:events';
import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { ErrorCodes, TidemarkError, isTidemarkError } from '../errors';
import { Replica, type ReplicaStatus } from '../core/replica';
import type { ReplicaOptions } from '../core/options';
import { SeededRandom } from '../core/random';
import { type Entry, type Message, type NodeId, type ReadState, type Ready, type Role, Roles, type Snapshot } from '../core/types';
import type { WalHistogram, WalOptions } from '../log/wal';
import type { ClientRequest, ClientResponse, Logger, Transport } from '../net/api';
import { KvStore } from './kv';
import { type SessionOptions, SessionTable, type StateMachine, decodeEnvelope, envelopeOverhead, decodeNodeSnapshot, encodeEnvelope, encodeNodeSnapshot } from './state-machine';
import { RaftStorage, type RaftStorageOptions } from './storage';

/** Error code of a command whose fate is unknown (it may or may not be applied): retry with the same client id and seq. */
export const UNKNOWN_OUTCOME = 'TM_UNKNOWN_OUTCOME';

/** Longest client id (UTF-8 bytes) a session may have. */
export const MAX_CLIENT_ID_BYTES = 255;

/** Core limits a node may override (the rest of {@link ReplicaOptions} the node sets itself). */
export type CoreLimits = Partial<
  Pick<
    ReplicaOptions,
    | 'maxAppendBytes'
    | 'maxInflightAppends'
    | 'maxInflightBytes'
    | 'maxUncommittedBytes'
    | 'snapshotChunkBytes'
    | 'maxSnapshotBytes'
    | 'maxPendingReads'
    | 'maxApplyBytes'
    | 'preVote'
    | 'checkQuorum'
  >
>;

/** Options of {@link TidemarkNode.open}. */
export interface TidemarkNodeOptions {
  /** This node's id (one of `voters`). */
  readonly id: NodeId;
  /** Data directory (created if needed): WAL, hard state, snapshots. */
  readonly dir: string;
  /** Cluster id: messages of another cluster are ignored. */
  readonly clusterId: string;
  /** Every voter's id, this node's included. */
  readonly voters: readonly NodeId[];
  /** Client address ("host:port") of each node, sent with TM_NOT_LEADER redirects. */
  readonly addresses?: Readonly<Record<NodeId, string>>;
  /** The network endpoint (lib/net's TcpTransport, or a {@link MemoryNetwork} transport in tests). Started by `open`, closed by `close`. */
  readonly transport: Transport;
  /** The replicated state machine. Default: a new {@link KvStore}. */
  readonly stateMachine?: StateMachine;
  /** Milliseconds per core tick. Default 10. */
  readonly tickMs?: number;
  /** Election timeout in ticks (randomised in [T, 2T)). Default 100 (1 s at 10 ms, like etcd). */
  readonly electionTimeoutTicks?: number;
  /** Heartbeat interval in ticks. Default 10 (100 ms). */
  readonly heartbeatTicks?: number;
  /** Ticks made up at most after the event loop was held up (a pause, a long GC); older ones are dropped. Default 5. */
  readonly maxTickCatchUp?: number;
  /** Take a snapshot once this many entries were applied since the last one. Default 10,000. */
  readonly snapshotEntries?: number;
  /** ... or once the log kept in memory holds this many bytes. Default 64 MiB. */
  readonly snapshotBytes?: number;
  /**
   * When the leader's connection closes (a killed process's sockets close at once), campaign
   * (pre-vote first) after a short random delay instead of waiting for the election timeout.
   * Default true. Needs pre-vote (the core's default) so a flaky link cannot depose a live leader.
   */
  readonly earlyElection?: boolean;
  /** Idempotent Receiver session limits (must be equal on every node). */
  readonly sessions?: SessionOptions;
  /** Native WAL options (sync mode, segment size). */
  readonly wal?: WalOptions;
  /** Core flow-control limits. */
  readonly limits?: CoreLimits;
  /** Seed of the election-timeout randomness. Default: random. */
  readonly seed?: number;
  /**
   * Admission control: proposals waiting for their commit on this leader at most. One more is
   * answered TM_BUSY (outcome not-applied, with a `retryAfterMs` hint) instead of joining a
   * growing queue, so admitted requests keep a bounded latency and memory stays flat under
   * overload. Default 1024.
   */
  readonly maxPendingProposals?: number;
  /** Admission control: command bytes of those pending proposals at most. Default 16 MiB. */
  readonly maxPendingBytes?: number;
  /** Optional pino-compatible logger. */
  readonly logger?: Logger;
  /** @internal Opens the WAL (tests: the faults addon). */
  readonly openWal?: RaftStorageOptions['openWal'];
}

/** A power-of-two histogram: `counts[i]` counts values in [2^(i-1), 2^i) (bucket 0: below 1). */
export interface NodeHistogram {
  readonly unit: string;
  readonly counts: readonly number[];
  readonly sum: number;
  readonly count: number;
}

/** Counters and gauges of a node, for a metrics endpoint. */
export interface NodeMetrics {
  readonly id: NodeId;
  readonly role: Role;
  readonly generation: number;
  readonly leaderId: NodeId | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly snapshotIndex: number;
  /** Entries applied to the state machine since open (no-ops included). */
  readonly commits: number;
  /** Client commands applied (results sent or cached). */
  readonly commandsApplied: number;
  readonly proposals: number;
  readonly proposalsRefused: number;
  /** Proposals refused TM_BUSY by admission control (`maxPendingProposals` / `maxPendingBytes`). */
  readonly proposalsBusy: number;
  readonly readsServed: number;
  /** Times this node became leader. */
  readonly electionsWon: number;
  /** Elections this node started (timeout or early). */
  readonly campaigns: number;
  readonly earlyCampaigns: number;
  /** Leader changes seen. */
  readonly leaderChanges: number;
  readonly snapshotsTaken: number;
  readonly snapshotsInstalled: number;
  readonly sessions: number;
  readonly persistLatencyUs: NodeHistogram;
  readonly walSyncs: number;
  /** The WAL's own fdatasync latency histogram (lower bounds in µs, counts). */
  readonly walSyncLatencyUs: WalHistogram;
  readonly walBytesWritten: number;
  readonly walSegments: number;
  readonly memoryEntryBytes: number;
  /** Leader only. */
  readonly peers: ReadonlyArray<{ readonly id: NodeId; readonly match: number; readonly lag: number; readonly inflightAppends: number; readonly inflightBytes: number }>;
}

class Histogram {
  readonly counts: number[] = new Array<number>(32).fill(0);
  sum = 0;
  count = 0;
  observe(v: number): void {
    const b = v < 1 ? 0 : Math.min(31, Math.floor(Math.log2(v)) + 1);
    this.counts[b] = (this.counts[b] ?? 0) + 1;
    this.sum += v;
    this.count++;
  }
  snapshot(unit: string): NodeHistogram {
    return { unit, counts: [...this.counts], sum: this.sum, count: this.count };
  }
}

interface Waiter {
  readonly requestId: number;
  readonly reply: (res: ClientResponse) => void;
}
interface PendingProposal {
  readonly generation: number;
  readonly clientId: string;
  readonly seq: number;
  /** Command bytes, counted against `maxPendingBytes`. */
  readonly bytes: number;
  readonly waiters: Waiter[];
}
interface PendingRead {
  readonly requestId: number;
  readonly query: Uint8Array;
  readonly reply: (res: ClientResponse) => void;
  index: number;
}

function sessionKey(clientId: string, seq: number): string {
  return `${seq}:${clientId}`;
}

function positive(name: string, v: number | undefined, fallback: number): number {
  const x = v ?? fallback;
  if (!Number.isSafeInteger(x) || x < 1) throw TidemarkError.invalidArgument(`${name} must be a positive integer, got ${String(v)}`);
  return x;
}

/**
 * One member of a tidemark cluster. Events: `'role'` ({ role, generation, leaderId }),
 * `'leader'` ({ leaderId, generation }), `'applied'` (index), `'snapshot'` ({ index, installed }),
 * `'error'` (a fatal storage or invariant error: the node closes itself; emitted only when
 * listened to, else logged), `'close'`.
 */
export class TidemarkNode extends EventEmitter {
  readonly id: NodeId;
  private readonly replica: Replica;
  private readonly tickMs: number;
  private readonly maxTickCatchUp: number;
  private readonly snapshotEntries: number;
  private readonly snapshotBytes: number;
  private readonly earlyElection: boolean;
  private readonly jitter: SeededRandom;
  private readonly logger: Logger | undefined;

  private appliedIndex: number;
  private readonly pending = new Map<number, PendingProposal>();
  private pendingBytes = 0;
  private readonly maxPendingProposals: number;
  private readonly maxPendingBytes: number;
  /** The retry hint of a TM_BUSY refusal: one heartbeat interval (about one commit round). */
  private readonly busyRetryMs: number;
  /** (clientId, seq) → log index of its proposal in flight on this leader. */
  private readonly pendingBySession = new Map<string, number>();
  private readonly reads = new Map<string, PendingRead>();
  private waitingReads: PendingRead[] = [];
  private readSeq = 0;

  private readyInFlight: Promise<void> | null = null;
  private scheduled = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private compacting: Promise<void> | null = null;
  private timer: NodeJS.Timeout | undefined;
  private readonly tickStart: number;
  private ticksDone = 0;
  private earlyTimer: NodeJS.Timeout | undefined;

  private lastRole: Role;
  private lastLeader: NodeId | null;
  private readonly counters = {
    commits: 0,
    commandsApplied: 0,
    proposals: 0,
    proposalsRefused: 0,
    proposalsBusy: 0,
    readsServed: 0,
    electionsWon: 0,
    campaigns: 0,
    earlyCampaigns: 0,
    leaderChanges: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
  };
  private readonly persistLatency = new Histogram();

  private constructor(
    private readonly options: TidemarkNodeOptions,
    private readonly storage: RaftStorage,
    private readonly machine: StateMachine,
    private readonly sessions: SessionTable,
    private readonly transport: Transport,
  ) {
    super();
    this.id = options.id;
    this.tickMs = positive('tickMs', options.tickMs, 10);
    const electionTimeoutTicks = positive('electionTimeoutTicks', options.electionTimeoutTicks, 100);
    const heartbeatTicks = positive('heartbeatTicks', options.heartbeatTicks, 10);
    this.maxTickCatchUp = positive('maxTickCatchUp', options.maxTickCatchUp, 5);
    this.snapshotEntries = positive('snapshotEntries', options.snapshotEntries, 10_000);
    this.snapshotBytes = positive('snapshotBytes', options.snapshotBytes, 64 * 1024 * 1024);
    this.earlyElection = options.earlyElection ?? true;
    this.maxPendingProposals = positive('maxPendingProposals', options.maxPendingProposals, 1024);
    this.maxPendingBytes = positive('maxPendingBytes', options.maxPendingBytes, 16 * 1024 * 1024);
    this.busyRetryMs = Math.max(10, heartbeatTicks * this.tickMs);
    this.logger = options.logger;
    const seed = options.seed ?? randomInt(0, 2 ** 32);
    this.jitter = new SeededRandom(seed ^ 0x5eed);
    const snap = storage.snapshot();
    this.appliedIndex = snap?.meta.index ?? 0;
    this.replica = new Replica({
      ...(options.limits ?? {}),
      id: options.id,
      voters: options.voters,
      clusterId: options.clusterId,
      log: storage,
      random: new SeededRandom(seed),
      electionTimeoutTicks,
      heartbeatTicks,
      maxEntryBytes: storage.maxEntryBytes - envelopeOverhead(MAX_CLIENT_ID_BYTES),
      applied: this.appliedIndex,
    });
    this.lastRole = this.replica.role;
    this.lastLeader = this.replica.leaderId;
    this.tickStart = performance.now();
  }

  /**
   * Opens the node: recovers storage, restores the state machine from the latest snapshot
   * (committed entries after it are replayed through the first Ready), starts the transport
   * and the tick timer.
   * @throws TidemarkError TM_INVALID_ARGUMENT (options), and whatever {@link RaftStorage.open} or the transport's start throws
   */
  static async open(options: TidemarkNodeOptions): Promise<TidemarkNode> {
    if (options === null || typeof options !== 'object') throw TidemarkError.invalidArgument('TidemarkNode.open: options must be an object');
    if (options.transport === undefined) throw TidemarkError.invalidArgument('TidemarkNode.open: a transport is required');
    const storage = await RaftStorage.open(options.dir, {
      ...(options.wal !== undefined ? { wal: options.wal } : {}),
      ...(options.logger !== undefined ? { logger: options.logger } : {}),
      ...(options.openWal !== undefined ? { openWal: options.openWal } : {}),
    });
    let node: TidemarkNode;
    try {
      const machine = options.stateMachine ?? new KvStore();
      const sessions = new SessionTable(options.sessions);
      const snap = storage.snapshot();
      if (snap !== null) machine.restore(decodeNodeSnapshot(snap.data, sessions));
      node = new TidemarkNode(options, storage, machine, sessions, options.transport);
    } catch (err) {
      await storage.close().catch(() => undefined);
      throw err;
    }
    try {
      await options.transport.start({
        onMessage: (m) => node.onMessage(m),
        onPeerDisconnected: (peer) => node.onPeerDisconnected(peer),
        onClientRequest: (req, reply) => node.onClientRequest(req, reply),
      });
    } catch (err) {
      await storage.close().catch(() => undefined);
      throw err;
    }
    node.timer = setInterval(() => node.onTimer(), node.tickMs);
    node.logger?.info({ id: node.id, snapshotIndex: storage.firstIndex() - 1, lastIndex: storage.lastIndex(), hardState: storage.hardState() }, 'node opened');
    node.schedule();
    return node;
  }

  // ---- accessors ---------------------------------------------------------------

  get role(): Role {
    return this.replica.role;
  }
  get leaderId(): NodeId | null {
    return this.replica.leaderId;
  }
  get generation(): number {
    return this.replica.generation;
  }
  get commitIndex(): number {
    return this.replica.commit;
  }
  /** Index of the last entry applied to the state machine. */
  get applied(): number {
    return this.appliedIndex;
  }
  /** The state machine (read it only between events; it changes as entries apply). */
  get stateMachine(): StateMachine {
    return this.machine;
  }

  // ---- time ----------------------------------------------------------------------

  private onTimer(): void {
    if (this.closed) return;
    const due = Math.floor((performance.now() - this.tickStart) / this.tickMs);
    let n = due - this.ticksDone;
    if (n <= 0) return;
    if (n > this.maxTickCatchUp) n = this.maxTickCatchUp; // held up: make up a few ticks, drop the rest
    this.ticksDone = due;
    try {
      const before = this.replica.role;
      for (let i = 0; i < n; i++) this.replica.tick();
      if (before !== Roles.PRE_CANDIDATE && before !== Roles.CANDIDATE && (this.replica.role === Roles.PRE_CANDIDATE || this.replica.role === Roles.CANDIDATE)) {
        this.counters.campaigns++;
      }
    } catch (err) {
      this.fatal(err);
      return;
    }
    this.afterInput();
  }

  // ---- network input ---------------------------------------------------------------

  private onMessage(m: Message): void {
    if (this.closed) return;
    try {
      this.replica.step(m);
    } catch (err) {
      if (isTidemarkError(err, ErrorCodes.INVALID_ARGUMENT)) {
        this.logger?.warn({ from: m.from, to: m.to, type: m.type, err: err.message }, 'message ignored');
        return;
      }
      this.fatal(err);
      return;
    }
    this.afterInput();
  }

  /**
   * The connection to `peer` closed. If it is our leader, campaign soon (pre-vote first)
   * instead of waiting out the election timeout. The surviving voters take turns in a fixed
   * order (sorted ids, one slot of 3 ticks each, round after round, at most 5 rounds), so
   * their pre-votes do not cross: the first one's pre-vote is usually refused by a peer still
   * inside its leader lease, but it drops its own lease, so the next one in turn wins with its
   * grant (or the first one does, on its next turn, if it holds the longer log).
   */
  private onPeerDisconnected(peer: NodeId): void {
    if (this.closed || !this.earlyElection) return;
    if (this.replica.role !== Roles.FOLLOWER || this.replica.leaderId !== peer || this.earlyTimer !== undefined) return;
    const generation = this.replica.generation;
    const others = this.options.voters.filter((v) => v !== peer).sort();
    const rank = others.indexOf(this.id);
    const slot = 3 * this.tickMs;
    const started = performance.now();
    let round = 0;
    let campaigned = false;
    const plan = (): void => {
      if (round >= 5) return;
      const at = this.tickMs + (round * others.length + rank) * slot + this.jitter.int(Math.max(1, Math.floor(this.tickMs / 2)));
      this.earlyTimer = setTimeout(attempt, Math.max(0, started + at - performance.now()));
      round++;
    };
    const attempt = (): void => {
      this.earlyTimer = undefined;
      if (this.closed) return;
      const role = this.replica.role;
      const leader = this.replica.leaderId;
      if (role === Roles.LEADER || (leader !== null && leader !== peer)) return;
      // We campaigned and then heard from the same leader again: it is alive (a flaky link). Stop.
      if (campaigned && role === Roles.FOLLOWER && leader === peer) return;
      // A follower of a newer generation has voted for someone's campaign: let it finish.
      if (role !== Roles.FOLLOWER || this.replica.generation === generation) {
        if (role !== Roles.CANDIDATE || this.replica.generation === generation + 1) {
          this.counters.earlyCampaigns++;
          if (role === Roles.FOLLOWER) this.counters.campaigns++;
          this.logger?.info({ id: this.id, leader: peer, round, role }, 'leader disconnected: campaigning early');
          try {
            this.replica.campaign();
          } catch (err) {
            this.fatal(err);
            return;
          }
          campaigned = true;
          this.afterInput();
        }
      }
      plan();
    };
    plan();
  }

  private onClientRequest(req: ClientRequest, reply: (res: ClientResponse) => void): void {
    if (this.closed) {
      reply(this.failure(req.requestId, ErrorCodes.CLOSED, 'the node is closing', 'not-applied'));
      return;
    }
    switch (req.kind) {
      case 'propose':
        this.propose(req, reply);
        return;
      case 'read':
        this.read(req, reply);
        return;
      case 'status':
        reply({ requestId: req.requestId, ok: true, result: new TextEncoder().encode(JSON.stringify(this.status())), index: this.appliedIndex });
        return;
      default:
        reply(this.failure((req as ClientRequest).requestId, ErrorCodes.INVALID_ARGUMENT, `unknown request kind ${String((req as { kind: unknown }).kind)}`, 'not-applied'));
    }
  }

  private failure(requestId: number, code: string, message: string, outcome: 'not-applied' | 'unknown', leaderId?: NodeId | null): Extract<ClientResponse, { ok: false }> {
    const leader = leaderId ?? null;
    const address = leader === null ? undefined : this.options.addresses?.[leader];
    return {
      requestId,
      ok: false,
      code,
      message,
      outcome,
      ...(leader !== null ? { leaderId: leader } : {}),
      ...(address !== undefined ? { leaderAddress: address } : {}),
    };
  }

  private refusal(requestId: number, err: unknown): ClientResponse {
    if (isTidemarkError(err)) {
      const leader = err.code === ErrorCodes.NOT_LEADER ? (err.leaderId ?? this.replica.leaderId) : null;
      return this.failure(requestId, err.code, err.message, 'not-applied', leader);
    }
    return this.failure(requestId, ErrorCodes.INVALID_ARGUMENT, String(err), 'not-applied');
  }

  private propose(req: ClientRequest, reply: (res: ClientResponse) => void): void {
    const waiter: Waiter = { requestId: req.requestId, reply };
    if (!(req.payload instanceof Uint8Array) || typeof req.clientId !== 'string' || !Number.isSafeInteger(req.seq) || req.seq < 0) {
      reply(this.failure(req.requestId, ErrorCodes.INVALID_ARGUMENT, 'propose needs a Uint8Array payload, a string clientId and a non-negative integer seq', 'not-applied'));
      return;
    }
    if (req.clientId !== '') {
      if (Buffer.byteLength(req.clientId) > MAX_CLIENT_ID_BYTES) {
        reply(this.failure(req.requestId, ErrorCodes.INVALID_ARGUMENT, `clientId is longer than ${MAX_CLIENT_ID_BYTES} bytes`, 'not-applied'));
        return;
      }
      if (req.firstUnackedSeq !== undefined && (!Number.isSafeInteger(req.firstUnackedSeq) || req.firstUnackedSeq < 0)) {
        reply(this.failure(req.requestId, ErrorCodes.INVALID_ARGUMENT, 'firstUnackedSeq must be a non-negative integer', 'not-applied'));
        return;
      }
      if (req.seq < 1) {
        reply(this.failure(req.requestId, ErrorCodes.INVALID_ARGUMENT, 'seq must be 1 or more with a clientId', 'not-applied'));
        return;
      }
      const cached = this.sessions.lookup(req.clientId, req.seq);
      if (cached === 'older') {
        reply(this.failure(req.requestId, 'TM_SESSION_EXPIRED', `seq ${req.seq} is older than the session's last applied command`, 'unknown'));
        return;
      }
      if (cached !== undefined) {
        reply({ requestId: req.requestId, ok: true, result: cached.result, index: cached.index });
        return;
      }
      const inFlight = this.pendingBySession.get(sessionKey(req.clientId, req.seq));
      const p = inFlight === undefined ? undefined : this.pending.get(inFlight);
      if (p !== undefined) {
        p.waiters.push(waiter);
        return;
      }
    }
    if (this.pending.size >= this.maxPendingProposals || this.pendingBytes + req.payload.length > this.maxPendingBytes) {
      this.counters.proposalsBusy++;
      reply({
        ...this.failure(req.requestId, ErrorCodes.BUSY, `overloaded: ${this.pending.size} proposals (${this.pendingBytes} bytes) wait for their commit (limits ${this.maxPendingProposals}, ${this.maxPendingBytes} bytes); retry later`, 'not-applied'),
        retryAfterMs: this.busyRetryMs,
      });
      return;
    }
    let at: { index: number; generation: number };
    try {
      at = this.replica.propose(encodeEnvelope({ clientId: req.clientId, seq: req.seq, firstUnackedSeq: req.firstUnackedSeq ?? 0, command: req.payload }));
    } catch (err) {
      this.counters.proposalsRefused++;
      reply(this.refusal(req.requestId, err));
      return;
    }
    this.counters.proposals++;
    this.pending.set(at.index, { generation: at.generation, clientId: req.clientId, seq: req.seq, bytes: req.payload.length, waiters: [waiter] });
    this.pendingBytes += req.payload.length;
    if (req.clientId !== '') this.pendingBySession.set(sessionKey(req.clientId, req.seq), at.index);
    this.schedule();
  }

  private read(req: ClientRequest, reply: (res: ClientResponse) => void): void {
    if (!(req.payload instanceof Uint8Array)) {
      reply(this.failure(req.requestId, ErrorCodes.INVALID_ARGUMENT, 'read needs a Uint8Array payload', 'not-applied'));
      return;
    }
    const ctx = `${++this.readSeq}`;
    this.reads.set(ctx, { requestId: req.requestId, query: req.payload, reply, index: 0 });
    try {
      if (req.readMode === 'follower') this.replica.readLocal(ctx);
      else this.replica.readIndex(ctx);
    } catch (err) {
      this.reads.delete(ctx);
      reply(this.refusal(req.requestId, err));
      return;
    }
    this.schedule();
  }

  // ---- the Ready loop ----------------------------------------------------------------

  private afterInput(): void {
    this.checkRole();
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.closed || this.readyInFlight !== null) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.runReady();
    });
  }

  private runReady(): void {
    if (this.closed || this.readyInFlight !== null) return;
    let rd: Ready | null;
    try {
      rd = this.replica.ready();
    } catch (err) {
      this.fatal(err);
      return;
    }
    if (rd === null) return;
    for (const m of rd.messages) this.transport.send(m);
    const p = rd.persist;
    const started = performance.now();
    const write = p.snapshot !== null || p.entries.length > 0 || p.hardState !== null ? this.storage.persist(p) : Promise.resolve();
    const ready = rd;
    const earlyTo = this.applyDurable(rd);
    this.readyInFlight = write.then(
      () => {
        if (p.entries.length > 0 || p.snapshot !== null) this.persistLatency.observe((performance.now() - started) * 1000);
        this.afterPersist(ready, earlyTo);
      },
      (err: unknown) => {
        this.readyInFlight = null;
        this.fatal(err);
      },
    );
  }

  /**
   * Applies, while this Ready's persist is in flight, the committed entries that were already
   * durable here before it (below the first entry it writes; never with a snapshot to install,
   * which must be restored first): their answers need not wait for an unrelated fsync. The rest
   * apply after the persist (applyEntry skips what is applied). Returns the last index applied
   * early, 0 if none.
   */
  private applyDurable(rd: Ready): number {
    const p = rd.persist;
    if (p.snapshot !== null || rd.committedEntries.length === 0) return 0;
    const first = p.entries[0];
    const durable = first === undefined ? this.storage.lastIndex() : Math.min(this.storage.lastIndex(), first.index - 1);
    const before = this.appliedIndex;
    try {
      for (const e of rd.committedEntries) {
        if (e.index > durable) break;
        this.applyEntry(e);
      }
    } catch (err) {
      this.fatal(err);
      return 0;
    }
    if (this.appliedIndex === before) return 0;
    this.emit('applied', this.appliedIndex);
    this.serveReads();
    return this.appliedIndex;
  }

  private afterPersist(rd: Ready, earlyTo: number): void {
    this.readyInFlight = null;
    if (this.closed) return;
    try {
      for (const m of rd.messagesAfterPersist) this.transport.send(m);
      if (rd.persist.snapshot !== null) this.installSnapshot(rd.persist.snapshot);
      for (const e of rd.committedEntries) this.applyEntry(e);
      for (const rs of rd.readStates) this.onReadState(rs);
      this.replica.advance(rd);
    } catch (err) {
      this.fatal(err);
      return;
    }
    if (rd.committedEntries.length > 0 && this.appliedIndex > earlyTo) this.emit('applied', this.appliedIndex);
    this.serveReads();
    this.checkRole();
    this.maybeSnapshot();
    this.schedule();
  }

  private installSnapshot(snap: Snapshot): void {
    const bytes = decodeNodeSnapshot(snap.data, this.sessions);
    this.machine.restore(bytes);
    this.appliedIndex = snap.meta.index;
    this.counters.snapshotsInstalled++;
    // Proposals at or below the snapshot: their entries may or may not be in it.
    for (const [index, p] of this.pending) {
      if (index <= snap.meta.index) this.settleUnknown(index, p, 'replaced by a snapshot from the leader');
    }
    this.logger?.info({ id: this.id, index: snap.meta.index, bytes: snap.data.length }, 'installed snapshot from the leader');
    this.emit('snapshot', { index: snap.meta.index, installed: true });
  }

  private applyEntry(e: Entry): void {
    if (e.index <= this.appliedIndex) return; // covered by an installed snapshot
    if (e.index !== this.appliedIndex + 1) throw new TidemarkError(ErrorCodes.CORRUPTION, `apply gap: entry ${e.index} after ${this.appliedIndex}`);
    this.appliedIndex = e.index;
    this.counters.commits++;
    const p = this.pending.get(e.index);
    if (e.kind === 'noop') {
      if (p !== undefined) this.settleUnknown(e.index, p, 'its log position was taken by another leader');
      return;
    }
    const env = decodeEnvelope(e.data);
    const outcome = this.sessions.apply(env, e.index, (command) => this.machine.apply(command, e.index));
    this.counters.commandsApplied++;
    if (p === undefined) return;
    this.pending.delete(e.index);
    this.pendingBytes -= p.bytes;
    this.forgetSession(p, e.index);
    if (p.generation !== e.generation) {
      this.settleUnknown(e.index, p, 'its log position was taken by another leader');
      return;
    }
    for (const w of p.waiters) {
      if (outcome.kind === 'rejected') w.reply(this.failure(w.requestId, outcome.code, outcome.message, 'unknown'));
      else w.reply({ requestId: w.requestId, ok: true, result: outcome.result, index: outcome.kind === 'duplicate' ? outcome.index : e.index });
    }
  }

  private forgetSession(p: PendingProposal, index: number): void {
    if (p.clientId === '') return;
    const key = sessionKey(p.clientId, p.seq);
    if (this.pendingBySession.get(key) === index) this.pendingBySession.delete(key);
  }

  private settleUnknown(index: number, p: PendingProposal, why: string): void {
    if (this.pending.delete(index)) this.pendingBytes -= p.bytes;
    this.forgetSession(p, index);
    for (const w of p.waiters) {
      w.reply(this.failure(w.requestId, UNKNOWN_OUTCOME, `outcome unknown: ${why}; retry with the same client id and seq`, 'unknown', this.replica.leaderId));
    }
  }

  private onReadState(rs: ReadState): void {
    const r = this.reads.get(rs.ctx);
    if (r === undefined) return;
    this.reads.delete(rs.ctx);
    if (rs.index === null) {
      r.reply(this.failure(r.requestId, ErrorCodes.NOT_LEADER, 'leadership changed before the read was confirmed; retry on the leader', 'not-applied', this.replica.leaderId));
      return;
    }
    r.index = rs.index;
    this.waitingReads.push(r);
  }

  private serveReads(): void {
    if (this.waitingReads.length === 0) return;
    const still: PendingRead[] = [];
    for (const r of this.waitingReads) {
      if (r.index > this.appliedIndex) {
        still.push(r);
        continue;
      }
      let result: Uint8Array;
      try {
        result = this.machine.query(r.query);
      } catch (err) {
        r.reply(this.failure(r.requestId, ErrorCodes.INVALID_ARGUMENT, `query failed: ${(err as Error).message}`, 'not-applied'));
        continue;
      }
      this.counters.readsServed++;
      r.reply({ requestId: r.requestId, ok: true, result, index: this.appliedIndex });
    }
    this.waitingReads = still;
  }

  private checkRole(): void {
    const role = this.replica.role;
    const leader = this.replica.leaderId;
    if (role !== this.lastRole) {
      if (this.lastRole === Roles.LEADER) {
        for (const [index, p] of [...this.pending]) this.settleUnknown(index, p, 'leadership was lost before it was committed');
      }
      if (role === Roles.LEADER) this.counters.electionsWon++;
      this.lastRole = role;
      this.logger?.info({ id: this.id, role, generation: this.replica.generation }, 'role changed');
      this.emit('role', { role, generation: this.replica.generation, leaderId: leader });
    }
    if (leader !== this.lastLeader) {
      this.lastLeader = leader;
      if (leader !== null) {
        this.counters.leaderChanges++;
        this.emit('leader', { leaderId: leader, generation: this.replica.generation });
      }
    }
  }

  // ---- snapshots -----------------------------------------------------------------------

  private maybeSnapshot(): void {
    if (this.compacting !== null || this.closed) return;
    const snapIndex = this.storage.firstIndex() - 1;
    const applied = this.appliedIndex;
    if (applied <= snapIndex) return;
    if (applied - snapIndex < this.snapshotEntries && this.storage.memoryEntryBytes < this.snapshotBytes) return;
    this.snapshotNow();
  }

  /** Takes a snapshot at the applied index now (also done by the snapshot policy). Resolves when it is durable. */
  snapshotNow(): Promise<void> {
    if (this.compacting !== null) return this.compacting;
    const index = this.appliedIndex;
    const generation = this.storage.generationAt(index);
    if (generation === undefined || index <= this.storage.firstIndex() - 1) return Promise.resolve();
    const data = encodeNodeSnapshot(this.sessions, this.machine.snapshot());
    this.compacting = this.storage.compact({ meta: { index, generation }, data }).then(
      () => {
        this.compacting = null;
        this.counters.snapshotsTaken++;
        this.logger?.debug({ id: this.id, index, bytes: data.length }, 'snapshot taken');
        this.emit('snapshot', { index, installed: false });
      },
      (err: unknown) => {
        this.compacting = null;
        this.fatal(err);
      },
    );
    return this.compacting;
  }

  // ---- status, metrics -------------------------------------------------------------------

  /** The status document served to `status` requests. */
  status(): Record<string, unknown> {
    const s: ReplicaStatus = this.replica.status();
    const leader = s.leaderId;
    return {
      id: s.id,
      role: s.role,
      generation: s.generation,
      leader,
      leaderAddress: leader === null ? null : (this.options.addresses?.[leader] ?? null),
      votedFor: s.votedFor,
      commit: s.commit,
      applied: this.appliedIndex,
      firstIndex: s.firstIndex,
      lastIndex: s.lastIndex,
      snapshotIndex: this.storage.firstIndex() - 1,
      sessions: this.sessions.size,
      peers: s.peers.map((p) => ({ id: p.id, match: p.match, next: p.next, lag: s.lastIndex - p.match, state: p.state, inflightAppends: p.inflightAppends, inflightBytes: p.inflightBytes })),
    };
  }

  /** Counters and gauges (integ serves them as Prometheus text). */
  metrics(): NodeMetrics {
    const s = this.replica.status();
    const st = this.storage.stats();
    return {
      id: this.id,
      role: s.role,
      generation: s.generation,
      leaderId: s.leaderId,
      commitIndex: s.commit,
      appliedIndex: this.appliedIndex,
      firstIndex: s.firstIndex,
      lastIndex: s.lastIndex,
      snapshotIndex: st.snapshotIndex,
      ...this.counters,
      sessions: this.sessions.size,
      persistLatencyUs: this.persistLatency.snapshot('microseconds'),
      walSyncs: st.wal.syncs,
      walSyncLatencyUs: st.wal.syncLatencyUs,
      walBytesWritten: st.wal.bytesWritten,
      walSegments: st.wal.segments,
      memoryEntryBytes: st.memoryEntryBytes,
      peers: s.peers.map((p) => ({ id: p.id, match: p.match, lag: s.lastIndex - p.match, inflightAppends: p.inflightAppends, inflightBytes: p.inflightBytes })),
    };
  }

  // ---- programmatic client API (in-process callers, tests) ------------------------------

  private requestIds = 0;

  /** Proposes a command on this node as a client would (TM_NOT_LEADER if not the leader). */
  request(req: Omit<ClientRequest, 'requestId'>): Promise<ClientResponse> {
    return new Promise((resolve) => this.onClientRequest({ ...req, requestId: ++this.requestIds }, resolve));
  }

  // ---- leadership transfer -----------------------------------------------------------------

  /**
   * Hands leadership to `to` (default: the peer with the highest match index) once it has
   * caught up, for a planned restart: proposals are refused with TM_BUSY meanwhile. Resolves
   * true once this node is no longer leader, false if it was not leader or after `timeoutMs`
   * (default: two election timeouts; the core abandons the transfer after one).
   * @throws TidemarkError TM_INVALID_ARGUMENT (not a voter)
   */
  async transferLeadership(to?: NodeId, timeoutMs?: number): Promise<boolean> {
    if (this.closed || this.replica.role !== Roles.LEADER) return false;
    let target = to;
    if (target === undefined) {
      const peers = [...this.replica.status().peers].sort((a, b) => b.match - a.match);
      target = peers[0]?.id;
      if (target === undefined) return false;
    }
    this.replica.transferLeadership(target);
    this.afterInput();
    const limit = timeoutMs ?? 2 * (this.options.electionTimeoutTicks ?? 100) * this.tickMs;
    const deadline = performance.now() + limit;
    while (!this.closed && this.replica.role === Roles.LEADER && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, this.tickMs));
    }
    return this.replica.role !== Roles.LEADER;
  }

  // ---- shutdown ------------------------------------------------------------------------------

  private fatal(err: unknown): void {
    if (this.closed) return;
    this.logger?.error({ id: this.id, err: (err as Error)?.message ?? String(err) }, 'fatal node error: closing');
    if (this.listenerCount('error') > 0) this.emit('error', err);
    void this.close();
  }

  /**
   * Stops the node: no more ticks or requests (with `handOff`, a leader first transfers its
   * leadership, see {@link transferLeadership}); pending proposals get TM_UNKNOWN_OUTCOME,
   * pending reads TM_CLOSED; the transport closes; the write in flight and a snapshot being
   * taken finish; storage closes (storing the latest commit). Idempotent.
   */
  close(options: { readonly handOff?: boolean } = {}): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    if (options.handOff === true && !this.closed && this.replica.role === Roles.LEADER) {
      // Planned shutdown: hand leadership over first, so the cluster does not wait for a timeout.
      this.closing = this.transferLeadership().then(
        () => this.shutdown(),
        () => this.shutdown(),
      );
      return this.closing;
    }
    this.closing = this.shutdown();
    return this.closing;
  }

  private shutdown(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.earlyTimer);
    return (async () => {
      for (const [index, p] of [...this.pending]) this.settleUnknown(index, p, 'the node closed');
      for (const r of [...this.reads.values(), ...this.waitingReads]) r.reply(this.failure(r.requestId, ErrorCodes.CLOSED, 'the node closed', 'not-applied'));
      this.reads.clear();
      this.waitingReads = [];
      await this.transport.close().catch((err: unknown) => this.logger?.warn({ err: String(err) }, 'transport close failed'));
      await this.readyInFlight?.catch(() => undefined);
      await this.compacting?.catch(() => undefined);
      await this.storage.close();
      this.emit('close');
    })();
  }
}
