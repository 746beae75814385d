/**
 * Majority Quorum math ("Patterns of Distributed Systems"): a cluster of 2f+1
 * voters needs f+1 of them, so any two quorums intersect.
 *
 * @packageDocumentation
 */
import { assert } from './assert';

/** Votes needed out of `voterCount`: ⌊n/2⌋ + 1. */
export function quorumSize(voterCount: number): number {
  assert(Number.isInteger(voterCount) && voterCount > 0, `voter count must be a positive integer, got ${voterCount}`);
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The highest index durable on a majority: sort the acknowledged match indexes
 * (one per voter, the leader's own counted only once its own persist is reported)
 * from highest to lowest and take the quorum-th.
 */
export function majorityIndex(matchIndexes: readonly number[]): number {
  const sorted = [...matchIndexes].sort((a, b) => b - a);
  const picked = sorted[quorumSize(matchIndexes.length) - 1];
  assert(picked !== undefined, 'majorityIndex: no voters');
  return picked;
}

/**
 * High-Water Mark rule: the leader may advance its high-water mark to the majority
 * index only if that entry was written in its current generation (entries of older
 * generations are committed indirectly, by the no-op a new leader appends).
 * Returns the new high-water mark (never lower than `commit`).
 */
export function nextHighWaterMark(
  commit: number,
  matchIndexes: readonly number[],
  currentGeneration: number,
  generationAt: (index: number) => number | undefined,
): number {
  const candidate = majorityIndex(matchIndexes);
  if (candidate <= commit) return commit;
  if (generationAt(candidate) !== currentGeneration) return commit;
  return candidate;
}

/** Outcome of a vote count. */
export type VoteOutcome = 'won' | 'lost' | 'pending';

/** Counts granted/refused answers among `voterCount` voters. */
export function tallyVotes(granted: number, refused: number, voterCount: number): VoteOutcome {
  const q = quorumSize(voterCount);
  if (granted >= q) return 'won';
  if (refused > voterCount - q) return 'lost';
  return 'pending';
}
