/**
 * The pure replication core (DESIGN.md "Replication"): roles, Generation Clock,
 * Majority Quorum, High-Water Mark, Replicated Log, snapshots and read index, as
 * a deterministic state machine with no I/O, timers, clock or global randomness.
 *
 * A driver (lib/cluster; test/sim/simulator.ts is a complete reference driver):
 * - builds a {@link Replica} over a {@link LogReader} of its durable log and a seeded {@link Random};
 * - calls `tick()` every tick interval (monotonic time, never wall clock), `step(msg)` per message
 *   received, `propose()` / `readIndex()` / `readLocal()` / `transferLeadership()` for clients;
 * - then loops `ready()` → carry out the {@link Ready} in its documented order → `advance(ready)`.
 *
 * Operating errors are TidemarkError (TM_NOT_LEADER with `leaderId`, TM_BUSY, TM_INVALID_ARGUMENT);
 * a broken protocol invariant throws {@link CoreAssertionError}: stop the node.
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
