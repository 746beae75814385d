/**
 * The public face of the core: a deterministic replication state machine in
 * etcd raft's RawNode shape (`step/tick/propose → ready → advance`). No I/O, no
 * timers, no clock, no global randomness: the driver feeds it messages and ticks
 * and carries out each {@link Ready} in the documented order.
 *
 * @packageDocumentation
 */
import { TidemarkError } from '../errors';
import { assert } from './assert';
import { flushLeader, maybeCommit, propose, readIndex, transferLeadership } from './leader';
import { type ReplicaOptions, resolveOptions } from './options';
import type { ProgressState } from './progress';
import { ReplicaState, type StepOutcome } from './state';
import { type Entry, type Message, type NodeId, type Ready, type Role, Roles, type SoftState, entryBytes } from './types';

/** A follower as the leader sees it (for status pages and tests). */
export interface PeerStatus {
  readonly id: NodeId;
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly inflightAppends: number;
  readonly inflightBytes: number;
}

/** A point-in-time view of a replica. */
export interface ReplicaStatus extends SoftState {
  readonly id: NodeId;
  readonly votedFor: NodeId | null;
  readonly applied: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly uncommittedBytes: number;
  /** Leader only: one entry per other voter. */
  readonly peers: readonly PeerStatus[];
}

/**
 * One replica of the replicated log. Not thread-safe; one driver owns it.
 *
 * @example
 * ```ts
 * const r = new Replica({ id: 'a', voters: ['a', 'b', 'c'], clusterId: 'c1', log, random: new SeededRandom(1) });
 * r.tick();
 * for (let rd = r.ready(); rd !== null; rd = r.ready()) {
 *   send(rd.messages); await persist(rd.persist); send(rd.messagesAfterPersist);
 *   apply(rd.committedEntries); answer(rd.readStates); r.advance(rd);
 * }
 * ```
 */
export class Replica {
  private readonly s: ReplicaState;

  /** Builds a replica from its durable state (restart = construct again over the same log). */
  constructor(options: ReplicaOptions) {
    this.s = new ReplicaState(resolveOptions(options));
  }

  /** This replica's id. */
  get id(): NodeId {
    return this.s.id;
  }
  get role(): Role {
    return this.s.role;
  }
  get generation(): number {
    return this.s.generation;
  }
  /** The leader this replica follows, itself when leading, null when unknown. */
  get leaderId(): NodeId | null {
    return this.s.leaderId;
  }
  /** High-water mark: the highest index known durable on a majority. Never decreases. */
  get commit(): number {
    return this.s.log.commit;
  }
  /** Index of the last entry the driver reported applied. */
  get applied(): number {
    return this.s.log.applied;
  }
  get lastIndex(): number {
    return this.s.log.lastIndex();
  }

  /** Feeds one message from a peer. Messages of another cluster or unknown peers are ignored (see the outcome). */
  step(message: Message): StepOutcome {
    return this.s.step(message);
  }

  /** Advances logical time by one tick (elections, heartbeats, check-quorum). */
  tick(): void {
    this.s.tick();
  }

  /** Starts an election now (pre-vote first when enabled), as if the election timeout fired. */
  campaign(): void {
    if (this.s.role === Roles.LEADER) return;
    this.s.startElection(false);
  }

  /**
   * Proposes a command. Returns the (index, generation) it was appended at: it is
   * committed when an entry with that index and generation is applied.
   * @throws TidemarkError TM_NOT_LEADER (with `leaderId` when known), TM_BUSY (uncommitted-bytes
   *   limit or leadership transfer: retry later), TM_INVALID_ARGUMENT (too large)
   */
  propose(data: Uint8Array): { index: number; generation: number } {
    return propose(this.s, data);
  }

  /**
   * Linearizable read without a log write: the leader confirms it still leads with
   * one heartbeat round, then a {@link ReadState} with its high-water mark and
   * `linearizable: true` appears in a Ready (or `index: null` if leadership was lost first).
   * @throws TidemarkError TM_NOT_LEADER, TM_BUSY (too many pending reads)
   */
  readIndex(ctx: string): void {
    readIndex(this.s, ctx);
  }

  /**
   * Local (follower) read: a {@link ReadState} at this replica's own high-water mark, on any
   * role, at once, with `linearizable: false`. It never shows anything uncommitted, but it
   * may be stale (a partitioned or lagging replica, a deposed leader): NOT linearizable.
   */
  readLocal(ctx: string): void {
    this.s.readStates.push({ ctx, index: this.s.log.commit, linearizable: false });
  }

  /**
   * Hands leadership to `to` once it is up to date (planned restarts). Proposals are
   * refused with TM_BUSY meanwhile; abandoned after an election timeout.
   * @throws TidemarkError TM_NOT_LEADER, TM_INVALID_ARGUMENT
   */
  transferLeadership(to: NodeId): void {
    transferLeadership(this.s, to);
  }

  /**
   * True if and only if {@link ready} would return a Ready now (so `while (r.hasReady()) r.ready()!` is safe).
   * It flushes the leader's batched sends first, exactly as `ready()` does; that has no other visible effect.
   */
  hasReady(): boolean {
    const s = this.s;
    if (s.outstanding !== null) return false;
    flushLeader(s);
    const log = s.log;
    const [applyFrom, applyTo] = applyRange(s, log.unstableSnapshot !== null && !log.snapshotInProgress ? log.unstableSnapshot : null);
    return (
      log.hasUnpersisted() ||
      hardStateChanged(s) ||
      applyFrom <= applyTo ||
      s.messages.length > 0 ||
      s.messagesAfterPersist.length > 0 ||
      s.readStates.length > 0
    );
  }

