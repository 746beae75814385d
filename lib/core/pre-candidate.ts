/**
 * Pre-candidate role (Raft thesis §9.6, pre-vote): asks whether a majority would
 * vote for it in the next generation without raising its own, so a node cut off
 * from the cluster cannot inflate the generation and depose a healthy leader.
 *
 * @packageDocumentation
 */
import { unreachable } from './assert';
import { tally, yieldToLeader } from './candidate';
import type { ReplicaState } from './state';
import type { Message } from './types';

export function stepPreCandidate(s: ReplicaState, m: Message): void {
  switch (m.type) {
    case 'append':
    case 'heartbeat':
    case 'snapshot-chunk':
      yieldToLeader(s, m);
      return;
    case 'pre-vote-response': {
      // Granted answers carry the generation we would campaign in; refusals carry the voter's (ours).
      if (m.granted && m.generation !== s.generation + 1) return;
      if (!m.granted && m.generation !== s.generation) return;
      if (!s.votes.has(m.from)) s.votes.set(m.from, m.granted);
      const outcome = tally(s);
      if (outcome === 'won') s.becomeCandidate(false);
      else if (outcome === 'lost') s.becomeFollower(s.generation, null);
      return;
    }
    case 'timeout-now':
      s.startElection(true);
      return;
    case 'pre-vote':
    case 'vote':
    case 'vote-response':
    case 'append-response':
    case 'heartbeat-response':
    case 'snapshot-response':
      return;
    default:
      unreachable(m, 'message');
  }
}
