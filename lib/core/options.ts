/**
 * Options of a {@link Replica}, their defaults and validation. Every bound the core
 * keeps is named here (units last).
 *
 * @packageDocumentation
 */
import { TidemarkError } from '../errors';
import type { LogReader } from './log-reader';
import type { Random } from './random';
import type { NodeId } from './types';

/** What a replica is built from. */
export interface ReplicaOptions {
  /** This replica's id; must be one of `voters`. */
  readonly id: NodeId;
  /** Every voter of the cluster, this one included (1 to {@link MAX_VOTERS}). */
  readonly voters: readonly NodeId[];
  /** Messages carrying another cluster id are ignored. */
  readonly clusterId: string;
  /** Durable storage, read only. */
  readonly log: LogReader;
  /** Seeded randomness (election timeouts). */
  readonly random: Random;
  /** Election timeout T: a follower campaigns after a random timeout in [T, 2T) ticks. Default 10. */
  readonly electionTimeoutTicks?: number;
  /** A leader sends heartbeats every this many ticks; must be < electionTimeoutTicks. Default 1. */
  readonly heartbeatTicks?: number;
  /** Pre-vote before raising the generation. Default true. */
  readonly preVote?: boolean;
  /** Leaders step down when not heard from a majority for an election timeout; voters honour a leader lease. Default true. */
  readonly checkQuorum?: boolean;
  /** Most entry bytes per append message (at least one entry is always sent). Default 1 MiB. */
  readonly maxAppendBytes?: number;
  /** Most appends in flight per follower. Default 64. */
  readonly maxInflightAppends?: number;
  /** Bytes in flight per follower at which sending pauses. Default 8 MiB. */
  readonly maxInflightBytes?: number;
  /** Uncommitted payload bytes past which proposals are refused with TM_BUSY. Default 64 MiB. */
  readonly maxUncommittedBytes?: number;
  /** Largest payload of one proposal. Default 16 MiB. */
  readonly maxEntryBytes?: number;
  /** Snapshot chunk size. Default 1 MiB. */
  readonly snapshotChunkBytes?: number;
  /** Largest snapshot a follower accepts. Default 1 GiB. */
  readonly maxSnapshotBytes?: number;
  /** Read requests waiting for confirmation at most. Default 4096. */
  readonly maxPendingReads?: number;
  /** Most committed entry bytes handed out per Ready (at least one entry). Default 8 MiB. */
  readonly maxApplyBytes?: number;
  /**
   * Index the state machine has applied (restart); default: the snapshot index. Must lie in
   * [snapshot index, last stored index]; it may exceed the stored commit (persisting the commit
   * is optional), and the high-water mark then starts at `applied`.
   */
  readonly applied?: number;
}

/** Voters a cluster may have. */
export const MAX_VOTERS = 15;

/** Options with every default filled in. */
export type ResolvedOptions = Required<Omit<ReplicaOptions, 'applied'>> & { readonly applied: number | undefined };

const MiB = 1024 * 1024;

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1) {
    throw TidemarkError.invalidArgument(`${name} must be a positive integer, got ${String(value)}`);
  }
  return v;
}

/** Fills in defaults and checks every option; throws TidemarkError TM_INVALID_ARGUMENT. */
export function resolveOptions(o: ReplicaOptions): ResolvedOptions {
  if (typeof o.id !== 'string' || o.id.length === 0) throw TidemarkError.invalidArgument('id must be a non-empty string');
  if (!Array.isArray(o.voters) || o.voters.length < 1 || o.voters.length > MAX_VOTERS) {
    throw TidemarkError.invalidArgument(`voters must list 1 to ${MAX_VOTERS} ids`);
  }
  if (new Set(o.voters).size !== o.voters.length) throw TidemarkError.invalidArgument('voters must not repeat an id');
  if (!o.voters.includes(o.id)) throw TidemarkError.invalidArgument(`id ${o.id} is not one of the voters`);
  if (typeof o.clusterId !== 'string') throw TidemarkError.invalidArgument('clusterId must be a string');
  const electionTimeoutTicks = positiveInt('electionTimeoutTicks', o.electionTimeoutTicks, 10);
  const heartbeatTicks = positiveInt('heartbeatTicks', o.heartbeatTicks, 1);
  if (heartbeatTicks >= electionTimeoutTicks) {
    throw TidemarkError.invalidArgument(`heartbeatTicks (${heartbeatTicks}) must be below electionTimeoutTicks (${electionTimeoutTicks})`);
  }
  if (o.applied !== undefined && (!Number.isSafeInteger(o.applied) || o.applied < 0)) {
    throw TidemarkError.invalidArgument('applied must be a non-negative integer');
  }
  return {
    id: o.id,
    voters: [...o.voters],
    clusterId: o.clusterId,
    log: o.log,
    random: o.random,
    electionTimeoutTicks,
    heartbeatTicks,
    preVote: o.preVote ?? true,
    checkQuorum: o.checkQuorum ?? true,
    maxAppendBytes: positiveInt('maxAppendBytes', o.maxAppendBytes, MiB),
    maxInflightAppends: positiveInt('maxInflightAppends', o.maxInflightAppends, 64),
    maxInflightBytes: positiveInt('maxInflightBytes', o.maxInflightBytes, 8 * MiB),
    maxUncommittedBytes: positiveInt('maxUncommittedBytes', o.maxUncommittedBytes, 64 * MiB),
    maxEntryBytes: positiveInt('maxEntryBytes', o.maxEntryBytes, 16 * MiB),
    snapshotChunkBytes: positiveInt('snapshotChunkBytes', o.snapshotChunkBytes, MiB),
    maxSnapshotBytes: positiveInt('maxSnapshotBytes', o.maxSnapshotBytes, 1024 * MiB),
    maxPendingReads: positiveInt('maxPendingReads', o.maxPendingReads, 4096),
    maxApplyBytes: positiveInt('maxApplyBytes', o.maxApplyBytes, 8 * MiB),
    applied: o.applied,
  };
}
