/**
 * Shared state of one replica and the transitions every role uses (become*,
 * send, the generation rule). Role-specific handling lives in follower.ts,
 * candidate.ts and leader.ts. Internal: the public face is {@link Replica}.
 *
 * @packageDocumentation
 */
import { TidemarkError } from '../errors';
import { assert, unreachable } from './assert';
import { stepCandidate } from './candidate';
import { stepPreCandidate } from './pre-candidate';
import { stepFollower } from './follower';
import { stepLeader, tickLeader } from './leader';
import type { ResolvedOptions } from './options';
import { Progress } from './progress';
import { quorumSize } from './quorum';
import { ReplicaLog } from './replica-log';
import {
  type HardState,
  type Message,
  type NodeId,
  type ReadState,
  type Ready,
  type Role,
  Roles,
  SENT_AFTER_PERSIST,
} from './types';

/** A message as a role builds it: the state fills in from, clusterId and (by default) generation. */
export type OutgoingMessage = Message extends infer M
  ? M extends Message
    ? Omit<M, 'from' | 'clusterId' | 'generation'> & { generation?: number }
    : never
  : never;

/** A linearizable read waiting for its heartbeat round to be acknowledged by a quorum. */
export interface PendingRead {
  readonly ctx: string;
  readonly index: number;
  readonly round: number;
  readonly acks: Set<NodeId>;
}

/** A snapshot being received chunk by chunk. */
export interface SnapshotReceive {
  readonly from: NodeId;
  readonly generation: number;
  readonly index: number;
  readonly snapshotGeneration: number;
  readonly buffer: Uint8Array;
  received: number;
}

/** What `step` did with a message. */
export type StepOutcome = 'handled' | 'ignored-other-cluster' | 'ignored-unknown-peer' | 'ignored-stale' | 'ignored-lease';

export class ReplicaState {
  readonly id: NodeId;
  readonly voters: readonly NodeId[];
  readonly peers: readonly NodeId[];
  readonly quorum: number;
  readonly log: ReplicaLog;

  generation: number;
  votedFor: NodeId | null;
  role: Role = Roles.FOLLOWER;
  leaderId: NodeId | null = null;

  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  /** Votes (or pre-votes) received in the current campaign: id → granted. */
  readonly votes = new Map<NodeId, boolean>();

  /** Leader only: one per voter, this node included. */
  readonly progress = new Map<NodeId, Progress>();
  /** Leader only: peers to send appends to at the next flush (batching). */
  readonly pendingSend = new Set<NodeId>();
  transferee: NodeId | null = null;
  transferElapsed = 0;
  uncommittedBytes = 0;
  /** Leader only: (index, payload bytes) of proposals above the high-water mark. */
  readonly uncommittedQueue: Array<{ index: number; bytes: number }> = [];

  readRound = 0;
  /** Leader: reads waiting for the first commit of this generation. */
  readonly readsBeforeCommit: string[] = [];
  /** Leader: reads registered since the last flush (no round yet). */
  readonly readsUnsent: string[] = [];
  /** Leader: reads in a heartbeat round, oldest first. */
  readonly readsPending: PendingRead[] = [];
  readonly readStates: ReadState[] = [];

  snapshotReceive: SnapshotReceive | null = null;

  messages: Message[] = [];
  messagesAfterPersist: Message[] = [];
  persistedHardState: HardState;
  outstanding: Ready | null = null;

  constructor(readonly options: ResolvedOptions) {
    this.id = options.id;
    this.voters = options.voters;
    this.peers = options.voters.filter((v) => v !== options.id);
    this.quorum = quorumSize(options.voters.length);
    this.log = new ReplicaLog(options.log, options.applied);
    const hs = options.log.hardState();
    if (hs.votedFor !== null && !this.voters.includes(hs.votedFor)) {
      throw TidemarkError.invalidArgument(`stored vote for ${hs.votedFor}, not a voter`);
    }
    this.generation = hs.generation;
    this.votedFor = hs.votedFor;
    this.persistedHardState = hs;
    // The log may end in a generation above the stored one: a crash can persist a Ready's entries but
    // not its hard state. That is safe (nothing that depended on them was sent), so it is not asserted.
    this.resetElection();
  }

