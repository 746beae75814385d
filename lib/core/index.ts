/**
 * The pure replication core. See {@link Replica}.
 *
 * @packageDocumentation
 */
export { Replica, entriesBytes } from './replica';
export type { ReplicaStatus, PeerStatus } from './replica';
export type { ReplicaOptions } from './options';
export { MAX_VOTERS } from './options';
export type { LogReader } from './log-reader';
export type { Random } from './random';
export { SeededRandom } from './random';
export { CoreAssertionError } from './assert';
export type { StepOutcome } from './state';
export { quorumSize, majorityIndex } from './quorum';
export { describeMessage, describeEntry } from './describe';
export {
  EntryKinds,
  Roles,
  SENT_AFTER_PERSIST,
  EMPTY_HARD_STATE,
  ENTRY_OVERHEAD_BYTES,
  entryBytes,
} from './types';
export type {
  NodeId,
  Entry,
  EntryKind,
  HardState,
  Snapshot,
  SnapshotMeta,
  Role,
  Message,
  MessageType,
  MessageBase,
  PreVoteMessage,
  PreVoteResponse,
  VoteMessage,
  VoteResponse,
  AppendMessage,
  AppendResponse,
  HeartbeatMessage,
  HeartbeatResponse,
  SnapshotChunkMessage,
  SnapshotResponse,
  TimeoutNowMessage,
  ReadState,
  SoftState,
  PersistWork,
  Ready,
} from './types';
