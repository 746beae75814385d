/**
 * The leader's view of one follower (Request Pipeline, Request Batch): what it
 * has (`match`), what to send next (`next`), and a bounded window of appends in
 * flight so a slow follower cannot make the leader's memory grow without bound.
 *
 * States: `probe` (one append at a time, after a refusal or on a new leader),
 * `replicate` (pipelined, optimistic `next`), `snapshot` (sending a snapshot).
 *
 * @packageDocumentation
 */
import { assert } from './assert';
import type { Snapshot } from './types';

/** Bounded FIFO of in-flight appends: each slot is (last index sent, bytes). */
export class Inflights {
  private readonly lastIndexes: number[] = [];
  private readonly sizes: number[] = [];
  private bytesInFlight = 0;

  /**
   * @param maxCount most appends in flight (≥ 1)
   * @param maxBytes bytes in flight at which the window is full (≥ 1); a single append
   *   may overshoot it, so the hard bound is `maxBytes + maxAppendBytes`.
   */
  constructor(
    readonly maxCount: number,
    readonly maxBytes: number,
  ) {
    assert(maxCount >= 1 && maxBytes >= 1, 'Inflights bounds must be positive');
  }

  /** Appends in flight. */
  get count(): number {
    return this.lastIndexes.length;
  }
  /** Bytes in flight. */
  get bytes(): number {
    return this.bytesInFlight;
  }
  /** True when no further append may be sent. */
  full(): boolean {
    return this.lastIndexes.length >= this.maxCount || this.bytesInFlight >= this.maxBytes;
  }
  /** Records an append ending at `lastIndex` of `bytes` bytes. The window must not be full. */
  add(lastIndex: number, bytes: number): void {
    assert(!this.full(), 'Inflights.add on a full window');
    const prev = this.lastIndexes[this.lastIndexes.length - 1];
    assert(prev === undefined || lastIndex > prev, 'Inflights.add: indexes must increase');
    this.lastIndexes.push(lastIndex);
    this.sizes.push(bytes);
    this.bytesInFlight += bytes;
  }
  /** Frees every append ending at or below `index` (acknowledged). */
  freeTo(index: number): void {
    let n = 0;
    while (n < this.lastIndexes.length && (this.lastIndexes[n] as number) <= index) {
      this.bytesInFlight -= this.sizes[n] as number;
      n++;
    }
    if (n > 0) {
      this.lastIndexes.splice(0, n);
      this.sizes.splice(0, n);
    }
  }
  /** Forgets everything in flight. */
  reset(): void {
    this.lastIndexes.length = 0;
    this.sizes.length = 0;
    this.bytesInFlight = 0;
  }
}

/** Progress states. */
export const ProgressStates = { PROBE: 'probe', REPLICATE: 'replicate', SNAPSHOT: 'snapshot' } as const;
/** One of {@link ProgressStates}. */
export type ProgressState = (typeof ProgressStates)[keyof typeof ProgressStates];

/** A snapshot being streamed to a follower, one chunk at a time. */
export interface SnapshotTransfer {
  readonly snapshot: Snapshot;
  /** Bytes the follower has acknowledged. */
  ackedOffset: number;
  /** True once a chunk was acknowledged since the last heartbeat answer (else resend). */
  ackedSinceHeartbeat: boolean;
}

/** The leader's bookkeeping for one peer. */
export class Progress {
  /** Highest index known to be replicated (and durable) on the peer. */
  match = 0;
  /** Next index to send. */
  next: number;
  state: ProgressState = ProgressStates.PROBE;
  /** Probe mode: an append was sent and is not yet answered (send no more until then or a heartbeat answer). */
  probeSent = false;
  /** Heard from the peer since the last check-quorum round. */
  recentActive = true;
  /** `match` as of the previous heartbeat answer: unchanged while entries are outstanding means appends were lost. */
  matchAtLastHeartbeat = 0;
  /** Highest commit index sent to the peer in an append. */
  commitSent = 0;
  snapshot: SnapshotTransfer | null = null;
  readonly inflights: Inflights;

  constructor(next: number, maxInflightAppends: number, maxInflightBytes: number) {
    this.next = next;
    this.inflights = new Inflights(maxInflightAppends, maxInflightBytes);
  }

  /** True when nothing more may be sent now. */
  paused(): boolean {
    switch (this.state) {
      case ProgressStates.PROBE:
        return this.probeSent;
      case ProgressStates.REPLICATE:
        return this.inflights.full();
      case ProgressStates.SNAPSHOT:
        return true;
    }
  }

  /** Moves to probe mode: resend from `match + 1`, one append at a time. */
  becomeProbe(): void {
    if (this.state === ProgressStates.SNAPSHOT && this.snapshot !== null) {
      this.next = Math.max(this.match, this.snapshot.snapshot.meta.index) + 1;
    } else {
      this.next = this.match + 1;
    }
    this.state = ProgressStates.PROBE;
    this.probeSent = false;
    this.snapshot = null;
    this.inflights.reset();
  }

  /** Moves to pipelined replication after a successful probe. */
  becomeReplicate(): void {
    this.state = ProgressStates.REPLICATE;
    this.next = this.match + 1;
    this.probeSent = false;
    this.snapshot = null;
    this.inflights.reset();
  }

  /** Starts streaming `snapshot`. */
  becomeSnapshot(snapshot: Snapshot): void {
    this.state = ProgressStates.SNAPSHOT;
    this.probeSent = false;
    this.inflights.reset();
    this.snapshot = { snapshot, ackedOffset: 0, ackedSinceHeartbeat: true };
  }

  /** Records an acknowledgement up to `index`; true if `match` grew. */
  maybeUpdate(index: number): boolean {
    let grew = false;
    if (index > this.match) {
      this.match = index;
      grew = true;
      this.probeSent = false;
    }
    if (this.next < index + 1) this.next = index + 1;
    this.inflights.freeTo(index);
    return grew;
  }

  /**
   * Handles a refusal of the append whose prevIndex was `rejected`; `nextProbe` is the
   * leader's best guess from the follower's hint. False if the refusal is stale.
   */
  maybeDecrease(rejected: number, nextProbe: number): boolean {
    if (this.state === ProgressStates.REPLICATE) {
      if (rejected <= this.match) return false;
      this.becomeProbe();
      this.next = Math.max(Math.min(rejected, nextProbe), this.match + 1);
      return true;
    }
    if (this.state === ProgressStates.SNAPSHOT) return false;
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, nextProbe), this.match + 1);
    this.probeSent = false;
    return true;
  }
}