  /**
   * The next batch of work, or null if there is none or the previous Ready is not yet
   * advanced. See {@link Ready} for the order the driver must follow.
   */
  ready(): Ready | null {
    const s = this.s;
    if (s.outstanding !== null) return null;
    flushLeader(s);
    const log = s.log;
    const snapshot = log.unstableSnapshot !== null && !log.snapshotInProgress ? log.unstableSnapshot : null;
    const entries = log.takeUnpersisted();
    const hardState = hardStateChanged(s) ? s.hardState() : null;
    const [applyFrom, applyTo] = applyRange(s, snapshot);
    const committedEntries: Entry[] = applyFrom <= applyTo ? log.entries(applyFrom, applyTo + 1, s.options.maxApplyBytes) : [];
    if (
      snapshot === null &&
      entries.length === 0 &&
      hardState === null &&
      committedEntries.length === 0 &&
      s.messages.length === 0 &&
      s.messagesAfterPersist.length === 0 &&
      s.readStates.length === 0
    ) {
      return null;
    }
    if (snapshot !== null) log.snapshotInProgress = true;
    const rd: Ready = {
      persist: { snapshot, entries, hardState },
      messages: s.messages,
      messagesAfterPersist: s.messagesAfterPersist,
      committedEntries,
      readStates: s.readStates.splice(0),
      softState: { role: s.role, leaderId: s.leaderId, generation: s.generation, commit: log.commit },
    };
    s.messages = [];
    s.messagesAfterPersist = [];
    s.outstanding = rd;
    return rd;
  }

  /** Reports that `ready` was carried out: persisted, sent, applied. */
  advance(ready: Ready): void {
    const s = this.s;
    if (s.outstanding !== ready) throw TidemarkError.invalidArgument('advance() must be given the Ready last returned by ready()');
    const log = s.log;
    const snap = ready.persist.snapshot;
    if (snap !== null) {
      log.stableSnapshotTo(snap.meta.index);
      log.applied = Math.max(log.applied, snap.meta.index);
    }
    const lastEntry = ready.persist.entries[ready.persist.entries.length - 1];
    if (lastEntry !== undefined) log.stableTo(lastEntry.index, lastEntry.generation);
    if (ready.persist.hardState !== null) s.persistedHardState = ready.persist.hardState;
    const lastApplied = ready.committedEntries[ready.committedEntries.length - 1];
    if (lastApplied !== undefined) {
      assert(lastApplied.index > log.applied, 'applied index would go back');
      log.applied = lastApplied.index;
    }
    s.outstanding = null;
    if (s.role === Roles.LEADER && log.unstableSnapshot === null) {
      // Majority Quorum: the leader's own copy counts only once its persist is reported.
      const self = s.progress.get(s.id);
      assert(self !== undefined, 'leader without own progress');
      if (self.maybeUpdate(log.offset - 1) && maybeCommit(s)) {
        for (const p of s.peers) s.pendingSend.add(p);
      }
    }
  }

  /** A point-in-time view (allocates; for status pages and tests). */
  status(): ReplicaStatus {
    const s = this.s;
    const peers: PeerStatus[] = [];
    if (s.role === Roles.LEADER) {
      for (const p of s.peers) {
        const pr = s.progress.get(p);
        if (pr === undefined) continue;
        peers.push({ id: p, match: pr.match, next: pr.next, state: pr.state, inflightAppends: pr.inflights.count, inflightBytes: pr.inflights.bytes });
      }
    }
    return {
      id: s.id,
      role: s.role,
      leaderId: s.leaderId,
      generation: s.generation,
      commit: s.log.commit,
      votedFor: s.votedFor,
      applied: s.log.applied,
      firstIndex: s.log.firstIndex(),
      lastIndex: s.log.lastIndex(),
      uncommittedBytes: s.uncommittedBytes,
      peers,
    };
  }

  /**
   * Entries `[lo, hi)` of this replica's view of the log (durable and not yet durable),
   * up to about `maxBytes`. For invariant checks and debugging.
   */
  entries(lo: number, hi: number, maxBytes = Number.MAX_SAFE_INTEGER): readonly Entry[] {
    if (lo < this.s.log.firstIndex() || hi > this.s.log.lastIndex() + 1 || lo > hi) {
      throw TidemarkError.outOfRange(`entries [${lo}, ${hi}) outside [${this.s.log.firstIndex()}, ${this.s.log.lastIndex() + 1})`);
    }
    return this.s.log.entries(lo, hi, maxBytes);
  }

  /** Generation of the entry at `index` in this replica's view, undefined if unknown. */
  generationAt(index: number): number | undefined {
    return this.s.log.generationAt(index);
  }
}

/** The committed entries a Ready would hand out: [from, to], empty when from > to. */
function applyRange(s: ReplicaState, snapshot: { readonly meta: { readonly index: number } } | null): [number, number] {
  const log = s.log;
  return [Math.max(log.applied, snapshot?.meta.index ?? 0) + 1, Math.min(log.commit, log.lastIndex())];
}

function hardStateChanged(s: ReplicaState): boolean {
  const p = s.persistedHardState;
  return p.generation !== s.generation || p.votedFor !== s.votedFor || p.commit !== s.log.commit;
}

/** Bytes of `entries` as the core counts them. */
export function entriesBytes(entries: readonly Entry[]): number {
  let n = 0;
  for (const e of entries) n += entryBytes(e);
  return n;
}
