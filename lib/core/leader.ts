/**
 * Leader role: replicates with per-follower progress (Request Pipeline, Request
 * Batch), advances the High-Water Mark by Majority Quorum, sends HeartBeats,
 * checks its quorum, serves read-index reads and leadership transfer.
 *
 * @packageDocumentation
 */
import { TidemarkError } from '../errors';
import { assert, unreachable } from './assert';
import { type Progress, ProgressStates } from './progress';
import { nextHighWaterMark } from './quorum';
import type { ReplicaState } from './state';
import { type AppendResponse, type Entry, type Message, type NodeId, Roles, entryBytes } from './types';

function progressOf(s: ReplicaState, id: NodeId): Progress {
  const pr = s.progress.get(id);
  assert(pr !== undefined, `no progress for ${id}`);
  return pr;
}

export function stepLeader(s: ReplicaState, m: Message): void {
  switch (m.type) {
    case 'append':
    case 'heartbeat':
    case 'snapshot-chunk':
      assert(false, `two leaders in generation ${s.generation}: ${s.id} and ${m.from}`);
      return;
    case 'append-response':
      progressOf(s, m.from).recentActive = true;
      handleAppendResponse(s, m);
      return;
    case 'heartbeat-response':
      handleHeartbeatResponse(s, m.from, m.readRound);
      return;
    case 'snapshot-response': {
      const pr = progressOf(s, m.from);
      pr.recentActive = true;
      const t = pr.snapshot;
      if (pr.state !== ProgressStates.SNAPSHOT || t === null || t.snapshot.meta.index !== m.snapshotIndex) return;
      t.ackedOffset = Math.min(m.nextOffset, t.snapshot.data.length);
      t.ackedSinceHeartbeat = true;
      if (t.ackedOffset < t.snapshot.data.length) sendSnapshotChunk(s, m.from, pr);
      return;
    }
    case 'pre-vote':
    case 'vote':
    case 'pre-vote-response':
    case 'vote-response':
    case 'timeout-now':
      return;
    default:
      unreachable(m, 'message');
  }
}

function handleAppendResponse(s: ReplicaState, m: AppendResponse): void {
  const pr = progressOf(s, m.from);
  if (!m.success) {
    // Conflict hint: skip back over the follower's whole conflicting generation in one round trip.
    let nextProbe = m.hintIndex;
    if (m.hintGeneration > 0) nextProbe = s.log.findConflictByGeneration(m.hintIndex, m.hintGeneration);
    if (pr.maybeDecrease(m.index, nextProbe + 1)) s.pendingSend.add(m.from);
    return;
  }
  const grew = pr.maybeUpdate(m.index);
  if (pr.state === ProgressStates.PROBE && m.index >= pr.match) pr.becomeReplicate();
  else if (pr.state === ProgressStates.SNAPSHOT && pr.snapshot !== null && pr.match >= pr.snapshot.snapshot.meta.index) pr.becomeReplicate();
  if (grew && maybeCommit(s)) {
    for (const p of s.peers) s.pendingSend.add(p);
  }
  if (s.transferee === m.from && pr.match === s.log.lastIndex()) {
    s.send({ type: 'timeout-now', to: m.from });
  }
  if (pr.match < s.log.lastIndex()) s.pendingSend.add(m.from);
}

function handleHeartbeatResponse(s: ReplicaState, from: NodeId, readRound: number): void {
  const pr = progressOf(s, from);
  pr.recentActive = true;
  const last = s.log.lastIndex();
  switch (pr.state) {
    case ProgressStates.REPLICATE:
      // Entries outstanding and no progress over a whole heartbeat round: appends were lost.
      if (pr.match < last && pr.match === pr.matchAtLastHeartbeat && pr.inflights.count > 0) pr.becomeProbe();
      break;
    case ProgressStates.PROBE:
      pr.probeSent = false;
      break;
    case ProgressStates.SNAPSHOT: {
      const t = pr.snapshot;
      if (t !== null) {
        if (!t.ackedSinceHeartbeat) sendSnapshotChunk(s, from, pr);
        else t.ackedSinceHeartbeat = false;
      }
      break;
    }
    default:
      unreachable(pr.state, 'progress state');
  }
  pr.matchAtLastHeartbeat = pr.match;
  if (pr.match < last) s.pendingSend.add(from);
  // Read index: an answer to round r confirms every read registered in rounds ≤ r.
  for (const r of s.readsPending) {
    if (r.round <= readRound) r.acks.add(from);
  }
  releaseReads(s);
}

