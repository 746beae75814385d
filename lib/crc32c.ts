import { binding, type NativeBinding } from './log/binding';
import { TidemarkError } from './errors';

// The native function, looked up once (crc32c is called per record on hot paths).
let nativeCrc32c: NativeBinding['crc32c'] | undefined;

// Inputs up to this many bytes are done in JavaScript: crossing into native code through
// N-API costs more (~40-70 ns measured here) than a table walk over a few words.
const JS_MAX_BYTES = 32;

// Slicing-by-4 tables for the short path: TABLE_k[b] is the register after byte b
// followed by k zero bytes (reflected polynomial 0x82F63B78).
const TABLE_0 = new Int32Array(256);
const TABLE_1 = new Int32Array(256);
const TABLE_2 = new Int32Array(256);
const TABLE_3 = new Int32Array(256);
for (let b = 0; b < 256; b++) {
  let reg = b;
  for (let bit = 0; bit < 8; bit++) reg = (reg >>> 1) ^ (0x82f63b78 & -(reg & 1));
  TABLE_0[b] = reg;
}
for (let b = 0; b < 256; b++) {
  TABLE_1[b] = (TABLE_0[b]! >>> 8) ^ TABLE_0[TABLE_0[b]! & 0xff]!;
  TABLE_2[b] = (TABLE_1[b]! >>> 8) ^ TABLE_0[TABLE_1[b]! & 0xff]!;
  TABLE_3[b] = (TABLE_2[b]! >>> 8) ^ TABLE_0[TABLE_2[b]! & 0xff]!;
}

function crc32cShort(data: Uint8Array, seed: number): number {
  let reg = ~seed;
  const length = data.length;
  const words = length & ~3;
  let i = 0;
  for (; i < words; i += 4) {
    reg ^= data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    reg = TABLE_3[reg & 0xff]! ^ TABLE_2[(reg >>> 8) & 0xff]! ^ TABLE_1[(reg >>> 16) & 0xff]! ^ TABLE_0[reg >>> 24]!;
  }
  for (; i < length; i++) reg = TABLE_0[(reg ^ data[i]!) & 0xff]! ^ (reg >>> 8);
  return ~reg >>> 0;
}

/**
 * CRC-32C (Castagnoli) of `data`, computed in hardware where the CPU has it
 * (SSE4.2 on x86-64, the CRC32 extension on arm64; a table otherwise). Inputs of up to
 * 32 bytes are computed in JavaScript, which is cheaper than the call into native code.
 *
 * `seed` continues an earlier result: `crc32c(b, crc32c(a)) === crc32c(a ‖ b)`.
 *
 * @param data - bytes to checksum (any `Uint8Array`, including a `Buffer` or a subarray)
 * @param seed - a previous CRC-32C result to extend; default 0 (a fresh start)
 * @returns the CRC as an unsigned 32-bit integer
 * @throws `TM_INVALID_ARGUMENT` when `data` is not a Uint8Array or `seed` not an integer in [0, 2^32 - 1]
 */
export function crc32c(data: Uint8Array, seed = 0): number {
  // For a number, `seed >>> 0 === seed` holds exactly when it is an integer in [0, 2^32 - 1].
  if (!(data instanceof Uint8Array) || typeof seed !== 'number' || seed >>> 0 !== seed) throw invalid(data, seed);
  if (data.length <= JS_MAX_BYTES) return crc32cShort(data, seed);
  return (nativeCrc32c ??= binding().crc32c)(data, seed);
}

/** Which CRC-32C implementation the CPU got: `'sse42'`, `'arm64'` or `'table'`. */
export function crc32cImplementation(): string {
  return binding().crc32cImplementation();
}

/**
 * Test hook, not public API: `true` forces the portable table implementation for every
 * caller in the process (including the WAL's threads), `false` restores run-time dispatch.
 * @internal
 */
export function _forceTableForTests(force: boolean): void {
  binding().crc32cForceTable(force === true);
}

function invalid(data: unknown, seed: unknown): TidemarkError {
  if (!(data instanceof Uint8Array)) {
    return TidemarkError.invalidArgument(`crc32c: data must be a Uint8Array (or Buffer), got ${describe(data)}`);
  }
  return TidemarkError.invalidArgument(
    `crc32c: seed must be an integer in [0, 2^32 - 1] (a previous crc32c result), got ${describe(seed)}`,
  );
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 20 ? `${value.slice(0, 20)}...` : value)}`;
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  return typeof value;
}
