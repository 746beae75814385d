/**
 * Types of the replication core: entries, hard state, snapshots, the message
 * union and the {@link Ready} batch the driver must honour in order.
 *
 * Names follow "Patterns of Distributed Systems": *generation* is the Generation
 * Clock (Raft's term), *commit* is the High-Water Mark, the snapshot index is the
 * Low-Water Mark of the log.
 *
 * @packageDocumentation
 */

/** A replica's id, unique in its cluster. */
export type NodeId = string;

/** Kinds of log entries. */
export const EntryKinds = {
  /** A client command. */
  NORMAL: 'normal',
  /** Appended by a new leader so that it can commit in its own generation (High-Water Mark rule). */
  NOOP: 'noop',
} as const;
/** One of {@link EntryKinds}. */
export type EntryKind = (typeof EntryKinds)[keyof typeof EntryKinds];

/** One entry of the replicated log. Indexes start at 1; index 0 is the empty log. */
export interface Entry {
  readonly index: number;
  /** Generation of the leader that created the entry. */
  readonly generation: number;
  readonly kind: EntryKind;
  /** Opaque payload; empty for no-ops. The core never looks inside. */
  readonly data: Uint8Array;
}

/** Bytes an entry counts for in batching and flow-control limits. */
export const ENTRY_OVERHEAD_BYTES = 24;
/** Size of `entry` for every byte limit in the core. */
export function entryBytes(entry: Entry): number {
  return entry.data.length + ENTRY_OVERHEAD_BYTES;
}

/**
 * State that must be durable before any message that depends on it is sent
 * (Generation Clock: the generation is persisted together with the vote).
 */
export interface HardState {
  /** Highest generation this node has seen. Never decreases. */
  readonly generation: number;
  /** Candidate voted for in `generation`, or null. */
  readonly votedFor: NodeId | null;
  /**
   * High-water mark known to this node; it never decreases. Persisting it is optional (an
   * optimisation: a restart then re-applies less): a driver may store a lower value than the one
   * handed out, or always 0. The stored value must never exceed the stored log's last index.
   * On restart the core uses max(stored commit, `applied` option, snapshot index).
   */
  readonly commit: number;
}

/** The hard state of a node that never ran. */
export const EMPTY_HARD_STATE: HardState = { generation: 0, votedFor: null, commit: 0 };

/** Position of a snapshot: the last entry it covers (the log's Low-Water Mark). */
export interface SnapshotMeta {
  readonly index: number;
  readonly generation: number;
}

/** A state-machine snapshot covering every entry up to `meta.index`. */
export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

/** Roles of a replica. */
export const Roles = {
  FOLLOWER: 'follower',
  PRE_CANDIDATE: 'pre-candidate',
  CANDIDATE: 'candidate',
  LEADER: 'leader',
} as const;
/** One of {@link Roles}. */
export type Role = (typeof Roles)[keyof typeof Roles];

/** Fields every message carries. */
export interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  /** The sender's generation (for a pre-vote: the generation it would campaign in). */
  readonly generation: number;
  /** Messages from another cluster are ignored (the network layer rejects them first). */
  readonly clusterId: string;
}

/** Pre-vote request (does not change anyone's generation). */
export interface PreVoteMessage extends MessageBase {
  readonly type: 'pre-vote';
  readonly lastIndex: number;
  readonly lastGeneration: number;
}
/** Answer to a pre-vote. Granted answers carry the asked generation, refusals the voter's. */
export interface PreVoteResponse extends MessageBase {
  readonly type: 'pre-vote-response';
  readonly granted: boolean;
}
/** Vote request of a candidate. */
export interface VoteMessage extends MessageBase {
  readonly type: 'vote';
  readonly lastIndex: number;
  readonly lastGeneration: number;
  /** Set when campaigning on a leadership transfer: voters skip their leader-lease check. */
  readonly transfer: boolean;
}
/** Answer to a vote request. */
export interface VoteResponse extends MessageBase {
  readonly type: 'vote-response';
  readonly granted: boolean;
}
/** Replicated Log append: `entries` follow (`prevIndex`, `prevGeneration`). */
export interface AppendMessage extends MessageBase {
  readonly type: 'append';
  readonly prevIndex: number;
  readonly prevGeneration: number;
  readonly entries: readonly Entry[];
  /** Leader's high-water mark. */
  readonly commit: number;
}
/**
 * Answer to an append (and to a stale message of an older generation).
 * Success: `index` is the follower's last index known to match the leader.
 * Refusal: `index` is the rejected `prevIndex`; (`hintIndex`, `hintGeneration`) is the
 * follower's last entry with index ≤ prevIndex and generation ≤ prevGeneration, so the
 * leader can skip a whole conflicting generation in one round trip.
 */