function releaseReads(s: ReplicaState): void {
  let n = 0;
  while (n < s.readsPending.length) {
    const r = s.readsPending[n];
    if (r === undefined || r.acks.size < s.quorum) break;
    s.readStates.push({ ctx: r.ctx, index: r.index, linearizable: true });
    n++;
  }
  if (n > 0) s.readsPending.splice(0, n);
}

/** Advances the high-water mark if a majority holds a newer entry of this generation. True if it moved. */
export function maybeCommit(s: ReplicaState): boolean {
  const matches = s.voters.map((v) => progressOf(s, v).match);
  const hwm = nextHighWaterMark(s.log.commit, matches, s.generation, (i) => s.log.generationAt(i));
  if (hwm <= s.log.commit) return false;
  s.log.commitTo(hwm);
  while (s.uncommittedQueue.length > 0 && (s.uncommittedQueue[0] as { index: number }).index <= hwm) {
    s.uncommittedBytes -= (s.uncommittedQueue.shift() as { bytes: number }).bytes;
  }
  assert(s.uncommittedBytes >= 0, 'uncommitted bytes negative');
  if (s.readsBeforeCommit.length > 0) {
    s.readsUnsent.push(...s.readsBeforeCommit);
    s.readsBeforeCommit.length = 0;
  }
  return true;
}

export function tickLeader(s: ReplicaState): void {
  s.heartbeatElapsed++;
  s.electionElapsed++;
  if (s.transferee !== null) {
    s.transferElapsed++;
    if (s.transferElapsed >= s.options.electionTimeoutTicks) {
      s.transferee = null;
      s.transferElapsed = 0;
    }
  }
  if (s.electionElapsed >= s.options.electionTimeoutTicks) {
    s.electionElapsed = 0;
    if (s.options.checkQuorum) {
      // Check-quorum: a leader cut off from a majority for an election timeout steps down by itself.
      let active = 1;
      for (const p of s.peers) {
        const pr = progressOf(s, p);
        if (pr.recentActive) active++;
        pr.recentActive = false;
      }
      if (active < s.quorum) {
        s.becomeFollower(s.generation, null);
        return;
      }
    }
  }
  if (s.heartbeatElapsed >= s.options.heartbeatTicks) {
    s.heartbeatElapsed = 0;
    broadcastHeartbeat(s);
  }
}

export function broadcastHeartbeat(s: ReplicaState): void {
  for (const to of s.peers) {
    const pr = progressOf(s, to);
    s.send({ type: 'heartbeat', to, commit: Math.min(pr.match, s.log.commit), readRound: s.readRound });
  }
}

/** Sends whatever `to` may receive now, within its in-flight window. */
export function sendAppend(s: ReplicaState, to: NodeId): void {
  const pr = progressOf(s, to);
  const log = s.log;
  for (let sent = 0; sent <= pr.inflights.maxCount; sent++) {
    if (pr.paused()) return;
    const prevIndex = pr.next - 1;
    const prevGeneration = log.generationAt(prevIndex);
    if (prevGeneration === undefined || pr.next < log.firstIndex()) {
      startSnapshot(s, to, pr);
      return;
    }
    const last = log.lastIndex();
    const entries: Entry[] = pr.next <= last ? log.entries(pr.next, last + 1, s.options.maxAppendBytes) : [];
    if (entries.length === 0 && pr.state === ProgressStates.REPLICATE && pr.commitSent >= log.commit) return;
    s.send({ type: 'append', to, prevIndex, prevGeneration, entries, commit: log.commit });
    pr.commitSent = Math.max(pr.commitSent, log.commit);
    const lastSent = entries[entries.length - 1];
    if (pr.state === ProgressStates.PROBE) {
      pr.probeSent = true;
      return;
    }
    if (lastSent === undefined) return;
    let bytes = 0;
    for (const e of entries) bytes += entryBytes(e);
    pr.inflights.add(lastSent.index, bytes);
    pr.next = lastSent.index + 1;
  }
}

