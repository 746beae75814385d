/**
 * An in-memory log implementing the core's {@link LogReader}, plus the writes a
 * driver performs for a Ready (append with suffix truncation, hard state,
 * snapshot install) and compaction behind a snapshot (Low-Water Mark). Used by
 * tests and the simulator; optional fault hooks let a test fail a write.
 *
 * @packageDocumentation
 */
import { TidemarkError } from '../errors';
import type { LogReader } from '../core/log-reader';
import { EMPTY_HARD_STATE, type Entry, type HardState, type Snapshot, entryBytes } from '../core/types';

/** Operations a fault hook can fail. */
export type MemoryLogOperation = 'append' | 'setHardState' | 'installSnapshot' | 'compact';

/** Fault injection: return an error to fail the operation (nothing is changed), or undefined to let it pass. */
export type MemoryLogFaultHook = (operation: MemoryLogOperation) => TidemarkError | undefined;

export class MemoryLog implements LogReader {
  private entriesStored: Entry[] = [];
  private snap: Snapshot | null = null;
  private hs: HardState = EMPTY_HARD_STATE;
  /** Optional fault hook, consulted before every write. */
  faultHook: MemoryLogFaultHook | undefined;

  /** Index of the snapshot (0 without one). */
  private get snapIndex(): number {
    return this.snap?.meta.index ?? 0;
  }

  hardState(): HardState {
    return this.hs;
  }
  firstIndex(): number {
    return this.snapIndex + 1;
  }
  lastIndex(): number {
    return this.snapIndex + this.entriesStored.length;
  }
  generationAt(index: number): number | undefined {
    if (index === this.snapIndex) return this.snap?.meta.generation ?? 0;
    if (index < this.snapIndex || index > this.lastIndex()) return undefined;
    return this.entriesStored[index - this.snapIndex - 1]?.generation;
  }
  entries(lo: number, hi: number, maxBytes: number): readonly Entry[] {
    if (lo < this.firstIndex() || hi > this.lastIndex() + 1 || lo > hi) {
      throw TidemarkError.outOfRange(`entries [${lo}, ${hi}) outside [${this.firstIndex()}, ${this.lastIndex() + 1})`);
    }
    return sliceEntries(this.entriesStored, this.snapIndex + 1, lo, hi, maxBytes);
  }
  snapshot(): Snapshot | null {
    return this.snap;
  }

  private check(op: MemoryLogOperation): void {
    const err = this.faultHook?.(op);
    if (err !== undefined) throw err;
  }

  /** Appends contiguous entries; any stored entry at or after `entries[0].index` is replaced. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    if (first.index <= this.snapIndex || first.index > this.lastIndex() + 1) {
      throw TidemarkError.outOfRange(`append at ${first.index} outside (${this.snapIndex}, ${this.lastIndex() + 1}]`);
    }
    for (let i = 1; i < entries.length; i++) {
      if ((entries[i] as Entry).index !== first.index + i) throw TidemarkError.invalidArgument('append: entries must be contiguous');
    }
    this.check('append');
    this.entriesStored.length = first.index - this.snapIndex - 1;
    this.entriesStored.push(...entries);
  }

  setHardState(hs: HardState): void {
    this.check('setHardState');
    this.hs = hs;
  }

  /** Replaces the whole log by `snapshot` (a follower catching up). */
  installSnapshot(snapshot: Snapshot): void {
    this.check('installSnapshot');
    this.snap = snapshot;
    this.entriesStored = [];
  }

  /**
   * Takes a snapshot at `index` (≤ the applied index, which the caller knows) with the
   * state machine's `data`, and drops the entries it covers.
   */
  compact(index: number, data: Uint8Array): void {
    if (index <= this.snapIndex) return;
    if (index > this.lastIndex()) throw TidemarkError.outOfRange(`compact at ${index} beyond last index ${this.lastIndex()}`);
    this.check('compact');
    const generation = this.generationAt(index) as number;
    this.entriesStored = this.entriesStored.slice(index - this.snapIndex);
    this.snap = { meta: { index, generation }, data };
  }

  /** An independent copy (what survives a simulated crash). */
  clone(): MemoryLog {
    const c = new MemoryLog();
    c.entriesStored = [...this.entriesStored];
    c.snap = this.snap;
    c.hs = this.hs;
    return c;
  }
}

/**
 * Entries `[lo, hi)` of `stored` (whose element 0 has index `base`), stopping once their
 * total size would exceed `maxBytes`, but always at least one when `lo < hi`. The range is
 * the caller's to check.
 */
export function sliceEntries(stored: readonly Entry[], base: number, lo: number, hi: number, maxBytes: number): Entry[] {
  const out: Entry[] = [];
  let bytes = 0;
  for (let i = lo; i < hi; i++) {
    const e = stored[i - base] as Entry;
    const b = entryBytes(e);
    if (out.length > 0 && bytes + b > maxBytes) break;
    out.push(e);
    bytes += b;
  }
  return out;
}