  // ---- outputs -------------------------------------------------------------

  send(m: OutgoingMessage): void {
    const full = { ...m, from: this.id, clusterId: this.options.clusterId, generation: m.generation ?? this.generation } as Message;
    assert(full.to !== this.id, `message ${full.type} to self`);
    if (SENT_AFTER_PERSIST[full.type]) this.messagesAfterPersist.push(full);
    else this.messages.push(full);
  }

  // ---- timers ----------------------------------------------------------------

  resetElection(): void {
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    const t = this.options.electionTimeoutTicks;
    this.randomizedElectionTimeout = t + this.options.random.int(t);
  }

  tick(): void {
    switch (this.role) {
      case Roles.LEADER:
        tickLeader(this);
        return;
      case Roles.FOLLOWER:
      case Roles.PRE_CANDIDATE:
      case Roles.CANDIDATE:
        this.electionElapsed++;
        if (this.electionElapsed >= this.randomizedElectionTimeout) {
          this.electionElapsed = 0;
          this.startElection(false);
        }
        return;
      default:
        unreachable(this.role, 'role');
    }
  }

  // ---- role changes ------------------------------------------------------------

  private reset(generation: number): void {
    assert(generation >= this.generation, `generation would go back from ${this.generation} to ${generation}`);
    if (generation > this.generation) {
      this.generation = generation;
      this.votedFor = null;
    }
    this.leaderId = null;
    this.votes.clear();
    this.progress.clear();
    this.pendingSend.clear();
    this.transferee = null;
    this.transferElapsed = 0;
    this.uncommittedBytes = 0;
    this.uncommittedQueue.length = 0;
    this.failReads();
    this.resetElection();
  }

  /** Pending linearizable reads fail (index null) when leadership is lost. */
  private failReads(): void {
    for (const ctx of this.readsBeforeCommit) this.readStates.push({ ctx, index: null, linearizable: true });
    for (const ctx of this.readsUnsent) this.readStates.push({ ctx, index: null, linearizable: true });
    for (const r of this.readsPending) this.readStates.push({ ctx: r.ctx, index: null, linearizable: true });
    this.readsBeforeCommit.length = 0;
    this.readsUnsent.length = 0;
    this.readsPending.length = 0;
  }

  becomeFollower(generation: number, leaderId: NodeId | null): void {
    this.reset(generation);
    this.role = Roles.FOLLOWER;
    this.leaderId = leaderId;
  }

  /** Starts an election: pre-vote first unless disabled or on a transfer. */
  startElection(transfer: boolean): void {
    if (this.options.preVote && !transfer) this.becomePreCandidate();
    else this.becomeCandidate(transfer);
  }

  becomePreCandidate(): void {
    // Pre-vote does not change the generation nor the vote (Raft thesis §9.6).
    this.votes.clear();
    this.progress.clear();
    this.leaderId = null;
    this.role = Roles.PRE_CANDIDATE;
    this.resetElection();
    this.votes.set(this.id, true);
    if (this.votes.size >= this.quorum) {
      this.becomeCandidate(false);
      return;
    }
    for (const to of this.peers) {
      this.send({
        type: 'pre-vote',
        to,
        generation: this.generation + 1,
        lastIndex: this.log.lastIndex(),
        lastGeneration: this.log.lastGeneration(),
      });
    }
  }

  becomeCandidate(transfer: boolean): void {
    this.reset(this.generation + 1);
    this.role = Roles.CANDIDATE;
    this.votedFor = this.id;
    this.votes.set(this.id, true);
    if (this.votes.size >= this.quorum) {
      this.becomeLeader();
      return;
    }
    for (const to of this.peers) {
      this.send({ type: 'vote', to, lastIndex: this.log.lastIndex(), lastGeneration: this.log.lastGeneration(), transfer });
    }
  }