function startSnapshot(s: ReplicaState, to: NodeId, pr: Progress): void {
  const snapshot = s.log.storage.snapshot();
  assert(snapshot !== null, `follower ${to} needs compacted entries but no snapshot exists`);
  pr.becomeSnapshot(snapshot);
  sendSnapshotChunk(s, to, pr);
}

function sendSnapshotChunk(s: ReplicaState, to: NodeId, pr: Progress): void {
  const t = pr.snapshot;
  assert(t !== null, 'snapshot chunk without transfer');
  const total = t.snapshot.data.length;
  const offset = Math.min(t.ackedOffset, total);
  s.send({
    type: 'snapshot-chunk',
    to,
    meta: t.snapshot.meta,
    offset,
    totalBytes: total,
    data: t.snapshot.data.subarray(offset, Math.min(total, offset + s.options.snapshotChunkBytes)),
  });
  t.ackedSinceHeartbeat = false;
}

/** Batched sends and read rounds, done once per Ready rather than per event. */
export function flushLeader(s: ReplicaState): void {
  if (s.role !== Roles.LEADER) return;
  for (const to of s.pendingSend) sendAppend(s, to);
  s.pendingSend.clear();
  if (s.readsUnsent.length > 0) {
    s.readRound++;
    const self = new Set<NodeId>([s.id]);
    for (const ctx of s.readsUnsent) s.readsPending.push({ ctx, index: s.log.commit, round: s.readRound, acks: new Set(self) });
    s.readsUnsent.length = 0;
    if (s.peers.length > 0) broadcastHeartbeat(s);
    releaseReads(s);
  }
}

/** Appends a client command; returns where it will land. Throws TM_NOT_LEADER / TM_BUSY / TM_INVALID_ARGUMENT. */
export function propose(s: ReplicaState, data: Uint8Array): { index: number; generation: number } {
  if (s.role !== Roles.LEADER) throw TidemarkError.notLeader(s.leaderId ?? undefined);
  if (!(data instanceof Uint8Array)) throw TidemarkError.invalidArgument('proposal data must be a Uint8Array');
  if (data.length > s.options.maxEntryBytes) {
    throw TidemarkError.invalidArgument(`proposal of ${data.length} bytes exceeds maxEntryBytes ${s.options.maxEntryBytes}`);
  }
  if (s.transferee !== null) throw TidemarkError.busy(`leadership is being transferred to ${s.transferee}; retry on the new leader`);
  if (s.uncommittedBytes > 0 && s.uncommittedBytes + data.length > s.options.maxUncommittedBytes) {
    throw TidemarkError.busy(
      `uncommitted bytes ${s.uncommittedBytes} + ${data.length} would exceed maxUncommittedBytes ${s.options.maxUncommittedBytes}; retry later`,
    );
  }
  const index = s.log.lastIndex() + 1;
  s.log.append([{ index, generation: s.generation, kind: 'normal', data: data.slice() }]);
  s.uncommittedBytes += data.length;
  s.uncommittedQueue.push({ index, bytes: data.length });
  for (const p of s.peers) s.pendingSend.add(p);
  return { index, generation: s.generation };
}

/** Registers a linearizable read (read index). Throws TM_NOT_LEADER / TM_BUSY. */
export function readIndex(s: ReplicaState, ctx: string): void {
  if (s.role !== Roles.LEADER) throw TidemarkError.notLeader(s.leaderId ?? undefined);
  const waiting = s.readsBeforeCommit.length + s.readsUnsent.length + s.readsPending.length;
  if (waiting >= s.options.maxPendingReads) throw TidemarkError.busy(`${waiting} reads are pending (maxPendingReads); retry later`);
  if (s.log.generationAt(s.log.commit) !== s.generation) s.readsBeforeCommit.push(ctx);
  else s.readsUnsent.push(ctx);
}

/** Starts a leadership transfer to `to`. */
export function transferLeadership(s: ReplicaState, to: NodeId): void {
  if (s.role !== Roles.LEADER) throw TidemarkError.notLeader(s.leaderId ?? undefined);
  if (to === s.id) return;
  if (!s.peers.includes(to)) throw TidemarkError.invalidArgument(`cannot transfer leadership to ${to}: not a voter`);
  if (s.transferee === to) return;
  s.transferee = to;
  s.transferElapsed = 0;
  const pr = progressOf(s, to);
  if (pr.match === s.log.lastIndex()) s.send({ type: 'timeout-now', to });
  else s.pendingSend.add(to);
}
