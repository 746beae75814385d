/**
 * Candidate role: counts votes of a Majority Quorum in its new generation.
 *
 * @packageDocumentation
 */
import { unreachable } from './assert';
import { handleAppend, handleHeartbeat, handleSnapshotChunk } from './follower';
import { tallyVotes } from './quorum';
import type { ReplicaState } from './state';
import type { Message } from './types';

/** A leader of our generation exists: follow it and handle its message. */
export function yieldToLeader(s: ReplicaState, m: Extract<Message, { type: 'append' | 'heartbeat' | 'snapshot-chunk' }>): void {
  s.becomeFollower(s.generation, m.from);
  switch (m.type) {
    case 'append':
      handleAppend(s, m);
      return;
    case 'heartbeat':
      handleHeartbeat(s, m);
      return;
    case 'snapshot-chunk':
      handleSnapshotChunk(s, m);
      return;
    default:
      unreachable(m, 'message');
  }
}

export function stepCandidate(s: ReplicaState, m: Message): void {
  switch (m.type) {
    case 'append':
    case 'heartbeat':
    case 'snapshot-chunk':
      yieldToLeader(s, m);
      return;
    case 'vote-response': {
      if (!s.votes.has(m.from)) s.votes.set(m.from, m.granted);
      const outcome = tally(s);
      if (outcome === 'won') s.becomeLeader();
      else if (outcome === 'lost') s.becomeFollower(s.generation, null);
      return;
    }
    case 'pre-vote':
    case 'vote':
    case 'pre-vote-response':
    case 'append-response':
    case 'heartbeat-response':
    case 'snapshot-response':
    case 'timeout-now':
      return;
    default:
      unreachable(m, 'message');
  }
}

export function tally(s: ReplicaState): ReturnType<typeof tallyVotes> {
  let granted = 0;
  let refused = 0;
  for (const g of s.votes.values()) {
    if (g) granted++;
    else refused++;
  }
  return tallyVotes(granted, refused, s.voters.length);
}
