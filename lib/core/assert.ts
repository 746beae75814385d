/**
 * Assertions for programmer errors only (STYLE.md §2): a broken invariant of the
 * replication protocol is a bug, and the only safe reaction is to stop. Operating
 * errors (bad input, not leader, busy) are {@link TidemarkError}s instead.
 *
 * @packageDocumentation
 */

/** Thrown when an invariant of the core does not hold. Never catch it to carry on. */
export class CoreAssertionError extends Error {
  constructor(message: string) {
    super(`tidemark core invariant broken: ${message}`);
    this.name = 'CoreAssertionError';
  }
}

/** Crash with `message` unless `condition` holds. */
export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new CoreAssertionError(message);
}

/** Marks a branch the type system proves unreachable (exhaustive switches). */
export function unreachable(value: never, what = 'value'): never {
  throw new CoreAssertionError(`unreachable ${what}: ${JSON.stringify(value)}`);
}
