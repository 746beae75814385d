/**
 * Follower role: accepts appends, heartbeats and snapshots from the leader of
 * its generation (Leader and Followers, Replicated Log, High-Water Mark).
 *
 * @packageDocumentation
 */
import { assert, unreachable } from './assert';
import type { ReplicaState } from './state';
import type { AppendMessage, HeartbeatMessage, Message, SnapshotChunkMessage } from './types';

export function stepFollower(s: ReplicaState, m: Message): void {
  switch (m.type) {
    case 'append':
      heardFromLeader(s, m.from);
      handleAppend(s, m);
      return;
    case 'heartbeat':
      heardFromLeader(s, m.from);
      handleHeartbeat(s, m);
      return;
    case 'snapshot-chunk':
      heardFromLeader(s, m.from);
      handleSnapshotChunk(s, m);
      return;
    case 'timeout-now':
      // Leadership transfer: campaign at once, skipping pre-vote and the lease.
      s.startElection(true);
      return;
    case 'pre-vote':
    case 'vote':
    case 'pre-vote-response':
    case 'vote-response':
    case 'append-response':
    case 'heartbeat-response':
    case 'snapshot-response':
      return; // stale answers to a role we no longer have
    default:
      unreachable(m, 'message');
  }
}

function heardFromLeader(s: ReplicaState, from: string): void {
  s.electionElapsed = 0;
  s.leaderId = from;
}

/** Log matching on (prevIndex, prevGeneration); truncates a conflicting suffix, never at or below the high-water mark. */
export function handleAppend(s: ReplicaState, m: AppendMessage): void {
  const log = s.log;
  let prevIndex = m.prevIndex;
  let prevGeneration = m.prevGeneration;
  let entries = m.entries;
  if (prevIndex < log.commit) {
    // Everything up to our high-water mark must already match the leader: a leader that
    // disagrees below it would make us truncate committed entries. That is a bug: crash.
    const skip = log.commit - prevIndex;
    for (let i = 0; i < Math.min(skip, entries.length); i++) {
      const e = entries[i] as (typeof entries)[number];
      const mine = log.generationAt(e.index);
      assert(mine === undefined || mine === e.generation, `would truncate committed entry ${e.index} (high-water mark ${log.commit})`);
    }
    if (skip >= entries.length) {
      ack(s, m, log.commit);
      return;
    }
    const boundary = entries[skip - 1];
    assert(boundary !== undefined, 'append: boundary entry');
    prevIndex = log.commit;
    prevGeneration = boundary.generation;
    const mine = log.generationAt(prevIndex);
    assert(mine === undefined || mine === prevGeneration, `committed entry ${prevIndex} differs from leader's (${mine} vs ${prevGeneration})`);
    entries = entries.slice(skip);
  }
  if (log.matchGeneration(prevIndex, prevGeneration)) {
    const lastNew = prevIndex + entries.length;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      assert(e !== undefined && e.index === prevIndex + 1 + i, 'append: entries not contiguous');
      if (!log.matchGeneration(e.index, e.generation)) {
        log.truncateAndAppend(entries.slice(i));
        break;
      }
    }
    log.commitTo(Math.min(m.commit, lastNew));
    ack(s, m, lastNew);
    return;
  }
  let hintIndex = log.findConflictByGeneration(Math.min(prevIndex, log.lastIndex()), prevGeneration);
  if (hintIndex < log.commit) hintIndex = log.commit;
  s.send({
    type: 'append-response',
    to: m.from,
    success: false,
    index: m.prevIndex,
    hintIndex,
    hintGeneration: log.generationAt(hintIndex) ?? 0,
  });
}

function ack(s: ReplicaState, m: { from: string }, index: number): void {
  s.send({ type: 'append-response', to: m.from, success: true, index, hintIndex: 0, hintGeneration: 0 });
}

export function handleHeartbeat(s: ReplicaState, m: HeartbeatMessage): void {
  s.log.commitTo(Math.min(m.commit, s.log.lastIndex()));
  s.send({ type: 'heartbeat-response', to: m.from, readRound: m.readRound });
}

/** Snapshot chunks arrive in order, stop-and-wait; the last one installs the snapshot (Low-Water Mark). */
export function handleSnapshotChunk(s: ReplicaState, m: SnapshotChunkMessage): void {
  const log = s.log;
  if (m.meta.index <= log.commit) {
    s.snapshotReceive = null;
    ack(s, m, log.commit);
    return;
  }
  let rx = s.snapshotReceive;
  const same =
    rx !== null &&
    rx.from === m.from &&
    rx.generation === s.generation &&
    rx.index === m.meta.index &&
    rx.snapshotGeneration === m.meta.generation &&
    rx.buffer.length === m.totalBytes;
  if (m.offset === 0 && !(same && rx !== null && rx.received > 0)) {
    if (m.totalBytes > s.options.maxSnapshotBytes) return; // cannot accept; the leader keeps trying
    rx = {
      from: m.from,
      generation: s.generation,
      index: m.meta.index,
      snapshotGeneration: m.meta.generation,
      buffer: new Uint8Array(m.totalBytes),
      received: 0,
    };
    s.snapshotReceive = rx;
  } else if (!same || rx === null) {
    s.send({ type: 'snapshot-response', to: m.from, snapshotIndex: m.meta.index, nextOffset: 0 });
    return;
  }
  if (m.offset !== rx.received || m.offset + m.data.length > rx.buffer.length) {
    s.send({ type: 'snapshot-response', to: m.from, snapshotIndex: m.meta.index, nextOffset: rx.received });
    return;
  }
  rx.buffer.set(m.data, m.offset);
  rx.received += m.data.length;
  if (rx.received < rx.buffer.length) {
    s.send({ type: 'snapshot-response', to: m.from, snapshotIndex: m.meta.index, nextOffset: rx.received });
    return;
  }
  s.snapshotReceive = null;
  if (log.matchGeneration(m.meta.index, m.meta.generation)) {
    // We already hold that entry: just move the high-water mark.
    log.commitTo(m.meta.index);
    ack(s, m, log.commit);
    return;
  }
  log.restore({ meta: m.meta, data: rx.buffer });
  ack(s, m, log.lastIndex());
}