  becomeLeader(): void {
    assert(this.role === Roles.CANDIDATE, `becomeLeader from ${this.role}`);
    this.reset(this.generation);
    this.role = Roles.LEADER;
    this.leaderId = this.id;
    const last = this.log.lastIndex();
    for (const v of this.voters) {
      const pr = new Progress(last + 1, this.options.maxInflightAppends, this.options.maxInflightBytes);
      if (v === this.id) {
        pr.match = this.log.unstableSnapshot === null ? this.log.offset - 1 : 0;
        pr.state = 'replicate';
      }
      this.progress.set(v, pr);
    }
    // High-Water Mark: a new leader commits its predecessors' entries through an entry of its own generation.
    this.log.append([{ index: last + 1, generation: this.generation, kind: 'noop', data: new Uint8Array(0) }]);
    for (const p of this.peers) this.pendingSend.add(p);
  }

  // ---- input -----------------------------------------------------------------

  /** The Generation Clock rule, then the role's handler. */
  step(m: Message): StepOutcome {
    if (m.clusterId !== this.options.clusterId) return 'ignored-other-cluster';
    if (m.to !== this.id) throw TidemarkError.invalidArgument(`message for ${m.to} stepped into ${this.id}`);
    if (m.from === this.id || !this.voters.includes(m.from)) return 'ignored-unknown-peer';

    if (m.generation > this.generation) {
      if (m.type === 'pre-vote' || m.type === 'vote') {
        // Leader lease: while we hear from a leader, nobody may depose it (check-quorum) unless it asked to.
        const inLease = this.options.checkQuorum && this.leaderId !== null && this.electionElapsed < this.options.electionTimeoutTicks;
        if (inLease && !(m.type === 'vote' && m.transfer)) return 'ignored-lease';
      }
      if (m.type === 'pre-vote' || (m.type === 'pre-vote-response' && m.granted)) {
        // Pre-vote never moves the generation.
      } else {
        const fromLeader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot-chunk';
        this.becomeFollower(m.generation, fromLeader ? m.from : null);
      }
    } else if (m.generation < this.generation) {
      // Tell a stale sender about the newer generation so it steps down.
      if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot-chunk') {
        this.send({ type: 'append-response', to: m.from, success: false, index: 0, hintIndex: 0, hintGeneration: 0 });
      } else if (m.type === 'pre-vote') {
        this.send({ type: 'pre-vote-response', to: m.from, granted: false });
      }
      return 'ignored-stale';
    }

    if (m.type === 'pre-vote' || m.type === 'vote') {
      this.handleVoteRequest(m);
      return 'handled';
    }
    switch (this.role) {
      case Roles.FOLLOWER:
        stepFollower(this, m);
        break;
      case Roles.PRE_CANDIDATE:
        stepPreCandidate(this, m);
        break;
      case Roles.CANDIDATE:
        stepCandidate(this, m);
        break;
      case Roles.LEADER:
        stepLeader(this, m);
        break;
      default:
        unreachable(this.role, 'role');
    }
    return 'handled';
  }

  /** Votes go only to candidates whose log is at least as up to date (last generation, then last index). */
  private handleVoteRequest(m: Extract<Message, { type: 'pre-vote' | 'vote' }>): void {
    const isPre = m.type === 'pre-vote';
    const canVote =
      this.votedFor === m.from || (this.votedFor === null && this.leaderId === null) || (isPre && m.generation > this.generation);
    const granted = canVote && this.log.isUpToDate(m.lastIndex, m.lastGeneration);
    if (isPre) {
      this.send({ type: 'pre-vote-response', to: m.from, granted, generation: granted ? m.generation : this.generation });
      return;
    }
    if (granted) {
      this.votedFor = m.from;
      this.electionElapsed = 0;
    }
    this.send({ type: 'vote-response', to: m.from, granted });
  }

  /** Current hard state (what must be durable). */
  hardState(): HardState {
    return { generation: this.generation, votedFor: this.votedFor, commit: this.log.commit };
  }
}
