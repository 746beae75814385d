import { binding } from './log/binding';
import { TidemarkError } from './errors';

/**
 * CRC-32C (Castagnoli) of `data`, computed in hardware where the CPU has it.
 *
 * `seed` continues an earlier result: `crc32c(b, crc32c(a)) === crc32c(a ‖ b)`.
 *
 * @param data - bytes to checksum (any `Uint8Array`, including a `Buffer` or a subarray)
 * @param seed - a previous CRC-32C result to extend; default 0 (a fresh start)
 * @returns the CRC as an unsigned 32-bit integer
 * @throws `TM_INVALID_ARGUMENT` when `data` is not a Uint8Array or `seed` not a uint32
 */
export function crc32c(data: Uint8Array, seed = 0): number {
  if (!(data instanceof Uint8Array)) {
    throw TidemarkError.invalidArgument(`crc32c: data must be a Uint8Array (or Buffer), got ${describe(data)}`);
  }
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw TidemarkError.invalidArgument(`crc32c: seed must be an integer in [0, 2^32 - 1], got ${String(seed)}`);
  }
  return binding().crc32c(data, seed);
}

/** Which CRC-32C implementation the CPU got: `'sse42'`, `'arm64'` or `'table'`. */
export function crc32cImplementation(): string {
  return binding().crc32cImplementation();
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  return typeof value;
}
