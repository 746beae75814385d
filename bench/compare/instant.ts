/**
 * The harness ceiling: a "store" whose append promise is already resolved and that writes
 * nothing. What it measures is the bench loop itself (closed-loop writers awaiting a promise,
 * the latency recorder, the event loop), the most any promise-returning store could reach in
 * this harness. Issue 10's 128 B × 256 target is a fraction of it. It is never a "best peer".
 */
import type { BenchStore, Contestant } from '../harness';

export const instant: Contestant = {
  name: 'harness ceiling (no store)',
  durability: 'none: append() returns an already-resolved promise and writes nothing (the bench loop alone)',
  notAPeer: true,
  open(): Promise<BenchStore> {
    const done = Promise.resolve();
    return Promise.resolve({
      append: (): Promise<void> => done,
      syncCount: () => 0,
      close: () => Promise.resolve(),
    });
  },
};
