/**
 * Simulated disk of one node: a durable MemoryLog plus at most one write in
 * flight (the outstanding Ready). A sync may take several steps. A crash loses
 * the write in flight, except possibly a prefix of it in write order
 * (snapshot, entries one by one, hard state): a torn batch that was never
 * acknowledged.
 */
import type { Entry, HardState, LogReader, Ready, Snapshot } from '../../lib/core';
import type { SeededRandom } from '../../lib/core/random';
import { MemoryLog } from '../../lib/log/memory';

/**
 * The durable storage a simulated node runs over: the core's {@link LogReader} plus the
 * writes a driver performs for a Ready and compaction. Each call is durable when it returns
 * (the Disk models sync latency and power loss around it). `MemoryLog` implements it; a
 * storage adapter over the native Wal (lib/cluster's RaftStorage, behind the fault layer)
 * can be plugged in through {@link DiskOptions.storage} by wrapping its asynchronous persist.
 */
export interface SimStorage extends LogReader {
  /** Appends contiguous entries; a stored entry at or after `entries[0].index` is replaced. */
  append(entries: readonly Entry[]): void;
  setHardState(hs: HardState): void;
  /** Replaces the whole log by `snapshot`. */
  installSnapshot(snapshot: Snapshot): void;
  /** Snapshot at `index` with state `data`, dropping the entries it covers. */
  compact(index: number, data: Uint8Array): void;
  /**
   * Optional: the storage models the power loss itself (the native-Wal mode, wal-mirror.ts)
   * instead of the Disk's torn prefix. Called at a crash with the write in flight (or null);
   * it must reflect at once, synchronously, what of it is certainly durable (the hard state,
   * for the durable-vote ground truth), draw its randomness from `rng` only, and returns
   * whether part of the write landed.
   */
  crash?(inFlight: Ready['persist'] | null, rng: SeededRandom): boolean;
  /** Optional: makes a whole Ready's persist work durable in one call (else append / setHardState / installSnapshot in order). */
  persist?(work: Ready['persist']): void;
}

export interface PendingWrite {
  readonly ready: Ready;
  readonly completeAt: number;
}

export class Disk {
  pending: PendingWrite | null = null;
  syncs = 0;
  tornOnCrash = 0;

  constructor(
    private readonly rng: SeededRandom,
    readonly log: SimStorage = new MemoryLog(),
  ) {}

  submit(ready: Ready, completeAt: number): void {
    if (this.pending !== null) throw new Error('disk: second write while one is in flight');
    this.pending = { ready, completeAt };
  }

  /** Makes the write durable, in order. */
  static persist(log: SimStorage, ready: Ready): void {
    const p = ready.persist;
    if (log.persist !== undefined) return log.persist(p);
    if (p.snapshot !== null) log.installSnapshot(p.snapshot);
    if (p.entries.length > 0) log.append(p.entries);
    if (p.hardState !== null) log.setHardState(p.hardState);
  }

  /** Completes the write in flight if due; returns its Ready. */
  completeIfDue(now: number): Ready | null {
    const w = this.pending;
    if (w === null || w.completeAt > now) return null;
    this.pending = null;
    Disk.persist(this.log, w.ready);
    this.syncs++;
    return w.ready;
  }

  /** Power loss: the write in flight is lost, or a prefix of it landed. */
  crash(): void {
    const w = this.pending;
    this.pending = null;
    if (this.log.crash !== undefined) {
      if (this.log.crash(w?.ready.persist ?? null, this.rng)) this.tornOnCrash++;
      return;
    }
    if (w === null || !this.rng.chance(0.5)) return;
    const p = w.ready.persist;
    const ops = (p.snapshot !== null ? 1 : 0) + p.entries.length + (p.hardState !== null ? 1 : 0);
    if (ops === 0) return;
    let keep = this.rng.int(ops + 1);
    if (keep === 0) return;
    this.tornOnCrash++;
    if (p.snapshot !== null) {
      this.log.installSnapshot(p.snapshot);
      keep--;
    }
    const n = Math.min(keep, p.entries.length);
    if (n > 0) this.log.append(p.entries.slice(0, n));
    keep -= n;
    if (keep > 0 && p.hardState !== null) this.log.setHardState(p.hardState);
  }
}
