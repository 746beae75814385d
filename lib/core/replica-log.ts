/**
 * The core's view of its log: durable entries read through {@link LogReader}, plus
 * the "unstable" tail (entries and an incoming snapshot) the driver has not yet
 * reported durable, plus the high-water mark (`commit`) and the applied index.
 *
 * @packageDocumentation
 */
import { TidemarkError } from '../errors';
import { assert } from './assert';
import type { LogReader } from './log-reader';
import { type Entry, type Snapshot, entryBytes } from './types';

export class ReplicaLog {
  /** Snapshot received from a leader, not yet reported durable. */
  unstableSnapshot: Snapshot | null = null;
  /** Index of `unstable[0]`: everything below it is durable (or superseded by the snapshot). */
  offset: number;
  /** Entries not yet reported durable. */
  unstable: Entry[] = [];
  /** How many of `unstable` were handed to the driver in the outstanding Ready. */
  inProgress = 0;
  /** True when `unstableSnapshot` is in the outstanding Ready. */
  snapshotInProgress = false;
  /** High-water mark. Never decreases. */
  commit: number;
  /** Last index handed to the state machine and advanced. */
  applied: number;

  constructor(
    readonly storage: LogReader,
    applied: number | undefined,
  ) {
    this.offset = storage.lastIndex() + 1;
    const hs = storage.hardState();
    const snapIndex = storage.firstIndex() - 1;
    if (hs.commit > storage.lastIndex()) {
      throw TidemarkError.invalidArgument(`the log's stored commit ${hs.commit} is beyond its last index ${storage.lastIndex()}`);
    }
    this.applied = applied ?? snapIndex;
    // Persisting the commit is optional (HardState.commit), so the state machine may be ahead of the
    // stored commit: whatever it applied was committed, so the high-water mark starts there. It must
    // not be ahead of the stored log (entries it applied were lost) nor behind the snapshot.
    if (this.applied < snapIndex || this.applied > storage.lastIndex()) {
      throw TidemarkError.invalidArgument(
        `applied ${this.applied} must lie in [snapshot index ${snapIndex}, last stored index ${storage.lastIndex()}]`,
      );
    }
    this.commit = Math.max(hs.commit, snapIndex, this.applied);
  }

  firstIndex(): number {
    if (this.unstableSnapshot !== null) return this.unstableSnapshot.meta.index + 1;
    return this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.offset + this.unstable.length - 1;
  }

  /** Generation of the entry at `index`, undefined if compacted or beyond the end. */
  generationAt(index: number): number | undefined {
    if (index < 0 || index > this.lastIndex()) return undefined;
    if (index >= this.offset) return (this.unstable[index - this.offset] as Entry).generation;
    if (this.unstableSnapshot !== null) {
      return index === this.unstableSnapshot.meta.index ? this.unstableSnapshot.meta.generation : undefined;
    }
    if (index < this.storage.firstIndex() - 1) return undefined;
    return this.storage.generationAt(index);
  }

  lastGeneration(): number {
    const g = this.generationAt(this.lastIndex());
    assert(g !== undefined, 'generation of last index unknown');
    return g;
  }

  matchGeneration(index: number, generation: number): boolean {
    return this.generationAt(index) === generation;
  }

  /** True if a log ending at (`lastIndex`, `lastGeneration`) is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastGeneration: number): boolean {
    const mine = this.lastGeneration();
    return lastGeneration > mine || (lastGeneration === mine && lastIndex >= this.lastIndex());
  }

  /** Entries `[lo, hi)` up to about `maxBytes` (at least one). `lo` must be ≥ firstIndex. */
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(lo >= this.firstIndex() && hi <= this.lastIndex() + 1 && lo <= hi, `entries [${lo}, ${hi}) out of range`);
    const out: Entry[] = [];
    let bytes = 0;
    if (lo < this.offset) {
      const stable = this.storage.entries(lo, Math.min(hi, this.offset), maxBytes);
      for (const e of stable) {
        bytes += entryBytes(e);
        out.push(e);
      }
      if (out.length < Math.min(hi, this.offset) - lo || bytes >= maxBytes) return out;
    }
    for (let i = Math.max(lo, this.offset); i < hi; i++) {
      const e = this.unstable[i - this.offset] as Entry;
      const b = entryBytes(e);
      if (out.length > 0 && bytes + b > maxBytes) break;
      out.push(e);
      bytes += b;
    }
    return out;
  }

  /**
   * Largest index ≤ `index` whose generation is ≤ `generation` (or the first index
   * whose generation is unknown because compacted). Used for the conflict hint.
   */
  findConflictByGeneration(index: number, generation: number): number {
    let i = Math.min(index, this.lastIndex());
    for (; i > 0; i--) {
      const g = this.generationAt(i);
      if (g === undefined || g <= generation) return i;
    }
    return 0;
  }

  /** Appends at the end (leader). */
  append(entries: readonly Entry[]): void {
    for (const e of entries) {
      assert(e.index === this.lastIndex() + 1, `append: index ${e.index} after ${this.lastIndex()}`);
      this.unstable.push(e);
    }
  }

  /**
   * Appends `entries` (contiguous), truncating any conflicting suffix first. Never
   * truncates at or below the high-water mark: that would lose a committed entry.
   */
  truncateAndAppend(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const at = first.index;
    assert(at > this.commit, `truncating at ${at}, at or below high-water mark ${this.commit}`);
    assert(at <= this.lastIndex() + 1, `gap: append at ${at} after ${this.lastIndex()}`);
    if (at === this.offset + this.unstable.length) {
      this.unstable.push(...entries);
    } else if (at <= this.offset) {
      this.offset = at;
      this.unstable = [...entries];
      this.inProgress = 0;
    } else {
      const keep = at - this.offset;
      this.unstable = this.unstable.slice(0, keep).concat(entries);
      this.inProgress = Math.min(this.inProgress, keep);
    }
  }

  /** Replaces the whole log with `snapshot` (follower catching up). */
  restore(snapshot: Snapshot): void {
    assert(snapshot.meta.index > this.commit, 'restore: snapshot not beyond the high-water mark');
    this.unstableSnapshot = snapshot;
    this.snapshotInProgress = false;
    this.offset = snapshot.meta.index + 1;
    this.unstable = [];
    this.inProgress = 0;
    this.commit = snapshot.meta.index;
  }

  /** Raises the high-water mark. */
  commitTo(index: number): void {
    if (index <= this.commit) return;
    assert(index <= this.lastIndex(), `commit ${index} beyond last index ${this.lastIndex()}`);
    this.commit = index;
  }

  /** Entries handed to the driver for persisting now (marks them in progress). */
  takeUnpersisted(): Entry[] {
    const out = this.unstable.slice(this.inProgress);
    this.inProgress = this.unstable.length;
    return out;
  }

  hasUnpersisted(): boolean {
    return this.inProgress < this.unstable.length || (this.unstableSnapshot !== null && !this.snapshotInProgress);
  }

  /** The driver reports entries up to (`index`, `generation`) durable. */
  stableTo(index: number, generation: number): void {
    if (index < this.offset || index > this.lastIndex()) return;
    if ((this.unstable[index - this.offset] as Entry).generation !== generation) return;
    const n = index - this.offset + 1;
    this.unstable.splice(0, n);
    this.offset = index + 1;
    this.inProgress = Math.max(0, this.inProgress - n);
  }

  /** The driver reports the snapshot at `index` durable. */
  stableSnapshotTo(index: number): void {
    if (this.unstableSnapshot !== null && this.unstableSnapshot.meta.index === index) {
      this.unstableSnapshot = null;
      this.snapshotInProgress = false;
    }
  }
}
