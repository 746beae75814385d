/**
 * The narrow read interface through which the core sees stable storage (etcd's
 * Storage shape). The core never writes: it asks its driver to, through
 * `Ready.persist`, and reads back here after `advance()`.
 *
 * @packageDocumentation
 */
import type { Entry, HardState, Snapshot } from './types';

/**
 * Read access to the durable log, hard state and latest snapshot of one node.
 * Implementations: lib/log/memory.ts (in memory), the native WAL adapter.
 *
 * Indexes: entries `firstIndex() .. lastIndex()` are stored; `firstIndex() - 1` is the
 * snapshot's index (0 with no snapshot), whose generation is still known.
 *
 * Every method is synchronous and called from inside `step`/`ready`: a native-WAL
 * implementation must answer from memory (e.g. a cache of the unsnapshotted tail, or
 * synchronous reads), and reflect a Ready's writes before `advance(ready)` is called.
 */
export interface LogReader {
  /** The last durable hard state (generation 0, no vote, commit 0 for a new node). */
  hardState(): HardState;
  /** Index of the first stored entry: snapshot index + 1. */
  firstIndex(): number;
  /** Index of the last stored entry, or the snapshot index when no entry is stored. */
  lastIndex(): number;
  /**
   * Generation of the entry at `index` for `firstIndex() - 1 <= index <= lastIndex()`
   * (0 for index 0); undefined outside that range (compacted or absent).
   */
  generationAt(index: number): number | undefined;
  /**
   * Entries `[lo, hi)`, stopping once their total size exceeds `maxBytes`, but always at
   * least one when `lo < hi`. The returned array and entries must not be mutated.
   * Throws TidemarkError `TM_OUT_OF_RANGE` if `lo < firstIndex()` or `hi > lastIndex() + 1`.
   */
  entries(lo: number, hi: number, maxBytes: number): readonly Entry[];
  /**
   * The latest durable snapshot, or null if none was ever taken or installed. When non-null,
   * `snapshot().meta.index === firstIndex() - 1`: the log's Low-Water Mark.
   */
  snapshot(): Snapshot | null;
}

