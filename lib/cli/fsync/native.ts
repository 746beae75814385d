/**
 * The benchmark's native primitives (native/bench_sync.cc via native/addon.cc), typed.
 * Missing (no binary, or an older one) means `undefined`: the rows that need them say
 * "not measured" with the reason instead of measuring something else.
 */
import { binding } from '../../log/binding';

/** The addon functions `tidemark bench fsync` uses. */
export interface BenchNative {
  /** Bytes into `view` to the first byte aligned to `align`. */
  benchAlignOffset(view: Uint8Array, align: number): number;
  /** A ring handle, or why io_uring cannot be used here. */
  benchUringOpen(): number | string;
  /** One write linked to one fdatasync on ring `handle`: bytes written or -errno. */
  benchUringWriteFdatasync(handle: number, fd: number, view: Uint8Array, offset: number): number;
  benchUringClose(handle: number): void;
}

/** The primitives, or undefined when the loaded addon lacks them. */
export function benchNative(): BenchNative | undefined {
  try {
    const b = binding() as unknown as Partial<BenchNative>;
    if (typeof b.benchAlignOffset !== 'function' || typeof b.benchUringOpen !== 'function') return undefined;
    return b as BenchNative;
  } catch {
    return undefined;
  }
}