export interface AppendResponse extends MessageBase {
  readonly type: 'append-response';
  readonly success: boolean;
  readonly index: number;
  readonly hintIndex: number;
  readonly hintGeneration: number;
}
/** HeartBeat: carries min(follower match, high-water mark) and the latest read-index round. */
export interface HeartbeatMessage extends MessageBase {
  readonly type: 'heartbeat';
  readonly commit: number;
  readonly readRound: number;
}
/** Answer to a heartbeat, echoing its read round. */
export interface HeartbeatResponse extends MessageBase {
  readonly type: 'heartbeat-response';
  readonly readRound: number;
}
/** One chunk of a snapshot, sent stop-and-wait. */
export interface SnapshotChunkMessage extends MessageBase {
  readonly type: 'snapshot-chunk';
  readonly meta: SnapshotMeta;
  readonly offset: number;
  readonly totalBytes: number;
  readonly data: Uint8Array;
}
/** Acknowledges snapshot chunks: the receiver wants `nextOffset` next. */
export interface SnapshotResponse extends MessageBase {
  readonly type: 'snapshot-response';
  readonly snapshotIndex: number;
  readonly nextOffset: number;
}
/** Leadership transfer: the receiver campaigns at once, skipping pre-vote. */
export interface TimeoutNowMessage extends MessageBase {
  readonly type: 'timeout-now';
}

/** Every message replicas exchange. Switch on `type`; switches are exhaustive. */
export type Message =
  | PreVoteMessage
  | PreVoteResponse
  | VoteMessage
  | VoteResponse
  | AppendMessage
  | AppendResponse
  | HeartbeatMessage
  | HeartbeatResponse
  | SnapshotChunkMessage
  | SnapshotResponse
  | TimeoutNowMessage;

/** The `type` of a {@link Message}. */
export type MessageType = Message['type'];

/**
 * Which messages depend on state that must be durable first. A vote or a vote
 * grant promises a persisted (generation, votedFor); an append or snapshot
 * acknowledgement promises persisted entries; every response may carry a
 * generation learnt in this very step. Those travel in
 * {@link Ready.messagesAfterPersist}; the rest may leave at once.
 */
export const SENT_AFTER_PERSIST: { readonly [K in MessageType]: boolean } = {
  'pre-vote': false,
  'pre-vote-response': false,
  vote: true,
  'vote-response': true,
  append: false,
  'append-response': true,
  heartbeat: false,
  'heartbeat-response': true,
  'snapshot-chunk': false,
  'snapshot-response': true,
  'timeout-now': false,
};

/**
 * Answer to a read request, in {@link Ready.readStates}.
 *
 * - From `readIndex` (`linearizable: true`): once the state machine has applied up to
 *   `index`, a read of it is linearizable. `index` is null when the request failed
 *   (leadership lost before a quorum confirmed it): retry, on the new leader.
 * - From `readLocal` (`linearizable: false`): `index` is the replica's own high-water mark.
 *   Reading after applying up to it never shows anything uncommitted, but may be stale.
 */
export interface ReadState {
  /** The caller's context string, as given to `readIndex` / `readLocal`. */
  readonly ctx: string;
  /** Apply up to this index, then read; null: the linearizable read failed. */
  readonly index: number | null;
  /** True for `readIndex` answers (confirmed by a quorum), false for `readLocal` ones. */
  readonly linearizable: boolean;
}

/** Volatile facts about a replica, for the driver and for tests. */
export interface SoftState {
  readonly role: Role;
  readonly leaderId: NodeId | null;
  readonly generation: number;
  readonly commit: number;
}

/** What to make durable, in this order: snapshot, then entries, then hard state. */
export interface PersistWork {
  /** Install this snapshot: drop every stored entry and restore the state machine from it. */
  readonly snapshot: Snapshot | null;
  /**
   * Append these entries. They are contiguous; any stored entry at or after
   * `entries[0].index` is overwritten (the conflicting suffix is truncated).
   */
  readonly entries: readonly Entry[];
  /** Store this hard state (null: unchanged). */
  readonly hardState: HardState | null;
}

/**
 * One batch of work the core hands to its driver. The driver MUST, in order:
 *
 * 1. send {@link Ready.messages} (any time, even before or while persisting);
 * 2. make {@link Ready.persist} durable (fsync), snapshot → entries → hard state;
 * 3. only then send {@link Ready.messagesAfterPersist}: vote requests, vote grants and
 *    append/snapshot acknowledgements promise that state is on disk, so sending them
 *    earlier breaks the Generation Clock and Majority Quorum (a crash could forget a
 *    vote or an acknowledged entry);
 * 4. apply {@link Ready.committedEntries} to the state machine (all at or below the
 *    high-water mark, all already durable locally after step 2);
 * 5. answer {@link Ready.readStates};
 * 6. call `replica.advance(ready)`.
 *
 * Only one Ready is outstanding at a time: `ready()` returns null until it is advanced.
 */
export interface Ready {
  readonly persist: PersistWork;
  /** Safe to send before persisting. */
  readonly messages: readonly Message[];
  /** Send only after {@link Ready.persist} is durable. */
  readonly messagesAfterPersist: readonly Message[];
  /** Apply in order after {@link Ready.persist} is durable. */
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
  readonly softState: SoftState;
}
